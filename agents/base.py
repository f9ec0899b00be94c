"""The agent protocol: one batched call for many envs at once, raw text out (the env parses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


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
    text per env; ``act([], [])`` returns ``[]``. After ``act``, ``last_details`` holds one JSON-safe dict (or
    ``None``) per env with what the agent wants recorded for that step (e.g. per-choice probabilities).
    """

    name: str
    stats: AgentStats
    last_details: list[dict[str, Any] | None]

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, observations: list[str], infos: list[dict[str, Any]]) -> list[str]: ...
