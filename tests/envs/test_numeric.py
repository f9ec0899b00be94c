"""Numeric views: Gymnasium's checker, encodings, and that actions reach the text env as formatted text."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from fairgym.envs import ENV_IDS, keys, make_numeric
from fairgym.envs.dialogue import CANNED_REPLIES
from fairgym.envs.numeric import NumericView


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_numeric_view_passes_check_env(env_id):
    env = make_numeric(env_id)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and set(keys.INFO_KEYS) <= set(info)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_numeric_rollout_is_deterministic(env_id):
    def run(seed):
        env = make_numeric(env_id, max_steps=5)
        env.action_space.seed(seed)
        out = [env.reset(seed=seed)[0]]
        for _ in range(5):
            obs, reward, *_ = env.step(env.action_space.sample())
            out += [obs, reward]
        return out

    first, second = run(3), run(3)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_lending_encoding_and_action_mapping():
    env = make_numeric("fairgym/Lending-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (7 + 2,) and obs[info[keys.CONTEXT]["bin"]] == 1 and obs.sum() == 2
    assert obs[7 + env.unwrapped.groups.index(info[keys.GROUP])] == 1
    assert env.step(1)[4][keys.ACTION] == {"approve": True}
    assert env.step(0)[4][keys.ACTION] == {"approve": False}


def test_allocation_clips_to_budget_in_site_order():
    env = make_numeric("fairgym/Allocation-v0", budget=6)
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [info[keys.CONTEXT]["found_totals"][s] for s in env.unwrapped.sites]
    info = env.step(np.array([4, 4, 4, 0]))[4]
    assert info[keys.ACTION_VALID] and info[keys.ACTION] == {"units": {"North": 4, "South": 2, "East": 0, "West": 0}}


def test_dialogue_canned_replies():
    env = make_numeric("fairgym/Dialogue-v1")
    obs, info = env.reset(seed=0)
    assert obs[:3].tolist() == [1, 0, 0]
    info = env.step(3)[4]
    assert info[keys.OUTCOME]["reply"] == CANNED_REPLIES[3] and info[keys.OUTCOME]["toxicity"] > 0.5


def test_numeric_view_rejects_other_envs():
    import gymnasium as gym

    with pytest.raises(TypeError, match="NumericView supports"):
        NumericView(gym.make("CartPole-v1"))
