"""Intervals over episodes for per-turn curves: the band a run report draws around each group's line.

A per-turn value (turn t across episodes) rests on one step per episode that reached turn t with that group, so
its uncertainty is an interval over those episodes: a Wilson interval for a rate (each episode's value is 0 or 1),
a Student-t interval for a mean score. :func:`turn_bands` computes both bounds per group and turn from a table
of per-step values; each family says which of its series get a band (its profile's ``bands``), and the bands
travel beside the trajectories under ``<metric>`` + ``BAND_LOW`` / ``BAND_HIGH`` (``fairgym.analysis.plots``
draws them; W&B logs the trajectories without them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairgym.analysis.stats import seed_ci
from fairgym.analysis.trajectories import ALL, BAND_HIGH, BAND_LOW, NAN, Trajectories

CONFIDENCE = 0.95


def _interval(values: np.ndarray, proportion: bool) -> tuple[float, float]:
    """The interval of the mean of ``values`` (one per episode): Wilson for 0/1 values, else Student t."""
    if len(values) == 0:
        return NAN, NAN
    if proportion and np.isin(values, (0.0, 1.0)).all():
        from scipy.stats import binomtest

        ci = binomtest(int(values.sum()), len(values)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
        return float(ci.low), float(ci.high)
    ci = seed_ci(values.tolist(), CONFIDENCE)
    return ci["low"], ci["high"]


def turn_bands(steps: pd.DataFrame, groups: list[str], n_turns: int, metric: str, *, proportion: bool,
               overall: bool = True) -> Trajectories:
    """The band of ``metric`` per group (and over all groups when ``overall``) at each turn.

    Args:
        steps: one row per step with a value: columns ``episode``, ``turn``, ``group``, ``value``.
        groups: the groups to draw.
        n_turns: turns of the run (every series gets one value per turn; ``nan`` where no episode has a value).
        metric: the trajectory's name; the bands are ``metric + BAND_LOW`` and ``metric + BAND_HIGH``.
        proportion: the values are 0/1 (a rate): Wilson intervals; else Student-t intervals of the mean.
        overall: add the all-groups band.

    Returns:
        ``{metric + BAND_LOW: {group: [per turn]}, metric + BAND_HIGH: {...}}``.
    """
    low: dict[str, list[float]] = {}
    high: dict[str, list[float]] = {}
    parts = {g: steps[steps["group"] == g] for g in groups}
    if overall:
        parts[ALL] = steps
    for group, part in parts.items():
        low[group], high[group] = [NAN] * n_turns, [NAN] * n_turns
        for turn, at_turn in part.groupby("turn"):
            if not 0 <= int(turn) < n_turns:
                continue
            per_episode = at_turn.groupby("episode")["value"].mean().to_numpy(dtype=float)
            low[group][int(turn)], high[group][int(turn)] = _interval(per_episode, proportion)
    return {metric + BAND_LOW: low, metric + BAND_HIGH: high}
