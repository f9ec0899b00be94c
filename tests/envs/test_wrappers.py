"""An env's declared attributes through Gymnasium's wrappers, and records of hand-stepped episodes."""

from __future__ import annotations

import gymnasium as gym
import pytest

from fairgym.agents import make_agent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.metrics import compute_metrics
from fairgym.envs import ENV_IDS, make_env
from fairgym.envs.lending import LendingEnv
from fairgym.envs.records import record_episode


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_declared_attributes_read_through_the_wrappers(env_id):
    env = make_env(env_id, max_steps=3)
    base = env.unwrapped
    assert env is not base and env.groups == base.groups and env.profile is base.profile
    assert (env.discrete_choices, env.pins_group, env.max_steps) == (base.discrete_choices, base.pins_group, 3)
    env.reset(seed=0)
    assert env.start_state() == base.start_state()


def test_gym_make_and_further_wrappers_read_them_with_get_wrapper_attr():
    plain = gym.wrappers.TimeLimit(gym.make("fairgym/Lending-v0"), max_episode_steps=2)
    with pytest.raises(AttributeError):
        _ = plain.groups  # Gymnasium's own wrappers do not forward attributes
    assert plain.get_wrapper_attr("groups") == ("Black", "white")
    wrapped = gym.wrappers.TimeLimit(make_env("fairgym/Lending-v0"), max_episode_steps=2)
    assert wrapped.get_wrapper_attr("groups") == ("Black", "white")


def test_hand_stepped_episodes_give_the_runners_metrics():
    env = make_env("fairgym/Lending-v0", max_steps=5)
    by_hand = [record_episode(env, lambda obs, info: "approve", seed=3 + i, index=i) for i in range(4)]
    ran = run_episodes("fairgym/Lending-v0", make_agent("constant"), episodes=4, seed=3,
                       env_kwargs={"max_steps": 5}, progress=False)
    assert [ep["start"] for ep in by_hand] == [ep["start"] for ep in ran]
    assert compute_metrics(by_hand) == compute_metrics(ran)
    assert by_hand[0]["agent"] == "<lambda>" and by_hand[0]["env_kwargs"] == {"max_steps": 5}


def test_record_episode_takes_an_agent_and_reset_options():
    env = make_env("fairgym/Dialogue-v0", max_steps=2)
    record = record_episode(env, make_agent("polite"), seed=0, options={"group": "white"})
    assert record["agent"] == "polite" and record["options"] == {"group": "white"}
    assert {s["group"] for s in record["steps"]} == {"white"} and record["length"] == 2


def test_an_unregistered_env_has_no_id_to_record():
    class Unregistered(LendingEnv):
        pass

    with pytest.raises(ValueError, match="not registered with Gymnasium"):
        record_episode(Unregistered(max_steps=1), lambda obs, info: "deny", seed=0)
    assert record_episode(LendingEnv(max_steps=1), lambda o, i: "deny", seed=0)["env_id"] == "fairgym/Lending-v0"
