"""Balanced runs: every seed played once per group (reset(options={"group": g})), recorded so that groups are
compared on paired episodes; Lending pins every applicant's group with the same random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from fairgym.agents import make_agent
from fairgym.agents.runner import plan_episodes, run_episodes
from fairgym.envs import make_env, records
from fairgym.envs.lending import LendingEnv
from fairgym.runfiles import EPISODES_FILE

DIALOGUE, LENDING = "fairgym/Dialogue-v0", "fairgym/Lending-v0"


def test_plan_plays_every_seed_once_per_group():
    plan = plan_episodes(3, 10, ("A", "B"))
    assert [(p.index, p.seed, p.options["group"]) for p in plan] == [
        (0, 10, "A"), (1, 10, "B"), (2, 11, "A"), (3, 11, "B"), (4, 12, "A"), (5, 12, "B")]
    assert [(p.index, p.seed, p.options) for p in plan_episodes(2, 10)] == [(0, 10, None), (1, 11, None)]


def test_dialogue_run_is_balanced_and_paired():
    episodes = run_episodes(DIALOGUE, make_agent("polite"), episodes=4, seed=5, env_kwargs={"max_steps": 2},
                            progress=False, balance_groups=True)
    assert len(episodes) == 8
    for ep in episodes:
        assert {s["group"] for s in ep["steps"]} == {ep[records.OPTIONS]["group"]}
    by_seed = {}
    for ep in episodes:
        by_seed.setdefault(ep["seed"], []).append(ep[records.OPTIONS]["group"])
    assert by_seed == {s: ["Black", "white"] for s in range(5, 9)}
    # a pair differs only in the group: the same templates with the group's name in them
    first, second = episodes[0]["steps"][0]["context"]["interlocutor"], episodes[1]["steps"][0]["context"][
        "interlocutor"]
    assert first.replace("Black", "X") == second.replace("white", "X")


def test_lending_pins_the_group_and_keeps_the_random_numbers():
    envs = {g: LendingEnv(max_steps=6) for g in ("Black", "white")}
    for group, env in envs.items():
        env.reset(seed=3, options={"group": group})
    for _ in range(6):
        states = [env.np_random.bit_generator.state["state"] for env in envs.values()]
        assert states[0] == states[1]  # the same draws consumed: the same random numbers for either group
        for group, env in envs.items():
            assert env.groups[env.applicant_group] == group
            env.step("deny")
    free = LendingEnv(max_steps=6)
    free.reset(seed=3)
    groups = set()
    for _ in range(6):
        groups.add(free.applicant_group)
        free.step("deny")
    assert len(groups) == 2  # without options both groups still arrive
    with pytest.raises(ValueError, match="options\\['group'\\]='Martian' is not one of"):
        LendingEnv().reset(seed=0, options={"group": "Martian"})


def test_pinned_quantiles_follow_each_groups_distribution():
    """Same seed, each group: applicant k sits at the same quantile, so the lower-scoring group's bins are lower."""
    bins = {}
    for group in ("Black", "white"):
        env = LendingEnv(max_steps=40)
        env.reset(seed=0, options={"group": group})
        seen = []
        for _ in range(40):
            seen.append(env.applicant_bin)
            env.step("deny")
        bins[group] = np.array(seen)
    assert (bins["Black"] <= bins["white"]).all() and (bins["Black"] < bins["white"]).any()


def test_balanced_run_resumes_and_refuses_an_unbalanced_rerun(tmp_path):
    kwargs = {"seed": 0, "env_kwargs": {"max_steps": 3}, "out_dir": tmp_path, "progress": False}
    run_episodes(LENDING, make_agent("random"), episodes=2, balance_groups=True, **kwargs)
    resumed = run_episodes(LENDING, make_agent("random"), episodes=4, balance_groups=True, **kwargs)
    whole = run_episodes(LENDING, make_agent("random"), episodes=4, balance_groups=True,
                         **{**kwargs, "out_dir": tmp_path / "whole"})
    assert resumed == whole and len(whole) == 8
    assert len(records.read_episodes(tmp_path / EPISODES_FILE)) == 8
    with pytest.raises(ValueError, match="options={'group': 'Black'}, but this run has options=None"):
        run_episodes(LENDING, make_agent("random"), episodes=4, **kwargs)


def test_an_env_that_cannot_pin_a_group_is_refused():
    with pytest.raises(ValueError, match="balance_groups needs an env whose reset pins one group"):
        run_episodes("fairgym/Allocation-v0", make_agent("random"), episodes=1, progress=False, balance_groups=True)
    assert make_env(DIALOGUE).pins_group and make_env(LENDING).pins_group
    assert not make_env("fairgym/Allocation-v0").pins_group
