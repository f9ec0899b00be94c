"""The rank sweep: base / LoRA at each rank / full fine-tuning, same recipe, data, steps and seeds, one report.

``run_sweep(config)`` trains every arm with ``fairgym.training.train``, evaluates each on the same seeded
episodes (``run_episodes`` with an ``LLMAgent`` deciding by choice scoring), then runs the diagnostics (KL against
the base and against full fine-tuning, logit lens, counterfactual flip rate, update spectrum) and writes the
report. Layout::

    runs/<sweep>/config.yaml             the resolved SweepConfig
    runs/<sweep>/implant/                the biased base model (when ``implant`` is set), built once
    runs/<sweep>/<arm>/status.json       pending | running | done | failed (+ traceback)
    runs/<sweep>/<arm>/train/            the TrainConfig run folder (adapter/ or model/)
    runs/<sweep>/<arm>/<Env-vN>/         episodes.jsonl, metrics.json per evaluation env
    runs/<sweep>/<arm>/metrics.json      {env id: metrics}
    runs/<sweep>/diagnostics.json        per-arm diagnostics
    runs/<sweep>/report.md, plots/*.png  written by ``fairgym.analysis.sweep_report``

A rerun skips arms whose status is ``done``; an arm that fails is recorded as failed and the others go on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairgym.config import UnknownNameError, from_dict, load_yaml, merge, parse_overrides, save_config
from fairgym.training.config import RECIPES, TrainConfig

VARIANTS = {"dora": {"use_dora": True}, "rslora": {"use_rslora": True}}
# TrainConfig fields the sweep sets per arm; a sweep's ``train`` block may not set them.
ARM_FIELDS = ("recipe", "model", "adapter", "method", "rank", "seed", "output_dir", "use_dora", "use_rslora",
              "run_name", "device", "dtype")
STATUS_FILE = "status.json"
DIAGNOSTICS_FILE = "diagnostics.json"


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
            or ``"generate"``; default ``"choice"``, and ``"generate"`` for Dialogue envs (no closed set).
        batch_size: prompts per forward pass of the LLM agent.
    """

    envs: list[str] = field(default_factory=lambda: ["fairgym/Lending-v0"])
    episodes: int = 8
    seed: int = 10_000
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    num_envs: int = 8
    decide: dict[str, str] = field(default_factory=dict)
    batch_size: int = 32

    def decide_mode(self, env_id: str) -> str:
        """``"choice"`` or ``"generate"`` for ``env_id``."""
        return self.decide.get(env_id) or ("generate" if "Dialogue" in env_id else "choice")


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
        batch_size: prompts per forward pass.
    """

    enabled: bool = True
    decisions: int = 32
    episodes: int = 4
    spectrum_ranks: list[int] = field(default_factory=list)
    update_spectrum: bool = True
    batch_size: int = 8


@dataclass
class SweepConfig:
    """A rank sweep: which arms, trained how, evaluated where.

    Attributes:
        name: the sweep's folder name under ``out_root`` and its W&B group.
        model: the base model (``None``: the embedded SmolLM2-135M-Instruct; else a hub id or local folder).
        implant: optional settings for ``fairgym.training.implant`` (a controlled bias implanted into the base
            once, cached under the sweep folder); every arm, the base arm included, then starts from it.
        recipe: ``"sft"``, ``"grpo"`` or ``"dpo"``, shared by every trained arm.
        ranks: LoRA ranks (one arm per rank and seed).
        include_base: evaluate the untrained base as an arm.
        include_full: train a full fine-tuning arm per seed (the reference).
        variants: extra PEFT variants trained at every rank (``"dora"``, ``"rslora"``).
        seeds: training seeds; each trained arm runs once per seed.
        train: ``TrainConfig`` fields shared by every trained arm (steps, learning rate, batch, data episodes,
            teacher, counterfactual augmentation, ...); not the per-arm fields (method, rank, seed, ...).
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
        from fairgym.envs import ENV_IDS, env_arguments

        if not self.eval.envs:
            raise ValueError("SweepConfig.eval.envs is empty; list at least one env id, e.g. [fairgym/Lending-v0].")
        for env_id in self.eval.envs:
            if env_id not in ENV_IDS:
                raise UnknownNameError("SweepConfig.eval.envs entry (env id)", str(env_id), ENV_IDS)
        for env_id, kwargs in self.eval.env_kwargs.items():
            if env_id not in self.eval.envs:
                raise UnknownNameError("SweepConfig.eval.env_kwargs key (an evaluated env id)", env_id,
                                       self.eval.envs)
            known = env_arguments(env_id)
            for key in kwargs or {}:
                if key not in known:
                    raise UnknownNameError(f"SweepConfig.eval.env_kwargs[{env_id!r}] argument", key, known)
        for env_id, mode in self.eval.decide.items():
            if env_id not in self.eval.envs or mode not in ("choice", "generate"):
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

    def train_config(self, *, method: str, rank: int, seed: int, output_dir: str | Path, variant: str | None = None,
                     model: str | None = None) -> TrainConfig:
        """The ``TrainConfig`` of one trained arm: the shared ``train`` block plus the arm's own fields."""
        arm = {"recipe": self.recipe, "model": model if model is not None else self.model, "method": method,
               "rank": rank, "seed": seed, "output_dir": str(output_dir), "device": self.device, "dtype": self.dtype,
               **(VARIANTS[variant] if variant else {})}
        try:
            return from_dict(TrainConfig, merge(self.train, arm))
        except UnknownNameError as exc:
            raise ValueError(f"SweepConfig.train: {exc}") from exc


def load_sweep_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """YAML file (optional) + ``key=value`` overrides -> a validated ``SweepConfig`` (errors before any training)."""
    data = merge(load_yaml(path) if path else {}, parse_overrides(overrides))
    return from_dict(SweepConfig, data)


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
        return self.name.rsplit("-s", 1)[0] if self.seed is not None else self.name


def plan_arms(config: SweepConfig) -> list[Arm]:
    """Every arm, in run order: base, then per seed the full arm and the LoRA (and variant) ranks."""
    arms = [Arm("base", "base")] if config.include_base else []
    for seed in config.seeds:
        if config.include_full:
            arms.append(Arm(f"full-s{seed}", "full", seed=seed))
        for variant in [None, *config.variants]:
            prefix = variant or "lora"
            arms += [Arm(f"{prefix}-r{r}-s{seed}", "lora", rank=r, seed=seed, variant=variant) for r in config.ranks]
    return arms


def read_status(arm_dir: Path) -> dict[str, Any]:
    """The arm's ``status.json`` (``{"state": "pending"}`` when absent)."""
    path = Path(arm_dir) / STATUS_FILE
    return json.loads(path.read_text()) if path.exists() else {"state": "pending"}


def write_status(arm_dir: Path, **fields: Any) -> None:
    """Write ``status.json`` atomically."""
    arm_dir.mkdir(parents=True, exist_ok=True)
    tmp = arm_dir / f".{STATUS_FILE}.tmp"
    tmp.write_text(json.dumps(fields, indent=2, default=str) + "\n")
    tmp.replace(arm_dir / STATUS_FILE)


def env_folder(env_id: str) -> str:
    """``"fairgym/Lending-v0"`` -> ``"Lending-v0"``."""
    return env_id.split("/")[-1]


# ---- one arm -------------------------------------------------------------------------------------------------
def train_arm(config: SweepConfig, arm: Arm, arm_dir: Path, base_model: str | None) -> dict[str, Any]:
    """Train ``arm`` (nothing for the base); returns where its weights are."""
    if arm.method == "base":
        return {"model": base_model, "adapter": None}
    from fairgym.training import trainers

    train_config = config.train_config(method=arm.method, rank=arm.rank or 1, seed=arm.seed or 0,
                                       output_dir=arm_dir / "train", variant=arm.variant, model=base_model)
    result = trainers.train(train_config)
    model = str(result.model_dir) if result.model_dir else base_model
    adapter = str(result.adapter_dir) if result.adapter_dir else None
    return {"model": model, "adapter": adapter, "global_step": result.global_step,
            "train_metrics": json_safe(result.metrics)}


def load_arm_model(config: SweepConfig, weights: dict[str, Any]) -> tuple[Any, Any]:
    """The arm's model (base, base + adapter, or the full checkpoint) in eval mode, and its tokenizer."""
    from fairgym.agents.models import load_model

    return load_model(weights["model"], weights.get("adapter"), device=config.device, dtype=config.dtype)


def make_llm_agent(config: SweepConfig, model: Any, tokenizer: Any, name: str, decide: str = "choice") -> Any:
    """A greedy ``LLMAgent`` (choice scoring picks the most likely choice; generation is greedy)."""
    from fairgym.agents.llm import LLMAgent

    agent = LLMAgent.from_model(model, tokenizer, decide=decide, temperature=0.0, batch_size=config.eval.batch_size)
    agent.name = f"llm:{name}"
    return agent


def evaluate_arm(config: SweepConfig, arm: Arm, arm_dir: Path, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Run the seeded evaluation episodes of every env; write ``{env id: metrics}`` and log them to W&B."""
    from fairgym.agents.runner import run_episodes
    from fairgym.analysis.metrics import compute_metrics, write_metrics

    out: dict[str, Any] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for env_id in config.eval.envs:
        agent = make_llm_agent(config, model, tokenizer, arm.name, config.eval.decide_mode(env_id))
        folder = arm_dir / env_folder(env_id)
        episodes = run_episodes(env_id, agent, episodes=config.eval.episodes, seed=config.eval.seed,
                                out_dir=folder, env_kwargs=config.eval.env_kwargs.get(env_id) or {},
                                num_envs=config.eval.num_envs, progress=False)
        out[env_id], records[env_id] = compute_metrics(episodes), episodes
        write_metrics(folder / "metrics.json", out[env_id])
    (arm_dir / "metrics.json").write_text(json.dumps(json_safe(out), indent=2) + "\n")
    log_arm_to_wandb(config, arm, records, out, arm_dir)
    return out


def run_arm(config: SweepConfig, arm: Arm, sweep_dir: Path, base_model: str | None) -> dict[str, Any]:
    """Train, evaluate and log one arm, recording its status; a failure is recorded, not raised."""
    arm_dir = sweep_dir / arm.name
    status = read_status(arm_dir)
    if status.get("state") == "done":
        return status
    started = time.time()
    write_status(arm_dir, state="running", arm=dataclasses.asdict(arm), started=started)
    try:
        weights = train_arm(config, arm, arm_dir, base_model)
        model, tokenizer = load_arm_model(config, weights)
        evaluate_arm(config, arm, arm_dir, model, tokenizer)
        del model
    except Exception as exc:  # noqa: BLE001 - one failed arm must not stop the sweep
        status = {"state": "failed", "arm": dataclasses.asdict(arm), "started": started,
                  "seconds": round(time.time() - started, 2), "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
        write_status(arm_dir, **status)
        print(f"[sweep] arm {arm.name} failed: {status['error']}", flush=True)
        return status
    status = {"state": "done", "arm": dataclasses.asdict(arm), "started": started,
              "seconds": round(time.time() - started, 2), "weights": weights}
    write_status(arm_dir, **status)
    return status


def log_arm_to_wandb(config: SweepConfig, arm: Arm, episodes: dict[str, list[dict[str, Any]]],
                     metrics: dict[str, Any], arm_dir: Path) -> None:
    """One W&B run per arm and env in group ``config.name`` (``log_run``: trajectories by turn, metrics as
    summary, the step table); W&B trouble is a warning and never fails the arm."""
    from fairgym.analysis.wandb_log import log_run

    for env_id, records in episodes.items():
        log_run(arm_dir / env_folder(env_id), {"arm": dataclasses.asdict(arm), "env_id": env_id,
                                               "sweep": json_safe(dataclasses.asdict(config))},
                metrics[env_id], records, project=config.wandb_project, group=config.name,
                name=f"{arm.name}/{env_folder(env_id)}", job_type="sweep-arm")


def json_safe(value: Any) -> Any:
    """Plain JSON data: nan/inf -> None, numpy scalars and arrays -> Python, anything else -> str."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


# ---- the sweep -----------------------------------------------------------------------------------------------
def implant_train_config(config: SweepConfig, target: Path | str) -> TrainConfig:
    """The ``TrainConfig`` of the bias implant: the sweep's model, env and device, a full update by default,
    ``implant`` on top (``implant_bias`` swaps in the env's biased teacher unless ``implant.teacher`` names one)."""
    shared = {k: config.train[k] for k in ("env_id", "env_kwargs", "max_length") if k in config.train}
    base = {"model": config.model, "device": config.device, "dtype": config.dtype, "method": "full", **shared}
    try:
        return from_dict(TrainConfig, merge(base, {**(config.implant or {}), "output_dir": str(target)}))
    except UnknownNameError as exc:
        raise ValueError(f"SweepConfig.implant: {exc}") from exc


def prepare_base(config: SweepConfig, sweep_dir: Path) -> str | None:
    """The base model every arm starts from: the implanted-bias model when ``implant`` is set (built once)."""
    if not config.implant:
        return config.model
    target = sweep_dir / "implant"
    if (target / "model" / "config.json").exists():
        return str(target / "model")
    from fairgym.training.implant import implant_bias

    print(f"[sweep] {config.name}: implanting the controlled bias into the base model", flush=True)
    return str(implant_bias(implant_train_config(config, target)))


def run_sweep(config: SweepConfig, out_root: str | Path = "runs", report: bool = True) -> Path:
    """Train and evaluate every arm, run the diagnostics, write the report; returns ``out_root/<name>``."""
    sweep_dir = Path(out_root) / config.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, sweep_dir / "config.yaml")
    base_model = prepare_base(config, sweep_dir)
    arms = plan_arms(config)
    for i, arm in enumerate(arms, 1):
        print(f"[sweep] {config.name}: arm {i}/{len(arms)} {arm.name}", flush=True)
        status = run_arm(config, arm, sweep_dir, base_model)
        print(f"[sweep] {arm.name}: {status['state']} ({status.get('seconds', 0)} s)", flush=True)
    if config.diagnostics.enabled:
        from fairgym.training.sweep_diagnostics import run_diagnostics

        run_diagnostics(config, sweep_dir, arms, base_model)
    if report:
        from fairgym.analysis.sweep_report import write_sweep_report

        write_sweep_report(sweep_dir)
    return sweep_dir
