"""Lending threshold policies: monotone thresholds (empty bins included) and per-episode recalibration."""

from __future__ import annotations

import numpy as np
import pytest

from fairgym.agents import lending_policy as lp
from fairgym.agents import make_agent
from fairgym.agents.base import DecisionKey
from fairgym.agents.runner import run_episodes
from fairgym.envs import keys, make_env
from fairgym.envs.lending import DELAYED_IMPACT_KWARGS, shift_mass

LENDING = "fairgym/Lending-v0"


def delayed_impact_env(**kwargs):
    return make_env(LENDING, **{**DELAYED_IMPACT_KWARGS, "max_steps": 400, **kwargs}).unwrapped


def assert_monotone(approve: np.ndarray) -> None:
    """Non-decreasing with the bin, and at most one bin strictly between 0 and 1 (the boundary)."""
    assert np.all(np.diff(approve) >= -1e-12), approve
    assert np.sum((approve > 1e-12) & (approve < 1 - 1e-12)) <= 1, approve


def test_eo_approves_empty_bins_above_the_threshold():
    params = lp.LendingParams.from_env(delayed_impact_env())
    policy = lp.equal_opportunity_policy(params)
    disadvantaged = params.groups[0]  # no mass in the top two bins at reset
    assert params.distributions[0][5:].sum() == 0
    np.testing.assert_array_equal(policy.approve[disadvantaged][5:], [1.0, 1.0])
    assert policy.approve[params.groups[1]][6] == 1.0


@pytest.mark.parametrize("seed", range(8))
def test_policies_are_monotone_thresholds_with_empty_bins(seed):
    rng = np.random.default_rng(seed)
    dists = rng.dirichlet(np.ones(7), size=2)
    dists[:, rng.choice(7, size=3, replace=False)] = 0.0  # empty bins, the top ones among them sometimes
    dists /= dists.sum(axis=1, keepdims=True)
    env = make_env(LENDING, initial_distributions=dists.tolist(),
                   repay_probabilities=DELAYED_IMPACT_KWARGS["repay_probabilities"]).unwrapped
    params = lp.LendingParams.from_env(env)
    eo = lp.equal_opportunity_policy(params)
    for group in params.groups:
        assert_monotone(eo.approve[group])
        assert_monotone(lp.max_utility_policy(params).approve[group])
    rates = [(d * params.repay * eo.approve[g]).sum() / (d * params.repay).sum()
             for g, d in zip(params.groups, params.distributions, strict=True)]
    assert np.allclose(rates, eo.tpr)


def test_max_utility_approves_empty_profitable_bins():
    params = lp.LendingParams.from_env(delayed_impact_env())
    approve = lp.max_utility_policy(params).approve[params.groups[0]]
    np.testing.assert_array_equal(approve, [0, 0, 0, 1, 1, 1, 1])  # P(repay) > 0.5 exactly from bin 3


@pytest.mark.parametrize("name", ["eo-threshold", "max-utility"])
def test_every_step_recalibrates_from_the_episodes_current_distributions(name):
    env = delayed_impact_env()
    agent = make_agent(name)
    assert agent.recalibrate == "every-step"  # the default: ml-fairness-gym's oracle agents recompute each approval
    agent.calibrate(env)
    agent.reset(3)
    observation, info = env.reset(seed=11)
    params, approvals = lp.LendingParams.from_env(env), 0
    policy = lp.equal_opportunity_policy if name == "eo-threshold" else lp.max_utility_policy
    for turn in range(300):
        expected = policy(params.with_distributions(env.distributions))  # from the env's state, not the agent's
        (action,) = agent.act([observation], [info], decision_keys=[DecisionKey(episode_seed=11, turn=turn)])
        details = agent.last_details[0]
        assert details["approve_probability"] == pytest.approx(
            expected.approve_probability(info[keys.GROUP], info[keys.CONTEXT]["bin"]), abs=1e-9)
        assert details.get("target_tpr", expected.tpr) == pytest.approx(expected.tpr)
        observation, _, terminated, truncated, info = env.step(action)
        approvals += info[keys.OUTCOME]["approved"]
    last = int(info[keys.OUTCOME]["approved"])  # the last outcome was never shown to the agent
    assert approvals > 50 and agent.stats.extra["recalibrations"] == approvals - last


def test_initial_keeps_the_calibration_policy_and_bad_values_fail():
    env = delayed_impact_env()
    agent = make_agent("eo-threshold", recalibrate="initial")
    agent.calibrate(env)
    episodes = run_episodes(LENDING, agent, episodes=1, env_kwargs={**DELAYED_IMPACT_KWARGS, "max_steps": 300},
                            progress=False)
    assert {s["agent"]["target_tpr"] for s in episodes[0]["steps"]} == {agent.policy.tpr}
    with pytest.raises(ValueError, match="recalibrate='sometimes' must be one of"):
        make_agent("max-utility", recalibrate="sometimes")


def test_every_step_refuses_an_episode_it_did_not_follow_from_the_start():
    env = delayed_impact_env()
    agent = make_agent("eo-threshold")
    agent.calibrate(env)
    observation, info = env.reset(seed=0)
    with pytest.raises(ValueError, match="follows each episode from its first decision"):
        agent.act([observation], [info], decision_keys=[DecisionKey(episode_seed=0, turn=5)])


def test_delayed_impact_eo_keeps_approving_as_scores_drift():
    """With thresholds fixed at reset and empty top bins denied, EO approved ~2% over a long run."""
    kwargs = {**DELAYED_IMPACT_KWARGS, "max_steps": 3000}
    steps = run_episodes(LENDING, make_agent("eo-threshold"), episodes=1, env_kwargs=kwargs, progress=False)[0]["steps"]
    late = [s[keys.OUTCOME]["approved"] for s in steps[-1000:]]
    assert np.mean(late) > 0.3


@pytest.mark.parametrize("name", ["eo-threshold", "max-utility"])
def test_burnin_approves_the_first_decisions_of_every_episode_then_follows_them(name):
    # ml-fairness-gym's delayed-impact experiment approves its first applicant (burnin=1) before the policy starts
    kwargs = {**DELAYED_IMPACT_KWARGS, "max_steps": 60}
    agent = make_agent(name, burnin=5)
    episodes = run_episodes(LENDING, agent, episodes=2, env_kwargs=kwargs, progress=False, seed=4)
    reference = run_episodes(LENDING, make_agent(name), episodes=2, env_kwargs=kwargs, progress=False, seed=4)
    for episode, plain in zip(episodes, reference, strict=True):
        steps = episode["steps"]
        assert all(s["outcome"]["approved"] and s["agent"]["burnin"] for s in steps[:5])
        assert not any(s["agent"].get("burnin") for s in steps[5:])
        assert not all(s["outcome"]["approved"] for s in plain["steps"][:5])  # without burn-in some are denied
        # after the burn-in the policy is the one recomputed from the scores the burn-in approvals moved
        env = delayed_impact_env(max_steps=60)
        params = lp.LendingParams.from_env(env)
        dists = params.distributions.copy()
        for s in steps[:5]:
            group = params.groups.index(s["group"])
            shift_mass(dists[group], s["outcome"]["bin"], up=s["outcome"]["would_repay"], amount=params.score_shift)
        policy = (lp.equal_opportunity_policy if name == "eo-threshold" else lp.max_utility_policy)(
            params.with_distributions(dists))
        expected = policy.approve_probability(steps[5]["group"], steps[5]["outcome"]["bin"])
        if name == "max-utility":
            expected = float(expected > 0.5)
        assert steps[5]["agent"]["approve_probability"] == pytest.approx(expected, abs=1e-9)


def test_burnin_needs_whole_numbers_and_a_turn():
    with pytest.raises(ValueError, match="burnin=-1 must be a whole number"):
        make_agent("eo-threshold", burnin=-1)
    agent = make_agent("max-utility", burnin=1, threshold=10_000)  # the policy alone approves no one
    env = delayed_impact_env()
    agent.calibrate(env)
    observation, info = env.reset(seed=0)
    # without keys, a plain loop is followed by the turn in its info: the first decision is burn-in
    assert agent.act([observation], [info]) == ["approve"]
    observation, _, _, _, info = env.step("approve")
    assert agent.act([observation], [info]) == ["deny"]
    with pytest.raises(ValueError, match="needs each decision's DecisionKey"):
        agent.act([observation], [{k: v for k, v in info.items() if k != "turn"}])
