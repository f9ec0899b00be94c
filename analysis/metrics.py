"""Group metrics over recorded episodes: pure functions of ``episodes.jsonl`` records.

Keys are namespaced (``fairness/``, ``toxicity/``, ``bias/``, ``task/``, ``format/``); a per-group value is keyed
``<namespace>/<metric>/<group>`` and a between-group or overall value ``<namespace>/<metric>``. Every env gets the
generic metrics here (return, steps, invalid-action rate); its family's own come from the functions its profile
names (``fairgym.envs.profiles``: e.g. ``fairgym.analysis.lending``), looked up from the records' env id, so a
version bump keeps them and an id not registered in this process gets the generic metrics only.

Undefined is ``nan``, never 0: a group with no decisions has no selection rate, a group with no applicant who
would repay has no true-positive rate, a parity difference needs two groups with defined rates. Reporting 0
would claim a measurement (e.g. "this group is never approved") that the episodes do not contain.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairgym.analysis.trajectories import (
    ALL,
    EPISODES_RUNNING,
    NAN,
    Trajectories,
    flatten,
    ratio,
    run_env_id,
    run_groups,
    run_profile,
    step_frame,
)
from fairgym.analysis.turn_counts import (
    Series,
    TurnTables,
    count_trajectories,
    group_codes,
    group_columns,
    n_turns,
    rate,
    turn_table,
)
from fairgym.analysis.verdicts import run_flags
from fairgym.envs.profiles import FamilyProfile, resolve
from fairgym.runfiles import read_json, write_json


# ---- generic (every env) -----------------------------------------------------------------------------------
def invalid_rates(frame: pd.DataFrame, groups: list[str]) -> dict[str, dict[str, float]]:
    """Share of steps whose action text did not parse, per group (steps posed to that group) and overall.

    A group with no steps is ``nan``: it was never asked, so it cannot have failed or succeeded.
    """
    grouped = frame["group"].notna().any()  # envs whose decisions span all groups (Allocation) get no per-group rate
    rates = {g: ratio((~frame.loc[frame["group"] == g, "valid"]).sum(), (frame["group"] == g).sum())
             for g in (groups if grouped else [])}
    rates[ALL] = ratio((~frame["valid"]).sum(), len(frame))
    return {"format/invalid_action_rate": rates}


def invalid_trajectories(frame: pd.DataFrame, groups: list[str]) -> Trajectories:
    """:func:`invalid_rates` per step and cumulative over turns, from the count of steps and of invalid steps per
    turn and group (per-group series only where some step was posed to a group, as in :func:`invalid_rates`)."""
    grouped = groups if frame["group"].notna().any() else []
    turns, codes = frame["turn"].to_numpy(), group_codes(frame["group"], grouped)
    tables = {name: turn_table(turns, codes, values, n_turns(frame), len(grouped))
              for name, values in (("steps", np.ones(len(frame))), ("invalid", ~frame["valid"].to_numpy(bool)))}
    return count_trajectories(tables, grouped, _invalid_count_rates)


def _invalid_count_rates(tables: TurnTables, groups: list[str]) -> Series:
    return {"format/invalid_action_rate": group_columns(rate(tables["invalid"], tables["steps"]), groups)}
def group_counts(frame: pd.DataFrame, groups: list[str]) -> dict[str, float]:
    """Per group the decisions posed to it (``task/decisions/<group>``: its steps; a family may count only the
    decisions taken) and the episodes it took part in (``task/episodes/<group>``); none for an env whose decisions
    span all groups (Allocation)."""
    if not frame["group"].notna().any():
        return {}
    out = {}
    for g in groups:
        mine = frame["group"] == g
        out[f"task/decisions/{g}"] = float(mine.sum())
        out[f"task/episodes/{g}"] = float(frame.loc[mine, "episode"].nunique())
    return out


def generic_scalars(episodes: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str]) -> dict[str, float]:
    """Episodes, steps, mean return, the invalid-action rates (overall and per group) and the per-group counts."""
    returns = [float(ep.get("return", sum(s.get("reward", 0.0) for s in ep.get("steps", [])))) for ep in episodes]
    scalars = {"task/episodes": float(len(episodes)), "task/steps": float(len(frame)),
               "task/return_mean": float(np.mean(returns)) if returns else NAN}
    return {**scalars, **flatten(invalid_rates(frame, groups)), **group_counts(frame, groups)}


# ---- the run's metrics: generic, then the family's -----------------------------------------------------------
def _prepare(episodes: list[dict[str, Any]]) -> tuple[FamilyProfile, pd.DataFrame, list[str]]:
    if not isinstance(episodes, list) or not all(isinstance(ep, dict) for ep in episodes):
        raise TypeError("episodes must be a list of episode record dicts (see fairgym.envs.records.read_episodes).")
    run_env_id(episodes)  # one env id, or a clear error
    return run_profile(episodes), step_frame(episodes), run_groups(episodes)


def compute_metrics(episodes: list[dict[str, Any]]) -> dict[str, float]:
    """Every cumulative metric of a run's episodes, as a flat ``{namespaced key: float}`` dict (``nan`` allowed;
    :func:`write_metrics` writes it as null).

    Raises:
        ValueError: when ``episodes`` is empty or mixes env ids.
    """
    profile, frame, groups = _prepare(episodes)
    out = generic_scalars(episodes, frame, groups)
    family = resolve(profile.metrics)
    if family is not None:
        out.update(family(episodes, frame, groups))
    return dict(sorted(out.items()))


def trajectories(episodes: list[dict[str, Any]]) -> Trajectories:
    """Metric -> group -> one value per turn (0 .. last turn). ``<metric>`` is over each turn's steps across
    episodes, ``<metric>_cumulative`` over all steps up to that turn; between-group values sit under the group
    ``"all groups"``. Used by the plots and the W&B series."""
    profile, frame, groups = _prepare(episodes)
    out = dict(sorted(invalid_trajectories(frame, groups).items()))
    out[EPISODES_RUNNING] = {ALL: [float(n) for n in episodes_running(frame)]}
    family = resolve(profile.trajectories)
    if family is not None:
        out.update(family(episodes, frame, groups))
    return out


def trajectory_bands(episodes: list[dict[str, Any]]) -> Trajectories:
    """The interval over episodes of the family's per-turn series (its profile's ``bands``; none for a family
    without), keyed ``<metric>_band_low`` / ``<metric>_band_high``: what the report's figures draw around each
    line. Kept apart from :func:`trajectories`, which W&B logs series by series."""
    profile, frame, groups = _prepare(episodes)
    family = resolve(profile.bands)
    return dict(family(episodes, frame, groups)) if family is not None else {}


def episodes_running(frame: pd.DataFrame) -> list[int]:
    """How many episodes reached each turn (0 .. last turn): the number of steps behind every per-turn value."""
    lengths = frame.groupby("episode")["turn"].max().to_numpy(np.int64) + 1
    ended = np.cumsum(np.bincount(lengths, minlength=n_turns(frame) + 1))  # episodes of length <= t, per t
    return (len(lengths) - ended[:n_turns(frame)]).tolist()


# ---- presentation and files ---------------------------------------------------------------------------------
def split_metrics(metrics: dict[str, float]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """``({"ns/metric": {group: value}}, {"ns/metric": value})``: per-group keys and run-level keys apart."""
    per_group: dict[str, dict[str, float]] = {}
    overall: dict[str, float] = {}
    for key, value in metrics.items():
        parts = key.split("/", 2)
        if len(parts) == 3:
            per_group.setdefault(f"{parts[0]}/{parts[1]}", {})[parts[2]] = value
        else:
            overall[key] = value
    return per_group, overall


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    value = float(value)
    return "0" if abs(value) < 5e-16 else f"{value:.3g}"  # 3 significant digits: small slopes stay visible


def table_rows(metrics: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-group table: one row per group, one column per per-group metric."""
    per_group, _ = split_metrics(metrics)
    groups = list(dict.fromkeys(g for by_group in per_group.values() for g in by_group))
    header = ["group"] + [name.split("/", 1)[1] for name in per_group]
    rows = [[g] + [_fmt(by_group.get(g)) for by_group in per_group.values()] for g in groups]
    return header, rows


def summary_table(metrics: dict[str, float], profile: FamilyProfile | None = None) -> str:
    """A compact text table: per-group metrics (one row per group), then the run-level metrics; with the run's
    ``profile``, then a ``warning:`` line per flag (``fairgym.analysis.verdicts.run_flags``: a collapsed policy,
    groups with too few decisions)."""
    header, rows = table_rows(metrics)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    _, overall = split_metrics(metrics)
    lines += [""] + [f"{key}: {_fmt(value)}" for key, value in overall.items()]
    if profile is not None:
        flags = run_flags(metrics, profile)
        lines += [""] * bool(flags) + [f"warning: {flag}" for flag in flags]
    return "\n".join(lines)


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json`` atomically (standard JSON: ``nan`` becomes null)."""
    return write_json(path, metrics)


def read_metrics(path: str | Path) -> dict[str, float]:
    """Read ``metrics.json``; null comes back as ``nan``."""
    data = read_json(path)
    if data is None:
        raise FileNotFoundError(f"{str(path)!r} does not exist; compute the metrics first (fairgym report).")
    return {k: NAN if v is None else v for k, v in data.items()}


# ---- agreement with a reference policy ----------------------------------------------------------------------
def teacher_agreement(episodes: list[dict[str, Any]], reference: list[list[str | None]]) -> dict[str, float]:
    """The share of decisions equal to the reference's (e.g. the fair teacher's) at the same states, per group
    and overall: ``task/teacher_agreement[/<group>]``.

    Args:
        episodes: recorded episodes.
        reference: per episode, per step, the reference's action text at that step's state (``None``: the step is
            not compared, e.g. it has no closed set of choices). Texts are compared after ``strip().lower()``; a
            step whose own action did not parse counts as a disagreement.

    Returns:
        ``{"task/teacher_agreement": share, "task/teacher_agreement/<group>": share}``; ``nan`` for a group (or
        the run) with no compared step.
    """
    if len(reference) != len(episodes):
        raise ValueError(f"reference has {len(reference)} episodes, the run {len(episodes)}; pass one list per "
                         "episode.")
    groups = run_groups(episodes) if episodes else []
    hits: dict[str, list[bool]] = {g: [] for g in [*groups, ALL]}
    for episode, wanted in zip(episodes, reference, strict=True):
        for step, target in zip(episode["steps"], wanted, strict=True):
            if target is None:
                continue
            same = bool(step.get("action_valid", True)) and _norm(step.get("action_text")) == _norm(target)
            hits.setdefault(step.get("group") or ALL, []).append(same)
            if step.get("group"):
                hits[ALL].append(same)
    return flatten({"task/teacher_agreement": {g: ratio(sum(v), len(v)) for g, v in hits.items()}})


def _norm(text: Any) -> str:
    return str(text or "").strip().lower()
