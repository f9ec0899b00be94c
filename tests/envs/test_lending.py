"""Lending: grammar, delayed-impact dynamics on hand-built state, rewards, outcome fields."""

from __future__ import annotations

import numpy as np
import pytest

from fairgym.envs import keys, make_env
from fairgym.envs.core import ParseError
from fairgym.envs.lending import LendingEnv, LoanDecision, format_action, parse_action


@pytest.mark.parametrize("approve", [True, False])
def test_round_trip(approve):
    assert parse_action(format_action(LoanDecision(approve))) == LoanDecision(approve)


@pytest.mark.parametrize(
    "text, approve",
    [("APPROVE", True), ("I have decided to approve the loan.", True), ("Deny.", False), ("denied", False)],
)
def test_lenient_parse(text, approve):
    assert parse_action(text) == LoanDecision(approve)


@pytest.mark.parametrize("text", ["", "yes", "approve or deny?", "disapprove", "approvedeny"])
def test_ambiguous_or_missing_is_an_error(text):
    assert isinstance(parse_action(text), ParseError)


def hand_built(**kwargs) -> LendingEnv:
    env = LendingEnv(score_shift=0.1, **kwargs)
    env.reset(seed=0)
    env.distributions = np.array([[0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0]])
    env.applicant_group, env.applicant_bin = 0, 2
    return env


def test_repayment_moves_group_mass_up_a_bin():
    env = hand_built()
    env.would_repay = True
    before = env.group_mean_scores()
    _, reward, *_, info = env.step("approve")
    np.testing.assert_allclose(env.distributions[0], [0, 0, 0.4, 0.6, 0, 0, 0])
    np.testing.assert_allclose(env.distributions[1], [0, 0, 0, 0.5, 0.5, 0, 0])
    assert reward == pytest.approx(1.0) and info[keys.OUTCOME]["cash"] == pytest.approx(11.0)
    gain = 0.1 * (env.bin_scores[3] - env.bin_scores[2])
    assert info[keys.OUTCOME]["group_mean_score"]["Black"] == pytest.approx(before["Black"] + gain)
    assert info[keys.OUTCOME]["group_mean_score"]["white"] == pytest.approx(before["white"])


def test_default_moves_group_mass_down_and_costs_the_loan():
    env = hand_built(loan_amount=2.0)
    env.would_repay = False
    _, reward, *_, info = env.step("approve")
    np.testing.assert_allclose(env.distributions[0], [0, 0.1, 0.4, 0.5, 0, 0, 0])
    assert reward == -2.0
    assert info[keys.OUTCOME] | {"group_mean_score": None, "group_repay_probability": None} == {
        "approved": True, "would_repay": False, "repay_probability": 0.45, "score": int(env.bin_scores[2]),
        "bin": 2, "cash": 8.0, "group_mean_score": None, "group_repay_probability": None}
    group = env.groups[0]
    expected = float(np.dot(env.distributions[0], env.repay_probabilities))
    assert info[keys.OUTCOME]["group_repay_probability"][group] == pytest.approx(expected)


def test_denial_changes_nothing_but_records_would_repay():
    env = hand_built()
    env.would_repay = True
    before = env.distributions.copy()
    _, reward, *_, info = env.step("deny")
    np.testing.assert_array_equal(env.distributions, before)
    assert reward == 0.0 and info[keys.OUTCOME]["would_repay"] is True and info[keys.OUTCOME]["approved"] is False


def test_bankruptcy_terminates():
    env = LendingEnv(initial_cash=1.0)
    env.reset(seed=0)
    env.would_repay = False
    assert env.step("approve")[2] is True


def test_default_groups_differ_and_disadvantaged_is_lower():
    env = LendingEnv()
    env.reset(seed=0)
    means = env.group_mean_scores()
    assert env.groups == ("Black", "white") and means["Black"] < means["white"] - 100


def test_group_draws_follow_proportions_and_context_matches_observation():
    env = make_env("fairgym/Lending-v0", group_proportions=[0.8, 0.2], max_steps=200)
    obs, info = env.reset(seed=0)
    groups = []
    for _ in range(200):
        assert str(info[keys.CONTEXT]["score"]) in obs and info[keys.GROUP] in obs
        assert info[keys.CHOICES] == ["approve", "deny"]
        groups.append(info[keys.GROUP])
        obs, _, terminated, truncated, info = env.step("deny")
    assert 0.7 < groups.count("Black") / len(groups) < 0.9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"group_proportions": [0.5, 0.6]}, "group_proportions"),
        ({"initial_distributions": [[1.0]]}, "one distribution per group"),
        ({"repay_probabilities": [0.5, 2.0, 0, 0, 0, 0, 0]}, "repay_probabilities"),
        ({"loan_amount": -1}, "loan_amount"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LendingEnv(**kwargs)


def test_three_groups_from_a_preset():
    env = LendingEnv(descriptors="religion")
    env.reset(seed=0)
    means = list(env.group_mean_scores().values())
    assert env.groups == ("Muslim", "Christian", "Jewish") and means == sorted(means)


def test_score_labels_name_the_band_of_each_bin_and_change_nothing_else():
    from fairgym.envs.lending import SCORE_LABELS

    plain = LendingEnv(max_steps=40, initial_cash=100)
    labelled = LendingEnv(max_steps=40, initial_cash=100, score_labels=True)
    for env in (plain, labelled):
        env.reset(seed=3)
    seen = set()
    for _ in range(40):
        word = SCORE_LABELS[labelled.applicant_bin]
        obs = labelled._observation()
        assert f"credit score of {labelled.bin_scores[labelled.applicant_bin]} ({word})." in obs
        assert obs.replace(f" ({word})", "") == plain._observation()  # same applicant, same draws
        seen.add(word)
        for env in (plain, labelled):
            env.step("approve")
    assert len(seen) >= 4


@pytest.mark.parametrize("labels,match", [(True, "names 7 bins but the distributions have 3"),
                                          (["low", "mid"], "must be true/false or 3 non-empty strings")])
def test_score_labels_must_fit_the_bins(labels, match):
    with pytest.raises(ValueError, match=match):
        LendingEnv(initial_distributions=[[0.2, 0.5, 0.3]] * 2, repay_probabilities=[0.2, 0.5, 0.8],
                   score_labels=labels)


def test_custom_score_labels():
    env = LendingEnv(initial_distributions=[[0.2, 0.5, 0.3]] * 2, repay_probabilities=[0.2, 0.5, 0.8],
                     score_labels=["low", "mid", "high"])
    env.reset(seed=0)
    assert f"({['low', 'mid', 'high'][env.applicant_bin]})" in env._observation()
