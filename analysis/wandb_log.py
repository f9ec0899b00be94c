"""Weights & Biases, the one module that talks to it: runs, training, episode GRPO and sweep reports log here.

- ``log_run``: a finished run's config, fairness trajectories (by turn), summary metrics and an episodes table;
- ``log_sweep_report``: the sweep report's figures and tables; ``log_figures``: figures into an open run;
- ``training_callback``: transformers' W&B callback for training runs (``TrainConfig.report_to="wandb"``);
- ``log_to_active_run``: extra values (evaluation episodes, episode-GRPO rollout metrics) into the training run.

W&B is offline by default and never required. The mode comes from ``WANDB_MODE`` when set; otherwise it is
``"offline"`` unless the user configured W&B (``WANDB_API_KEY`` or an ``api.wandb.ai`` entry in ``~/.netrc``),
in which case wandb decides. ``WANDB_MODE=disabled`` skips W&B entirely. Every W&B failure becomes a warning
(``warn_failure``), in one place: the files of a run, a training or a sweep are written as always.
"""

from __future__ import annotations

import functools
import json
import math
import netrc
import os
import warnings
from pathlib import Path
from typing import Any

from fairgym.analysis.trajectories import ALL, run_profile
from fairgym.runfiles import json_safe

_SET_HERE: dict[str, str] = {}  # the W&B settings fairgym made itself (any other is the user's, and wins)
STEP_COLUMNS = ["episode", "turn", "group", "action_text", "valid", "reward"]


def user_configured_wandb() -> bool:
    """Whether the user set W&B up: an API key in the environment or a ``api.wandb.ai`` login in ``~/.netrc``."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode() -> str | None:
    """``WANDB_MODE`` if set, else ``None`` (wandb decides) for a configured user, else ``"offline"``."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    return None if user_configured_wandb() else "offline"


def warn_failure(what: str, exc: BaseException, kept: str) -> None:
    """The one warning for a W&B failure: what failed, why, and what was kept (the run's files)."""
    warnings.warn(f"W&B {what} failed ({type(exc).__name__}: {exc}); {kept} Set WANDB_MODE=disabled to skip "
                  "W&B.", RuntimeWarning, stacklevel=3)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def step_table(episodes: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the episodes table: one row per step, with the outcome fields the env family's profile
    names (``wandb_columns``; a family naming none shows the whole outcome as JSON)."""
    profile = run_profile(episodes) if episodes else None
    outcomes = [s.get("outcome") or {} for ep in episodes for s in ep.get("steps", [])]
    named = tuple(profile.wandb_columns) if profile is not None else ()
    whole = not named
    fields = (named or ("outcome",)) + tuple(
        f for f in (profile.optional_wandb_columns if profile else ()) if any(f in o for o in outcomes))
    rows = []
    for ep in episodes:
        for s in ep.get("steps", []):
            outcome = s.get("outcome") or {}
            extra = [_cell(outcome if whole and f == "outcome" else outcome.get(f)) for f in fields]
            rows.append([ep.get("index"), s.get("turn"), s.get("group"), s.get("action_text"),
                         bool(s.get("action_valid", True)), float(s.get("reward", 0.0)), *extra])
    return STEP_COLUMNS + list(fields), rows


def series_rows(traj: dict[str, dict[str, list[float]]]) -> list[dict[str, float]]:
    """One dict per turn: ``{"<metric>/<group>": value}`` (``<metric>`` alone for the all-groups series),
    ``nan`` values left out so W&B draws gaps."""
    n_turns = max((len(v) for by_group in traj.values() for v in by_group.values()), default=0)
    rows: list[dict[str, float]] = [{} for _ in range(n_turns)]
    for metric, by_group in traj.items():
        for group, values in by_group.items():
            key = metric if group == ALL else f"{metric}/{group}"
            for t, value in enumerate(values):
                if not math.isnan(value):
                    rows[t][key] = float(value)
    return rows


def log_run(run_dir: Path, config: dict[str, Any], metrics: dict[str, Any], episodes: list[dict[str, Any]], *,
            project: str = "fairgym", group: str | None = None, name: str | None = None,
            job_type: str = "eval") -> str | None:
    """Log one run to W&B; return its path (``entity/project/id``, or the id offline), or ``None`` when W&B is
    disabled or failed (a warning says why; nothing in ``run_dir`` is touched but its ``wandb/`` folder).

    The per-step trajectories are logged with ``step=turn``, one series per group (keys like
    ``fairness/selection_rate/<group>``); ``run.summary`` then holds the cumulative ``metrics`` under the same
    keys, so a chart shows how a rate moves over turns and the summary its whole-run value.
    """
    mode = wandb_mode()
    if mode == "disabled":
        return None
    run = None
    try:
        import wandb

        from fairgym.analysis.metrics import trajectories

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        run = wandb.init(project=project, group=group, name=name, job_type=job_type, dir=str(run_dir),
                         config=config, mode=mode)  # type: ignore[arg-type]  # a mode wandb_mode() checked
        for turn, row in enumerate(series_rows(trajectories(episodes) if episodes else {})):
            run.log(row, step=turn)
        run.summary.update(json_safe(metrics))
        columns, rows = step_table(episodes)
        run.log({"eval/episodes": wandb.Table(columns=list[Any](columns), data=rows)})
        run_id = "/".join(p for p in (run.entity, run.project, run.id) if p) if not run.offline else run.id
        run.finish()
        return run_id
    except Exception as exc:  # noqa: BLE001 - a W&B failure must never lose the run
        warn_failure("logging", exc, f"the run's files in {run_dir} are unaffected.")
        _finish_quietly(run)
        return None


def _finish_quietly(run: Any) -> None:
    try:
        if run is not None:
            run.finish(exit_code=1)
    except Exception:  # noqa: BLE001 - already reporting the first failure
        pass


def log_figures(run: Any, figures: dict[str, Any], *, prefix: str = "plots") -> None:
    """Log matplotlib figures to an open W&B run as images under ``<prefix>/<name>``; a failure is a warning."""
    try:
        import wandb

        run.log({f"{prefix}/{name}": wandb.Image(fig) for name, fig in figures.items()})
    except Exception as exc:  # noqa: BLE001 - figures are a convenience, never worth a crash
        warn_failure("figure logging", exc, "the figures' files are unaffected.")


def log_sweep_report(sweep_dir: Path, config: dict[str, Any], figures: dict[str, Path],
                     tables: dict[str, tuple[list[str], list[list[Any]]]]) -> None:
    """One W&B run in the sweep's group (``config["name"]``) with every figure (PNG paths) and table (key ->
    (columns, rows)) of the sweep report; W&B trouble is a warning and never raises."""
    mode = wandb_mode()
    if mode == "disabled":
        return
    run = None
    try:
        import wandb

        run = wandb.init(project=config.get("wandb_project") or "fairgym", group=config.get("name"),
                         name=f"{config.get('name')}/report", job_type="sweep-report", dir=str(sweep_dir),
                         config=config, mode=mode)  # type: ignore[arg-type]  # a mode wandb_mode() checked
        log_figures(run, {name: str(path) for name, path in figures.items()}, prefix="sweep")
        for key, (columns, rows) in tables.items():
            run.log({key: wandb.Table(columns=list[Any](columns), data=rows)})
        run.finish()
    except Exception as exc:  # noqa: BLE001 - W&B trouble never loses a report
        warn_failure("logging of the sweep report", exc, f"report.md and plots/ in {sweep_dir} are unaffected.")
        _finish_quietly(run)


# ---- training runs ---------------------------------------------------------------------------------------------
def prepare_training_run(output_dir: str | Path, project: str = "fairgym") -> None:
    """Settings the transformers W&B callback reads, for a training run logging to W&B: the mode of
    ``wandb_mode`` (offline unless the user configured W&B), the project and the run folder. The user's own
    ``WANDB_*`` settings win; those fairgym made are renewed per run, so a second training in one process logs
    into its own folder."""
    settings = {"WANDB_MODE": wandb_mode(), "WANDB_PROJECT": project, "WANDB_DIR": str(Path(output_dir).resolve())}
    for name, value in settings.items():
        users = name in os.environ and os.environ[name] != _SET_HERE.get(name)
        if value is not None and not users:
            os.environ[name] = _SET_HERE[name] = value


def log_to_active_run(values: dict[str, Any], what: str = "logging") -> None:
    """``wandb.log(values)`` into the active run (a training run's), if any; a failure is a warning (the values
    stay where the caller keeps them: the trainer state, the rollout log)."""
    try:
        import wandb

        if wandb.run is not None:
            wandb.log(values)
    except Exception as exc:  # noqa: BLE001 - a W&B failure must never stop training
        warn_failure(what, exc, "the values stay in trainer_state.json and the run folder.")


def training_callback() -> Any:
    """A transformers ``WandbCallback`` whose hooks warn instead of raising and stop calling W&B after the first
    failure (``wandb.init``, ``wandb.log`` or the upload): training goes on, and its checkpoints, adapter or
    model, ``trainer_state.json`` and ``train_metrics.json`` are written as always."""
    return _safe_callback_class()()


@functools.cache
def _safe_callback_class() -> type:
    from transformers.integrations import WandbCallback

    class SafeWandbCallback(WandbCallback):
        _wandb: Any

        def _guard(self, hook: str, args: Any, *rest: Any, **kwargs: Any) -> None:
            if self._wandb is None:
                return
            try:
                getattr(super(), hook)(args, *rest, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a W&B failure must never stop training or lose its files
                self._wandb = None  # the stock hooks all return early without it
                warn_failure("logging", exc, f"training goes on without W&B from {hook} on, and its files in "
                             f"{args.output_dir} are written as always.")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:  # type: ignore[override]
            self._guard("on_train_begin", args, state, control, **kwargs)

        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:  # type: ignore[override]
            self._guard("on_log", args, state, control, **kwargs)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._guard("on_save", args, state, control, **kwargs)

        def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
            self._guard("on_predict", args, state, control, metrics=metrics, **kwargs)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:  # type: ignore[override]
            self._guard("on_train_end", args, state, control, **kwargs)

        @property
        def active(self) -> bool:
            """Whether W&B is still in use (no failure so far)."""
            return self._wandb is not None

    return SafeWandbCallback
