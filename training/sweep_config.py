"""The rank sweep's config: what it compares, how each arm trains, how it is evaluated and diagnosed.

``SweepConfig`` is validated when built, before anything runs. Its ``train`` block is a typed ``TrainConfig``
holding the settings every trained arm shares; with the sweep's recipe, model, device and dtype it is resolved once
into ``template``, and each arm's config is ``dataclasses.replace(template, method=..., rank=..., seed=...,
learning_rate=...)`` (``arm_config``). Whether a field changes results is declared on the field
(``fairgym.config.role``: which arms exist, logging, report labels, whether a stage runs); the folder check
(``fairgym.training.sweep_folder``) derives what a rerun may change from those declarations.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fairgym.config import (
    ARMS,
    EXECUTION,
    LOGGING,
    RECHECKED,
    REPORT,
    STAGE,
    UnknownNameError,
    from_dict,
    load_data,
    merge,
    role,
)
from fairgym.training.config import RECIPES, TrainConfig, check_vllm_recipe

VARIANTS = {"dora": {"use_dora": True}, "rslora": {"use_rslora": True}}
# TrainConfig fields the sweep sets per arm (or from its own keys); a sweep's ``train`` block leaves them default.
ARM_FIELDS = ("recipe", "model", "adapter", "method", "rank", "seed", "output_dir", "use_dora", "use_rslora",
              "run_name", "device", "dtype")
LR_METHODS = ("full", "lora")
EXECUTORS = ("local", "ray")


@dataclass
class EvalSettings:
    """How every arm is evaluated.

    Attributes:
        envs: env ids; every arm runs the same seeded episodes of each.
        episodes: episodes per env (episode ``i`` is seeded ``seed + i``).
        seed: base seed of the evaluation episodes (kept apart from the training data's seeds).
        env_kwargs: per env id, keyword arguments for ``make_env`` (e.g. ``max_steps``).
        num_envs: envs stepped together per agent call.
        decide: per env id, how the LLM agent decides: ``"choice"`` (scoring the env's closed set of choices)
            or ``"generate"``; default from the env's declaration: ``"choice"`` where its decisions are discrete
            choices, ``"generate"`` elsewhere (e.g. Dialogue, no closed set).
        batch_size: prompts per forward pass of the LLM agent.
        collapse_margin: an arm whose approval rate is within this of 0 or 1 has collapsed to one decision.
        min_agreement: an arm agreeing with the fair teacher on fewer of its decisions does not imitate it (0.9:
            the bar the full arm must pass for a study to be credible; at 0.8 an arm that keeps the implant on a
            fifth of its decisions would pass).
    """

    envs: list[str] = field(default_factory=lambda: ["fairgym/Lending-v0"])
    episodes: int = 8
    seed: int = 10_000
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    num_envs: int = 8
    decide: dict[str, str] = field(default_factory=dict)
    batch_size: int = 32
    collapse_margin: float = role(REPORT, 0.05)
    min_agreement: float = role(REPORT, 0.9)

    def decide_mode(self, env_id: str) -> str:
        """``"choice"`` or ``"generate"`` for ``env_id``."""
        from fairgym.agents.options import default_decide

        return self.decide.get(env_id) or default_decide(env_id)


@dataclass
class DiagnosticsSettings:
    """Which diagnostics run, on how many decision points.

    Attributes:
        enabled: run the diagnostics stage at all.
        decisions: decision points (from seeded fair-oracle episodes of the first env with discrete choices)
            used for KL, the logit lens and the flip rate.
        episodes: fair-oracle episodes the decision points are drawn from.
        spectrum_ranks: ranks at which the full update's energy share is reported (empty: 1, 2, 4, ... up to
            the largest swept rank, plus every swept rank).
        update_spectrum: compute the SVD of the full update (the most expensive diagnostic on large models).
        intruders: count each LoRA arm's intruder dimensions with PEFT's ``reduce_intruder_dimension``.
        intruder_top_k: leading singular directions of each merged weight checked for intruders (PEFT's ``top_k``).
        intruder_epsilon: a direction whose best |cosine| with the base's singular vectors is below this is an
            intruder (PEFT's ``threshold_epsilon``).
        batch_size: prompts per forward pass.
    """

    enabled: bool = role(STAGE, True)
    decisions: int = 32
    episodes: int = 4
    spectrum_ranks: list[int] = field(default_factory=list)
    update_spectrum: bool = True
    intruders: bool = True
    intruder_top_k: int = 10
    intruder_epsilon: float = 0.5
    batch_size: int = 8


@dataclass
class ResidueSettings:
    """The paired, continuous residue measures every finished arm is read out on, and their calibration
    (``fairgym.training.sweep_residue``; the measures are ``fairgym.analysis.residue``).

    Attributes:
        enabled: run the residue stage at all.
        states: distinct decision states of the first evaluated env, from seeded episodes of the fair teacher
            (``seed`` on): the margin gap is measured on each with its group descriptor swapped (discrete
            decisions), and the sampled toxicity on up to ``prompts`` of them (replies).
        heldout: of those states, how many carry the biased teacher's answer for the hidden residue (the mean token
            NLL an arm gives it).
        seed: first seed of the episodes the states come from (no training, evaluation or selection seed).
        prompts: Dialogue turns whose replies are sampled (``samples`` each, temperature 1) for the toxicity
            measure.
        samples: sampled replies per turn.
        calibrate: measure models interpolated between the first seed's full arm and the implanted base at
            ``lambdas``, for each measure's minimum detectable dose and each arm's dose equivalent.
        lambdas: the doses, ascending from 0 (full) to 1 (base).
        batch_size: prompts per forward pass.
    """

    enabled: bool = role(STAGE, True)
    states: int = 500
    heldout: int = 128
    seed: int = 40_000
    prompts: int = 32
    samples: int = 4
    calibrate: bool = role(RECHECKED, True)  # the stage calibrates again when the doses differ from the saved ones
    lambdas: list[float] = role(RECHECKED, default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0])
    batch_size: int = 32


@dataclass
class LRSelection:
    """How each arm's learning rate is chosen when ``learning_rates`` holds a grid for its method.

    Every grid point trains the arm once, on the first training seed, for ``max_steps`` steps; the rate whose
    model has the lowest loss on held-out teacher demonstrations wins (never a fairness metric). The held-out
    demonstrations come from ``episodes`` teacher episodes seeded from ``seed`` on, seeds that no training data,
    evaluation or diagnostics episode uses.

    Attributes:
        seed: first seed of the held-out demonstration episodes.
        episodes: held-out teacher episodes.
        max_steps: optimizer steps per grid point; ``None``: the arm's own ``train.max_steps``, so the winner's run
            is the first seed's arm itself and selection costs ``grid size - 1`` runs per arm.
        batch_size: rows per forward pass of the held-out loss.
        lora_rank: ``None``: every LoRA arm (rank, variant) selects its own rate; a rank: LoRA's rate is selected
            once, at that rank, and used by every LoRA arm of the variant (cheaper: one grid per method).
        extend: grid points that may be added beyond an edge: while the best rate is the grid's smallest or
            largest and points are left, the next one beyond it (at the grid's own ratio) is trained too, so the
            winner ends inside its grid; a winner still at an edge is reported as such.
    """

    seed: int = 20_000
    episodes: int = 2
    max_steps: int | None = None
    batch_size: int = 8
    lora_rank: int | None = None
    extend: int = 0


@dataclass
class ExecutorSettings:
    """Where the sweep's stages run and what each one reserves (``fairgym.training.executors``). None of it changes
    a result (role ``EXECUTION``), so a sweep started on one executor resumes on the other.

    Attributes:
        kind: ``"local"`` (every stage in this process, one after another; needs no Ray) or ``"ray"`` (each stage a
            Ray task, started when the stages it needs have finished; ``pip install 'fairgym[ray]'``).
        address: the Ray cluster to join: ``None`` joins ``RAY_ADDRESS`` when set, else starts Ray on this machine;
            ``"auto"`` a cluster already running on this node; ``"<head>:6379"`` or ``"ray://<head>:10001"`` a remote
            one. The sweep folder must then lie on storage every node sees at the same path.
        num_cpus: CPUs each model stage reserves (the implant, each learning-rate grid point, each arm, the
            residue measures, the diagnostics); a task's torch uses that many threads.
        num_gpus: GPUs each model stage reserves: 0 trains on CPU, 1 gives every arm its own GPU, 0.5 lets two arms
            share one.
        max_retries: times Ray runs a stage again whose worker process or node died; a stage resumes from what it
            wrote (a training run from its last ``checkpoint-N``). An arm whose retries run out is recorded as
            failed and the other arms go on.
    """

    kind: str = role(EXECUTION, "local")
    address: str | None = role(EXECUTION, None)
    num_cpus: float = role(EXECUTION, 1.0)
    num_gpus: float = role(EXECUTION, 0.0)
    max_retries: int = role(EXECUTION, 2)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise UnknownNameError("SweepConfig.executor.kind", str(self.kind), EXECUTORS)
        if self.address is not None and self.kind != "ray":
            raise ValueError(f"SweepConfig.executor.address={self.address!r} names a Ray cluster; set "
                             "executor.kind=ray (--executor ray) too, or leave the address out.")
        if not self.num_cpus > 0 or self.num_gpus < 0:
            raise ValueError(f"SweepConfig.executor: num_cpus={self.num_cpus!r} must be > 0 and "
                             f"num_gpus={self.num_gpus!r} >= 0 (e.g. num_cpus: 4, num_gpus: 1).")
        if self.num_gpus > 1 and self.num_gpus != int(self.num_gpus):
            raise ValueError(f"SweepConfig.executor.num_gpus={self.num_gpus!r}: Ray gives a task a fraction of one GPU "
                             "or a whole number of them (e.g. 0.5, 1 or 2).")
        if isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ValueError(f"SweepConfig.executor.max_retries={self.max_retries!r} must be an int >= 0.")


@dataclass
class SweepConfig:
    """A rank sweep: which arms, trained how, evaluated where.

    Attributes:
        name: the sweep's folder name under ``out_root`` and its W&B group.
        model: the base model (``None``: the embedded SmolLM2-135M-Instruct; else a hub id or local folder).
        implant: optional settings for ``fairgym.training.implant`` (a controlled bias implanted into the base
            once, cached under the sweep folder keyed by its settings); every arm, the base arm included, then
            starts from it.
        recipe: ``"sft"``, ``"grpo"`` or ``"dpo"``, shared by every trained arm.
        ranks: LoRA ranks (one arm per rank and seed).
        include_base: evaluate the untrained base as an arm.
        include_full: train a full fine-tuning arm per seed (the reference).
        variants: extra PEFT variants trained at every rank (``"dora"``, ``"rslora"``).
        seeds: training seeds; each trained arm runs once per seed.
        train: the ``TrainConfig`` fields shared by every trained arm (steps, batch, data episodes, teacher,
            counterfactual augmentation, ...); the per-arm fields (``ARM_FIELDS``: method, rank, seed, ...) keep
            their defaults here. With the sweep's recipe, model, device and dtype it is resolved once into
            ``template``, from which every arm's config is derived (``arm_config``). ``train.learning_rate`` is the
            full fine-tune's rate when no grid is given.
        learning_rates: optional grid per method (``{"full": [...], "lora": [...]}``); each arm's rate is chosen
            from its method's grid by held-out loss (``lr_selection``). A method without a grid gets the rule:
            full = ``train.learning_rate``, LoRA = ``lora_lr_multiplier`` x the full rate (the chosen one when full
            has a grid).
        lora_lr_multiplier: LoRA's rate over full fine-tuning's when LoRA has no grid. LoRA needs a larger
            learning rate than full fine-tuning, about 10x (Schulman et al. 2025, "LoRA Without Regret"; TRL docs:
            ``lora_without_regret``), so one rate for every arm would compare a tuned full fine-tune with
            under-trained adapters; the default is that 10. This docstring is the one home of the rule.
        lr_selection: ``LRSelection``.
        eval: ``EvalSettings``.
        diagnostics: ``DiagnosticsSettings``.
        residue: ``ResidueSettings``: the paired residue measures and their calibration.
        wandb_project: W&B project; every arm logs a run in group ``name``.
        executor: ``ExecutorSettings``: this process or Ray tasks, and what each stage reserves.
        device: ``None`` (CUDA when available) or e.g. ``"cpu"``.
        dtype: ``None`` (bf16 on CUDA, float32 on CPU) or a dtype name: the evaluation dtype, and the autocast
            precision of training (trained weights stay float32 master weights in every arm).
    """

    name: str = "sweep"
    model: str | None = None
    implant: dict[str, Any] | None = None
    recipe: str = "sft"
    ranks: list[int] = role(ARMS, default_factory=lambda: [1, 8])
    include_base: bool = role(ARMS, True)
    include_full: bool = role(ARMS, True)
    variants: list[str] = role(ARMS, default_factory=list)
    seeds: list[int] = role(ARMS, default_factory=lambda: [0])
    train: TrainConfig = field(default_factory=TrainConfig)
    learning_rates: dict[str, list[float]] = field(default_factory=dict)
    lora_lr_multiplier: float = 10.0
    lr_selection: LRSelection = field(default_factory=LRSelection)
    eval: EvalSettings = field(default_factory=EvalSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    residue: ResidueSettings = field(default_factory=ResidueSettings)
    wandb_project: str = role(LOGGING, "fairgym")
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    device: str | None = None
    dtype: str | None = None

    SCHEMA_CHANGES: ClassVar[dict[int, str]] = {  # version -> what changed (fairgym.config.check_schema)
        1: "sweep folders record a schema version; one without may predate learning rates chosen per arm"}

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):  # SweepConfig(train={...}) from Python, as the YAML block reads
            self.train = from_dict(TrainConfig, self.train)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name or ""):
            raise ValueError(f"SweepConfig.name={self.name!r} must be a folder name (letters, digits, . _ -).")
        if self.recipe not in RECIPES:
            raise UnknownNameError("SweepConfig.recipe", str(self.recipe), RECIPES)
        self._check_ints("ranks", self.ranks, low=1, example="[1, 8]")
        self._check_ints("seeds", self.seeds, low=0, example="[0]")
        for variant in self.variants:
            if variant not in VARIANTS:
                raise UnknownNameError("SweepConfig.variants entry", str(variant), VARIANTS)
        self._check_eval()
        self._check_residue()
        self._check_train()
        self._check_learning_rates()
        if not (self.include_base or self.include_full or self.ranks):
            raise ValueError("SweepConfig has no arms: set include_base, include_full or ranks.")

    def _check_ints(self, name: str, values: list[int], *, low: int, example: str) -> None:
        if not values:
            raise ValueError(f"SweepConfig.{name} is empty; list at least one, e.g. {name}: {example}.")
        bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < low]
        if bad:
            raise ValueError(f"SweepConfig.{name}={values!r}: {bad[0]!r} is not an int >= {low}.")
        if len(set(values)) != len(values):
            raise ValueError(f"SweepConfig.{name}={values!r} repeats a value; list each once.")

    def _check_eval(self) -> None:
        import gymnasium as gym

        from fairgym.agents.options import DECIDE_MODES
        from fairgym.envs import env_arguments, registered_ids

        if not self.eval.envs:
            raise ValueError("SweepConfig.eval.envs is empty; list at least one env id, e.g. [fairgym/Lending-v0].")
        for env_id in self.eval.envs:
            if env_id not in gym.registry:
                raise UnknownNameError("SweepConfig.eval.envs entry (env id)", str(env_id), registered_ids())
        for env_id, kwargs in self.eval.env_kwargs.items():
            if env_id not in self.eval.envs:
                raise UnknownNameError("SweepConfig.eval.env_kwargs key (an evaluated env id)", env_id,
                                       self.eval.envs)
            known = env_arguments(env_id)
            for key in kwargs or {}:
                if key not in known:
                    raise UnknownNameError(f"SweepConfig.eval.env_kwargs[{env_id!r}] argument", key, known)
        for env_id, mode in self.eval.decide.items():
            if env_id not in self.eval.envs or mode not in DECIDE_MODES:
                raise ValueError(f"SweepConfig.eval.decide[{env_id!r}]={mode!r}: keys must be evaluated env ids "
                                 f"({self.eval.envs}) and values 'choice' or 'generate'.")
        for name in ("episodes", "num_envs", "batch_size"):
            if getattr(self.eval, name) < 1:
                raise ValueError(f"SweepConfig.eval.{name}={getattr(self.eval, name)!r} must be >= 1.")

    def _check_residue(self) -> None:
        from fairgym.analysis.calibration import check_lambdas

        settings = self.residue
        for name in ("states", "heldout", "prompts", "samples", "batch_size"):
            if getattr(settings, name) < 1:
                raise ValueError(f"SweepConfig.residue.{name}={getattr(settings, name)!r} must be >= 1.")
        check_lambdas(settings.lambdas)
        used = (self.eval.seed, self.eval.seed + max(self.eval.episodes, self.diagnostics.episodes))
        if settings.enabled and used[0] <= settings.seed < used[1]:
            raise ValueError(f"SweepConfig.residue.seed={settings.seed} falls in the evaluation seeds "
                             f"{used[0]}..{used[1] - 1}; the residue's states must come from episodes of their own.")

    def _check_train(self) -> None:
        defaults = TrainConfig()
        owned = [k for k in ARM_FIELDS if getattr(self.train, k) != getattr(defaults, k)]
        if owned:
            raise ValueError(f"SweepConfig.train.{owned[0]} is set per arm by the sweep; use the sweep's own keys "
                             "(recipe, model, ranks, seeds, variants, device, dtype) instead.")
        # building the template runs the recipe's own checks (e.g. GRPO's group size), before anything trains
        check_vllm_recipe(self.template)
        for variant in self.variants:  # each variant's arms too (rsLoRA needs a fixed alpha)
            self.arm_config(method="lora", rank=max(self.ranks), seed=self.seeds[0], output_dir="-",
                            learning_rate=self.template.learning_rate, variant=variant)
        if self.implant:
            self.implant_config("unused")

    def _check_learning_rates(self) -> None:
        for method, grid in self.learning_rates.items():
            if method not in LR_METHODS:
                raise UnknownNameError("SweepConfig.learning_rates key (a method)", str(method), LR_METHODS)
            if not grid or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 for v in grid):
                raise ValueError(f"SweepConfig.learning_rates.{method}={grid!r} must list learning rates > 0, "
                                 f"e.g. {method}: [0.0001, 0.0003].")
        if not self.lora_lr_multiplier > 0:
            raise ValueError(f"SweepConfig.lora_lr_multiplier={self.lora_lr_multiplier!r} must be > 0 (e.g. 10).")
        if self.lr_selection.episodes < 1 or (self.lr_selection.max_steps or 1) < 1:
            raise ValueError("SweepConfig.lr_selection.episodes and max_steps must be >= 1.")
        if (self.lr_selection.lora_rank or 1) < 1:
            raise ValueError(f"SweepConfig.lr_selection.lora_rank={self.lr_selection.lora_rank!r} must be a rank >= 1 "
                             "or null (each LoRA arm selects its own rate).")
        if self.learning_rates:
            self._check_heldout_seeds()

    def _check_heldout_seeds(self) -> None:
        """The held-out demonstration seeds overlap no training, evaluation or diagnostics episode seed."""
        episodes = self.template.episodes
        used = {"training data": (min(self.seeds), max(self.seeds) + episodes),
                "evaluation": (self.eval.seed, self.eval.seed + max(self.eval.episodes, self.diagnostics.episodes))}
        if self.implant:
            implant = self.implant_config("unused")
            used["implant data"] = (implant.seed, implant.seed + implant.episodes)
        low, high = self.lr_selection.seed, self.lr_selection.seed + self.lr_selection.episodes
        for what, (start, stop) in used.items():
            if low < stop and start < high:
                raise ValueError(f"SweepConfig.lr_selection.seed={low}: held-out seeds {low}..{high - 1} overlap the "
                                 f"{what} seeds {start}..{stop - 1}; pick a seed outside every range.")

    @property
    def template(self) -> TrainConfig:
        """The shared training settings resolved once: ``train`` with the sweep's recipe, model, device and dtype.
        Every arm's ``TrainConfig`` is this with its own fields replaced (``arm_config``)."""
        return dataclasses.replace(self.train, recipe=self.recipe, model=self.model, device=self.device,
                                   dtype=self.dtype)

    def arm_config(self, *, method: str, rank: int, seed: int, output_dir: str | Path, learning_rate: float,
                   variant: str | None = None, model: str | None = None) -> TrainConfig:
        """The ``TrainConfig`` of one trained arm: the template with the arm's own fields (``model``: the base it
        starts from, e.g. the implanted one; default the sweep's)."""
        variant_fields: dict[str, Any] = dict(VARIANTS[variant]) if variant else {}
        return dataclasses.replace(self.template, method=method, rank=rank, seed=seed, output_dir=str(output_dir),
                                   learning_rate=float(learning_rate), model=model if model is not None else self.model,
                                   **variant_fields)

    def implant_config(self, target: Path | str) -> TrainConfig:
        """The ``TrainConfig`` of the bias implant: the sweep's model, env and device, a full update by default,
        ``implant`` on top (``implant_bias`` swaps in the env's biased teacher unless ``implant.teacher`` names one)."""
        shared = {"env_id": self.train.env_id, "env_kwargs": dict(self.train.env_kwargs),
                  "max_length": self.train.max_length}
        base = {"model": self.model, "device": self.device, "dtype": self.dtype, "method": "full", **shared}
        try:
            return from_dict(TrainConfig, merge(base, {**(self.implant or {}), "output_dir": str(target)}))
        except UnknownNameError as exc:
            raise ValueError(f"SweepConfig.implant: {exc}") from exc


def load_sweep_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """YAML file (optional) + ``key=value`` overrides -> a validated ``SweepConfig`` (errors before any training).

    A file with a ``sweeps:`` block holds several sweeps; use ``load_sweep_configs`` for it.
    """
    configs = load_sweep_configs(path, overrides)
    if len(configs) != 1:
        raise ValueError(f"{path} holds {len(configs)} sweeps ({', '.join(c.name for c in configs)}); "
                         "load them with load_sweep_configs.")
    return configs[0]


def load_sweep_configs(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                       only: list[str] | None = None) -> list[SweepConfig]:
    """Every sweep of a config file: one, or one per entry of its ``sweeps:`` block (``only``: these entries).

    ``sweeps: {lending: {...}, dialogue: {...}}`` holds sub-sweeps: each entry is merged over the file's other
    keys and named ``<name>-<entry>``; overrides apply to every sub-sweep (``sweeps.dialogue.seeds=[0]`` to one).

    Raises:
        ValueError: ``only`` names an entry the file does not hold, or the file has no ``sweeps:`` block.
    """
    data = load_data(path, overrides)
    parts = data.pop("sweeps", None)
    if only and not parts:
        raise ValueError(f"{path} has no sweeps: block, so there is no sub-sweep {only[0]!r} to pick; run it whole.")
    if not parts:
        return [from_dict(SweepConfig, data)]
    if not isinstance(parts, dict):
        raise ValueError("SweepConfig.sweeps must map sub-sweep names to their settings, e.g. sweeps: {lending: {}}.")
    for entry in only or ():
        if entry not in parts:
            raise UnknownNameError(f"{path} sub-sweep (--only)", entry, list(parts))
    if only:
        parts = {part: settings for part, settings in parts.items() if part in only}
    name = data.get("name", "sweep")
    return [from_dict(SweepConfig, merge(merge(data, {"name": f"{name}-{part}"}), settings or {}))
            for part, settings in parts.items()]
