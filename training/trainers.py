"""TRL trainers for fairgym: SFT, GRPO and DPO, with one switch between LoRA at rank r and a full update.

``train(config)`` is the whole run: validate, check the run folder (resume), build the dataset, load the model,
build the TRL trainer, train (from the last checkpoint when resuming), save the adapter or the full model with
its tokenizer. Every arm of a comparison differs only in ``method``/``rank``: the data, steps and seeds match.

CPU defaults: float32, ``bf16=False``, no gradient checkpointing, ``use_cpu=True``, no dataloader workers.
GPU defaults: bf16 mixed precision. The trained weights are float32 master weights for every method and dtype;
``dtype`` only chooses the autocast precision. Multi-GPU / multi-node through ``accelerate launch``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from fairgym.config import load_yaml, save_config
from fairgym.runfiles import CONFIG_FILE
from fairgym.training.config import TrainConfig, config_differences


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        output_dir: the run folder.
        model_dir: the full fine-tuned model folder (``method="full"``), else ``None``.
        adapter_dir: the PEFT adapter folder (``method="lora"``), else ``None``.
        metrics: the trainer's final metrics (``train_loss``, ``train_runtime``, ...).
        global_step: optimizer steps taken in total (resumed runs included).
    """

    output_dir: Path
    model_dir: Path | None
    adapter_dir: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    global_step: int = 0


def lora_config(config: TrainConfig) -> Any:
    """The PEFT ``LoraConfig`` for ``config`` (``None`` for a full update)."""
    if config.method != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, lora_dropout=config.dropout,
                      target_modules=config.target_modules, use_rslora=config.use_rslora, use_dora=config.use_dora,
                      bias="none", task_type="CAUSAL_LM")


def on_cuda(config: TrainConfig) -> bool:
    """Whether the run trains on CUDA (``device`` as given, else when CUDA is available)."""
    return (config.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")


def mixed_precision(config: TrainConfig) -> str | None:
    """The autocast dtype of training (``"bf16"``, ``"fp16"``) or ``None`` for float32 throughout.

    ``config.dtype`` names the compute precision, never the trained weights' dtype: those stay float32 master
    weights for every method, so a full update and a LoRA adapter (which PEFT keeps in float32) train alike.
    ``None`` means bf16 autocast on a CUDA device that supports it, else float32.
    """
    from fairgym.lm.models import resolve_dtype

    if config.dtype is None:
        return "bf16" if on_cuda(config) and torch.cuda.is_bf16_supported() else None
    dtype = resolve_dtype(config.dtype, "cpu")
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype)


def load_policy(config: TrainConfig) -> tuple[Any, Any]:
    """The model to train and its tokenizer, in float32 (master weights; the trainer places it on the device).

    Raises:
        ValueError: an unknown model, or an adapter made for another base model.
    """
    from fairgym.lm.models import load_model

    # float32 whatever config.dtype says: bf16/fp16 is the autocast of the forward pass (mixed_precision)
    model, tokenizer = load_model(config.model, config.adapter, device="cpu", dtype="float32", trainable=True)
    if config.adapter is not None and config.method == "full":
        model = model.merge_and_unload()  # a full update starts from base + adapter merged
    model.config.use_cache = False
    return model, tokenizer


def common_args(config: TrainConfig) -> dict[str, Any]:
    """TrainingArguments shared by every recipe."""
    cuda, precision = on_cuda(config), mixed_precision(config)
    return dict(
        output_dir=config.output_dir, max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        warmup_steps=config.warmup, lr_scheduler_type=config.lr_scheduler,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=2, seed=config.seed, data_seed=config.seed, bf16=precision == "bf16", fp16=precision == "fp16",
        # W&B comes through SafeWandbCallback (its failures are warnings), never the stock callback
        use_cpu=not cuda, activation_checkpointing=False, dataloader_num_workers=0, report_to="none",
        run_name=config.run_name or Path(config.output_dir).name, disable_tqdm=True,
        ddp_find_unused_parameters=False,
    )


def build_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, callbacks: list | None = None) -> Any:
    """The TRL trainer for ``config.recipe`` on ``dataset`` (LoRA wrapping done by TRL via ``peft_config``)."""
    from fairgym.lm.models import hide_checkpointing_deprecation

    callbacks = list(callbacks or [])
    if config.report_to == "wandb":
        from fairgym.training.safe_wandb import SafeWandbCallback

        callbacks.append(SafeWandbCallback())
    with hide_checkpointing_deprecation():
        return _build_trainer(config, model, tokenizer, dataset, callbacks)


def _build_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, callbacks: list | None) -> Any:
    peft = lora_config(config) if config.adapter is None else None
    base = common_args(config)
    if config.recipe == "sft":
        from trl import SFTConfig

        from fairgym.training.sft_trainer import CompactHeadSFTTrainer

        args = SFTConfig(**base, max_length=config.max_length, completion_only_loss=True, packing=False)
        data = dataset.select_columns(["prompt", "completion"])
        return CompactHeadSFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                                     peft_config=peft, callbacks=callbacks)
    if config.recipe == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**base, max_length=config.max_length, beta=config.beta)
        data = dataset.select_columns(["prompt", "chosen", "rejected"])
        return DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft,
                          callbacks=callbacks)
    if config.recipe == "grpo-episode":  # whole episodes: TRL's tool loop where the template renders tool calls
        from fairgym.training.episode_grpo import build_episode_trainer, open_rollout_log
        from fairgym.training.tool_env import build_tool_trainer, uses_tools

        if uses_tools(tokenizer):
            return build_tool_trainer(config, model, tokenizer, dataset, peft, base, callbacks,
                                      open_rollout_log(config))
        return build_episode_trainer(config, model, tokenizer, dataset, peft, base, callbacks)
    return _grpo_trainer(config, model, tokenizer, dataset, peft, base, callbacks)


def _grpo_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, peft: Any, base: dict[str, Any],
                  callbacks: list | None) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    from fairgym.training.rewards import make_reward_funcs

    args = GRPOConfig(**base, num_generations=config.num_generations,
                      max_completion_length=config.max_completion_length, temperature=config.temperature,
                      beta=config.beta, reward_weights=[1.0, config.format_weight], shuffle_dataset=True)
    funcs = make_reward_funcs(fairness_penalty=config.fairness_penalty)
    return GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset, processing_class=tokenizer,
                       peft_config=peft, callbacks=callbacks)


def chat_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    """Tokens of ``messages`` rendered with the chat template."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_lengths(config: TrainConfig, tokenizer: Any, dataset: Any) -> None:
    """Fail before training when no row's prompt leaves room for its target within ``max_length`` tokens."""
    target = {"sft": "completion", "dpo": "chosen"}.get(config.recipe)
    if target is None:
        return
    rows = dataset.select(range(min(len(dataset), 32)))
    lengths = [chat_tokens(tokenizer, r["prompt"] + r[target]) for r in rows]
    if min(lengths) > config.max_length:
        raise ValueError(f"TrainConfig.max_length={config.max_length} is shorter than every checked example "
                         f"(prompt + {target}: {min(lengths)}..{max(lengths)} tokens), so truncation would leave "
                         f"nothing to learn; raise max_length to at least {max(lengths)}.")


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``output_dir``, or ``None``."""
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    return Path(found) if found else None


def check_run_folder(config: TrainConfig) -> Path | None:
    """Check ``output_dir`` before anything trains; return the checkpoint to resume from, if any.

    Raises:
        ValueError: the folder holds a run whose saved config differs (naming the fields), or holds
            checkpoints while ``resume`` is false.
    """
    out = Path(config.output_dir)
    saved_file = out / CONFIG_FILE
    checkpoint = last_checkpoint(out)
    if saved_file.is_file() and is_main_process():  # other ranks could read it mid-write
        saved = load_yaml(saved_file)
        diffs = config_differences(saved, config)
        if diffs:
            listed = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, a, b in ((k, *v) for k, v in diffs.items()))
            raise ValueError(f"output_dir={str(out)!r} holds a run with a different config ({listed}). Use another "
                             "output_dir, or the saved values to resume it.")
    if checkpoint is not None and not config.resume:
        raise ValueError(f"output_dir={str(out)!r} holds checkpoints ({checkpoint.name}) and resume=false; set "
                         "resume=true to continue it or choose another output_dir.")
    return checkpoint if config.resume else None


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


def _setup_wandb(config: TrainConfig) -> None:
    if config.report_to == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")  # offline unless the user configured W&B
        os.environ.setdefault("WANDB_PROJECT", "fairgym")
        os.environ.setdefault("WANDB_DIR", str(Path(config.output_dir).resolve()))


def _save_run_inputs(config: TrainConfig, dataset: Any) -> None:
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not is_main_process():
        return
    save_config(config, out / CONFIG_FILE)
    if not (out / "dataset").exists():
        dataset.save_to_disk(str(out / "dataset"))
        dataset.to_json(str(out / "dataset.jsonl"), lines=True)


def train(config: TrainConfig) -> TrainResult:
    """Run one training job end to end.

    Args:
        config: a validated ``TrainConfig``.

    Returns:
        A ``TrainResult`` naming the saved adapter (LoRA) or model (full) folder.

    Raises:
        ValueError: a run folder with a differing config, an empty dataset, a model/adapter mismatch — all
            before the first step.
    """
    from transformers import set_seed

    from fairgym.training.datasets import build_dataset, check_dataset

    resume_from = check_run_folder(config)
    dataset = build_dataset(config)
    check_dataset(dataset, config)
    _setup_wandb(config)
    set_seed(config.seed)  # LoRA init and data order
    model, tokenizer = load_policy(config)
    check_lengths(config, tokenizer, dataset)
    if config.recipe == "grpo-episode":
        from fairgym.lm.generation import context_window
        from fairgym.training.episode_grpo import check_episode_fits

        check_episode_fits(config, tokenizer, context_window(model))
    _save_run_inputs(config, dataset)
    callbacks = [EvalEpisodesCallback(config)] if config.eval_every else []
    trainer = build_trainer(config, model, tokenizer, dataset, callbacks)
    from fairgym.lm.models import hide_checkpointing_deprecation

    with hide_checkpointing_deprecation():  # TRL's generation and DPO paths read the old name while training
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return _finish(config, trainer, dict(output.metrics))


def _finish(config: TrainConfig, trainer: Any, metrics: dict[str, Any]) -> TrainResult:
    out = Path(config.output_dir)
    final = out / ("adapter" if config.method == "lora" else "model")
    trainer.save_model(str(final))
    metrics["global_step"] = trainer.state.global_step
    if is_main_process():
        trainer.state.save_to_json(str(out / "trainer_state.json"))
        (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return TrainResult(output_dir=out, model_dir=final if config.method == "full" else None,
                       adapter_dir=final if config.method == "lora" else None, metrics=metrics,
                       global_step=trainer.state.global_step)


class EvalEpisodesCallback(TrainerCallback):
    """Every ``eval_every`` steps, run ``eval_episodes`` episodes with the model in training and log ``eval/``.

    The agent is ``LLMAgent.from_model`` on the live model (adapter included), deciding as the env declares
    (choice scoring where decisions are discrete choices, generation elsewhere); metrics come from
    ``fairgym.analysis.metrics.compute_metrics`` and are logged through the trainer as ``eval_<metric>``, which
    recorded in the trainer state's ``log_history`` as ``eval/<metric>`` and sent to W&B (when a W&B run is active)
    with ``train/global_step``, the step axis of the transformers W&B integration. Main process only.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.history: list[dict[str, Any]] = []

    def evaluate(self, model: Any, tokenizer: Any, step: int) -> dict[str, float]:
        """Evaluation episodes with the current weights; returns the numeric metrics."""
        from fairgym.agents.llm import LLMAgent
        from fairgym.agents.options import default_decide
        from fairgym.agents.runner import run_episodes
        from fairgym.analysis.metrics import compute_metrics

        was_training = model.training
        model.eval()
        try:
            agent = LLMAgent.from_model(model, tokenizer, decide=default_decide(self.config.env_id))
            episodes = run_episodes(self.config.env_id, agent, episodes=self.config.eval_episodes,
                                    seed=self.config.seed + 10_000, env_kwargs=dict(self.config.env_kwargs),
                                    progress=False)
        finally:
            model.train(was_training)
        metrics = {k: float(v) for k, v in compute_metrics(episodes).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.history.append({"step": step, **metrics})
        return metrics

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                    **kwargs: Any) -> None:
        if not state.is_world_process_zero or state.global_step % self.config.eval_every:
            return
        logs = {f"eval/{k}": v for k, v in self.evaluate(model, processing_class, state.global_step).items()}
        state.log_history.append({**logs, "step": state.global_step})
        if self.config.report_to == "wandb":
            _log_to_wandb({**logs, "train/global_step": state.global_step})


def _log_to_wandb(values: dict[str, Any]) -> None:
    """``wandb.log`` into the active run, if any; a failure is a warning (the values are in the trainer state)."""
    import warnings

    import wandb

    try:
        if wandb.run is not None:
            wandb.log(values)
    except Exception as exc:  # noqa: BLE001 - a W&B failure must never stop training
        warnings.warn(f"W&B logging of eval metrics failed ({type(exc).__name__}: {exc}); they stay in "
                      "trainer_state.json.", RuntimeWarning, stacklevel=2)
