"""The rank sweep: base / LoRA at each rank / full fine-tuning, same recipe, data, steps and seeds, one report.

``run_sweep(config)`` checks the folder against any saved config, builds the implanted base (once), chooses each
arm's learning rate (``fairgym.training.lr_selection``), trains every arm with ``fairgym.training.train``,
evaluates each on the same seeded episodes (``run_episodes`` with an ``LLMAgent`` deciding by choice scoring) and
scores its decisions against the fair teacher's at the same states, then runs the diagnostics (KL against the
base and against full fine-tuning, logit lens, counterfactual flip rate, update spectrum, intruder dimensions)
and writes the report. Layout::

    runs/<sweep>/config.yaml             the resolved SweepConfig (a rerun with other results is refused)
    runs/<sweep>/implant-<key>/          the biased base model (when ``implant`` is set), keyed by its settings
    runs/<sweep>/learning_rates.json     each arm label's learning rate and how it was chosen
    runs/<sweep>/lr-select/<label>/      the grid runs of the learning-rate selection
    runs/<sweep>/teacher/<Env-vN>/       the fair teacher on the evaluation episodes (the reference row)
    runs/<sweep>/<arm>/status.json       pending | running | done | failed (+ traceback)
    runs/<sweep>/<arm>/train/            the TrainConfig run folder (adapter/ or model/)
    runs/<sweep>/<arm>/<Env-vN>/         episodes.jsonl, metrics.json per evaluation env
    runs/<sweep>/<arm>/metrics.json      {env id: metrics}
    runs/<sweep>/diagnostics.json        per-arm diagnostics
    runs/<sweep>/report.md, plots/*.png  written by ``fairgym.analysis.sweep_report``

A rerun skips arms whose status is ``done``; an arm that fails is recorded as failed and the others go on.
The config is ``fairgym.training.sweep_config``, the folder's files ``fairgym.training.sweep_folder``, the arms
``fairgym.training.sweep_arms``.

The sweep is a plan of stages (``sweep_stages``: implant -> learning-rate grid points -> selection -> arms ->
residue, diagnostics -> report, with the teacher's row beside them), each a function of the config, the folder and
the results of the stages it needs. An executor (``fairgym.training.executors``) runs the plan: in this process one
stage after another (``executor.kind: local``, the default), or as Ray tasks across GPUs and machines (``ray``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import traceback
from pathlib import Path
from typing import Any

from fairgym.config import save_config
from fairgym.locks import FolderBusyError, folder_lock
from fairgym.runfiles import CONFIG_FILE, EPISODES_FILE, METRICS_FILE, STATUS_FILE, env_folder, json_safe, write_json
from fairgym.training.executors import Executor, LocalExecutor, Resources, Stage
from fairgym.training.lr_selection import RateChoice, arm_learning_rate, select_learning_rates
from fairgym.training.sweep_arms import Arm, load_arm_model, make_llm_agent, plan_arms
from fairgym.training.sweep_config import ExecutorSettings, SweepConfig
from fairgym.training.sweep_folder import check_sweep_folder, implant_dir, read_status, write_status

TEACHER_DIR = "teacher"


# ---- one arm -------------------------------------------------------------------------------------------------
def train_arm(config: SweepConfig, arm: Arm, arm_dir: Path, base_model: str | None,
              rates: dict[str, RateChoice]) -> dict[str, Any]:
    """Train ``arm`` at its chosen learning rate (nothing for the base); returns where its weights are.

    The first seed's arm reuses the learning-rate grid's winning run when that run had the arm's step budget.
    """
    if arm.method == "base":
        return {"model": base_model, "adapter": None}
    from fairgym.training import trainers

    lr = arm_learning_rate(rates, arm)
    winner = rates[arm.label].winner
    if winner and arm.seed == config.seeds[0]:
        return {**winner["weights"], "learning_rate": lr, "reused": "learning-rate selection run"}
    result = trainers.train(config.arm_config(method=arm.method, rank=arm.rank or 1, seed=arm.seed or 0,
                                              output_dir=arm_dir / "train", variant=arm.variant, model=base_model,
                                              learning_rate=lr))
    model = str(result.model_dir) if result.model_dir else base_model
    adapter = str(result.adapter_dir) if result.adapter_dir else None
    return {"model": model, "adapter": adapter, "global_step": result.global_step, "learning_rate": lr,
            "train_metrics": json_safe(result.metrics)}


def evaluate_arm(config: SweepConfig, arm: Arm, arm_dir: Path, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Run the seeded evaluation episodes of every env; write ``{env id: metrics}`` (agreement with the fair
    teacher at the states the arm reached included) and log them to W&B."""
    from fairgym.agents.runner import run_episodes

    records: dict[str, list[dict[str, Any]]] = {}
    for env_id in config.eval.envs:
        agent = make_llm_agent(config, model, tokenizer, arm.name, config.eval.decide_mode(env_id))
        records[env_id] = run_episodes(env_id, agent, episodes=config.eval.episodes, seed=config.eval.seed,
                                       out_dir=arm_dir / env_folder(env_id),
                                       env_kwargs=config.eval.env_kwargs.get(env_id) or {},
                                       num_envs=config.eval.num_envs, progress=False)
    out = score_episodes(config, arm_dir, records)
    log_arm_to_wandb(config, arm, records, out, arm_dir)
    return out


def score_episodes(config: SweepConfig, arm_dir: Path, records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Metrics of each env's episodes plus the teacher agreement; written per env and as ``{env id: metrics}``."""
    from fairgym.analysis.metrics import compute_metrics, teacher_agreement, write_metrics

    out: dict[str, Any] = {}
    for env_id, episodes in records.items():
        out[env_id] = {**compute_metrics(episodes),
                       **teacher_agreement(episodes, teacher_decisions(config, env_id, episodes))}
        write_metrics(arm_dir / env_folder(env_id) / METRICS_FILE, out[env_id])
    write_json(arm_dir / METRICS_FILE, out)
    return out


def rescore_sweep(config: SweepConfig, sweep_dir: Path) -> list[str]:
    """Recompute every finished arm's metrics from its saved evaluation episodes (no model is loaded), e.g. after
    fairgym gained a metric, and save ``config`` (it passed ``check_sweep_folder``, so it differs at most in fields
    that change no result); returns the arms rescored. The episodes themselves are never changed.

    Raises:
        FileNotFoundError: the folder holds no sweep, or a finished arm lacks the episodes of an evaluated env.
    """
    if not (Path(sweep_dir) / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{sweep_dir} holds no sweep (no config.yaml) to rescore; run the sweep first.")
    with folder_lock(sweep_dir):  # it rewrites metrics and config.yaml: one writer, as a sweep
        check_sweep_folder(config, Path(sweep_dir))
        return _rescore(config, Path(sweep_dir))


def _rescore(config: SweepConfig, sweep_dir: Path) -> list[str]:
    from fairgym.envs.records import read_episodes

    done = []
    for arm_dir in sorted(p.parent for p in Path(sweep_dir).glob(f"*/{STATUS_FILE}")):
        if read_status(arm_dir).get("state") != "done":
            continue
        paths = {env_id: arm_dir / env_folder(env_id) / EPISODES_FILE for env_id in config.eval.envs}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"{arm_dir.name} is done but has no {', '.join(missing)}; rerun the sweep "
                                    "without --rescore to evaluate it again.")
        score_episodes(config, arm_dir, {env_id: read_episodes(p) for env_id, p in paths.items()})
        done.append(arm_dir.name)
    save_config(config, Path(sweep_dir) / CONFIG_FILE)
    return done


def make_teacher_agent(config: SweepConfig) -> Any:
    """The fair teacher the arms are trained to imitate (``train.teacher`` with ``train.teacher_kwargs``)."""
    from fairgym.agents import make_agent

    return make_agent(config.template.teacher, **config.template.teacher_kwargs)


def teacher_decisions(config: SweepConfig, env_id: str, episodes: list[dict[str, Any]]) -> list[list[str | None]]:
    """Per episode and step, what the fair teacher decides at the recorded state (``None`` where the step has no
    closed set of choices): agreement is scored on the states the arm itself reached. Each episode is decided
    again in order, with its decision keys and the infos the arm saw (``episode_infos``), so a teacher that
    follows episodes follows the arm's."""
    from fairgym.agents.base import DecisionKey, accepts_decision_keys
    from fairgym.agents.runner import calibrate
    from fairgym.envs import keys, make_env
    from fairgym.envs.records import episode_infos

    teacher = make_teacher_agent(config)
    env = make_env(env_id, **(config.eval.env_kwargs.get(env_id) or {}))
    try:
        calibrate(teacher, env, config.eval.seed)
    finally:
        env.close()
    keyed = accepts_decision_keys(teacher)
    out: list[list[str | None]] = []
    for episode in episodes:
        if not any(s.get(keys.CHOICES) for s in episode["steps"]):  # nothing to compare (e.g. Dialogue replies)
            out.append([None] * len(episode["steps"]))
            continue
        infos = episode_infos(episode)
        observations = [s["observation"] for s in episode["steps"]]
        extra = {"decision_keys": [DecisionKey(int(episode["seed"]), int(s[keys.TURN])) for s in episode["steps"]]}
        decided = teacher.act(observations, infos, **(extra if keyed else {})) if observations else []
        out.append([d if s.get(keys.CHOICES) else None for d, s in zip(decided, episode["steps"], strict=True)])
    return out


def evaluate_teacher(config: SweepConfig, sweep_dir: Path) -> None:
    """The fair teacher on the evaluation episodes, the reference row of the report (once; scripted, cheap)."""
    from fairgym.agents.runner import run_episodes

    folder = sweep_dir / TEACHER_DIR
    if read_status(folder).get("state") == "done":
        return
    records = {env_id: run_episodes(env_id, make_teacher_agent(config), episodes=config.eval.episodes,
                                    seed=config.eval.seed, out_dir=folder / env_folder(env_id),
                                    env_kwargs=config.eval.env_kwargs.get(env_id) or {},
                                    num_envs=config.eval.num_envs, progress=False)
               for env_id in config.eval.envs if config.eval.decide_mode(env_id) == "choice"}
    if not records:  # no env with a closed set of choices: no decision to compare with
        return
    score_episodes(config, folder, records)
    write_status(folder, state="done", arm={"name": TEACHER_DIR, "method": "teacher"})


def run_arm(config: SweepConfig, arm: Arm, sweep_dir: Path, base_model: str | None,
            rates: dict[str, RateChoice] | None = None) -> dict[str, Any]:
    """Train, evaluate and log one arm, recording its status; a failure is recorded, not raised."""
    arm_dir = sweep_dir / arm.name
    status = read_status(arm_dir)
    if status.get("state") == "done":
        return status
    started = time.time()
    write_status(arm_dir, state="running", arm=dataclasses.asdict(arm), started=started)
    try:
        weights = train_arm(config, arm, arm_dir, base_model, rates or {})
        model, tokenizer = load_arm_model(config, weights, sweep_dir)
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


# ---- the sweep -----------------------------------------------------------------------------------------------
def prepare_base(config: SweepConfig, sweep_dir: Path) -> str | None:
    """The base model every arm starts from: the implanted-bias model when ``implant`` is set, built once into a
    folder keyed by the implant's settings (other settings never reuse it)."""
    if not config.implant:
        return config.model
    target = implant_dir(config, sweep_dir)
    if (target / "model" / "config.json").exists():
        return str(target / "model")
    from fairgym.training.implant import implant_bias

    print(f"[sweep] {config.name}: implanting the controlled bias into the base model ({target.name})", flush=True)
    return str(implant_bias(config.implant_config(target)))


def arm_stage(config: SweepConfig, arm: Arm, sweep_dir: Path, position: str, base_model: str | None,
              rates: dict[str, RateChoice]) -> dict[str, Any]:
    """The arms' stage: ``run_arm`` under the arm folder's lock (held by the process that writes it: this one,
    or a Ray worker), with a line before and after."""
    print(f"[sweep] {config.name}: arm {position} {arm.name}", flush=True)
    with folder_lock(sweep_dir / arm.name):
        status = run_arm(config, arm, sweep_dir, base_model, rates)
    print(f"[sweep] {arm.name}: {status['state']} ({status.get('seconds', 0)} s)", flush=True)
    return status


def lost_arm(sweep_dir: Path, arm: Arm, error: str, trace: str) -> dict[str, Any]:
    """Record an arm whose stage was lost (its worker died past its retries, or its folder was busy) as failed, with
    the traceback; the other arms go on. A folder another process writes is left to it."""
    status = {"state": "failed", "arm": dataclasses.asdict(arm), "error": error, "traceback": trace}
    try:
        with folder_lock(sweep_dir / arm.name):
            write_status(sweep_dir / arm.name, started=read_status(sweep_dir / arm.name).get("started"), **status)
    except FolderBusyError as busy:
        status["error"] = f"{error} (not recorded: {busy})"
    print(f"[sweep] arm {arm.name} failed: {status['error']}", flush=True)
    return status


def rates_stage(config: SweepConfig, sweep_dir: Path, arms: list[Arm],
                base_model: str | None) -> dict[str, RateChoice]:
    """The learning-rate stage: ``select_learning_rates`` (grid points already trained by their own stages are read
    from their ``heldout.json``; only rates added beyond a grid's edge train here)."""
    return select_learning_rates(config, sweep_dir, base_model, arms)


def sweep_stages(config: SweepConfig, sweep_dir: Path, report: bool = True, rates_only: bool = False) -> list[Stage]:
    """The sweep's plan, in order: the implant, the teacher's reference row, the learning-rate grid points and
    the selection among them, every arm, the residue measures, the diagnostics, the report (with ``rates_only``:
    the implant, the grid and the selection alone, for ``learning_rates.json``). Stages that load or train a model
    reserve ``executor.num_cpus`` and ``num_gpus``; the rest one CPU. An arm whose stage is lost is
    recorded failed (``lost_arm``); any other stage that fails stops the sweep."""
    from fairgym.training.lr_selection import grid_stage, lost_grid_point, planned_grid_points
    from fairgym.training.sweep_diagnostics import run_diagnostics

    model, light = Resources(config.executor.num_cpus, config.executor.num_gpus), Resources()
    arms = plan_arms(config)
    base = {"base_model": "implant"}
    stages = [Stage("implant", prepare_base, (config, sweep_dir), resources=model if config.implant else light)]
    if not rates_only:
        stages.append(Stage(TEACHER_DIR, evaluate_teacher, (config, sweep_dir)))
    grid = [Stage(f"lr-grid/{arm.label}/lr-{lr:g}", grid_stage, (config, sweep_dir, arm, lr), base, resources=model,
                  lost=functools.partial(lost_grid_point, arm.label, lr))
            for arm, lr in planned_grid_points(config, sweep_dir, arms)]
    stages += [*grid, Stage("learning-rates", rates_stage, (config, sweep_dir, arms), base,
                            after=tuple(s.name for s in grid), resources=model if config.learning_rates else light)]
    if rates_only:
        return stages
    stages += [Stage(f"arm/{arm.name}", arm_stage, (config, arm, sweep_dir, f"{i}/{len(arms)}"),
                     {**base, "rates": "learning-rates"}, resources=model,
                     lost=functools.partial(lost_arm, sweep_dir, arm))
               for i, arm in enumerate(arms, 1)]
    finished = tuple(s.name for s in stages)
    if config.residue.enabled:  # residue and diagnostics read the finished arms, not each other
        from fairgym.training.sweep_residue import run_residue

        stages.append(Stage("residue", run_residue, (config, sweep_dir, arms), base, after=finished, resources=model))
    if config.diagnostics.enabled:
        stages.append(Stage("diagnostics", run_diagnostics, (config, sweep_dir, arms), base, after=finished,
                            resources=model))
    if report:
        from fairgym.analysis.sweep_report import write_sweep_report

        stages.append(Stage("report", write_sweep_report, (sweep_dir,), after=tuple(s.name for s in stages)))
    return stages


def make_executor(settings: ExecutorSettings) -> Executor:
    """The executor ``settings`` name (``SweepConfig.executor``): this process, or Ray tasks.

    Raises:
        ValueError: ``kind="ray"`` where Ray is not installed.
    """
    if settings.kind == "ray":
        from fairgym.training.ray_executor import RayExecutor

        return RayExecutor(address=settings.address, max_retries=settings.max_retries)
    return LocalExecutor()


def run_sweep(config: SweepConfig, out_root: str | Path = "runs", report: bool = True,
              executor: Executor | None = None, rates_only: bool = False) -> Path:
    """Train and evaluate every arm, run the diagnostics, write the report; returns ``out_root/<name>``.
    ``rates_only`` stops after the learning-rate selection (``sweep_stages``).

    The stages (``sweep_stages``) run on ``executor``, by default the one ``config.executor`` names: in this
    process, or as Ray tasks. This process holds the sweep folder's lock throughout.

    Raises:
        ValueError: the folder holds a sweep saved with settings that change results (before anything runs), or
            the executor cannot run (Ray missing or unreachable).
        fairgym.locks.FolderBusyError: another process writes the sweep folder (its arms lock their own).
    """
    executor = executor or make_executor(config.executor)
    sweep_dir = executor.folder(Path(out_root) / config.name)
    with folder_lock(sweep_dir):
        check_sweep_folder(config, sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, sweep_dir / CONFIG_FILE)
        executor.run(sweep_stages(config, sweep_dir, report, rates_only))
    return Path(out_root) / config.name
