"""TRL trainers for fairgym: SFT, GRPO and DPO, with one switch between LoRA at rank r and a full update.

``train(config)`` is the whole run: validate, check the run folder (resume), build the dataset, load the model,
build the TRL trainer, train (from the last checkpoint when resuming), save the adapter or the full model with
its tokenizer. Every arm of a comparison differs only in ``method``/``rank``: the data, steps and seeds match.

CPU defaults: float32, ``bf16=False``, no gradient checkpointing, ``use_cpu=True``, no dataloader workers.
GPU defaults: bf16 mixed precision. The trained weights are float32 master weights for every method and dtype;
``dtype`` only chooses the autocast precision. Multi-GPU / multi-node through ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from fairgym.config import load_saved_config, save_config
from fairgym.locks import folder_lock
from fairgym.runfiles import CONFIG_FILE
from fairgym.training.capacity import check_capacity
from fairgym.training.config import TrainConfig, config_differences
from fairgym.training.trl_config import check_vllm, lora_config, on_cuda, trl_config


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


def build_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, callbacks: list | None = None) -> Any:
    """The TRL trainer for ``config.recipe`` on ``dataset`` (LoRA wrapping done by TRL via ``peft_config``)."""
    from fairgym.lm.models import hide_checkpointing_deprecation

    callbacks = list(callbacks or [])
    if config.report_to == "wandb":
        from fairgym.analysis.wandb_log import training_callback

        callbacks.append(training_callback())
    with hide_checkpointing_deprecation():
        return _build_trainer(config, model, tokenizer, dataset, callbacks)


def _build_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, callbacks: list | None) -> Any:
    peft = lora_config(config) if config.adapter is None else None
    if config.recipe == "sft":
        from trl import SFTConfig

        from fairgym.training.sft_trainer import CompactHeadSFTTrainer

        args = trl_config(config, SFTConfig, max_length=config.max_length, completion_only_loss=True, packing=False)
        data = dataset.select_columns(["prompt", "completion"])
        return CompactHeadSFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                                     peft_config=peft, callbacks=callbacks)
    if config.recipe == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = trl_config(config, DPOConfig, max_length=config.max_length, beta=config.beta)
        data = dataset.select_columns(["prompt", "chosen", "rejected"])
        return DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft,
                          callbacks=callbacks)
    if config.recipe == "grpo-episode":  # whole episodes: TRL's tool loop where the template renders tool calls
        from fairgym.training.episode_grpo import build_episode_trainer, open_rollout_log
        from fairgym.training.tool_env import build_tool_trainer, uses_tools

        if uses_tools(tokenizer):
            return build_tool_trainer(config, model, tokenizer, dataset, peft, callbacks, open_rollout_log(config))
        return build_episode_trainer(config, model, tokenizer, dataset, peft, callbacks)
    return _grpo_trainer(config, model, tokenizer, dataset, peft, callbacks)


def _grpo_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, peft: Any,
                  callbacks: list | None) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    from fairgym.training.rewards import make_reward_funcs

    args = trl_config(config, GRPOConfig, num_generations=config.num_generations,
                      max_completion_length=config.max_completion_length, temperature=config.temperature,
                      beta=config.beta, reward_weights=[1.0, config.format_weight], shuffle_dataset=True)
    funcs: list[Any] = make_reward_funcs(fairness_penalty=config.fairness_penalty)
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
        ValueError: the folder holds a run whose saved config differs (naming the fields) or was saved at an
            older schema version, or holds checkpoints while ``resume`` is false.
    """
    out = Path(config.output_dir)
    saved_file = out / CONFIG_FILE
    checkpoint = last_checkpoint(out)
    if saved_file.is_file() and is_main_process():  # other ranks could read it mid-write
        saved = load_saved_config(TrainConfig, saved_file)
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
        from fairgym.analysis.wandb_log import prepare_training_run

        prepare_training_run(config.output_dir)


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
        ValueError: a run folder with a differing config or an older schema, a LoRA rank above an adapted
            matrix's smaller side, an estimate beyond the available memory, an empty dataset, a model/adapter
            mismatch: all before the first step (the first four before any weights are loaded).
        fairgym.locks.FolderBusyError: another process writes ``output_dir``.
    """
    # One writer per folder; the ranks of one distributed launch share rank 0's lock.
    with folder_lock(config.output_dir) if is_main_process() else contextlib.nullcontext():
        return _train(config)


def _train(config: TrainConfig) -> TrainResult:
    from transformers import set_seed

    from fairgym.training.datasets import build_dataset, check_dataset

    resume_from = check_run_folder(config)
    check_vllm(config)  # a GPU and vLLM, before any weights load
    check_capacity(config, lora_config(config), cuda=on_cuda(config), verbose=is_main_process())
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
        from fairgym.training.model_card import record_base

        record_base(config, out, final)
        trainer.state.save_to_json(str(out / "trainer_state.json"))
        (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return TrainResult(output_dir=out, model_dir=final if config.method == "full" else None,
                       adapter_dir=final if config.method == "lora" else None, metrics=metrics,
                       global_step=trainer.state.global_step)


class EvalEpisodesCallback(TrainerCallback):
    """Every ``eval_every`` steps, run ``eval_episodes`` episodes with the model in training and log ``eval/``.

    The agent is ``LLMAgent.from_model`` on the live model (adapter included), deciding as the env declares
    (choice scoring where decisions are discrete choices, generation elsewhere); metrics come from
    ``fairgym.analysis.metrics.compute_metrics`` and are recorded in the trainer state's ``log_history`` as
    ``eval/<metric>``, and sent to W&B (with ``report_to="wandb"``) against ``train/global_step``, the step axis of
    the transformers W&B integration. Main process only.
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
            from fairgym.analysis.wandb_log import log_to_active_run

            log_to_active_run({**logs, "train/global_step": state.global_step}, "logging of eval metrics")
