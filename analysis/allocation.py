"""The Allocation family's analysis: shares of units, true incidents and found incidents per group, and the gap
between allocation and incidents (runaway feedback, Ensign et al. 2018), as its profile names them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fairgym.analysis.plots import bars_figure, per_group, trajectory_figure
from fairgym.analysis.trajectories import ALL, NAN, Trajectories, flatten, ratio
from fairgym.analysis.turn_counts import (
    Series,
    TurnTables,
    count_trajectories,
    group_columns,
    n_turns,
    rate,
    row_max,
    turn_columns,
)

KINDS = ("allocation", "incidents", "found")  # outcome fields ``group_<kind>``: units, true and found incidents

FIGURE_NOTES: dict[str, str] = {
    "allocation_vs_incidents": "Each group's share of units allocated, of true incidents and of incidents found. "
                               "Found share far from incident share with allocation tracking it is runaway "
                               "feedback: units go where incidents were found, so incidents are found there.",
    "allocation_gap": "Allocation share minus true-incident share per group: above 0 the group gets more units "
                      "than its incidents warrant, below 0 fewer.",
}


def allocation_shares(frame: pd.DataFrame, groups: list[str]) -> dict[str, dict[str, float]]:
    """Each group's share of the units allocated, of the true incidents and of the incidents found, summed
    over the given steps; the gap (allocation share - incident share) per group and its largest absolute value.
    A share is ``nan`` when nothing of its kind happened (no units, or no incidents, in these steps)."""
    sums = {kind: dict.fromkeys(groups, 0.0) for kind in ("allocation", "incidents", "found")}
    for outcome in frame["outcome"]:
        for kind, by_group in sums.items():
            for g, value in ((outcome or {}).get(f"group_{kind}") or {}).items():
                by_group[g] = by_group.get(g, 0.0) + float(value)
    shares = {kind: {g: ratio(v, sum(by_group.values())) for g, v in by_group.items() if g in groups}
              for kind, by_group in sums.items()}
    gap = {g: shares["allocation"][g] - shares["incidents"][g] for g in groups}
    return {
        "fairness/allocation_share": shares["allocation"],
        "fairness/incident_share": shares["incidents"],
        "fairness/found_share": shares["found"],
        "fairness/allocation_gap": gap,
        "fairness/allocation_gap_max": {ALL: max((abs(v) for v in gap.values() if not math.isnan(v)), default=NAN)},
    }


def metrics(episodes: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str]) -> dict[str, float]:
    """Cumulative shares and gaps, and ``task/found_rate``: incidents found over true incidents."""
    out = flatten(allocation_shares(frame, groups))
    outcomes = [o for o in frame["outcome"] if isinstance(o, dict)]
    found = sum(sum((o.get("group_found") or {}).values()) for o in outcomes)
    incidents = sum(sum((o.get("group_incidents") or {}).values()) for o in outcomes)
    out["task/found_rate"] = ratio(found, incidents)
    return out


def allocation_turn_tables(frame: pd.DataFrame, groups: list[str]) -> TurnTables:
    """Per turn, for each kind (units, true incidents, found incidents): each group's sum, then the sum over every
    group an outcome names (the total a share divides by)."""
    rows = {kind: np.zeros((len(frame), len(groups) + 1)) for kind in KINDS}
    column = {g: i for i, g in enumerate(groups)}
    for i, outcome in enumerate(frame["outcome"]):
        for kind, table in rows.items():
            for g, value in ((outcome or {}).get(f"group_{kind}") or {}).items():
                if g in column:
                    table[i, column[g]] += float(value)
                table[i, -1] += float(value)
    turns = frame["turn"].to_numpy()
    return {kind: turn_columns(turns, table, n_turns(frame)) for kind, table in rows.items()}


def allocation_count_shares(tables: TurnTables, groups: list[str]) -> Series:
    """:func:`allocation_shares` from the sums of :func:`allocation_turn_tables`, for every row at once."""
    shares = {kind: rate(t[:, :-1], t[:, -1:]) for kind, t in tables.items()}
    gap = shares["allocation"] - shares["incidents"]
    return {
        "fairness/allocation_share": group_columns(shares["allocation"], groups, overall=False),
        "fairness/incident_share": group_columns(shares["incidents"], groups, overall=False),
        "fairness/found_share": group_columns(shares["found"], groups, overall=False),
        "fairness/allocation_gap": group_columns(gap, groups, overall=False),
        "fairness/allocation_gap_max": {ALL: row_max(np.abs(gap))},
    }


def trajectories(episodes: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str]) -> Trajectories:
    """Per-step and cumulative shares and gaps over the turn index (from sums per turn and group)."""
    return count_trajectories(allocation_turn_tables(frame, groups), groups, allocation_count_shares)


# ---- figures ----------------------------------------------------------------------------------------------
def figures(metrics: dict[str, float], traj: Trajectories) -> dict[str, Figure]:
    shares = {"allocation share": per_group(metrics, "fairness/allocation_share"),
              "incident share": per_group(metrics, "fairness/incident_share"),
              "found share": per_group(metrics, "fairness/found_share")}
    return {
        "allocation_vs_incidents": bars_figure(shares, title="Units allocated vs true and found incidents",
                                               ylabel="share of the run's total"),
        "allocation_gap": trajectory_figure(traj, "fairness/allocation_gap", ylabel="allocation - incident share",
                                            title="Over- (+) and under-allocation (-) per group"),
    }
