"""Gymnasium's contract on a fairgym env: ``check_env``, then a rollout mixing valid and garbage actions."""

from __future__ import annotations

from typing import Any


def check_contract(env: Any, *, seed: int = 0, steps: int = 10) -> list[float]:
    """``check_env`` on the unwrapped env, then ``steps`` rollout steps alternating the default action, an empty
    action and garbage (resetting when an episode ends), checking every ``info`` has the same keys.

    Returns:
        The rollout's rewards.

    Raises:
        Exception: whatever breaks the contract (``AssertionError`` for changing info keys).
    """
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    return _rollout(env, seed, steps)


def _rollout(env, seed: int, steps: int) -> list[float]:
    base = env.unwrapped
    actions = [base.format_action(base._default_action()), "", "??? not an action"]
    _, info = env.reset(seed=seed)
    keys_seen = set(info)
    rewards = []
    for i in range(steps):
        _, reward, terminated, truncated, info = env.step(actions[i % len(actions)])
        if set(info) != keys_seen:
            raise AssertionError(f"info keys changed at step {i}: {sorted(set(info) ^ keys_seen)}")
        rewards.append(float(reward))
        if terminated or truncated:
            env.reset()
    return rewards
