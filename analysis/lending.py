"""The Lending family's analysis: its metrics, trajectories and figures, as its profile names them.

Metrics are pure functions of recorded episodes (``fairgym.envs.records``): decisions with ``y_true`` = would repay
and ``y_pred`` = approved, per-group rates through fairlearn's metric functions, and the delayed impact of the
decisions on each group's credit scores (the drift since reset). Undefined is ``nan``, never 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fairgym.analysis.bands import turn_bands
from fairgym.analysis.plots import RATE, gaps_figure, trajectory_figure
from fairgym.analysis.trajectories import (
    ALL,
    NAN,
    Trajectories,
    flatten,
    pad_turns,
    spread,
)
from fairgym.analysis.turn_counts import (
    Series,
    TurnTables,
    count_trajectories,
    group_codes,
    group_columns,
    n_turns,
    rate,
    row_spread,
    turn_table,
)
from fairgym.envs.records import START

FIGURE_NOTES: dict[str, str] = {
    "selection_rate": "Share of applicants approved, per group. Left: the decisions taken at turn t across "
                      "episodes; right: all decisions up to turn t. Lines that part over turns are a bias that "
                      "builds up; the dashed line is all groups together.",
    "true_positive_rate": "Share approved among applicants who would have repaid (equal opportunity). A group "
                          "whose line sits lower is denied credit it would have repaid. Gaps in a line are turns "
                          "where that group had no such applicant (undefined, not zero).",
    "parity_gaps": "Demographic parity difference (max - min approval rate over groups) and equal opportunity "
                   "difference (max - min true-positive rate). 0 is parity; dotted is per step, solid cumulative.",
    "credit_drift": "Change of each group's mean credit score since reset, before the first decision: today's "
                    "approvals move tomorrow's applicants (repayment raises a group's scores, default lowers them).",
    "repay_probability_drift": "Change of each group's mean repayment probability since reset. Groups moving "
                               "apart is a widening gap in creditworthiness, whatever the approval rates say.",
}


def lending_decisions(frame: pd.DataFrame) -> pd.DataFrame:
    """Steps where a decision was taken (outcome holds ``approved``), with ``y_true`` = would_repay and
    ``y_pred`` = approved as 0/1 ints. Invalid steps under "penalize" (outcome None) took no decision; under
    "default" the env's default decision was applied and counts like any other."""
    taken = frame[frame["outcome"].map(lambda o: isinstance(o, dict) and "approved" in o)].copy()
    taken["y_pred"] = taken["outcome"].map(lambda o: int(bool(o["approved"])))
    taken["y_true"] = taken["outcome"].map(lambda o: int(bool(o["would_repay"])))
    return taken


def _rate_given(label: int, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """fairlearn's TPR (label 1) or FPR (label 0); ``nan`` when no row carries ``label`` (fairlearn gives 0)."""
    from fairlearn.metrics import false_positive_rate, true_positive_rate

    if not (np.asarray(y_true) == label).any():
        return NAN
    rate = true_positive_rate if label == 1 else false_positive_rate
    return float(rate(y_true, y_pred, pos_label=1))


def lending_rates(decisions: pd.DataFrame, groups: list[str]) -> dict[str, dict[str, float]]:
    """Per-group selection rate, TPR and FPR (fairlearn's metric functions on each group's decisions, as
    ``MetricFrame.by_group`` computes them) and the between-group differences.

    ``demographic_parity_difference`` is max - min selection rate, ``equal_opportunity_difference`` max - min
    TPR, ``equalized_odds_difference`` the larger of the TPR and FPR spreads (fairlearn's definitions), each over
    the groups where the rate is defined; ``nan`` with fewer than two such groups. (``MetricFrame`` itself
    ``np.stack``s its inputs element by element, seconds for a 20,000-step run.)
    """
    from fairlearn.metrics import selection_rate

    y_true, y_pred = decisions["y_true"].to_numpy(), decisions["y_pred"].to_numpy()
    by_group = decisions["group"].astype(str).to_numpy()
    table = pd.DataFrame(NAN, index=groups, columns=["sr", "tpr", "fpr"])
    for g in groups:
        mask = by_group == g
        if mask.any():
            t, p = y_true[mask], y_pred[mask]
            table.loc[g] = [float(selection_rate(t, p)), _rate_given(1, t, p), _rate_given(0, t, p)]
    sr, tpr, fpr = (table[c].tolist() for c in ("sr", "tpr", "fpr"))
    overall = {"sr": float(decisions["y_pred"].mean()) if len(decisions) else NAN,
               "tpr": _rate_given(1, decisions["y_true"], decisions["y_pred"]) if len(decisions) else NAN}
    eo, fpr_gap = spread(tpr), spread(fpr)
    return {
        "fairness/selection_rate": {**dict(zip(groups, sr, strict=True)), ALL: overall["sr"]},
        "fairness/true_positive_rate": {**dict(zip(groups, tpr, strict=True)), ALL: overall["tpr"]},
        "fairness/demographic_parity_difference": {ALL: spread(sr)},
        "fairness/equal_opportunity_difference": {ALL: eo},
        "fairness/equalized_odds_difference": {ALL: NAN if math.isnan(eo) or math.isnan(fpr_gap) else max(eo, fpr_gap)},
    }


def lending_turn_tables(decisions: pd.DataFrame, groups: list[str]) -> TurnTables:
    """Per turn and group (then all decisions): decisions, approvals, applicants who would repay and who would
    not, and the approvals among each (the counts behind :func:`lending_rates`, turn by turn)."""
    y_true, y_pred = decisions["y_true"].to_numpy(), decisions["y_pred"].to_numpy()
    columns = {"decisions": np.ones(len(decisions)), "approved": y_pred, "repay": y_true,
               "approved_repay": y_pred * y_true, "default": 1 - y_true, "approved_default": y_pred * (1 - y_true)}
    turns, codes = decisions["turn"].to_numpy(), group_codes(decisions["group"].astype(str), groups)
    return {name: turn_table(turns, codes, values, n_turns(decisions), len(groups)) for name, values in columns.items()}


def lending_count_rates(tables: TurnTables, groups: list[str]) -> Series:
    """:func:`lending_rates` from counts: the same keys, definitions and ``nan`` for every row of the tables."""
    sr = rate(tables["approved"], tables["decisions"])
    tpr = rate(tables["approved_repay"], tables["repay"])
    fpr = rate(tables["approved_default"], tables["default"])
    eo = row_spread(tpr[:, :-1])
    return {
        "fairness/selection_rate": group_columns(sr, groups),
        "fairness/true_positive_rate": group_columns(tpr, groups),
        "fairness/demographic_parity_difference": {ALL: row_spread(sr[:, :-1])},
        "fairness/equal_opportunity_difference": {ALL: eo},
        "fairness/equalized_odds_difference": {ALL: np.maximum(eo, row_spread(fpr[:, :-1]))},  # nan if either is
    }


def rate_trajectories(decisions: pd.DataFrame, groups: list[str]) -> Trajectories:
    """Per-step and cumulative :func:`lending_rates` over turns 0 .. the last decision (none without decisions)."""
    return count_trajectories(lending_turn_tables(decisions, groups), groups, lending_count_rates)


def start_means(episodes: list[dict[str, Any]], key: str = "group_mean_score") -> dict[int, dict[str, float]]:
    """Each episode's group means at reset (its ``start`` record), by episode index; episodes recorded without
    one (before fairgym recorded the reset state) are left out, so their drift is ``nan``."""
    out = {}
    for ep in episodes:
        start = (ep.get(START) or {}).get(key)
        if start:
            out[int(ep.get("index", 0))] = {g: float(v) for g, v in start.items()}
    return out


def credit_drift(frame: pd.DataFrame, groups: list[str], starts: dict[int, dict[str, float]],
                 key: str = "group_mean_score", *, decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean over episodes of each group's mean (``key``: credit score, or repayment probability) after turn t
    minus at reset, before the first decision (``starts``, from :func:`start_means`).

    Within an episode a turn without a decision (an invalid step) carries the last value forward (the reset
    value before the first decision). Returns a turn x group frame; a turn no episode reached is ``nan``.
    ``decisions``: ``lending_decisions(frame)`` when the caller has it already (it costs more than the drift).
    """
    decisions = lending_decisions(frame) if decisions is None else decisions
    n_turns = int(frame["turn"].max()) + 1 if len(frame) else 0
    last_turns = frame.groupby("episode")["turn"].max()
    by_episode = dict(tuple(decisions.groupby("episode")))
    per_episode = []
    for episode, last_turn in last_turns.items():
        if episode not in starts:
            continue
        rows = by_episode.get(episode)
        start = pd.Series(starts[episode]).reindex(groups).astype(float)
        means = pd.DataFrame([start.to_dict()], index=[-1])
        if rows is not None:
            values = list(rows["outcome"].map(lambda o: o.get(key) or {}))
            means = pd.concat([means, pd.DataFrame(values, index=rows["turn"].to_numpy()).reindex(columns=groups)])
        series = (means.astype(float) - start).sort_index().reindex(range(-1, int(last_turn) + 1)).ffill()
        per_episode.append(series.drop(index=-1))
    if not per_episode:
        return pd.DataFrame(NAN, index=range(n_turns), columns=groups)
    return pd.concat(per_episode).groupby(level=0).mean().reindex(range(n_turns))


def metrics(episodes: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str]) -> dict[str, float]:
    """Cumulative rates and differences, decisions and approvals per group, the drift per group of the mean
    credit score and of the mean repayment probability (end minus reset, averaged over episodes), the change of
    the repayment-probability gap between groups, and ``task/profit``: the mean over episodes of the reward
    summed over decisions."""
    decisions = lending_decisions(frame)
    out = flatten(lending_rates(decisions, groups))
    out.update({f"task/decisions/{g}": float((decisions["group"] == g).sum()) for g in groups})
    out.update({f"task/approvals/{g}": float(decisions.loc[decisions["group"] == g, "y_pred"].sum()) for g in groups})
    for metric, key in (("credit_drift", "group_mean_score"), ("repay_probability_drift", "group_repay_probability")):
        changes = _episode_changes(episodes, decisions, groups, key)
        out.update({f"fairness/{metric}/{g}": _mean_defined([c[g] for c in changes]) for g in groups})
    out["fairness/repay_probability_gap_change"] = _mean_defined(
        _gap_changes(episodes, decisions, groups, "group_repay_probability"))
    profit = decisions.groupby("episode")["reward"].sum().reindex([ep.get("index", 0) for ep in episodes])
    out["task/profit"] = float(profit.fillna(0.0).mean()) if len(episodes) else NAN
    return out


def _mean_defined(values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else NAN


def _start_and_end(episodes: list[dict[str, Any]], decisions: pd.DataFrame, key: str
                   ) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Per episode with a recorded start: its group means (``key``) at reset and after its last decision (the
    reset values when it took none)."""
    starts = start_means(episodes, key)
    last = decisions.sort_values("turn").groupby("episode")["outcome"].last()
    pairs = []
    for index, start in starts.items():
        end = last[index].get(key) if index in last.index else None
        pairs.append((start, {g: float(v) for g, v in (end or start).items()}))
    return pairs


def _episode_changes(episodes, decisions, groups, key) -> list[dict[str, float]]:
    """Per episode: each group's mean (``key``) after the last decision minus at reset."""
    return [{g: end.get(g, NAN) - start.get(g, NAN) for g in groups}
            for start, end in _start_and_end(episodes, decisions, key)]


def _gap_changes(episodes, decisions, groups, key) -> list[float]:
    """Per episode: the spread (max - min over groups) of the group means (``key``) at the end minus at reset."""
    return [spread([end.get(g, NAN) for g in groups]) - spread([start.get(g, NAN) for g in groups])
            for start, end in _start_and_end(episodes, decisions, key)]


def trajectories(episodes: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str]) -> Trajectories:
    """Per-step and cumulative rates and differences, and the drift per group (since reset) of the mean credit
    score and of the mean repayment probability, over the turn index."""
    decisions = lending_decisions(frame)
    out = rate_trajectories(decisions, groups)
    for metric, key in (("credit_drift", "group_mean_score"), ("repay_probability_drift", "group_repay_probability")):
        drift = credit_drift(frame, groups, start_means(episodes, key), key, decisions=decisions)
        out[f"fairness/{metric}"] = {g: [float(v) for v in drift[g]] for g in groups}
    return pad_turns(out, frame)


def bands(episodes: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str]) -> Trajectories:
    """Wilson intervals over episodes of the per-turn approval rate and true-positive rate (one decision per
    episode and turn), per group and overall."""
    decisions = lending_decisions(frame)
    n_turns = int(frame["turn"].max()) + 1 if len(frame) else 0
    steps = decisions.assign(value=decisions["y_pred"].astype(float))
    return {**turn_bands(steps, groups, n_turns, "fairness/selection_rate", proportion=True),
            **turn_bands(steps[steps["y_true"] == 1], groups, n_turns, "fairness/true_positive_rate",
                         proportion=True)}


# ---- figures ----------------------------------------------------------------------------------------------
def figures(metrics: dict[str, float], traj: Trajectories) -> dict[str, Figure]:
    return {
        "selection_rate": trajectory_figure(traj, "fairness/selection_rate", title="Approval rate per group",
                                            ylabel="selection rate", ylim=RATE),
        "true_positive_rate": trajectory_figure(traj, "fairness/true_positive_rate", ylabel="true-positive rate",
                                                title="Approval rate among applicants who would repay", ylim=RATE),
        "parity_gaps": gaps_figure(traj, ["fairness/demographic_parity_difference",
                                          "fairness/equal_opportunity_difference"],
                                   title="Between-group gaps (max - min over groups)", ylabel="difference"),
        "credit_drift": trajectory_figure(traj, "fairness/credit_drift", ylabel="mean score change",
                                          title="Group mean credit score since reset"),
        "repay_probability_drift": trajectory_figure(traj, "fairness/repay_probability_drift",
                                                     ylabel="mean P(repay) change",
                                                     title="Group mean repayment probability since reset"),
    }


# ---- the sweep report's compounding series ------------------------------------------------------------------
def cumulative_gap(traj: Trajectories) -> list[float]:
    """The cumulative demographic-parity difference over turns (decisions up to each turn)."""
    return list(traj.get("fairness/demographic_parity_difference_cumulative", {}).get(ALL, []))


def credit_gap_change(traj: Trajectories) -> list[float]:
    """How the gap in mean credit score between the last and the first group moved over turns (positive: the
    groups drift apart), from the per-group credit drift."""
    drift = traj.get("fairness/credit_drift", {})
    groups = [g for g in drift if g != ALL]
    if len(groups) < 2:
        return []
    return (np.asarray(drift[groups[-1]], float) - np.asarray(drift[groups[0]], float)).tolist()


COMPOUNDING = {"cumulative DP difference": cumulative_gap,
               "credit-score gap change (last - first group)": credit_gap_change}
