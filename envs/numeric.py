"""Numeric views of the text envs: Box/Discrete spaces over the same dynamics, for classic RL baselines.

``NumericView(env)`` maps each numeric action to text with the env's ``format_action`` and passes it to the
text env, and builds the numeric observation from the text env's ``info`` (so both views see one state).
The ``info`` is the text env's, unchanged.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fairgym.envs import keys
from fairgym.envs.allocation import Allocation, AllocationEnv
from fairgym.envs.dialogue import CANNED_REPLIES, DialogueEnv, Reply
from fairgym.envs.lending import LendingEnv, LoanDecision


def _one_hot(index: int, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    out[index] = 1.0
    return out


class _LendingAdapter:
    """obs = [score-bin one-hot, group one-hot]; action 0 = deny, 1 = approve."""

    def __init__(self, env: LendingEnv) -> None:
        self.env = env
        self.observation_space = spaces.Box(0.0, 1.0, (env.n_bins + len(env.groups),), np.float32)
        self.action_space = spaces.Discrete(2)

    def observation(self, info: dict[str, Any]) -> np.ndarray:
        group = self.env.groups.index(info[keys.GROUP])
        return np.concatenate([_one_hot(info[keys.CONTEXT]["bin"], self.env.n_bins),
                               _one_hot(group, len(self.env.groups))])

    def text(self, action: Any) -> str:
        return self.env.format_action(LoanDecision(approve=bool(int(action))))


class _AllocationAdapter:
    """obs = cumulative found incidents per site; action = units per site, clipped to the budget in site order."""

    def __init__(self, env: AllocationEnv) -> None:
        self.env = env
        self.observation_space = spaces.Box(0.0, np.inf, (len(env.sites),), np.float32)
        self.action_space = spaces.MultiDiscrete([env.budget + 1] * len(env.sites))

    def observation(self, info: dict[str, Any]) -> np.ndarray:
        totals = info[keys.CONTEXT]["found_totals"]
        return np.array([totals[s] for s in self.env.sites], dtype=np.float32)

    def text(self, action: Any) -> str:
        left, units = self.env.budget, {}
        for site, n in zip(self.env.sites, np.asarray(action).tolist(), strict=True):
            units[site] = min(max(int(n), 0), left)
            left -= units[site]
        return self.env.format_action(Allocation(units=units))


class _DialogueAdapter:
    """obs = [phase one-hot, interlocutor group one-hot]; action = index into ``CANNED_REPLIES``."""

    def __init__(self, env: DialogueEnv) -> None:
        self.env = env
        self.phases = env.phases  # PHASES, or the single completion phase of HONEST openings
        self.observation_space = spaces.Box(0.0, 1.0, (len(self.phases) + len(env.groups),), np.float32)
        self.action_space = spaces.Discrete(len(CANNED_REPLIES))

    def observation(self, info: dict[str, Any]) -> np.ndarray:
        return np.concatenate([_one_hot(self.phases.index(info[keys.CONTEXT]["phase"]), len(self.phases)),
                               _one_hot(self.env.groups.index(info[keys.GROUP]), len(self.env.groups))])

    def text(self, action: Any) -> str:
        return self.env.format_action(Reply(CANNED_REPLIES[int(action)]))


_ADAPTERS = ((LendingEnv, _LendingAdapter), (AllocationEnv, _AllocationAdapter), (DialogueEnv, _DialogueAdapter))


class NumericView(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Box/Discrete spaces over a fairgym text env (see each adapter for the encoding).

    Lending: obs ``Box`` [score-bin one-hot, group one-hot], action ``Discrete(2)`` (0 deny, 1 approve).
    Allocation: obs ``Box`` of found totals per site, action ``MultiDiscrete([budget + 1] * sites)``, clipped
    to the budget in site order. Dialogue: obs ``Box`` [phase one-hot, group one-hot], action
    ``Discrete(len(CANNED_REPLIES))``.

    Args:
        env: a fairgym text env (wrapped or not).

    Raises:
        TypeError: ``env`` is not one of the fairgym envs.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        base = env.unwrapped
        adapter: Any = next((a for cls, a in _ADAPTERS if isinstance(base, cls)), None)
        if adapter is None:
            raise TypeError(f"NumericView supports {[c.__name__ for c, _ in _ADAPTERS]}, got {type(base).__name__}.")
        self.adapter = adapter(base)
        self.observation_space = self.adapter.observation_space
        self.action_space = self.adapter.action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        _, info = self.env.reset(seed=seed, options=options)
        return self.adapter.observation(info), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        _, reward, terminated, truncated, info = self.env.step(self.adapter.text(action))
        return self.adapter.observation(info), float(reward), terminated, truncated, info
