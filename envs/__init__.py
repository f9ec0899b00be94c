"""fairgym environments: text-in, text-out Gymnasium envs registered under the ``fairgym`` namespace.

Importing this package registers every id in ``ENV_IDS`` with Gymnasium (idempotently); it never imports torch.

Example:
    >>> import fairgym.envs
    >>> env = fairgym.envs.make_env("fairgym/Lending-v0", max_steps=5)
    >>> obs, info = env.reset(seed=0)
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import gymnasium as gym

from fairgym.config import UnknownNameError

# id -> entry point; the one place env names are registered.
ENTRY_POINTS: dict[str, str] = {
    "fairgym/Lending-v0": "fairgym.envs.lending:LendingEnv",
    "fairgym/Allocation-v0": "fairgym.envs.allocation:AllocationEnv",
    "fairgym/Dialogue-v0": "fairgym.envs.dialogue:DialogueEnv",
}
ENV_IDS: tuple[str, ...] = tuple(ENTRY_POINTS)


def register_envs() -> None:
    """Register every fairgym env with Gymnasium; calling it again changes nothing."""
    for env_id, entry_point in ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)


def env_class(env_id: str) -> type:
    """The env class behind ``env_id`` (imports its module only)."""
    if env_id not in ENTRY_POINTS:
        raise UnknownNameError("env", env_id, ENV_IDS)
    module, name = ENTRY_POINTS[env_id].split(":")
    return getattr(importlib.import_module(module), name)


def env_arguments(env_id: str) -> list[str]:
    """Keyword arguments ``env_id`` accepts: its own and those of ``TextEnv``."""
    from fairgym.envs.core import TextEnv

    names: list[str] = []
    for cls in (env_class(env_id), TextEnv):
        for param in inspect.signature(cls.__init__).parameters.values():
            if param.kind is param.KEYWORD_ONLY and param.name not in names:
                names.append(param.name)
    return names


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with clear errors for an unknown id or an unknown argument.

    Raises:
        UnknownNameError: ``env_id`` is not registered (the message suggests the closest ids).
        TypeError: a keyword argument the env does not take (the message lists the ones it does).
    """
    known = env_arguments(env_id)
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise TypeError(f"{env_id} got unknown argument(s) {unknown}; it takes: {', '.join(known)}.")
    return gym.make(env_id, **kwargs)


def make_numeric(env_id: str, **kwargs: Any) -> gym.Env:
    """``make_env`` wrapped in ``NumericView``: Box/Discrete spaces over the same dynamics, for classic RL."""
    from fairgym.envs.numeric import NumericView

    return NumericView(make_env(env_id, **kwargs))


register_envs()

__all__ = ["ENV_IDS", "ENTRY_POINTS", "env_arguments", "env_class", "make_env", "make_numeric", "register_envs"]
