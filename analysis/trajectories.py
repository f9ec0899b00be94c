"""Per-turn views of recorded episodes: a flat step table and the machinery that turns a group statistic into
a trajectory over the turn index.

A *group statistic* is a function ``stat(frame, groups) -> {metric: {group: value}}`` over any subset of the
step table. Applied to the whole table it gives the run's cumulative numbers; applied to the steps of turn ``t``
across all episodes it gives the per-step trajectory; applied to the steps of turns ``<= t`` it gives the
cumulative-up-to-``t`` trajectory. Values that a subset cannot define (a group with no decisions at that turn)
are ``nan``, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from fairgym.config import UnknownNameError
from fairgym.envs import env_traits, keys
from fairgym.envs.profiles import FamilyProfile, generic_profile

ALL = "all groups"  # the "group" of a between-group number (a parity difference, an overall rate)
CUMULATIVE = "_cumulative"  # suffix of a cumulative-up-to-turn-t trajectory's metric name
BAND_LOW, BAND_HIGH = "_band_low", "_band_high"  # suffixes of a per-turn series' interval over episodes
EPISODES_RUNNING = "task/episodes_running"  # trajectory: how many episodes reached each turn
NAN = float("nan")

GroupStat = Callable[[pd.DataFrame, list[str]], dict[str, dict[str, float]]]
Trajectories = dict[str, dict[str, list[float]]]

STEP_COLUMNS = ["episode", "turn", "group", "valid", "reward", "outcome", "action_text"]


def env_family(env_id: str) -> str:
    """The family the env registered under ``env_id`` declares (``fairgym.envs.env_traits``), or ``""`` when no
    env is registered under that id in this process: its records then get the generic metrics only."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id={env_id!r} must be a non-empty string such as 'fairgym/Lending-v0'.")
    try:
        return env_traits(env_id).family
    except UnknownNameError:
        return ""


def env_profile_or_generic(env_id: str) -> FamilyProfile:
    """The profile the env registered under ``env_id`` declares, or a generic one (generic metrics only) when no env
    is registered under that id in this process."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id={env_id!r} must be a non-empty string such as 'fairgym/Lending-v0'.")
    try:
        return env_traits(env_id).profile
    except UnknownNameError:
        return generic_profile(env_id.split("/")[-1])


def run_profile(episodes: list[dict[str, Any]]) -> FamilyProfile:
    """The family profile of a run's records (their one env id)."""
    return env_profile_or_generic(run_env_id(episodes))


def run_env_id(episodes: list[dict[str, Any]]) -> str:
    """The single env id of a list of episode records; a ValueError when they mix envs or are empty."""
    ids = sorted({str(ep.get("env_id")) for ep in episodes})
    if not ids:
        raise ValueError("episodes is empty: there is nothing to measure (run some episodes first).")
    if len(ids) > 1:
        raise ValueError(f"episodes mix env ids {ids}; compute metrics for each env's episodes separately.")
    return ids[0]


def run_groups(episodes: list[dict[str, Any]]) -> list[str]:
    """Every group the env declared (the closed set in each record), then any other group seen in a step."""
    groups: list[str] = []
    for ep in episodes:
        for g in list(ep.get("groups") or []) + [s.get(keys.GROUP) for s in ep.get("steps", [])]:
            if g is not None and g not in groups:
                groups.append(str(g))
    return groups


def step_frame(episodes: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per recorded step: episode index, turn, group, valid, reward, outcome (a dict or None), text."""
    columns: dict[str, list[Any]] = {c: [] for c in STEP_COLUMNS}
    for ep in episodes:  # column by column: a 20,000-step episode is too many rows to build as dicts
        steps = ep.get("steps", [])
        columns["episode"] += [int(ep.get("index", 0))] * len(steps)
        columns["turn"] += [int(step[keys.TURN]) for step in steps]
        columns["group"] += [step.get(keys.GROUP) for step in steps]
        columns["valid"] += [bool(step.get(keys.ACTION_VALID, True)) for step in steps]
        columns["reward"] += [float(step.get("reward", 0.0)) for step in steps]
        columns["outcome"] += [step.get(keys.OUTCOME) for step in steps]
        columns["action_text"] += [step.get("action_text", "") for step in steps]
    frame = pd.DataFrame(columns, columns=STEP_COLUMNS)
    return frame.astype({"episode": int, "turn": int, "valid": bool, "reward": float})


def flatten(stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{metric: {group: v}}`` -> ``{"metric/group": v}``; the :data:`ALL` group keeps the bare metric name."""
    return {(metric if group == ALL else f"{metric}/{group}"): float(value)
            for metric, by_group in stats.items() for group, value in by_group.items()}


def per_turn(frame: pd.DataFrame, groups: list[str], stat: GroupStat, *, cumulative: bool = False) -> Trajectories:
    """``stat`` over the steps of each turn (or of turns ``<= t`` when ``cumulative``), as metric -> group -> list.

    Turns run from 0 to the last recorded turn; every list has one value per turn. A metric that a turn's steps
    do not define is ``nan`` at that turn. Cumulative metric names carry the :data:`CUMULATIVE` suffix.
    """
    out: Trajectories = {}
    n_turns = int(frame["turn"].max()) + 1 if len(frame) else 0
    for t in range(n_turns):
        subset = frame[frame["turn"] <= t] if cumulative else frame[frame["turn"] == t]
        for metric, by_group in stat(subset, groups).items():
            series = out.setdefault(metric + (CUMULATIVE if cumulative else ""), {})
            for group, value in by_group.items():
                series.setdefault(group, [NAN] * n_turns)[t] = float(value)
    return out


def both_trajectories(frame: pd.DataFrame, groups: list[str], stat: GroupStat) -> Trajectories:
    """The per-step and the cumulative-up-to-t trajectories of ``stat``, in one dict."""
    return {**per_turn(frame, groups, stat), **per_turn(frame, groups, stat, cumulative=True)}


def pad_turns(traj: Trajectories, frame: pd.DataFrame) -> Trajectories:
    """Lengthen every series to the run's number of turns (decisions may stop before the last invalid turn)."""
    n_turns = int(frame["turn"].max()) + 1 if len(frame) else 0
    return {m: {g: list(v) + [NAN] * (n_turns - len(v)) for g, v in by_group.items()} for m, by_group in traj.items()}


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or ``nan`` when the denominator is 0 (the ratio is undefined, not 0)."""
    return float(numerator) / float(denominator) if denominator else NAN


def spread(values: list[float]) -> float:
    """``max - min`` over the defined values; ``nan`` with fewer than two (no pair of groups to compare)."""
    defined = [v for v in values if not math.isnan(v)]
    return max(defined) - min(defined) if len(defined) >= 2 else NAN
