"""Run figures that read right: bars for episodes of one turn, groups without data out of the legend, rates on
0..1, integer turn ticks, and a band (interval over episodes) around per-turn lines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from record_builders import DIALOGUE, dialogue_step, episode, lending_episodes

from fairgym.analysis import dialogue, lending
from fairgym.analysis.metrics import compute_metrics, trajectories, trajectory_bands
from fairgym.analysis.plots import RATE, gaps_figure, trajectory_figure
from fairgym.analysis.trajectories import ALL

NAN = math.nan


def traj_of(series: dict[str, list[float]], metric: str = "toxicity/mean") -> dict:
    return {metric: series}


def legend_labels(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_one_turn_episodes_get_bars_not_a_one_point_line():
    fig = trajectory_figure(traj_of({"A": [0.3], "B": [0.35], "C": [NAN], ALL: [0.33]}), "toxicity/mean",
                            title="Reply toxicity", ylabel="mean", ylim=RATE)
    (ax,) = fig.axes
    assert len(ax.patches) == 3 and not ax.get_lines()[1:]  # A, B, all groups: C has no data
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["A", "B", ALL]
    assert ax.get_xticklabels()[0].get_text() == "A\n0.3"  # the value under its bar (no band given here)
    assert "one turn per episode" in ax.get_title()
    assert ax.get_ylim()[0] <= 0 and ax.get_ylim()[1] >= 1


def test_groups_without_data_are_left_out_of_the_legend():
    fig = trajectory_figure(traj_of({"A": [0.1, 0.2], "B": [NAN, NAN], ALL: [0.1, 0.2]}), "toxicity/mean",
                            title="t", ylabel="y")
    assert legend_labels(fig.axes[-1]) == ["A", ALL]


def test_rates_are_drawn_on_zero_to_one_and_turns_are_integers():
    traj = traj_of({"A": [0.01, 0.012, 0.011, 0.013, 0.01, 0.012], ALL: [0.01] * 6})
    fig = trajectory_figure(traj, "toxicity/mean", title="t", ylabel="y", ylim=RATE)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low <= 0 < 1 <= high  # 0.01 looks small
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_per_turn_lines_carry_their_interval_over_episodes():
    episodes = lending_episodes()
    traj = {**trajectories(episodes), **trajectory_bands(episodes)}
    assert "fairness/selection_rate_band_low" in traj
    fig = trajectory_figure(traj, "fairness/selection_rate", title="t", ylabel="y", ylim=RATE)
    assert any(isinstance(c, PolyCollection) for c in fig.axes[0].collections)
    assert not any(isinstance(c, PolyCollection) for c in fig.axes[1].collections)  # cumulative: no band


def test_lending_band_is_a_wilson_interval_of_the_turns_decisions():
    episodes = lending_episodes()  # turn 0: A approved (ep 0); B approved (ep 1)
    bands = trajectory_bands(episodes)
    low, high = bands["fairness/selection_rate_band_low"], bands["fairness/selection_rate_band_high"]
    assert low["A"][0] == pytest.approx(0.2065, abs=1e-3) and high["A"][0] == pytest.approx(1.0)  # Wilson 1/1
    assert low[ALL][0] == pytest.approx(0.3424, abs=1e-3)  # 2 of 2 approved
    tpr = bands["fairness/true_positive_rate_band_low"]
    assert math.isnan(tpr["A"][1])  # turn 1's A applicant would not repay: no true-positive rate, no band


def test_dialogue_band_is_a_t_interval_of_the_turns_replies():
    episodes = [episode(DIALOGUE, [dialogue_step(0, "A", tox)], index=i) for i, tox in enumerate((0.1, 0.2, 0.3))]
    bands = dialogue.bands(episodes, *_frame(episodes))
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert bands["toxicity/mean_band_low"]["A"][0] == pytest.approx(0.2 - half)
    assert bands["toxicity/mean_band_high"]["A"][0] == pytest.approx(0.2 + half)


def _frame(episodes):
    from fairgym.analysis.trajectories import run_groups, step_frame

    return step_frame(episodes), run_groups(episodes)


def test_gaps_of_one_turn_are_bars_and_gaps_start_at_zero():
    one = {"fairness/demographic_parity_difference": {ALL: [0.2]},
           "fairness/demographic_parity_difference_cumulative": {ALL: [0.2]}}
    fig = gaps_figure(one, ["fairness/demographic_parity_difference"], title="gaps", ylabel="d")
    assert fig.axes[0].patches and "one turn per episode" in fig.axes[0].get_title()
    many = {"fairness/demographic_parity_difference": {ALL: [0.2, 0.3, 0.25]}}
    assert gaps_figure(many, list(many), title="gaps", ylabel="d").axes[0].get_ylim()[0] == 0


def test_lending_figures_of_a_one_turn_run(tmp_path):
    episodes = [ep for ep in lending_episodes()]
    for ep in episodes:
        ep["steps"] = ep["steps"][:1]
    figures = lending.figures(compute_metrics(episodes), {**trajectories(episodes), **trajectory_bands(episodes)})
    ax = figures["selection_rate"].axes[0]
    assert len(figures["selection_rate"].axes) == 1 and len(ax.patches) == 3
    heights = np.array([p.get_height() for p in ax.patches])
    assert heights == pytest.approx([1.0, 1.0, 1.0])
