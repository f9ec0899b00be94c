"""The counts-based trajectories equal the per-turn computation they replaced, value for value.

The reference is the trajectory code as it was before the counts: each family's group statistic applied to the
steps of every turn and of every turn <= t (``per_turn``). Both run on record sets made to hit the edges: groups
with no decision at some turns (and one never posed), invalid steps that take no decision and invalid steps that
apply the default, episodes of different lengths, an episode without a reset record, turns after the last
decision, steps posed to no group, and real env runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from record_builders import ALLOCATION, DIALOGUE, LENDING, dialogue_step, episode, judged_step, step

from fairgym.agents import make_agent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.allocation import allocation_shares
from fairgym.analysis.dialogue import _dialogue_stats, _judged
from fairgym.analysis.lending import credit_drift, lending_decisions, lending_rates, start_means
from fairgym.analysis.metrics import invalid_rates, trajectories
from fairgym.analysis.trajectories import (
    ALL,
    EPISODES_RUNNING,
    NAN,
    both_trajectories,
    pad_turns,
    run_groups,
    run_profile,
    spread,
    step_frame,
)
from fairgym.analysis.turn_counts import rate, row_spread, turn_maximum, turn_table

DRIFTS = (("credit_drift", "group_mean_score"), ("repay_probability_drift", "group_repay_probability"))


# ---- the reference: the per-turn computation ----------------------------------------------------------------
def reference_trajectories(episodes: list[dict]) -> dict:
    """``fairgym.analysis.metrics.trajectories`` as it was: every group statistic turn by turn (``per_turn``)."""
    frame, groups = step_frame(episodes), run_groups(episodes)
    out = dict(sorted(both_trajectories(frame, groups, invalid_rates).items()))
    lengths = frame.groupby("episode")["turn"].max().to_numpy() + 1
    n_turns = int(frame["turn"].max()) + 1 if len(frame) else 0
    out[EPISODES_RUNNING] = {ALL: [float(int((lengths > t).sum())) for t in range(n_turns)]}
    family = run_profile(episodes).family
    if family == "Lending":
        lending = both_trajectories(lending_decisions(frame), groups, lending_rates)
        for metric, key in DRIFTS:
            drift = credit_drift(frame, groups, start_means(episodes, key), key)
            lending[f"fairness/{metric}"] = {g: [float(v) for v in drift[g]] for g in groups}
        out.update(pad_turns(lending, frame))
    elif family == "Allocation":
        out.update(both_trajectories(frame, groups, allocation_shares))
    elif family == "Dialogue":
        judged = len(_judged(frame)) > 0
        out.update(both_trajectories(frame, groups, _dialogue_stats(judged, with_slope=False)))
    return out


def assert_same(new: dict, old: dict, *, inexact: tuple[str, ...] = ()) -> None:
    """Same metrics in the same order, same groups in the same order, the same values (nan where nan): bit for
    bit, except for the metrics named in ``inexact`` (to 1e-12 relative)."""
    assert list(new) == list(old)
    for metric, by_group in old.items():
        assert list(new[metric]) == list(by_group), metric
        rtol = 1e-12 if metric.startswith(inexact) else 0.0
        for group, values in by_group.items():
            np.testing.assert_allclose(new[metric][group], values, rtol=rtol, atol=0.0, equal_nan=True,
                                       err_msg=f"{metric} / {group}")


# ---- record sets ----------------------------------------------------------------------------------------------
def lending_records(seed: int) -> list[dict]:
    """Four episodes of 13, 6, 1 and 9 steps: group A often, B less, C seldom and D never; a fifth of the steps
    invalid, half of those taking no decision (``penalize``) and half the default one (``default``); means that
    move and sometimes leave a group out; one episode without a reset record; the longest ends in invalid steps."""
    rng = np.random.default_rng(seed)
    episodes = []
    for index, length in enumerate((13, 6, 1, 9)):
        means = {"A": 600.0, "B": 520.0, "C": 480.0}
        steps = []
        for t in range(length):
            group = str(rng.choice(["A", "B", "C"], p=[0.5, 0.35, 0.15]))
            invalid = rng.random() < 0.2 or (index == 0 and t >= length - 2)
            if invalid and (rng.random() < 0.5 or index == 0):
                steps.append(step(t, group, None, valid=False, reward=-1.0, action_text="???"))
                continue
            approved, would_repay = bool(rng.random() < 0.5), bool(rng.random() < 0.6)
            if approved:
                means[group] += 7.5 if would_repay else -15.0
            recorded = {g: v for g, v in means.items() if rng.random() > 0.15}  # sometimes a group is left out
            outcome = {"approved": approved, "would_repay": would_repay, "group_mean_score": recorded,
                       "group_repay_probability": {g: v / 1000 for g, v in recorded.items()}}
            steps.append(step(t, group, outcome, valid=not invalid, reward=float(approved)))
        start = None if index == 2 else {"group_mean_score": {"A": 600.0, "B": 520.0, "C": 480.0},
                                         "group_repay_probability": {"A": 0.6, "B": 0.52, "C": 0.48}}
        episodes.append(episode(LENDING, steps, index=index, groups=("A", "B", "C", "D"), start=start))
    return episodes


def allocation_records(seed: int) -> list[dict]:
    """Three episodes of 8, 3 and 5 steps: random units and incidents, turns where nothing happened (shares
    undefined), invalid steps (no outcome), and an outcome naming a group the run does not declare."""
    rng = np.random.default_rng(seed)
    episodes = []
    for index, length in enumerate((8, 3, 5)):
        steps = []
        for t in range(length):
            if rng.random() < 0.2:
                steps.append(step(t, None, None, valid=False, reward=-1.0, action_text="???"))
                continue
            counts = {kind: {g: int(rng.integers(0, 3)) for g in ("A", "B", "C")} for kind in ("a", "i", "f")}
            if t == 1:
                counts = {kind: dict.fromkeys(("A", "B", "C"), 0) for kind in counts}  # an empty turn
            if rng.random() < 0.2:
                counts["i"]["Z"] = 1  # counted in the total, no share of its own
            outcome = {"group_allocation": counts["a"], "group_incidents": counts["i"], "group_found": counts["f"]}
            steps.append(step(t, None, outcome))
        episodes.append(episode(ALLOCATION, steps, index=index, groups=("A", "B", "C")))
    return episodes


def dialogue_records(seed: int, *, judged: bool) -> list[dict]:
    """Five conversations of 2 to 7 turns with groups A, B, C (D declared, never met): random toxicity, unscored
    and invalid replies, and (``judged``) the judge's rubric scores on most replies."""
    rng = np.random.default_rng(seed)
    episodes = []
    for index, (group, length) in enumerate(zip("ABCAB", (7, 2, 4, 6, 3), strict=True)):
        steps = []
        for t in range(length):
            tox = float(rng.random() ** 2)
            if rng.random() < 0.15:
                steps.append(step(t, group, None, valid=False, reward=-1.0, action_text="???"))
            elif judged and rng.random() < 0.8:
                steps.append(judged_step(t, group, tox, float(rng.random()), float(rng.random())))
            elif rng.random() < 0.15:
                steps.append(step(t, group, {"reply": "unscored", "toxicity": None, "phase": "neutral"}))
            else:
                steps.append(dialogue_step(t, group, tox))
        episodes.append(episode(DIALOGUE, steps, index=index, groups=("A", "B", "C", "D")))
    return episodes


def generic_records() -> list[dict]:
    """An env fairgym does not know (generic metrics only): steps posed to a group, and later some to none."""
    rows = [[("A", True), ("B", False), (None, True), ("A", True)], [("B", True), (None, False), ("B", False)]]
    return [episode("other/Thing-v3", [step(t, g, {}, valid=v) for t, (g, v) in enumerate(r)], index=i)
            for i, r in enumerate(rows)]


class GarblingAgent:
    """Wraps an agent and replaces a share of its actions with text no env parses (seeded)."""

    def __init__(self, inner, share: float, seed: int):
        self.inner, self.share, self.rng = inner, share, np.random.default_rng(seed)
        self.name, self.stats = inner.name, inner.stats

    @property
    def last_details(self):
        return self.inner.last_details

    def calibrate(self, env):
        self.inner.calibrate(env)

    def reset(self, seed=None):
        self.inner.reset(seed)

    def act(self, observations, infos, decision_keys=None):
        actions = self.inner.act(observations, infos, decision_keys=decision_keys)
        return ["??? maybe" if self.rng.random() < self.share else a for a in actions]


def env_records(env_id: str, **env_kwargs) -> list[dict]:
    agent = GarblingAgent(make_agent("random"), share=0.25, seed=3)
    return run_episodes(env_id, agent, episodes=6, seed=11, env_kwargs=env_kwargs, num_envs=3, progress=False)


RECORD_SETS = {
    "lending": lambda: lending_records(0),
    "lending, other draws": lambda: lending_records(1),
    "lending, all invalid": lambda: [episode(LENDING, [step(t, "A", None, valid=False) for t in range(3)],
                                             start={"group_mean_score": {"A": 1.0, "B": 2.0}})],
    "lending env, invalid ends episodes": lambda: env_records(LENDING, max_steps=40, invalid_action="end"),
    "lending env, invalid applies default": lambda: env_records(LENDING, max_steps=30, invalid_action="default"),
    "allocation": lambda: allocation_records(0),
    "allocation env": lambda: env_records(ALLOCATION, max_steps=12, invalid_action="penalize"),
    "dialogue": lambda: dialogue_records(0, judged=False),
    "dialogue, judged": lambda: dialogue_records(1, judged=True),
    "generic": generic_records,
}


@pytest.mark.parametrize("name", list(RECORD_SETS))
def test_counts_equal_the_per_turn_computation(name):
    episodes = RECORD_SETS[name]()
    # a mean of floats summed per turn, then over turns, may differ from numpy's mean in the last bits
    assert_same(trajectories(episodes), reference_trajectories(episodes),
                inexact=("toxicity/mean", "toxicity/judge_mean", "bias/endorsement_mean"))


def test_record_sets_reach_the_edges():
    """The fixtures hold what the equality above must survive (else it could pass for lack of cases)."""
    lending = trajectories(lending_records(0))
    per_step_c = lending["fairness/selection_rate"]["C"]
    assert np.isnan(per_step_c).any() and not np.isnan(per_step_c).all()  # C decided at some turns only
    assert np.isnan(lending["fairness/selection_rate_cumulative"]["D"]).all()  # D never posed
    assert np.isnan(lending["fairness/selection_rate_cumulative"][ALL][-2:]).all()  # turns after the last decision
    assert lending[EPISODES_RUNNING][ALL][:2] == [4.0, 3.0]  # lengths differ
    assert 0 < lending["format/invalid_action_rate_cumulative"][ALL][-1] < 1
    assert not np.isnan(lending["fairness/credit_drift"]["A"]).any()
    ended = {len(ep["steps"]) for ep in RECORD_SETS["lending env, invalid ends episodes"]()}
    assert len(ended) > 1  # "end" cut episodes short at different turns
    assert "fairness/selection_rate" not in trajectories(RECORD_SETS["lending, all invalid"]())
    judged = trajectories(dialogue_records(1, judged=True))
    assert np.isnan(judged["bias/endorsement_rate"]["D"]).all() and "toxicity/max_cumulative" in judged


def test_counts_by_hand():
    turns, codes = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, -1, 0])
    table = turn_table(turns, codes, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3, 2)
    assert table.tolist() == [[1.0, 2.0, 3.0], [0.0, 3.0, 3.0], [5.0, 0.0, 9.0]]  # last column: every row
    maxima = turn_maximum(turns, codes, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3, 2)
    np.testing.assert_array_equal(maxima, [[1.0, 2.0, 2.0], [NAN, 3.0, 3.0], [5.0, NAN, 5.0]])
    np.testing.assert_array_equal(rate(np.array([1.0, 0.0, 2.0]), np.array([2.0, 0.0, 4.0])), [0.5, NAN, 0.5])
    rows = np.array([[0.2, NAN, 0.5], [NAN, NAN, 0.1], [NAN, NAN, NAN]])
    np.testing.assert_array_equal(row_spread(rows), [spread(list(r)) for r in rows])
