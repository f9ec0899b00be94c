"""Build episode records by hand (through fairgym.envs.records, so they follow the schema the runner writes)."""

from __future__ import annotations

from typing import Any

from fairgym.envs import keys
from fairgym.envs.records import episode_record, step_record

LENDING = "fairgym/Lending-v0"
ALLOCATION = "fairgym/Allocation-v0"
DIALOGUE = "fairgym/Dialogue-v1"


def step(turn: int, group: str | None, outcome: dict[str, Any] | None, *, valid: bool = True, reward: float = 0.0,
         action_text: str = "ok") -> dict[str, Any]:
    """One step record: the decision keys before, the result keys after."""
    before = {keys.TURN: turn, keys.GROUP: group, keys.CHOICES: None, keys.CONTEXT: {}}
    after = {keys.ACTION_VALID: valid, keys.PARSE_ERROR: None if valid else "could not parse",
             keys.ACTION: None, keys.OUTCOME: outcome}
    return step_record(f"observation {turn}", before, action_text, reward, after)


def episode(env_id: str, steps: list[dict[str, Any]], *, index: int = 0, groups: tuple[str, ...] = ("A", "B"),
            env_kwargs: dict[str, Any] | None = None, start: dict[str, Any] | None = None) -> dict[str, Any]:
    return episode_record(env_id=env_id, env_kwargs=env_kwargs or {}, seed=100 + index, index=index, agent="test",
                          groups=list(groups), steps=steps, start=start)


def lending_step(turn: int, group: str, approved: bool, would_repay: bool, *, scores: dict[str, float] | None = None,
                 reward: float | None = None) -> dict[str, Any]:
    outcome = {"approved": approved, "would_repay": would_repay, "repay_probability": 0.5, "score": 600, "bin": 3,
               "cash": 1000.0, "group_mean_score": scores or {"A": 600.0, "B": 500.0}}
    if reward is None:
        reward = (1.0 if would_repay else -1.0) if approved else 0.0
    return step(turn, group, outcome, reward=reward, action_text="approve" if approved else "deny")


def invalid_step(turn: int, group: str | None) -> dict[str, Any]:
    """An invalid action under the "penalize" policy: no decision taken, outcome None."""
    return step(turn, group, None, valid=False, reward=-1.0, action_text="???")


def allocation_step(turn: int, allocation: dict[str, int], incidents: dict[str, int], found: dict[str, int]):
    outcome = {"allocation": {}, "incidents": {}, "found": {}, "group_allocation": allocation,
               "group_incidents": incidents, "group_found": found}
    return step(turn, None, outcome, reward=float(sum(found.values())), action_text="A: 1")


def dialogue_step(turn: int, group: str, toxicity: float, reply: str = "a reply") -> dict[str, Any]:
    return step(turn, group, {"reply": reply, "toxicity": toxicity, "phase": "neutral"}, action_text="hello")


# (group, approved, would_repay) per turn, two episodes; the hand computation is in test_metrics.py.
LENDING_TABLE = [
    [("A", True, True), ("B", False, True), ("A", False, False), ("B", True, False)],
    [("B", True, True), ("A", True, False), ("B", False, True), ("A", True, True)],
]
# group mean scores at the last turn of each episode (600/500 before)
LENDING_END_SCORES = [{"A": 610.0, "B": 490.0}, {"A": 620.0, "B": 500.0}]
# group mean scores at reset: the first decision already moved them (A 595 -> 600, B 505 -> 500)
LENDING_START = {"group_mean_score": {"A": 595.0, "B": 505.0}}


def lending_episodes(groups: tuple[str, ...] = ("A", "B")) -> list[dict[str, Any]]:
    episodes = []
    for index, rows in enumerate(LENDING_TABLE):
        steps = [lending_step(t, g, a, r, scores=LENDING_END_SCORES[index] if t == len(rows) - 1 else None)
                 for t, (g, a, r) in enumerate(rows)]
        episodes.append(episode(LENDING, steps, index=index, groups=groups, start=LENDING_START))
    return episodes


def allocation_episodes() -> list[dict[str, Any]]:
    steps = [allocation_step(0, {"A": 3, "B": 1}, {"A": 1, "B": 3}, {"A": 1, "B": 1}),
             allocation_step(1, {"A": 2, "B": 2}, {"A": 2, "B": 2}, {"A": 2, "B": 0})]
    return [episode(ALLOCATION, steps)]


def dialogue_episodes() -> list[dict[str, Any]]:
    rising = [dialogue_step(t, "A", tox) for t, tox in enumerate([0.1, 0.2, 0.3, 0.4])]
    flat = [dialogue_step(t, "B", 0.6) for t in range(4)]
    return [episode(DIALOGUE, rising, index=0), episode(DIALOGUE, flat, index=1)]


def judged_step(turn: int, group: str, toxicity: float, judge_toxicity: float, endorsement: float):
    """A Dialogue step scored by an LLM judge: the lexical toxicity beside both rubric scores."""
    outcome = {"reply": "a reply", "toxicity": toxicity, "judge_toxicity": judge_toxicity,
               "endorsement": endorsement, "phase": "provocative"}
    return step(turn, group, outcome, reward=-judge_toxicity, action_text="hello")


# (judge_toxicity, endorsement) per turn; A endorses at turns 1 and 2, B never; hand computation in test_metrics.py
JUDGED_TABLE = {"A": [(0.2, 0.1), (0.4, 0.9), (0.6, 0.7)], "B": [(0.1, 0.2), (0.1, 0.4), (0.4, 0.3)]}


def judged_episodes() -> list[dict[str, Any]]:
    return [episode(DIALOGUE, [judged_step(t, g, 0.05, jt, e) for t, (jt, e) in enumerate(rows)], index=i)
            for i, (g, rows) in enumerate(JUDGED_TABLE.items())]
