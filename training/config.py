"""``TrainConfig``: one dataclass for every fairgym training run (SFT, GRPO, DPO; LoRA rank r or full).

Configs are data: YAML gives values (``configs/train/*.yaml``), ``key=value`` overrides win, and
``__post_init__`` rejects bad values with an error naming the field, the value and the fix, before any model
is loaded. Every arm of a comparison shares everything but ``method``/``rank``: same data, steps and seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fairgym.config import BUDGET, LOGGING, UnknownNameError, fields_with_role, load_config, role, with_defaults

RECIPES = ("sft", "grpo", "dpo", "grpo-episode")
GRPO_RECIPES = ("grpo", "grpo-episode")
VLLM_MODES = ("colocate",)  # TRL's vllm_mode values fairgym wires up
# Reward components of the episode recipe (fairgym.training.episode_rewards computes them) and their default weights.
LR_SCHEDULERS = ("linear", "constant", "constant_with_warmup", "cosine")
EPISODE_REWARDS = {"task_return": 1.0, "fairness": 0.0, "fairness_per_turn": 0.0, "toxicity": 0.0,
                   "invalid_actions": 0.5}
METHODS = ("full", "lora")
DATA_KINDS = ("demonstrations", "detox", "preferences", "episodes")
REPORT_TO = ("none", "wandb")


@dataclass
class TrainConfig:
    """A training run.

    Attributes:
        recipe: ``"sft"``, ``"grpo"`` (single decisions replayed), ``"dpo"`` or ``"grpo-episode"`` (whole
            episodes played as multi-turn rollouts; see ``fairgym.training.episode_grpo``).
        output_dir: run folder (checkpoints, the final adapter or model, the dataset, ``config.yaml``).
        model: base model: ``None`` for the embedded SmolLM2-135M-Instruct, else a hub id or local folder.
        adapter: optional PEFT adapter to start from (checked against ``model``).
        method: ``"lora"`` (PEFT adapter) or ``"full"`` (every weight trains).
        rank: LoRA rank r (> 0). Ignored by ``"full"``.
        alpha: the LoRA parametrization: the update ``B @ A`` is scaled by ``alpha / r`` (``alpha / sqrt(r)``
            with ``use_rslora``).

            - ``"2r"`` (default): alpha = 2r, so the scale is 2 at every rank. At one learning rate the product of a
              rank-r adapter then moves about r times less early in training, so the best rate falls as ~1/r and
              one shared rate under-trains small ranks.
            - a number (e.g. ``32``, "LoRA Without Regret", Schulman et al. 2025): a fixed alpha, scale alpha/r;
              the best learning rate is expected to be about the same at every rank, so one shared rate is fair.
            - with ``use_rslora`` (rank-stabilised, scale alpha/sqrt(r)) alpha must be a number: ``"2r"`` would make
              the scale 2 sqrt(r), an update growing like r^1.5.

            ``null`` (older configs) means ``"2r"``.
        dropout: LoRA dropout.
        target_modules: ``"all-linear"`` or a list of module names.
        use_rslora: rank-stabilised LoRA scaling.
        use_dora: weight-decomposed LoRA (DoRA).
        env_id: env the data comes from and GRPO replays.
        env_kwargs: keyword arguments for ``make_env``.
        data: ``"demonstrations"`` (teacher actions, SFT/GRPO), ``"detox"`` (non-toxic dialogue replies),
            ``"preferences"`` (DPO pairs), ``"episodes"`` (one row per episode seed, ``grpo-episode``); ``None``
            picks by recipe and env.
        teacher: agent name giving demonstrations / the chosen side of DPO pairs.
        teacher_kwargs: keyword arguments for the teacher.
        rejected_teacher: agent giving the rejected side of DPO pairs; ``None``: ``"biased-threshold"``
            (Lending) or ``"hostile"`` (Dialogue).
        rejected_teacher_kwargs: keyword arguments for the rejected teacher.
        episodes: seeded episodes the data is built from (seeds ``seed .. seed + episodes - 1``).
        counterfactual: add group-swapped copies of every prompt with the same target.
        dataset_path: a saved dataset (``save_to_disk`` folder or ``.jsonl``) to train on instead of building one.
        sampler_model: detox data: a model to rejection-sample replies from (``"embedded"`` for the default
            model); ``None`` uses the teacher's template replies only.
        detox_samples: detox data: sampled replies tried per turn before the template fallback.
        toxicity_threshold: detox data: a reply counts as non-toxic below this toxicity score.
        max_steps: optimizer steps.
        learning_rate: AdamW learning rate.
        warmup: share of ``max_steps`` (0..1) over which the rate rises linearly from 0; Adam's first updates,
            before its second-moment estimates settle, move every weight by about the full rate, so without it a
            full fine-tune's first steps overshoot to one answer.
        lr_scheduler: transformers scheduler after warm-up (``"linear"`` decay to 0, ``"constant"``, ``"cosine"``).
        batch_size: per-device batch size (prompts per device for GRPO).
        grad_accum: gradient accumulation steps.
        max_length: tokens per sequence (prompt + completion), truncated beyond.
        seed: seed of data order, LoRA init and sampling.
        num_generations: GRPO group size (completions per prompt).
        max_completion_length: GRPO tokens generated per completion (``grpo-episode``: per turn).
        temperature: GRPO sampling temperature.
        use_vllm: GRPO recipes on CUDA: generate rollouts with vLLM (TRL's ``use_vllm``) instead of ``generate``;
            needs ``pip install 'trl[vllm]'``. ``grpo``: TRL samples the completions; ``grpo-episode``: every turn
            of every episode is one vLLM call, its sampled tokens' log-probabilities passed to TRL's importance
            sampling correction. Refused on CPU and where vLLM is not installed.
        vllm_mode: ``"colocate"``: vLLM runs inside the training process on its GPU, its weights synced after
            every optimizer step (TRL's ``vllm_mode``; a separate vLLM server is not wired up).
        vllm_gpu_memory_utilization: share of the GPU's memory vLLM may take for its weights and KV cache (the
            rest is left to training).
        fairness_penalty: GRPO penalty weight for deviating from the fair reference decision.
        format_weight: GRPO weight of the format reward (1 when the env parses the completion).
        reward_weights: ``grpo-episode``: weight per reward component (``task_return``, ``fairness``,
            ``fairness_per_turn``, ``toxicity``, ``invalid_actions``); unnamed components keep their defaults
            (``EPISODE_REWARDS``); ``None`` keeps them all.
        fairness_metric: ``grpo-episode``: the ``fairness/`` metric of ``compute_metrics`` the fairness
            components penalise; ``None``: Lending ``fairness/demographic_parity_difference``, Allocation
            ``fairness/allocation_gap_max``.
        beta: KL coefficient (DPO; GRPO's reference-model KL, 0 disables it).
        logging_steps: log ``train/`` metrics every this many steps.
        save_steps: checkpoint every this many steps (resume picks up the last one).
        eval_every: run evaluation episodes every this many steps (0: never).
        eval_episodes: episodes per evaluation.
        report_to: ``"none"`` or ``"wandb"`` (offline unless ``WANDB_MODE`` says otherwise).
        run_name: W&B run name; default the output folder's name.
        resume: continue from the last checkpoint in ``output_dir`` when one exists.
        device: ``None`` (CUDA when available) or e.g. ``"cpu"``.
        dtype: compute precision: ``None`` (bf16 autocast on CUDA, float32 on CPU) or a dtype name
            (``bfloat16``/``float16``: autocast; ``float32``: none). The trained weights are float32 master
            weights whatever it says, for the full update and LoRA alike.
    """

    recipe: str = "sft"
    output_dir: str = "runs/train"
    model: str | None = None
    adapter: str | None = None
    method: str = "lora"
    rank: int = 8
    alpha: float | str | None = "2r"
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    use_rslora: bool = False
    use_dora: bool = False
    env_id: str = "fairgym/Lending-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    teacher: str = "fair-oracle"
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    rejected_teacher: str | None = None
    rejected_teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int = 8
    counterfactual: bool = False
    dataset_path: str | None = None
    sampler_model: str | None = None
    detox_samples: int = 4
    toxicity_threshold: float = 0.5
    max_steps: int = role(BUDGET, 20)
    learning_rate: float = 1e-4
    warmup: float = 0.0
    lr_scheduler: str = "linear"
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512
    seed: int = 0
    num_generations: int = 4
    max_completion_length: int = 8
    temperature: float = 1.0
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    fairness_penalty: float = 0.0
    format_weight: float = 0.5
    reward_weights: dict[str, float] | None = None
    fairness_metric: str | None = None
    beta: float = 0.1
    logging_steps: int = role(LOGGING, 1)
    save_steps: int = role(LOGGING, 10)
    eval_every: int = role(LOGGING, 0)
    eval_episodes: int = role(LOGGING, 4)
    report_to: str = role(LOGGING, "none")
    run_name: str | None = role(LOGGING, None)
    resume: bool = role(BUDGET, True)
    device: str | None = None
    dtype: str | None = None

    # version -> what changed (fairgym.config.check_schema refuses resuming a folder saved before a change)
    SCHEMA_CHANGES: ClassVar[dict[int, str]] = {
        1: "training folders record a schema version and admit one writer at a time"}

    def __post_init__(self) -> None:
        self._check_choice("recipe", RECIPES)
        self._check_choice("method", METHODS)
        self._check_choice("report_to", REPORT_TO)
        if self.data is not None:
            self._check_choice("data", DATA_KINDS)
        if self.method == "lora" and self.rank <= 0:
            raise ValueError(f"TrainConfig.rank={self.rank!r} must be a positive int for method='lora' "
                             "(e.g. rank=8), or use method=full.")
        self._check_alpha()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TrainConfig.dropout={self.dropout!r} must be in [0, 1).")
        for name in ("max_steps", "batch_size", "grad_accum", "max_length", "episodes", "logging_steps",
                     "save_steps", "eval_episodes", "max_completion_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} must be >= 1.")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"TrainConfig.warmup={self.warmup!r} must be a share of max_steps in [0, 1), e.g. 0.1.")
        self._check_choice("lr_scheduler", LR_SCHEDULERS)
        self._check_grpo()

    def _check_choice(self, name: str, options: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in options:
            raise UnknownNameError(f"TrainConfig.{name}", str(value), options)

    def _check_vllm(self) -> None:
        """The vLLM settings that hold for any recipe (a sweep's ``train`` block has no recipe yet: the recipe is
        checked when training starts, ``check_vllm_recipe``)."""
        if not self.use_vllm:
            return
        self._check_choice("vllm_mode", VLLM_MODES)
        if not 0.0 < self.vllm_gpu_memory_utilization < 1.0:
            raise ValueError(f"TrainConfig.vllm_gpu_memory_utilization={self.vllm_gpu_memory_utilization!r} must be a "
                             "share of the GPU's memory in (0, 1), e.g. 0.3.")
        if (self.device or "").startswith("cpu"):
            raise ValueError("TrainConfig.use_vllm=true needs a CUDA GPU (vLLM generates on the GPU); device='cpu' "
                             "trains on CPU: set use_vllm=false there.")

    def _check_grpo(self) -> None:
        self._check_vllm()
        if self.eval_every < 0:
            raise ValueError(f"TrainConfig.eval_every={self.eval_every!r} must be >= 0 (0 disables evaluation).")
        if self.recipe not in GRPO_RECIPES:
            return
        self._check_reward_weights()
        if self.num_generations < 2:
            raise ValueError(f"TrainConfig.num_generations={self.num_generations!r} must be >= 2 for GRPO "
                             "(advantages compare completions within a group).")
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(f"TrainConfig.batch_size * grad_accum = {self.batch_size * self.grad_accum} must be a "
                             f"multiple of num_generations={self.num_generations} for GRPO; e.g. set "
                             f"batch_size={self.num_generations}.")

    def _check_reward_weights(self) -> None:
        for name, weight in (self.reward_weights or {}).items():
            if name not in EPISODE_REWARDS:
                raise UnknownNameError("TrainConfig.reward_weights component", str(name), EPISODE_REWARDS)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise TypeError(f"TrainConfig.reward_weights.{name}={weight!r} must be a number (e.g. 0.5).")
        if self.recipe == "grpo-episode" and (self.counterfactual or self.data not in (None, "episodes")):
            raise ValueError("recipe='grpo-episode' plays episodes from their seeds: leave data unset (or 'episodes') "
                             "and counterfactual=false.")
        if self.reward_weights and self.recipe != "grpo-episode":
            raise ValueError("TrainConfig.reward_weights applies to recipe='grpo-episode' only; the single-step "
                             "recipe weighs its rewards with fairness_penalty and format_weight.")

    @property
    def episode_reward_weights(self) -> dict[str, float]:
        """Every episode reward component's weight: the defaults, overridden by ``reward_weights``."""
        return {**EPISODE_REWARDS, **{k: float(v) for k, v in (self.reward_weights or {}).items()}}

    def _check_alpha(self) -> None:
        self.alpha = saved_alpha(self.alpha)
        if self.alpha == "2r":
            if self.use_rslora:
                raise ValueError("TrainConfig.alpha='2r' with use_rslora=true scales the update by 2*sqrt(r), so it "
                                 "grows like r^1.5 across ranks; set a fixed alpha (e.g. alpha=16) for rsLoRA.")
            return
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            raise ValueError(f"TrainConfig.alpha={self.alpha!r} must be '2r' (scale 2 at every rank) or a number > 0 "
                             "(a fixed alpha, e.g. 32: scale alpha/r).")
        self.alpha = float(self.alpha)

    @property
    def lora_alpha(self) -> float:
        """The LoRA alpha in use: ``2 * rank`` for ``"2r"``, else ``alpha``."""
        return 2.0 * self.rank if self.alpha == "2r" else float(self.alpha)  # type: ignore[arg-type]

    @property
    def lora_scale(self) -> float:
        """The factor the adapter's product ``B @ A`` is multiplied by: alpha/r, or alpha/sqrt(r) with rsLoRA."""
        return self.lora_alpha / (self.rank ** 0.5 if self.use_rslora else self.rank)

    @property
    def data_kind(self) -> str:
        """The dataset kind: ``data`` when set, else by recipe and env."""
        if self.data is not None:
            return self.data
        if self.recipe == "dpo":
            return "preferences"
        if self.recipe == "grpo-episode":
            return "episodes"
        from fairgym.envs import env_profile

        return env_profile(self.env_id).training_data

    @property
    def arm(self) -> str:
        """A short arm label: ``lora-r8`` or ``full``."""
        return f"lora-r{self.rank}" if self.method == "lora" else "full"


def check_vllm_recipe(config: TrainConfig) -> None:
    """Refuse ``use_vllm`` for a recipe that generates nothing (SFT, DPO).

    Raises:
        ValueError: naming the recipe and the way out.
    """
    if config.use_vllm and config.recipe not in GRPO_RECIPES:
        raise ValueError(f"TrainConfig.use_vllm=true generates GRPO rollouts; recipe={config.recipe!r} generates "
                         f"nothing. Use a GRPO recipe ({', '.join(GRPO_RECIPES)}) or use_vllm=false.")


def load_train_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                      **fields: Any) -> TrainConfig:
    """YAML file (optional) + ``key=value`` overrides + keyword fields -> a validated ``TrainConfig``."""
    return load_config(TrainConfig, path, overrides, **fields)


# Fields that may change when a run is resumed (its budget and how it logs); any other difference is an error.
RESUMABLE_FIELDS = fields_with_role(TrainConfig, (BUDGET, LOGGING))


def saved_alpha(value: Any) -> Any:
    """``alpha`` as configs and folders write it: ``null`` (written before the default was spelled ``"2r"``) reads
    as the ``"2r"`` it meant; any other value is kept for ``TrainConfig`` to check."""
    return "2r" if value is None else value


def config_differences(saved: dict[str, Any], current: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Fields (other than the resumable ones) whose saved value differs from ``current``: name -> (saved, now).

    A field the saved config predates counts as its default (a new field's default keeps the old behaviour; one
    that does not bumps ``SCHEMA_CHANGES``)."""
    now = dataclasses.asdict(current)
    saved = with_defaults(TrainConfig, saved)
    saved["alpha"] = saved_alpha(saved["alpha"])
    names = (set(saved) | set(now)) - RESUMABLE_FIELDS
    return {n: (saved.get(n), now.get(n)) for n in sorted(names) if saved.get(n) != now.get(n)}
