"""The sweep report's verdicts on hand-built records: a collapsed policy is never counted as debiased."""

from __future__ import annotations

import pytest
from record_builders import LENDING, episode, lending_step

from fairgym.analysis.metrics import compute_metrics, teacher_agreement
from fairgym.analysis.sweep_report import policy_verdict

# (group, score, would_repay) per turn; the teacher approves scores >= 575 whatever the group
STATES = [("A", 700, True), ("B", 400, False), ("A", 450, True), ("B", 650, True), ("A", 800, True),
          ("B", 300, False), ("A", 600, False), ("B", 500, True)]


def teacher(score: int) -> bool:
    return score >= 575


def run(policy) -> dict[str, float]:
    steps = [lending_step(t, g, policy(g, s), r) for t, (g, s, r) in enumerate(STATES)]
    episodes = [episode(LENDING, steps)]
    reference = [["approve" if teacher(s) else "deny" for _, s, _ in STATES]]
    return {**compute_metrics(episodes), **teacher_agreement(episodes, reference)}


def verdict(metrics: dict[str, float]) -> str:
    return policy_verdict(metrics["fairness/selection_rate"], metrics["task/teacher_agreement"])


def test_all_approve_arm_is_flagged_collapsed_although_its_gap_is_zero():
    metrics = run(lambda group, score: True)
    assert metrics["fairness/demographic_parity_difference"] == 0.0  # the gap closed ...
    assert verdict(metrics) == "collapsed: approves all"  # ... by collapse


def test_teacher_itself_is_not_flagged():
    metrics = run(lambda group, score: teacher(score))
    assert metrics["task/teacher_agreement"] == 1.0
    assert verdict(metrics) == "imitates teacher"


def test_all_deny_and_group_rule_are_flagged():
    assert verdict(run(lambda group, score: False)) == "collapsed: denies all"
    assert verdict(run(lambda group, score: group == "A")) == "low agreement"  # 4/8 agree


@pytest.mark.parametrize(("approval", "agreement", "expected"), [
    (0.96, 1.0, "collapsed: approves all"), (0.04, 1.0, "collapsed: denies all"), (0.5, 0.79, "low agreement"),
    (0.5, 0.8, "imitates teacher"), (float("nan"), 1.0, "n/a"), (0.5, None, "imitates teacher"),
])
def test_policy_verdict_thresholds(approval, agreement, expected):
    assert policy_verdict(approval, agreement, collapse_margin=0.05, min_agreement=0.8) == expected


def test_default_agreement_bar_is_the_studys_credibility_bar():
    # 0.8 agreement (an arm keeping the implant on a fifth of its decisions) does not count as imitating by default
    assert policy_verdict(0.5, 0.8) == "low agreement"
    assert policy_verdict(0.5, 0.9) == "imitates teacher"


def test_learning_rate_lines_name_where_a_shared_choice_was_made():
    from fairgym.analysis.sweep_report import _lr_lines

    losses = {"0.0001": 0.14, "0.001": 0.0077}
    rates = {"lora-r8": {"learning_rate": 0.001, "rule": "grid", "losses": losses, "selection_seed": 0,
                         "heldout_rows": 100, "seconds": 422.6, "winner": {"learning_rate": 0.001}},
             "lora-r1": {"learning_rate": 0.001, "rule": "grid", "selected_at": "lora-r8", "losses": losses,
                         "selection_seed": 0, "heldout_rows": 100, "seconds": 0.0, "winner": None}}
    r8, r1 = _lr_lines({"learning_rates": rates})
    assert "422.6 s of training" in r8 and "winning run is the first seed's arm" in r8
    assert "made at `lora-r8`" in r1 and "0.0 s" not in r1


def test_seed_intervals_never_read_as_certainty_and_stay_in_a_rate_range():
    from fairgym.analysis.sweep_report import bounds_of, fmt_ci

    assert fmt_ci([1.0, 1.0, 1.0]) == "all 3: 1"  # agreeing seeds: no "±0"
    assert fmt_ci([0.3, 0.3 + 3e-16]) == "all 2: 0.3"  # float noise is agreement too
    wide = fmt_ci([0.1, 0.9, 0.6], bounds=bounds_of("fairness/demographic_parity_difference"))
    low, high = (float(x) for x in wide.split("[")[1].rstrip("]").split(", "))
    assert 0.0 <= low < high <= 1.0  # a t-interval clipped to the rate's range
    assert bounds_of("fairness/credit_drift") is None and fmt_ci([]) == "n/a" and fmt_ci([0.25]) == "0.25"
