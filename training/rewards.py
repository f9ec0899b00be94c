"""GRPO reward functions that replay a fairgym env to the recorded step and step it with the completion.

A dataset row's key (``env_id``, ``env_kwargs`` JSON, ``seed``, ``prefix`` = the action texts taken before the
step) fixes one env state: reset with the seed, replay the prefix. The state is built once per key and every
completion of a GRPO group is stepped on its own deep copy, so all members start from the same state.

TRL calls each function as ``f(prompts, completions, **columns)`` and expects one float per completion.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fairgym.envs import keys
from fairgym.envs.core import ParseError, action_to_dict

_CACHE_SIZE = 256


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or conversational ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"A completion must be a str or a list of chat messages, got {type(completion).__name__}.")


class EnvReplay:
    """Env states by replay key, built once and copied per use (an LRU cache of ``_CACHE_SIZE`` states)."""

    def __init__(self, cache_size: int = _CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._states: OrderedDict[tuple, Any] = OrderedDict()

    def state(self, env_id: str, env_kwargs: str | dict, seed: int, prefix: Sequence[str]) -> tuple[Any, dict]:
        """A fresh copy of ``(env, info)``: the env reset with ``seed`` after the ``prefix`` actions."""
        kwargs_json = env_kwargs if isinstance(env_kwargs, str) else json.dumps(env_kwargs, sort_keys=True)
        key = (env_id, kwargs_json, int(seed), tuple(prefix or ()))
        if key not in self._states:
            self._states[key] = replay(env_id, json.loads(kwargs_json or "{}"), int(seed), list(prefix or ()))
            if len(self._states) > self.cache_size:
                self._states.popitem(last=False)
        self._states.move_to_end(key)
        return copy.deepcopy(self._states[key])


def replay(env_id: str, env_kwargs: dict[str, Any], seed: int, prefix: list[str]) -> tuple[Any, dict[str, Any]]:
    """``(env, info)``: the unwrapped env reset with ``seed`` and stepped with every action text in ``prefix``.

    Raises:
        ValueError: the prefix ends the episode before the recorded step (the key does not match the env).
    """
    from fairgym.envs import make_env

    env = make_env(env_id, **env_kwargs).unwrapped
    _, info = env.reset(seed=seed)
    for i, action in enumerate(prefix):
        _, _, terminated, truncated, info = env.step(action)
        if (terminated or truncated) and i < len(prefix) - 1:
            raise ValueError(f"Replaying {env_id} seed={seed}: the episode ended after {i + 1} of {len(prefix)} "
                             "prefix actions; the dataset row does not match this env (check env_kwargs).")
    return env, info


@dataclass(frozen=True)
class Outcome:
    """One completion stepped from its replayed state."""

    reward: float
    valid: bool
    action: dict[str, Any] | None
    reference: dict[str, Any] | None  # the fair reference decision, parsed (discrete decisions only)


def _reference_action(env: Any, info: dict[str, Any], reference: str | None) -> dict[str, Any] | None:
    if not reference or not info.get(keys.CHOICES):
        return None
    parsed = env.parse_action(reference)
    return None if isinstance(parsed, ParseError) else action_to_dict(parsed)


def step_outcomes(replayer: EnvReplay, completions: list, kw: dict[str, Any]) -> list[Outcome]:
    """Each completion stepped from its row's replayed state (columns ``env_id, env_kwargs, seed, prefix``)."""
    refs = kw.get("reference") or [None] * len(completions)
    out = []
    for i, completion in enumerate(completions):
        env, info = replayer.state(kw["env_id"][i], kw["env_kwargs"][i], kw["seed"][i], kw["prefix"][i])
        reference = _reference_action(env, info, refs[i])
        _, reward, _, _, after = env.step(completion_text(completion))
        out.append(Outcome(float(reward), bool(after[keys.ACTION_VALID]), after[keys.ACTION], reference))
    return out


def penalised(outcome: Outcome, weight: float) -> float:
    """Task reward minus ``weight`` when a discrete decision differs from the fair reference decision."""
    if weight and outcome.reference is not None and outcome.action != outcome.reference:
        return outcome.reward - float(weight)
    return outcome.reward


def make_reward_funcs(fairness_penalty: float = 0.0, replayer: EnvReplay | None = None) -> list[Callable]:
    """``[env_reward, format_reward]`` for TRL's ``GRPOTrainer`` (weights set by ``GRPOConfig.reward_weights``).

    Args:
        fairness_penalty: subtracted from the task reward when a discrete decision differs from the row's fair
            ``reference`` decision (0 disables it).
        replayer: env-state cache shared by both functions (a new one by default).

    Returns:
        ``env_reward`` (task reward minus the penalty) and ``format_reward`` (1.0 when the env parsed the
        completion, else 0.0).
    """
    replayer = replayer or EnvReplay()
    last: dict[str, Any] = {}

    def outcomes(completions: list, kw: dict[str, Any]) -> list[Outcome]:
        if last.get("completions") is not completions:  # both functions see the same batch: replay it once
            last.update(completions=completions, value=step_outcomes(replayer, completions, kw))
        return last["value"]

    def env_reward(prompts: list, completions: list, **kw: Any) -> list[float]:
        return [penalised(o, fairness_penalty) for o in outcomes(completions, kw)]

    def format_reward(prompts: list, completions: list, **kw: Any) -> list[float]:
        return [1.0 if o.valid else 0.0 for o in outcomes(completions, kw)]

    return [env_reward, format_reward]
