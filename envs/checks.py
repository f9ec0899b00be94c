"""Gymnasium's contract on a fairgym env: ``check_env``, then a rollout mixing valid and garbage actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Rollout:
    """What the contract's rollout did.

    Attributes:
        rewards: every step's reward, across episodes.
        episodes: episodes the rollout played in (it resets the env whenever one ends, so ``steps`` may span
            several).
    """

    rewards: list[float] = field(default_factory=list)
    episodes: int = 1

    @property
    def steps(self) -> int:
        return len(self.rewards)


def check_contract(env: Any, *, seed: int = 0, steps: int = 10) -> Rollout:
    """``check_env`` on the unwrapped env, then ``steps`` rollout steps alternating the default action, an empty
    action and garbage (resetting when an episode ends), checking every ``info`` has the same keys.

    Returns:
        The rollout: its rewards and how many episodes its steps spanned.

    Raises:
        Exception: whatever breaks the contract (``AssertionError`` for changing info keys).
    """
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    return _rollout(env, seed, steps)


def _rollout(env, seed: int, steps: int) -> Rollout:
    base = env.unwrapped
    actions = [base.format_action(base._default_action()), "", "??? not an action"]
    _, info = env.reset(seed=seed)
    keys_seen = set(info)
    rollout = Rollout()
    for i in range(steps):
        _, reward, terminated, truncated, info = env.step(actions[i % len(actions)])
        if set(info) != keys_seen:
            raise AssertionError(f"info keys changed at step {i}: {sorted(set(info) ^ keys_seen)}")
        rollout.rewards.append(float(reward))
        if (terminated or truncated) and i < steps - 1:
            env.reset()
            rollout.episodes += 1
    return rollout
