"""fairgym environments: text-in, text-out Gymnasium envs registered under the ``fairgym`` namespace.

Importing this package registers every id in ``ENV_IDS`` with Gymnasium (idempotently); it never imports torch.
Each env class declares its family's profile and whether its decisions are discrete choices (``TextEnv.profile``,
``TextEnv.discrete_choices``); ``env_traits(env_id)`` looks both up through the Gymnasium registry, so an env
registered anywhere (``gym.register``) is known to agents, metrics and training without building it.

Example:
    >>> import fairgym.envs
    >>> env = fairgym.envs.make_env("fairgym/Lending-v0", max_steps=5)
    >>> obs, info = env.reset(seed=0)
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from fairgym.config import UnknownNameError
from fairgym.envs.profiles import FamilyProfile

# id -> entry point; the one place env names are registered.
ENTRY_POINTS: dict[str, str] = {
    "fairgym/Lending-v0": "fairgym.envs.lending:LendingEnv",
    "fairgym/Allocation-v0": "fairgym.envs.allocation:AllocationEnv",
    "fairgym/Dialogue-v1": "fairgym.envs.dialogue:DialogueEnv",
}
ENV_IDS: tuple[str, ...] = tuple(ENTRY_POINTS)
# Earlier versions, kept so their configs and recorded results reproduce: id -> (entry point, fixed arguments).
# Dialogue-v0 scored replies with the group's words in them; v1 scores group-blind where the scorer's check passes.
LEGACY: dict[str, tuple[str, dict[str, Any]]] = {
    "fairgym/Dialogue-v0": ("fairgym.envs.dialogue:DialogueEnv", {"group_blind": False}),
}


def register_envs() -> None:
    """Register every fairgym env (and the earlier versions in ``LEGACY``) with Gymnasium; calling it again changes
    nothing."""
    for env_id, entry_point in ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)
    for env_id, (entry_point, kwargs) in LEGACY.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=False)


def registered_ids() -> list[str]:
    """Every env id in the Gymnasium registry under the ``fairgym`` namespace (those of ``ENV_IDS`` first)."""
    others = sorted(i for i in gym.registry if i.startswith("fairgym/") and i not in ENTRY_POINTS and i not in LEGACY)
    return [*ENV_IDS, *others]


def env_class(env_id: str) -> type:
    """The env class behind ``env_id``, from its Gymnasium registry entry point (imports its module only)."""
    spec = gym.registry.get(env_id) if isinstance(env_id, str) else None
    if spec is None:
        raise UnknownNameError("env", str(env_id), registered_ids())
    entry = spec.entry_point
    if not isinstance(entry, str):
        return entry  # type: ignore[return-value]  # a class registered directly
    module, name = entry.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class EnvTraits:
    """What an env class declares about its decisions.

    Attributes:
        profile: the env family's profile (``fairgym.envs.profiles.FamilyProfile``): which metrics, plots,
            rewards, teachers and baseline agents apply; it survives a version bump.
        discrete_choices: whether every decision is one of ``info["choices"]`` (so the LLM agent can score the
            choices; otherwise it generates text).
    """

    profile: FamilyProfile
    discrete_choices: bool

    @property
    def family(self) -> str:
        """The family's name (``"Lending"``, ``"Allocation"``, ``"Dialogue"``, ...)."""
        return self.profile.family


def env_traits(env: str | gym.Env) -> EnvTraits:
    """The declared profile and decision form of an env id (looked up without building the env) or an env.

    Raises:
        UnknownNameError: ``env`` is an id no env is registered under.
        TypeError: the env class declares no ``profile``.
    """
    cls = env_class(env) if isinstance(env, str) else type(getattr(env, "unwrapped", env))
    profile = getattr(cls, "profile", None)
    if not isinstance(profile, FamilyProfile):
        raise TypeError(f"{getattr(cls, '__name__', cls)} declares no env family profile; set the class attribute "
                        "profile = FamilyProfile(family='<Name>', ...) (fairgym.envs.profiles), and "
                        "discrete_choices = True when every decision is a choice.")
    return EnvTraits(profile=profile, discrete_choices=bool(getattr(cls, "discrete_choices", False)))


def env_profile(env: str | gym.Env) -> FamilyProfile:
    """The family profile of an env id or env (``env_traits(env).profile``)."""
    return env_traits(env).profile


def env_arguments(env_id: str) -> list[str]:
    """Keyword arguments ``env_id`` accepts: its own and those of ``TextEnv``."""
    from fairgym.envs.core import TextEnv

    names: list[str] = []
    for cls in (env_class(env_id), TextEnv):
        for param in inspect.signature(cls).parameters.values():
            if param.kind is param.KEYWORD_ONLY and param.name not in names:
                names.append(param.name)
    return names


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with clear errors for an unknown id or an unknown argument, wrapped in
    ``fairgym.envs.wrappers.DeclaredAttributes`` so that ``env.groups`` (and the env's other declared attributes:
    ``profile``, ``discrete_choices``, ``pins_group``, ``max_steps``, ``instructions``, ``start_state()``) read
    through Gymnasium's wrappers.

    Raises:
        UnknownNameError: ``env_id`` is not registered (the message suggests the closest ids).
        TypeError: a keyword argument the env does not take (the message lists the ones it does).
    """
    known = env_arguments(env_id)
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise TypeError(f"{env_id} got unknown argument(s) {unknown}; it takes: {', '.join(known)}.")
    from fairgym.envs.wrappers import DeclaredAttributes

    return DeclaredAttributes(gym.make(env_id, **kwargs))


def make_numeric(env_id: str, **kwargs: Any) -> gym.Env:
    """``make_env`` wrapped in ``NumericView``: Box/Discrete spaces over the same dynamics, for classic RL."""
    from fairgym.envs.numeric import NumericView

    return NumericView(make_env(env_id, **kwargs))


register_envs()

__all__ = ["ENV_IDS", "ENTRY_POINTS", "EnvTraits", "FamilyProfile", "env_arguments", "env_class", "env_profile",
           "env_traits", "make_env", "make_numeric", "register_envs", "registered_ids"]
