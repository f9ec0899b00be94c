"""``DeclaredAttributes``: a fairgym env's declared attributes read through Gymnasium's wrappers.

Gymnasium 1.x wrappers no longer forward attribute reads, so ``gym.make("fairgym/Lending-v0").groups`` raises
``AttributeError`` (``env.unwrapped.groups`` works). ``fairgym.envs.make_env`` wraps its env once more in
``DeclaredAttributes``, which reads what every fairgym env declares (its groups, family profile, decision form,
episode length, instructions and reset state) from the env below, through any wrappers between
(``get_wrapper_attr``). An env built with ``gym.make`` or wrapped further by the user reads them with
``env.get_wrapper_attr("groups")`` or ``env.unwrapped.groups``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs


class DeclaredAttributes(gym.Wrapper, RecordConstructorArgs):
    """Forward the declared attributes of the fairgym env below to the outermost wrapper (read only)."""

    def __init__(self, env: gym.Env) -> None:
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    @property
    def groups(self) -> tuple[str, ...]:
        """The env's closed set of groups."""
        return self.env.get_wrapper_attr("groups")

    @property
    def profile(self) -> Any:
        """The env family's profile (``fairgym.envs.profiles.FamilyProfile``)."""
        return self.env.get_wrapper_attr("profile")

    @property
    def discrete_choices(self) -> bool:
        """Whether every decision is one of ``info["choices"]``."""
        return bool(self.env.get_wrapper_attr("discrete_choices"))

    @property
    def pins_group(self) -> bool:
        """Whether ``reset(options={"group": g})`` makes ``g`` the episode's group."""
        return bool(self.env.get_wrapper_attr("pins_group"))

    @property
    def max_steps(self) -> int:
        """Decisions per episode before truncation."""
        return int(self.env.get_wrapper_attr("max_steps"))

    @property
    def instructions(self) -> str:
        """The task and action grammar shown at the top of every observation."""
        return str(self.env.get_wrapper_attr("instructions"))

    def start_state(self) -> dict[str, Any] | None:
        """The env's hidden state at reset, for metrics of drift (``None`` for an env without one)."""
        return self.env.get_wrapper_attr("start_state")()
