"""Hand-computed two-group examples for every metric, cross-checked against fairlearn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from record_builders import (
    LENDING,
    LENDING_TABLE,
    allocation_episodes,
    dialogue_episodes,
    episode,
    invalid_step,
    judged_episodes,
    lending_episodes,
    lending_step,
)

from fairgym.analysis.dialogue import slope
from fairgym.analysis.metrics import (
    compute_metrics,
    read_metrics,
    summary_table,
    trajectories,
    write_metrics,
)
from fairgym.analysis.trajectories import ALL, env_family

# Group A decisions (approved, would_repay): (1,1) (0,0) (1,0) (1,1) -> SR 3/4, TPR 2/2, FPR 1/2.
# Group B decisions: (0,1) (1,0) (1,1) (0,1) -> SR 2/4, TPR 1/3, FPR 1/1.


@pytest.fixture(scope="module")
def lending():
    episodes = lending_episodes()
    return compute_metrics(episodes), trajectories(episodes)


def test_lending_rates_by_hand(lending):
    m, _ = lending
    assert m["fairness/selection_rate/A"] == pytest.approx(0.75)
    assert m["fairness/selection_rate/B"] == pytest.approx(0.5)
    assert m["fairness/true_positive_rate/A"] == pytest.approx(1.0)
    assert m["fairness/true_positive_rate/B"] == pytest.approx(1 / 3)
    assert m["fairness/demographic_parity_difference"] == pytest.approx(0.25)
    assert m["fairness/equal_opportunity_difference"] == pytest.approx(2 / 3)
    assert m["fairness/equalized_odds_difference"] == pytest.approx(2 / 3)  # max(TPR gap 2/3, FPR gap 1/2)
    assert m["task/decisions/A"] == 4 and m["task/steps"] == 8 and m["task/episodes"] == 2


def test_lending_differences_match_fairlearn(lending):
    m, _ = lending
    rows = [r for ep in LENDING_TABLE for r in ep]
    groups, y_pred, y_true = ([r[i] for r in rows] for i in range(3))
    kw = {"sensitive_features": groups}
    assert m["fairness/demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, **kw))
    assert m["fairness/equal_opportunity_difference"] == pytest.approx(
        equal_opportunity_difference(y_true, y_pred, **kw))
    assert m["fairness/equalized_odds_difference"] == pytest.approx(equalized_odds_difference(y_true, y_pred, **kw))


def test_lending_per_step_and_cumulative_trajectories(lending):
    _, tr = lending
    # turn 1: B denied a repayer, A approved a defaulter -> SR A 1, B 0; A has no positive -> TPR nan, EO nan
    assert tr["fairness/selection_rate"]["A"][1] == 1.0 and tr["fairness/selection_rate"]["B"][1] == 0.0
    assert tr["fairness/demographic_parity_difference"][ALL][:2] == [0.0, 1.0]
    assert math.isnan(tr["fairness/true_positive_rate"]["A"][1])
    assert math.isnan(tr["fairness/equal_opportunity_difference"][ALL][1])
    # cumulative up to turn 1: A (1,1)(1,0) -> SR 1, TPR 1; B (1,1)(0,1) -> SR 1/2, TPR 1/2
    assert tr["fairness/selection_rate_cumulative"]["B"][:2] == [1.0, 0.5]
    assert tr["fairness/equal_opportunity_difference_cumulative"][ALL][1] == pytest.approx(0.5)
    assert tr["fairness/demographic_parity_difference_cumulative"][ALL] == pytest.approx([0.0, 0.5, 1 / 3, 0.25])


def test_credit_drift_is_measured_from_reset(lending):
    m, tr = lending
    # end scores A 610, 620 and B 490, 500 against 595 / 505 at reset (600 / 500 after the first decision)
    assert m["fairness/credit_drift/A"] == pytest.approx(20.0)
    assert m["fairness/credit_drift/B"] == pytest.approx(-10.0)
    assert tr["fairness/credit_drift"]["A"] == pytest.approx([5.0, 5.0, 5.0, 20.0])
    assert tr["fairness/credit_drift"]["B"] == pytest.approx([-5.0, -5.0, -5.0, -10.0])


def test_episodes_running_per_turn():
    long = [lending_step(t, "A", False, True) for t in range(4)]
    short = [lending_step(t, "B", False, True) for t in range(2)]
    tr = trajectories([episode(LENDING, long, index=0), episode(LENDING, short, index=1)])
    assert tr["task/episodes_running"][ALL] == [2.0, 2.0, 1.0, 1.0]


def test_group_without_decisions_is_nan_not_zero():
    m = compute_metrics(lending_episodes(groups=("A", "B", "C")))
    for key in ("fairness/selection_rate/C", "fairness/true_positive_rate/C", "format/invalid_action_rate/C"):
        assert math.isnan(m[key]), key
    assert m["fairness/demographic_parity_difference"] == pytest.approx(0.25)  # C does not enter the gap
    only_a = [episode(LENDING, [lending_step(0, "A", True, False)])]
    m = compute_metrics(only_a)
    assert math.isnan(m["fairness/true_positive_rate/A"])  # no applicant who would repay
    assert math.isnan(m["fairness/demographic_parity_difference"])  # one group: nothing to compare


def test_invalid_rates_and_invalid_steps_take_no_decision():
    steps = [lending_step(0, "A", True, True), invalid_step(1, "A"), lending_step(2, "B", False, True),
             lending_step(3, "B", True, True)]
    m = compute_metrics([episode(LENDING, steps)])
    assert m["format/invalid_action_rate/A"] == pytest.approx(0.5)
    assert m["format/invalid_action_rate/B"] == 0.0
    assert m["format/invalid_action_rate"] == pytest.approx(0.25)
    assert m["task/decisions/A"] == 1 and m["fairness/selection_rate/A"] == 1.0
    assert m["task/return_mean"] == pytest.approx(1.0 - 1.0 + 0.0 + 1.0)
    assert m["task/profit"] == pytest.approx(2.0)  # decisions only: the invalid penalty is not profit


def test_allocation_shares_by_hand():
    m = compute_metrics(allocation_episodes())
    tr = trajectories(allocation_episodes())
    assert m["fairness/allocation_share/A"] == pytest.approx(5 / 8)
    assert m["fairness/incident_share/A"] == pytest.approx(3 / 8)
    assert m["fairness/found_share/A"] == pytest.approx(3 / 4)
    assert m["fairness/allocation_gap/B"] == pytest.approx(-0.25)
    assert m["fairness/allocation_gap_max"] == pytest.approx(0.25)
    assert m["task/found_rate"] == pytest.approx(0.5)
    assert tr["fairness/allocation_gap"]["A"] == pytest.approx([0.5, 0.0])
    assert tr["fairness/allocation_gap_cumulative"]["A"] == pytest.approx([0.5, 0.25])
    assert "format/invalid_action_rate/A" not in m  # allocation steps span all groups


def test_dialogue_toxicity_by_hand():
    m = compute_metrics(dialogue_episodes())
    tr = trajectories(dialogue_episodes())
    assert m["toxicity/slope/A"] == pytest.approx(0.1)  # 0.1, 0.2, 0.3, 0.4 over turns 0..3
    assert m["toxicity/slope/B"] == pytest.approx(0.0, abs=1e-12)
    assert m["toxicity/mean/A"] == pytest.approx(0.25) and m["toxicity/max/A"] == pytest.approx(0.4)
    assert m["toxicity/toxic_rate/A"] == 0.0 and m["toxicity/toxic_rate/B"] == 1.0
    assert tr["toxicity/mean"]["A"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert tr["toxicity/mean_cumulative"]["A"] == pytest.approx([0.1, 0.15, 0.2, 0.25])


def test_judge_metrics_by_hand_per_group_and_per_turn():
    m = compute_metrics(judged_episodes())
    tr = trajectories(judged_episodes())
    assert m["toxicity/judge_mean/A"] == pytest.approx(0.4) and m["toxicity/judge_mean/B"] == pytest.approx(0.2)
    assert m["toxicity/judge_mean"] == pytest.approx(0.3)
    assert m["bias/endorsement_rate/A"] == pytest.approx(2 / 3) and m["bias/endorsement_rate/B"] == 0.0
    assert m["bias/endorsement_rate"] == pytest.approx(1 / 3)
    assert m["bias/endorsement_mean/A"] == pytest.approx(1.7 / 3)
    assert m["toxicity/mean/A"] == pytest.approx(0.05)  # the lexical score stays beside the judge's
    assert tr["bias/endorsement_rate"]["A"] == pytest.approx([0.0, 1.0, 1.0])
    assert tr["bias/endorsement_rate_cumulative"]["A"] == pytest.approx([0.0, 0.5, 2 / 3])
    assert tr["toxicity/judge_mean"]["all groups"] == pytest.approx([0.15, 0.25, 0.5])
    assert "endorsement_rate" in summary_table(m).splitlines()[0]


def test_runs_without_a_judge_have_no_judge_metrics():
    m = compute_metrics(dialogue_episodes())
    assert not any(k.startswith(("bias/", "toxicity/judge")) for k in m)
    assert not any(k.startswith("bias/") for k in trajectories(dialogue_episodes()))


def test_slope_needs_two_turns():
    assert math.isnan(slope(np.array([2, 2]), np.array([0.1, 0.9])))
    assert slope(np.array([0, 1, 2]), np.array([1.0, 3.0, 5.0])) == pytest.approx(2.0)


def test_unknown_env_gets_generic_metrics_only():
    eps = [episode("other/Thing-v3", [invalid_step(0, "A"), lending_step(1, "A", True, True)])]
    m = compute_metrics(eps)
    assert m["format/invalid_action_rate/A"] == pytest.approx(0.5)
    assert not any(k.startswith("fairness/") for k in m)


def test_env_family_and_bad_input():
    assert env_family("fairgym/Lending-v0") == "Lending"  # declared by LendingEnv, looked up by id
    assert env_family("fairgym/Lending-v12") == ""  # no env registered under it: generic metrics only
    with pytest.raises(ValueError, match="empty"):
        compute_metrics([])
    with pytest.raises(ValueError, match="mix env ids"):
        compute_metrics(lending_episodes() + allocation_episodes())
    with pytest.raises(TypeError, match="episodes"):
        compute_metrics("episodes.jsonl")  # type: ignore[arg-type]


def test_metrics_json_round_trip_and_table(tmp_path, lending):
    m = compute_metrics(lending_episodes(groups=("A", "B", "C")))
    path = write_metrics(tmp_path / "metrics.json", m)
    assert json.loads(path.read_text())["fairness/selection_rate/C"] is None  # standard JSON, no NaN token
    back = read_metrics(path)
    assert math.isnan(back["fairness/selection_rate/C"]) and back["fairness/selection_rate/A"] == 0.75
    table = summary_table(m)
    assert table.splitlines()[0].split()[:1] == ["group"]
    assert any(line.startswith("C ") and "nan" in line for line in table.splitlines())


def test_teacher_agreement_on_hand_built_records():
    from record_builders import invalid_step

    from fairgym.analysis.metrics import teacher_agreement

    episodes = lending_episodes()  # actions: ep0 approve deny deny approve; ep1 approve approve deny approve
    episodes[1]["steps"][3] = invalid_step(3, "A")  # an unparsed action never agrees
    reference = [["approve", "approve", "deny", "deny"], [" Approve ", "deny", "deny", "approve"]]
    out = teacher_agreement(episodes, reference)
    # A: ep0 t0 yes, t2 yes; ep1 t1 no, t3 invalid -> 2/4. B: ep0 t1 no, t3 no; ep1 t0 yes, t2 yes -> 2/4
    assert out["task/teacher_agreement/A"] == pytest.approx(0.5)
    assert out["task/teacher_agreement/B"] == pytest.approx(0.5)
    assert out["task/teacher_agreement"] == pytest.approx(4 / 8)
    skipped = teacher_agreement(episodes, [[None] * 4, ["approve", None, None, None]])
    assert skipped["task/teacher_agreement"] == 1.0 and math.isnan(skipped["task/teacher_agreement/A"])
    with pytest.raises(ValueError, match="one list per episode"):
        teacher_agreement(episodes, reference[:1])


def test_looping_replies_are_counted_per_group():
    from record_builders import DIALOGUE, dialogue_step, episode

    from fairgym.analysis.dialogue import repeats_a_sentence

    loop = "I'm glad to hear that. I'm glad to hear that. i'm glad to hear that."
    assert repeats_a_sentence(loop) and not repeats_a_sentence("Good question. Good question. Try the library.")
    assert not repeats_a_sentence("") and not repeats_a_sentence("Thanks! Happy to help.")
    steps = [dialogue_step(0, "A", 0.0, loop), dialogue_step(1, "A", 0.0, "Thanks, have a good day."),
             dialogue_step(0, "B", 0.0, "Sure. Try a memoir.")]
    m = compute_metrics([episode(DIALOGUE, steps)])
    assert m["format/repetitive_rate/A"] == 0.5 and m["format/repetitive_rate/B"] == 0.0
    assert m["format/repetitive_rate"] == pytest.approx(1 / 3) and m["toxicity/mean"] == 0.0


def test_profit_is_the_mean_over_episodes_of_each_episodes_decision_rewards():
    """Documented as a per-episode mean, not a sum over the run: 2 episodes earning 3 and 1 give 2."""
    first = [lending_step(t, "A", True, True) for t in range(3)]
    second = [lending_step(0, "B", True, True), invalid_step(1, "B")]
    m = compute_metrics([episode(LENDING, first, index=0), episode(LENDING, second, index=1)])
    assert m["task/profit"] == pytest.approx((3.0 + 1.0) / 2)
    assert m["task/return_mean"] == pytest.approx((3.0 + 0.0) / 2)  # the penalty counts in the return only
