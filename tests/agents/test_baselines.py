"""Baseline agents: the act contract on every env they apply to, applicability errors, and what each promises."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fairgym.agents import AGENTS, make_agent
from fairgym.agents import lending_policy as lp
from fairgym.agents.allocation_agents import split_budget
from fairgym.agents.baselines import applicable_agents
from fairgym.agents.runner import run_episodes
from fairgym.config import UnknownNameError
from fairgym.envs import ENV_IDS, keys, make_env

BASELINES = sorted(a for a in AGENTS if a != "llm")
LENDING = "fairgym/Lending-v0"
PAIRS = [(a, e) for a in BASELINES for e in ENV_IDS if a in applicable_agents(e)]
MISFITS = [(a, e) for a in BASELINES for e in ENV_IDS if a not in applicable_agents(e)]


def test_every_env_family_is_played_by_baselines():
    # what the profiles declare: scripted agents for every family, the fair oracle everywhere
    assert {e: "fair-oracle" in applicable_agents(e) and "random" in applicable_agents(e) for e in ENV_IDS} == \
        dict.fromkeys(ENV_IDS, True)
    assert "max-utility" in applicable_agents(LENDING) and "polite" not in applicable_agents(LENDING)


def tprs(episodes: list[dict]) -> dict[str, float]:
    """Per-group true-positive rate measured from records: approved among applicants who would repay."""
    hits: dict[str, list[bool]] = {}
    for episode in episodes:
        for step in episode["steps"]:
            if step[keys.OUTCOME]["would_repay"]:
                hits.setdefault(step[keys.GROUP], []).append(step[keys.OUTCOME]["approved"])
    return {g: float(np.mean(v)) for g, v in hits.items()}


def test_every_baseline_is_registered():
    assert set(BASELINES) <= set(AGENTS)


@pytest.mark.parametrize(("name", "env_id"), PAIRS)
def test_act_contract_and_valid_actions(name, env_id):
    agent = make_agent(name)
    env = make_env(env_id, max_steps=5)
    observation, info = env.reset(seed=3)
    agent.calibrate(env.unwrapped)
    agent.reset(0)
    assert agent.act([], []) == []
    out = agent.act([observation] * 3, [info] * 3)
    assert len(out) == 3 and all(isinstance(a, str) and a for a in out)
    assert len(agent.last_details) == 3
    assert agent.stats.calls == 2 and agent.stats.decisions == 3
    episodes = run_episodes(env_id, agent, episodes=3, seed=1, env_kwargs={"max_steps": 5}, num_envs=2,
                            progress=False)
    steps = [s for e in episodes for s in e["steps"]]
    assert len(steps) == sum(e["length"] for e in episodes) > 0
    assert all(s[keys.ACTION_VALID] for s in steps), [s[keys.PARSE_ERROR] for s in steps]


@pytest.mark.parametrize(("name", "env_id"), MISFITS)
def test_misfit_raises_naming_agents_that_apply(name, env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"{name}.*agents that do: .*llm"):
        make_agent(name).calibrate(env.unwrapped)


def test_act_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 observations but 1 infos"):
        make_agent("random").act(["a", "b"], [{}])


def test_unknown_agent_and_option_suggest():
    with pytest.raises(UnknownNameError, match="Did you mean 'eo-threshold'"):
        make_agent("eo-treshold")
    with pytest.raises(UnknownNameError, match="Did you mean 'threshold'"):
        make_agent("max-utility", treshold=600)


def test_baselines_never_import_torch():
    code = ("import sys; from fairgym.agents import make_agent; from fairgym.agents.runner import run_episodes; "
            "[make_agent(n) for n in ['random','constant','max-utility','eo-threshold','fair-oracle','polite']]; "
            "run_episodes('fairgym/Lending-v0', make_agent('eo-threshold'), episodes=1, progress=False); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_max_utility_approves_exactly_the_profitable_bins():
    env = make_env(LENDING, loan_amount=2.0, interest_rate=0.5).unwrapped
    agent = make_agent("max-utility")
    agent.calibrate(env)
    # break-even repay probability = loan / (loan + interest * loan) = 1 / 1.5
    expected = {b for b, p in enumerate(env.repay_probabilities) if p > 1 / 1.5}
    assert agent.approve_bins == expected and expected
    fixed = make_agent("max-utility", threshold=600)
    info = {keys.CONTEXT: {"score": 600, "bin": 0}, keys.CHOICES: ["approve", "deny"]}
    assert fixed.act(["o"], [info]) == ["approve"]


def test_eo_policy_equalises_analytic_tprs():
    params = lp.LendingParams.from_env(make_env(LENDING).unwrapped)
    policy = lp.equal_opportunity_policy(params)
    rates = [(d * params.repay * policy.approve[g]).sum() / (d * params.repay).sum()
             for g, d in zip(params.groups, params.distributions, strict=True)]
    assert np.allclose(rates, policy.tpr) and 0 < policy.tpr < 1


def test_eo_threshold_tprs_closer_than_max_utility():
    gaps = {}
    for name in ("max-utility", "eo-threshold"):
        rates = tprs(run_episodes(LENDING, make_agent(name), episodes=30, seed=0, progress=False))
        gaps[name] = max(rates.values()) - min(rates.values())
    assert gaps["eo-threshold"] < gaps["max-utility"] / 2, gaps


def test_fair_oracle_lending_ignores_the_group():
    env = make_env(LENDING).unwrapped
    agent = make_agent("fair-oracle")
    agent.calibrate(env)
    infos = [{keys.GROUP: g, keys.CHOICES: ["approve", "deny"], keys.CONTEXT: {"score": s, "bin": b}}
             for b, s in enumerate(env.bin_scores) for g in env.groups]
    actions = agent.act(["same observation"] * len(infos), infos)
    by_bin = {}
    for info, action in zip(infos, actions, strict=True):
        by_bin.setdefault(info[keys.CONTEXT]["bin"], set()).add(action)
    assert all(len(a) == 1 for a in by_bin.values()) and {"approve"} in by_bin.values() and {"deny"} in by_bin.values()


def test_split_budget_sums_and_follows_weights():
    units = split_budget(np.array([0.5, 0.3, 0.2]), 10)
    assert units.tolist() == [5, 3, 2]
    assert split_budget(np.array([1.0, 1.0, 1.0]), 4).sum() == 4


@pytest.mark.skipif("fairgym/Allocation-v0" not in ENV_IDS, reason="Allocation env not registered")
def test_fair_oracle_allocation_never_starves_a_site():
    agent = make_agent("fair-oracle")
    agent.calibrate(make_env("fairgym/Allocation-v0").unwrapped)
    context = {"budget": 6, "sites": ["North", "South", "East", "West"],
               "site_groups": {"North": "Black", "South": "white", "East": "Black", "West": "white"},
               "found_totals": {"North": 100, "South": 0, "East": 0, "West": 0}}
    (action,) = agent.act(["obs"], [{keys.GROUP: None, keys.CHOICES: None, keys.CONTEXT: context}])
    units = dict(pair.split("=") for pair in action.split(", "))
    assert sum(map(int, units.values())) == 6 and min(map(int, units.values())) >= 1
    assert int(units["North"]) == max(map(int, units.values()))


def test_polite_replies_are_varied_and_not_toxic():
    from profanity_check import predict_prob

    agent = make_agent("polite")
    infos = [{keys.CONTEXT: {"phase": p}, keys.MESSAGES: [{"role": "user", "content": f"What about {i}?"}]}
             for p in ("neutral", "leading", "provocative") for i in range(10)]
    replies = agent.act([f"turn {i}" for i in range(len(infos))], infos)
    assert len(set(replies)) >= 20
    assert float(np.max(predict_prob(replies))) < 0.5


def test_eo_threshold_follows_a_plain_step_loop_without_keys():
    """Called as a new user would, in a plain env.step loop without decision keys, the every-step agent follows
    the episode by the turn in its info: equal true-positive rates at the delayed-impact parameters, as the
    runner gives (before, it silently kept the calibration-time thresholds: a gap of -0.20 over 20,000 steps)."""
    from fairgym.envs.lending import DELAYED_IMPACT_KWARGS

    env = make_env(LENDING, max_steps=4000, **DELAYED_IMPACT_KWARGS)
    agent = make_agent("eo-threshold")
    observation, info = env.reset(seed=0)
    agent.calibrate(env.unwrapped)
    hits: dict[str, list[bool]] = {}
    done = False
    while not done:
        action = agent.act([observation], [info])[0]
        group = info[keys.GROUP]
        observation, _, terminated, truncated, info = env.step(action)
        if info[keys.OUTCOME]["would_repay"]:
            hits.setdefault(group, []).append(info[keys.OUTCOME]["approved"])
        done = terminated or truncated
    tpr = {g: float(np.mean(v)) for g, v in hits.items()}
    assert agent.stats.extra["recalibrations"] > 100  # it followed the episode's drift
    assert abs(tpr["Black"] - tpr["white"]) < 0.05, tpr


def test_a_decision_out_of_order_is_an_error_naming_the_fix():
    env = make_env(LENDING, max_steps=5)
    agent = make_agent("eo-threshold")
    observation, info = env.reset(seed=0)
    agent.calibrate(env.unwrapped)
    agent.act([observation], [info])
    later = {**info, keys.TURN: 3}
    with pytest.raises(ValueError, match="from its first decision in order.*recalibrate='initial'"):
        agent.act([observation], [later])


def test_biased_rules_flip_a_different_set_of_bins_per_group():
    from fairgym.agents.teachers import BiasedRulesAgent

    env = make_env(LENDING, descriptors=["Black", "white", "Asian", "Hispanic"], max_steps=5)
    env.reset(seed=0)
    agent = make_agent("biased-rules", flips=3, seed=1)
    agent.calibrate(env.unwrapped)
    assert {g: len(bins) for g, bins in agent.flipped.items()} == dict.fromkeys(env.unwrapped.groups, 3)
    assert len({bins for bins in agent.flipped.values()}) > 1  # independent rules, not one shared offset
    fair = make_agent("fair-oracle")
    fair.calibrate(env.unwrapped)
    for group in env.unwrapped.groups:
        for b in range(env.unwrapped.n_bins):
            info = {keys.GROUP: group, keys.CONTEXT: {"bin": b, "score": int(env.unwrapped.bin_scores[b])},
                    keys.TURN: 0, keys.CHOICES: ["approve", "deny"]}
            flipped = agent.act([""], [info])[0] != fair.act([""], [info])[0]
            assert flipped == (b in agent.flipped[group])
    same = BiasedRulesAgent(flips=3, seed=1)
    same.calibrate(env.unwrapped)
    assert same.flipped == agent.flipped  # the seed decides the rules
