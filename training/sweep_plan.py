"""The rank sweep's plan: its config (validated before anything runs), its arms, and the files that record them.

``fairgym.training.sweep`` executes the plan; ``fairgym.training.lr_selection`` and
``fairgym.training.sweep_diagnostics`` read it. Keeping the plan apart from the execution lets every stage import
it without an import cycle.

A rerun in a folder that already holds a sweep is checked against the saved config before anything runs
(``check_sweep_folder``): any difference in a field that changes results (model, implant, recipe, train, the
learning-rate rule, eval, diagnostics settings) is refused, naming the fields. The fields in
``RESULT_FREE_FIELDS`` may differ: which arms exist (``ranks``, ``seeds`` after the first, ``variants``,
``include_base``, ``include_full``: each arm's numbers depend on its own settings only), whether the diagnostics
stage runs at all, and logging (``wandb_project``, ``train.report_to``/``logging_steps``/``save_steps``/
``run_name``: how often a run logs or checkpoints, not what it learns), and the report's verdict thresholds
(``eval.collapse_margin``, ``eval.min_agreement``: they label arms, they change no arm's numbers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fairgym.config import UnknownNameError, from_dict, load_yaml, merge, parse_overrides
from fairgym.runfiles import CONFIG_FILE, STATUS_FILE, arm_label, arm_name, read_json, write_json
from fairgym.training.config import RECIPES, TrainConfig

VARIANTS = {"dora": {"use_dora": True}, "rslora": {"use_rslora": True}}
# TrainConfig fields the sweep sets per arm; a sweep's ``train`` block may not set them.
ARM_FIELDS = ("recipe", "model", "adapter", "method", "rank", "seed", "output_dir", "use_dora", "use_rslora",
              "run_name", "device", "dtype")
LR_METHODS = ("full", "lora")
# Dotted config fields a rerun may change: they pick which arms exist, or only how runs log (see the module doc).
RESULT_FREE_FIELDS = frozenset({
    "ranks", "seeds", "variants", "include_base", "include_full", "wandb_project", "diagnostics.enabled",
    "train.report_to", "train.logging_steps", "train.save_steps", "train.run_name", "implant.report_to",
    "implant.logging_steps", "implant.save_steps", "implant.run_name", "eval.collapse_margin", "eval.min_agreement",
})


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
    collapse_margin: float = 0.05
    min_agreement: float = 0.9

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

    enabled: bool = True
    decisions: int = 32
    episodes: int = 4
    spectrum_ranks: list[int] = field(default_factory=list)
    update_spectrum: bool = True
    intruders: bool = True
    intruder_top_k: int = 10
    intruder_epsilon: float = 0.5
    batch_size: int = 8


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
    """

    seed: int = 20_000
    episodes: int = 2
    max_steps: int | None = None
    batch_size: int = 8
    lora_rank: int | None = None


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
        train: ``TrainConfig`` fields shared by every trained arm (steps, batch, data episodes, teacher,
            counterfactual augmentation, ...); not the per-arm fields (method, rank, seed, ...).
            ``train.learning_rate`` is the full fine-tune's rate when no grid is given.
        learning_rates: optional grid per method (``{"full": [...], "lora": [...]}``); each arm's rate is chosen
            from its method's grid by held-out loss (``lr_selection``). A method without a grid gets the rule:
            full = ``train.learning_rate``, LoRA = ``lora_lr_multiplier`` x the full rate (the chosen one when full
            has a grid).
        lora_lr_multiplier: LoRA's rate over full fine-tuning's when LoRA has no grid; ~10x after Schulman et al.
            2025, "LoRA Without Regret" (TRL docs: ``lora_without_regret``).
        lr_selection: ``LRSelection``.
        eval: ``EvalSettings``.
        diagnostics: ``DiagnosticsSettings``.
        wandb_project: W&B project; every arm logs a run in group ``name``.
        device: ``None`` (CUDA when available) or e.g. ``"cpu"``.
        dtype: ``None`` (bf16 on CUDA, float32 on CPU) or a dtype name: the evaluation dtype, and the autocast
            precision of training (trained weights stay float32 master weights in every arm).
    """

    name: str = "sweep"
    model: str | None = None
    implant: dict[str, Any] | None = None
    recipe: str = "sft"
    ranks: list[int] = field(default_factory=lambda: [1, 8])
    include_base: bool = True
    include_full: bool = True
    variants: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict[str, Any] = field(default_factory=dict)
    learning_rates: dict[str, list[float]] = field(default_factory=dict)
    lora_lr_multiplier: float = 10.0
    lr_selection: LRSelection = field(default_factory=LRSelection)
    eval: EvalSettings = field(default_factory=EvalSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    wandb_project: str = "fairgym"
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
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

    def _check_train(self) -> None:
        owned = [k for k in self.train if k in ARM_FIELDS]
        if owned:
            raise ValueError(f"SweepConfig.train.{owned[0]} is set per arm by the sweep; use the sweep's own keys "
                             "(recipe, model, ranks, seeds, variants, device, dtype) instead.")
        self.train_config(method="full", rank=1, seed=self.seeds[0], output_dir="unused")  # unknown keys fail here
        if self.implant:
            implant_train_config(self, "unused")

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
        episodes = int(self.train_config(method="full", rank=1, seed=0, output_dir="unused").episodes)
        used = {"training data": (min(self.seeds), max(self.seeds) + episodes),
                "evaluation": (self.eval.seed, self.eval.seed + max(self.eval.episodes, self.diagnostics.episodes))}
        if self.implant:
            implant = implant_train_config(self, "unused")
            used["implant data"] = (implant.seed, implant.seed + implant.episodes)
        low, high = self.lr_selection.seed, self.lr_selection.seed + self.lr_selection.episodes
        for what, (start, stop) in used.items():
            if low < stop and start < high:
                raise ValueError(f"SweepConfig.lr_selection.seed={low}: held-out seeds {low}..{high - 1} overlap the "
                                 f"{what} seeds {start}..{stop - 1}; pick a seed outside every range.")

    def train_config(self, *, method: str, rank: int, seed: int, output_dir: str | Path, variant: str | None = None,
                     model: str | None = None, learning_rate: float | None = None) -> TrainConfig:
        """The ``TrainConfig`` of one trained arm: the shared ``train`` block plus the arm's own fields."""
        arm = {"recipe": self.recipe, "model": model if model is not None else self.model, "method": method,
               "rank": rank, "seed": seed, "output_dir": str(output_dir), "device": self.device, "dtype": self.dtype,
               **(VARIANTS[variant] if variant else {})}
        if learning_rate is not None:
            arm["learning_rate"] = float(learning_rate)
        try:
            return from_dict(TrainConfig, merge(self.train, arm))
        except UnknownNameError as exc:
            raise ValueError(f"SweepConfig.train: {exc}") from exc

    @property
    def full_learning_rate(self) -> float:
        """The full fine-tune's rate without a grid: ``train.learning_rate`` (``TrainConfig``'s default if unset)."""
        return float(self.train_config(method="full", rank=1, seed=0, output_dir="unused").learning_rate)


def load_sweep_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """YAML file (optional) + ``key=value`` overrides -> a validated ``SweepConfig`` (errors before any training).

    A file with a ``sweeps:`` block holds several sweeps; use ``load_sweep_configs`` for it.
    """
    configs = load_sweep_configs(path, overrides)
    if len(configs) != 1:
        raise ValueError(f"{path} holds {len(configs)} sweeps ({', '.join(c.name for c in configs)}); "
                         "load them with load_sweep_configs.")
    return configs[0]


def load_sweep_configs(path: str | Path | None = None,
                       overrides: list[str] | tuple[str, ...] = ()) -> list[SweepConfig]:
    """Every sweep of a config file: one, or one per entry of its ``sweeps:`` block.

    ``sweeps: {lending: {...}, dialogue: {...}}`` holds sub-sweeps: each entry is merged over the file's other
    keys and named ``<name>-<entry>``; overrides apply to every sub-sweep (``sweeps.dialogue.seeds=[0]`` to one).
    """
    data = merge(load_yaml(path) if path else {}, parse_overrides(overrides))
    parts = data.pop("sweeps", None)
    if not parts:
        return [from_dict(SweepConfig, data)]
    if not isinstance(parts, dict):
        raise ValueError("SweepConfig.sweeps must map sub-sweep names to their settings, e.g. sweeps: {lending: {}}.")
    name = data.get("name", "sweep")
    return [from_dict(SweepConfig, merge(merge(data, {"name": f"{name}-{part}"}), settings or {}))
            for part, settings in parts.items()]


# ---- a rerun against the saved config -------------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def result_fields(config: SweepConfig) -> dict[str, Any]:
    """The config as dotted fields, ``train`` and ``implant`` resolved to full ``TrainConfig`` fields (so an
    explicit default equals an omitted one), plus the seed the learning rates are selected on."""
    data = dataclasses.asdict(config)
    data.pop("implant")
    data["train"] = {k: v for k, v in dataclasses.asdict(
        config.train_config(method="full", rank=1, seed=0, output_dir="-")).items() if k not in ARM_FIELDS}
    if config.implant:
        data["implant"] = {k: v for k, v in dataclasses.asdict(implant_train_config(config, "-")).items()
                           if k != "output_dir"}
    data["lr_selection"]["train_seed"] = config.seeds[0]
    return _flatten(data)


def sweep_config_differences(saved: SweepConfig, current: SweepConfig) -> dict[str, tuple[Any, Any]]:
    """Result-changing fields whose saved value differs from ``current``: dotted name -> (saved, now)."""
    old, new = result_fields(saved), result_fields(current)
    names = sorted((set(old) | set(new)) - RESULT_FREE_FIELDS)
    return {n: (old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)}


def check_sweep_folder(config: SweepConfig, sweep_dir: Path) -> None:
    """Refuse a folder whose saved ``config.yaml`` describes a sweep with other results (before anything runs).

    Raises:
        ValueError: naming every differing field with its saved and current value.
    """
    path = Path(sweep_dir) / CONFIG_FILE
    if not path.exists():
        return
    try:
        saved = from_dict(SweepConfig, yaml.safe_load(path.read_text()) or {})
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} holds a sweep config this version cannot read ({exc}); use another --out or "
                         "name.") from exc
    diffs = sweep_config_differences(saved, config)
    if diffs:
        listed = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"{sweep_dir} holds sweep {saved.name!r} run with other settings ({listed}); its finished "
                         "arms would be mixed with new ones. Use another name= or --out, or the saved values.")


# ---- the implant ---------------------------------------------------------------------------------------------
def implant_train_config(config: SweepConfig, target: Path | str) -> TrainConfig:
    """The ``TrainConfig`` of the bias implant: the sweep's model, env and device, a full update by default,
    ``implant`` on top (``implant_bias`` swaps in the env's biased teacher unless ``implant.teacher`` names one)."""
    shared = {k: config.train[k] for k in ("env_id", "env_kwargs", "max_length") if k in config.train}
    base = {"model": config.model, "device": config.device, "dtype": config.dtype, "method": "full", **shared}
    try:
        return from_dict(TrainConfig, merge(base, {**(config.implant or {}), "output_dir": str(target)}))
    except UnknownNameError as exc:
        raise ValueError(f"SweepConfig.implant: {exc}") from exc


def implant_dir(config: SweepConfig, sweep_dir: Path) -> Path:
    """``sweep_dir/implant-<key>``: the implant's cache folder, keyed by every setting that shapes the implant.

    Only settings that differ from ``TrainConfig``'s defaults enter the key, so a new field with a default that
    keeps old behaviour leaves existing caches valid."""
    defaults = dataclasses.asdict(TrainConfig())
    fields = {k: v for k, v in dataclasses.asdict(implant_train_config(config, "-")).items()
              if k not in {"output_dir", "report_to", "logging_steps", "save_steps", "run_name"} and v != defaults[k]}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Path(sweep_dir) / f"implant-{key}"


# ---- arms ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One arm of the sweep: ``method`` is ``"base"``, ``"lora"`` or ``"full"``."""

    name: str
    method: str
    rank: int | None = None
    seed: int | None = None
    variant: str | None = None

    @property
    def label(self) -> str:
        """The arm without its seed (``lora-r8``), the unit that intervals over seeds are taken over."""
        return arm_label(self.name, self.seed)

    @property
    def lr_method(self) -> str:
        """The ``learning_rates`` key of the arm's method: ``"full"`` or ``"lora"`` (variants included)."""
        return "full" if self.method == "full" else "lora"


def plan_arms(config: SweepConfig) -> list[Arm]:
    """Every arm, in run order: base, then per seed the full arm and the LoRA (and variant) ranks."""
    arms = [Arm("base", "base")] if config.include_base else []
    for seed in config.seeds:
        if config.include_full:
            arms.append(Arm(arm_name("full", seed), "full", seed=seed))
        for variant in [None, *config.variants]:
            prefix = variant or "lora"
            arms += [Arm(arm_name(f"{prefix}-r{r}", seed), "lora", rank=r, seed=seed, variant=variant)
                     for r in config.ranks]
    return arms


def read_status(arm_dir: Path) -> dict[str, Any]:
    """The arm's ``status.json`` (``{"state": "pending"}`` when absent)."""
    return read_json(Path(arm_dir) / STATUS_FILE, {"state": "pending"})


def write_status(arm_dir: Path, **fields: Any) -> None:
    """Write ``status.json`` atomically."""
    write_json(Path(arm_dir) / STATUS_FILE, fields)


def locate_weights(path: str | None, sweep_dir: Path | None) -> str | None:
    """A weights path from a status or learning-rate file, found from any working directory.

    Paths are recorded as the run wrote them (relative to its working directory when ``--out`` was relative, e.g.
    ``runs/<sweep>/lora-r8-s0/train/adapter``); a rerun from elsewhere finds them under ``sweep_dir`` by the part
    after the sweep folder's name. Anything else (absolute, found as is, a hub or ``embedded:`` name) is returned
    unchanged, so a missing folder is still named by the loader."""
    if path is None or sweep_dir is None:
        return path
    p = Path(path)
    if p.is_absolute() or p.exists() or Path(sweep_dir).name not in p.parts:
        return path
    after = p.parts[len(p.parts) - p.parts[::-1].index(Path(sweep_dir).name):]
    candidate = Path(sweep_dir).joinpath(*after)
    return str(candidate) if candidate.exists() else path


def load_arm_model(config: SweepConfig, weights: dict[str, Any], sweep_dir: Path | None = None) -> tuple[Any, Any]:
    """The arm's model (base, base + adapter, or the full checkpoint) in eval mode, and its tokenizer; recorded
    paths are looked up under ``sweep_dir`` when the working directory differs from the run's."""
    from fairgym.lm.models import load_model

    return load_model(locate_weights(weights["model"], sweep_dir), locate_weights(weights.get("adapter"), sweep_dir),
                      device=config.device, dtype=config.dtype)


def make_llm_agent(config: SweepConfig, model: Any, tokenizer: Any, name: str, decide: str = "choice") -> Any:
    """A greedy ``LLMAgent`` (choice scoring picks the most likely choice; generation is greedy)."""
    from fairgym.agents.llm import LLMAgent

    agent = LLMAgent.from_model(model, tokenizer, decide=decide, temperature=0.0, batch_size=config.eval.batch_size)
    agent.name = f"llm:{name}"
    return agent

