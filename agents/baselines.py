"""Baseline agents that play every env family: random, constant, the fair oracle, and what they share.

Every baseline follows ``fairgym.agents.base.Agent``: a batched ``act(observations, infos)`` returning raw text,
``stats`` counters and ``last_details`` (what is recorded per step). Agents that need an env's known parameters
read them in ``calibrate(env)``, which the runner calls with a freshly reset env before the first step; an agent
that does not apply to the env raises ``ValueError`` there, naming the agents that do. Which agents apply, and the
policy each family plays them with, is its profile's (``FamilyProfile.policies``): the family's own agents live
beside each other (``lending_agents``, ``allocation_agents``, ``dialogue_agents``).

Randomness: ``reset(seed)`` sets the run seed, and each decision draws from a generator seeded with ``(run seed,
episode seed, turn)`` (``fairgym.agents.base.decision_rng``; the runner passes each observation's
``DecisionKey``). Two episodes that reach the same observation text draw differently, and an episode's actions
do not depend on which other episodes share the batch or on whether the run was resumed. Called without keys,
decisions draw from a stream of the run seed and the call order (``unkeyed_rng``).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fairgym.agents.base import AgentStats, DecisionKey, check_decision_keys, decision_rng, implicit_key, unkeyed_rng
from fairgym.agents.registry import AGENTS
from fairgym.envs import EnvTraits, env_traits, keys
from fairgym.envs.profiles import resolve

CHOICE_AGENTS = ("random", "constant")  # these also apply to any env whose decisions are discrete choices
def applies(name: str, traits: EnvTraits) -> bool:
    """Whether the agent ``name`` applies to an env with these declared traits: its family's profile names a
    policy for it, or it plays any closed set of choices and the env's decisions are choices."""
    return name in traits.profile.policies or (traits.discrete_choices and name in CHOICE_AGENTS)


def applicable_agents(env: Any) -> list[str]:
    """The registered agents that apply to an env id or env, in registry order (``llm`` applies everywhere)."""
    traits = env_traits(env)
    return [n for n in AGENTS if n == "llm" or applies(n, traits)]


def check_applies(name: str, env: Any) -> EnvTraits:
    """The env's declared traits, when the agent ``name`` applies to it; else a ``ValueError`` naming the agents
    that do."""
    traits = env_traits(env)
    if not applies(name, traits):
        fits = applicable_agents(env)
        raise ValueError(f"agent {name!r} does not apply to {type(env.unwrapped).__name__} "
                         f"({getattr(env.spec, 'id', traits.family)}); agents that do: {', '.join(fits)}.")
    return traits


class LazyGenerator:
    """A ``numpy`` generator built on first use: most threshold decisions draw nothing, and building a seeded
    generator costs more than the decision itself."""

    __slots__ = ("_make", "_rng")

    def __init__(self, make: Callable[[], np.random.Generator]) -> None:
        self._make: Callable[[], np.random.Generator] = make
        self._rng: np.random.Generator | None = None

    def __getattr__(self, name: str) -> Any:
        if self._rng is None:
            self._rng = self._make()
        return getattr(self._rng, name)


class BaselineAgent:
    """Shared plumbing: seeding, batching, counters, and the applies-to check.

    Subclasses set ``name`` and implement ``_decide(observation, info, rng) -> (text, details)``; an agent that
    follows episodes overrides ``_decide_keyed``, which also gets the decision's key.
    """

    name = "baseline"

    def __init__(self) -> None:
        self.stats = AgentStats()
        self.last_details: list[dict[str, Any] | None] = []
        self.seed = 0
        self.calibrated = False  # calibrate(env) ran (the runner calls it)
        self._calls = 0  # act calls since reset: what seeds decisions passed without keys

    def reset(self, seed: int | None = None) -> None:
        """Set the seed every later decision's generator derives from, and restart the call count."""
        self.seed = 0 if seed is None else int(seed)
        self._calls = 0

    def calibrate(self, env: Any) -> None:
        """Check the agent applies to ``env`` (``ValueError`` naming the agents that do); subclasses read more."""
        check_applies(self.name, env)
        self.calibrated = True

    def rng(self, key: DecisionKey | None, call: int = 0, position: int = 0) -> Any:
        """The generator of one decision: of ``(run seed, episode seed, turn)`` given its key, else of the run
        seed, the call count and the position in the batch. Built lazily (on the first draw)."""
        if key is None:
            return LazyGenerator(lambda: unkeyed_rng(self.seed, call, position))
        return LazyGenerator(lambda: decision_rng(self.seed, key))

    def act(self, observations: list[str], infos: list[dict[str, Any]],
            decision_keys: list[DecisionKey] | None = None) -> list[str]:
        """One action text per observation, same order; ``act([], [])`` is ``[]``.

        Args:
            observations: the live envs' observation texts.
            infos: their infos (same order).
            decision_keys: each observation's ``DecisionKey`` (episode seed, turn), as the runner passes them;
                without them decisions are seeded by the call order instead, and an agent that follows episodes
                follows each batch position as one episode (``fairgym.agents.base.implicit_key``).
        """
        if len(observations) != len(infos):
            raise ValueError(f"act got {len(observations)} observations but {len(infos)} infos; pass one per env.")
        start = time.perf_counter()
        batch_keys = check_decision_keys(decision_keys, len(observations))
        call, self._calls = self._calls, self._calls + 1
        pairs = [self._decide_keyed(obs, info, key if key is not None else implicit_key(info, i),
                                    self.rng(key, call, i))
                 for i, (obs, info, key) in enumerate(zip(observations, infos, batch_keys, strict=True))]
        self.last_details = [details for _, details in pairs]
        self.stats.calls += 1
        self.stats.decisions += len(pairs)
        self.stats.seconds += time.perf_counter() - start
        return [text for text, _ in pairs]

    def _decide_keyed(self, observation: str, info: dict[str, Any], key: DecisionKey | None,
                      rng: np.random.Generator) -> tuple[str, dict | None]:
        return self._decide(observation, info, rng)

    def _decide(self, observation: str, info: dict[str, Any], rng: np.random.Generator) -> tuple[str, dict | None]:
        raise NotImplementedError

    def _uncalibrated(self) -> str:
        return (f"agent {self.name!r} acts by the env's family, which calibrate(env) reads; call it first (the "
                "runner does).")


class FamilyPolicyAgent(BaselineAgent):
    """An agent each env family plays its own way: the policy the family's profile names for this agent's name
    (``FamilyProfile.policies``), built with the options it accepts; where the family names none, the agent plays
    the env's closed set of choices itself (``_choose``).

    Args:
        **options: the options of every family's policy (each policy takes those its constructor names).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self.policy: BaselineAgent | None = None

    def calibrate(self, env: Any) -> None:
        super().calibrate(env)
        cls = resolve(env_traits(env).profile.policies.get(self.name))
        self.policy = None
        if cls is not None and not isinstance(self, cls):
            accepted = inspect.signature(cls).parameters
            self.policy = cls(**{k: v for k, v in self.options.items() if k in accepted})
            self.policy.calibrate(env)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if self.policy is not None:
            self.policy.reset(seed)

    def _decide_keyed(self, observation, info, key, rng):
        if self.policy is not None:
            return self.policy._decide_keyed(observation, info, key, rng)
        if not info.get(keys.CHOICES):
            raise RuntimeError(self._uncalibrated() if not self.calibrated else
                               f"agent {self.name!r} got a decision without {keys.CHOICES!r} on an env family whose "
                               "profile names no policy for it.")
        return self._choose(observation, info, rng)

    def _choose(self, observation, info, rng) -> tuple[str, dict | None]:
        """A decision among ``info["choices"]`` (families without their own policy)."""
        raise RuntimeError(f"agent {self.name!r} plays no closed set of choices; the env family names no policy for "
                           "it.")


# ---- agents -----------------------------------------------------------------------------------------------
class RandomAgent(FamilyPolicyAgent):
    """A random valid action: a random choice, or the family's random policy (``RandomAllocation`` splits the
    budget at random, ``RandomReply`` picks a canned reply)."""

    name = "random"

    def __init__(self) -> None:
        super().__init__()

    def _choose(self, observation, info, rng):
        return str(rng.choice(info[keys.CHOICES])), None


class ConstantAgent(BaselineAgent):
    """Always the same action text.

    Args:
        action: the text to answer every time; default: the first choice (``"approve"`` on Lending), or else the
            env's default action (an even split on Allocation), read in ``calibrate``.
    """

    name = "constant"

    def __init__(self, action: str | None = None) -> None:
        super().__init__()
        if action is not None and (not isinstance(action, str) or not action.strip()):
            raise ValueError(f"constant agent: action={action!r} must be a non-empty string (e.g. 'approve').")
        self.action = action
        self._env_default: str | None = None

    def calibrate(self, env: Any) -> None:
        super().calibrate(env)
        if not env_traits(env).discrete_choices:
            self._env_default = env.format_action(env._default_action())

    def _decide(self, observation, info, rng):
        if self.action is not None:
            return self.action, None
        if info.get(keys.CHOICES):
            return info[keys.CHOICES][0], None
        if self._env_default is None:
            raise RuntimeError("constant agent without action= needs calibrate(env) first where decisions are not "
                               "choices.")
        return self._env_default, None


class FairOracleAgent(FamilyPolicyAgent):
    """Scripted group-blind decisions on every env: the source of SFT demonstrations. Each family plays it with
    the policy its profile names:

    - Lending (``LendingOracle``): one score threshold for every group (the break-even bins, or ``threshold``);
      the descriptor is never read.
    - Allocation (``AllocationOracle``): units proportional to each site's smoothed found rate, mixed with
      ``explore`` of an even split; site groups and hidden rates are never read.
    - Dialogue (``PoliteAgent``): varied, respectful replies.

    Args:
        threshold: Lending score threshold; ``None`` uses the env's break-even.
        explore: share of the Allocation budget spread evenly (0..1).
        prior: pseudo-counts smoothing the Allocation found rates.
    """

    name = "fair-oracle"

    def __init__(self, threshold: float | None = None, explore: float = 0.2, prior: float = 1.0) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"fair-oracle: explore={explore!r} must be in [0, 1].")
        if prior <= 0:
            raise ValueError(f"fair-oracle: prior={prior!r} must be > 0.")
        super().__init__(threshold=threshold, explore=float(explore), prior=float(prior))


