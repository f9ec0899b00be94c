"""The agent protocol: one batched call for many envs at once, raw text out (the env parses).

Randomness is per decision, not per observation text: the runner passes, with each observation, the
``DecisionKey`` of the decision it poses (the episode's seed and the turn), and an agent draws that decision's
randomness from ``decision_rng(run_seed, key)``. Two episodes that reach the same text therefore draw
differently, while an episode's draws do not depend on the batch it shares or on a resume. A caller that passes
no keys (``act(observations, infos)``) still works; the agent then draws from ``unkeyed_rng``, a stream of the
run seed and the call order (reproducible for the same calls, but not batch- or resume-invariant), and an agent
that follows episodes follows each position of the batch as one episode by the turn in its info
(``implicit_key``): a plain ``env.step`` loop is followed as the runner's episodes are.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

UNKEYED = 2**32 - 1  # a seed word no episode seed takes, so unkeyed streams never collide with keyed ones


@dataclass(frozen=True)
class DecisionKey:
    """Which decision an observation poses: the episode's seed (run seed + index) and the turn within it."""

    episode_seed: int
    turn: int


def seed_words(run_seed: int, key: DecisionKey | None, call: int = 0, position: int = 0) -> list[int]:
    """The seed of one decision: ``(run seed, episode seed, turn)`` given its key, else ``(run seed, UNKEYED,
    call count, position in the batch)``."""
    if key is None:
        return [int(run_seed), UNKEYED, int(call), int(position)]
    return [int(run_seed), int(key.episode_seed), int(key.turn)]


def implicit_key(info: dict[str, Any], position: int) -> DecisionKey | None:
    """The key of a decision passed without one: position ``i`` of the batch is episode ``-(i + 1)`` (no real
    episode seed is negative) at the turn its info names; ``None`` when the info names no turn."""
    turn = info.get("turn") if isinstance(info, dict) else None
    return None if turn is None else DecisionKey(episode_seed=-(int(position) + 1), turn=int(turn))


def decision_rng(run_seed: int, key: DecisionKey) -> np.random.Generator:
    """The generator of one decision: a function of ``(run seed, episode seed, turn)`` only."""
    return np.random.default_rng(seed_words(run_seed, key))


def unkeyed_rng(run_seed: int, call: int, position: int) -> np.random.Generator:
    """The generator of a decision passed without a key: the run seed, the agent's call count, the position."""
    return np.random.default_rng(seed_words(run_seed, None, call, position))


def accepts_decision_keys(agent: Any) -> bool:
    """Whether ``agent.act`` takes ``decision_keys=`` (agents written before the keys existed do not)."""
    try:
        params = inspect.signature(agent.act).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "decision_keys" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def check_decision_keys(decision_keys: list[DecisionKey] | None, count: int) -> list[DecisionKey | None]:
    """One key (or ``None``) per observation; a list of the wrong length is an error."""
    if decision_keys is None:
        return [None] * count
    if len(decision_keys) != count:
        raise ValueError(f"act got {count} observations but {len(decision_keys)} decision_keys; pass one per env.")
    return list(decision_keys)


@dataclass
class AgentStats:
    """Cheap counters the runner logs."""

    calls: int = 0
    decisions: int = 0
    tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {"calls": self.calls, "decisions": self.decisions, "tokens": self.tokens,
                "seconds": round(self.seconds, 4), **self.extra}


@runtime_checkable
class Agent(Protocol):
    """What the runner needs from an agent.

    ``act`` takes the observations and infos of the live envs (same length and order) and returns one action
    text per env; ``act([], [])`` returns ``[]``. The runner also passes ``decision_keys`` (one ``DecisionKey``
    per observation) to an agent whose ``act`` accepts them, so it can seed each decision by episode and turn
    (and follow each episode, e.g. to recalibrate). After ``act``, ``last_details`` holds one JSON-safe dict (or
    ``None``) per env with what the agent wants recorded for that step (e.g. per-choice probabilities).
    """

    name: str
    stats: AgentStats
    last_details: list[dict[str, Any] | None]

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, observations: list[str], infos: list[dict[str, Any]]) -> list[str]: ...
