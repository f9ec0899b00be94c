"""Per-turn trajectories from counts: one pass over the step table instead of a group statistic per turn.

Every per-turn number of a family is a ratio of sums (approvals over decisions, invalid steps over steps, the sum
of toxicity over scored replies), a maximum, or a difference of such ratios. :func:`turn_table` adds per-step
values up into a *turn table*: one row per turn, one column per group and a last column for all steps. The
cumulative-up-to-t table is its running sum over turns (a running maximum for maxima), so a family's ``SumStat``
applied to both tables gives the per-step and the cumulative trajectories (:func:`count_trajectories`), in the
layout of ``fairgym.analysis.trajectories.per_turn``: the same keys, and ``nan`` where a turn's steps leave a value
undefined (a group with no decision at that turn). A 20,000-turn run then costs a few array passes instead of
40,000 calls of a group statistic over a filtered table.

``fairgym.analysis.trajectories.per_turn`` stays as the general path (any group statistic, turn by turn); the
tests hold each family's counts against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairgym.analysis.trajectories import ALL, CUMULATIVE, NAN, Trajectories

TurnTables = dict[str, np.ndarray]  # name -> (n_turns, n_groups + 1): per group, then all steps
Series = dict[str, dict[str, np.ndarray]]  # metric -> group -> one value per turn
SumStat = Callable[[TurnTables, list[str]], Series]


def n_turns(frame: pd.DataFrame) -> int:
    """Turns 0 .. the last recorded one: the length of every per-turn series of ``frame``."""
    return int(frame["turn"].max()) + 1 if len(frame) else 0


def group_codes(values: Sequence[Any] | pd.Series, groups: list[str]) -> np.ndarray:
    """Each value's position in ``groups`` (compared with ``==`` as the group statistics do), ``-1`` for a value
    that is no group in ``groups`` (``None``: a step posed to no single group)."""
    return pd.Index(groups, dtype=object).get_indexer(pd.Series(values, dtype=object)).astype(np.int64)


def turn_table(turns: np.ndarray, codes: np.ndarray, values: np.ndarray, n_turns: int, n_groups: int) -> np.ndarray:
    """Sum of ``values`` per turn and group: ``(n_turns, n_groups + 1)``, the last column over all rows (also those
    whose code is ``-1``). Counts (sums of whole numbers) are exact, so the rates equal those of the group
    statistics bit for bit; sums of fractions may differ from a numpy mean in the last bits."""
    turns, codes = np.asarray(turns, np.int64), np.asarray(codes, np.int64)
    values = np.asarray(values, float)
    cells = n_turns * (n_groups + 1)
    mine = codes >= 0
    by_group = np.bincount(turns[mine] * (n_groups + 1) + codes[mine], weights=values[mine], minlength=cells)
    table = by_group.reshape(n_turns, n_groups + 1)
    table[:, -1] = np.bincount(turns, weights=values, minlength=n_turns)
    return table


def turn_columns(turns: np.ndarray, columns: np.ndarray, n_turns: int) -> np.ndarray:
    """Sum of each column of ``columns`` (``(rows, k)``) per turn: ``(n_turns, k)``, rows added in their order."""
    turns, columns = np.asarray(turns, np.int64), np.asarray(columns, float).reshape(len(turns), -1)
    return np.stack([np.bincount(turns, weights=columns[:, j], minlength=n_turns) for j in range(columns.shape[1])],
                    axis=1) if columns.shape[1] else np.zeros((n_turns, 0))


def turn_maximum(turns: np.ndarray, codes: np.ndarray, values: np.ndarray, n_turns: int, n_groups: int) -> np.ndarray:
    """Maximum of ``values`` per turn and group (layout of :func:`turn_table`); ``nan`` where a cell has no row."""
    turns, codes = np.asarray(turns, np.int64), np.asarray(codes, np.int64)
    values = np.asarray(values, float)
    table = np.full((n_turns, n_groups + 1), NAN)
    mine = codes >= 0
    np.fmax.at(table, (turns[mine], codes[mine]), values[mine])  # fmax: nan (no row yet) gives way to a value
    np.fmax.at(table, (turns, np.full(len(turns), n_groups)), values)
    return table


def accumulate(tables: TurnTables, maxima: Sequence[str] = ()) -> TurnTables:
    """The cumulative-up-to-t tables: running sums over turns, running maxima for the tables named in ``maxima``."""
    return {name: np.fmax.accumulate(t, axis=0) if name in maxima else np.cumsum(t, axis=0)
            for name, t in tables.items()}


def rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` cell by cell, ``nan`` where the denominator is 0 (undefined, not 0)."""
    numerator, denominator = np.broadcast_arrays(np.asarray(numerator, float), np.asarray(denominator, float))
    out = np.full(numerator.shape, NAN)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def row_spread(table: np.ndarray) -> np.ndarray:
    """``max - min`` over each row's defined values; ``nan`` where fewer than two are defined (as ``spread``)."""
    table = np.asarray(table, float)
    if table.shape[1] == 0:
        return np.full(len(table), NAN)
    defined = (~np.isnan(table)).sum(axis=1)
    gap = np.fmax.reduce(table, axis=1) - np.fmin.reduce(table, axis=1)
    return np.where(defined >= 2, gap, NAN)


def row_max(table: np.ndarray) -> np.ndarray:
    """Each row's largest defined value; ``nan`` where none is defined."""
    table = np.asarray(table, float)
    return np.fmax.reduce(table, axis=1) if table.shape[1] else np.full(len(table), NAN)


def group_columns(table: np.ndarray, groups: list[str], *, overall: bool = True) -> dict[str, np.ndarray]:
    """A turn table's columns by name: each group, then (``overall``) the all-steps column as :data:`ALL`."""
    columns = {g: table[:, i] for i, g in enumerate(groups)}
    if overall:
        columns[ALL] = table[:, -1]
    return columns


def count_trajectories(tables: TurnTables, groups: list[str], stat: SumStat, *,
                       maxima: Sequence[str] = ()) -> Trajectories:
    """``stat`` over each turn's table (per step) and over the running totals (cumulative, names with the
    :data:`CUMULATIVE` suffix), as metric -> group -> list; per-step metrics first, as ``both_trajectories``."""
    if not any(len(t) for t in tables.values()):
        return {}  # no turn: no series (as ``per_turn``)
    per_step = stat(tables, groups)
    cumulative = stat(accumulate(tables, maxima), groups)
    out: Trajectories = {}
    for suffix, series in (("", per_step), (CUMULATIVE, cumulative)):
        for metric, columns in series.items():
            out[metric + suffix] = {g: np.asarray(values, float).tolist() for g, values in columns.items()}
    return out
