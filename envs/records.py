"""Episode records: one JSON object per finished episode, every step inside.

Metrics are pure functions of these records. A step record joins the *decision* keys of the info seen before
the action (turn, group, choices, context) with the *result* keys of the info returned after it
(action_valid, parse_error, action, outcome), the raw action text, the reward and what the agent chose to
record (``agent``, e.g. per-choice probabilities).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fairgym.envs import keys
from fairgym.runfiles import json_safe

START = "start"  # an episode record's hidden state at reset (``env.start_state()``), or None
OPTIONS = "options"  # an episode record's reset options (``{"group": g}`` in a balanced run); absent when none


def step_record(
    observation: str | None,
    info_before: dict[str, Any],
    action_text: str,
    reward: float,
    info_after: dict[str, Any],
    *,
    terminated: bool = False,
    truncated: bool = False,
    agent_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One step as recorded in ``episodes.jsonl`` (``observation=None``: a compact record without the text)."""
    record: dict[str, Any] = {k: info_before.get(k) for k in keys.DECISION_KEYS}
    record["observation"] = observation
    if keys.MESSAGES in info_before:
        record[keys.MESSAGES] = info_before[keys.MESSAGES]
    record["action_text"] = action_text
    record.update({k: info_after.get(k) for k in keys.RESULT_KEYS})
    record["reward"] = float(reward)
    record["terminated"] = bool(terminated)
    record["truncated"] = bool(truncated)
    record["agent"] = agent_details
    return record


def step_info(step: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``step_record``: the decision ``info`` the agent saw at a recorded step (the decision keys,
    plus the chat messages where the env keeps a conversation), so an agent can decide that step again."""
    info = {k: step.get(k) for k in keys.DECISION_KEYS}
    if step.get(keys.MESSAGES) is not None:
        info[keys.MESSAGES] = step[keys.MESSAGES]
    return info


def episode_infos(episode: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``info`` the agent saw at each recorded step of an episode, as the env gave it: the step's decision keys
    (``step_info``) with the result keys of the step before (what the previous action led to; ``None`` / ``True``
    at the first step, as after ``reset``), so an agent that follows episodes can decide them again in order."""
    infos, previous = [], None
    for step in episode["steps"]:
        info = step_info(step)
        info.update({k: (previous.get(k) if previous else None) for k in keys.RESULT_KEYS})
        if previous is None:
            info[keys.ACTION_VALID] = True
        infos.append(info)
        previous = step
    return infos


def episode_record(
    *, env_id: str, env_kwargs: dict[str, Any], seed: int, index: int, agent: str, groups: list[str],
    steps: list[dict[str, Any]], start: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One finished episode as recorded in ``episodes.jsonl``; ``start`` is the env's state at reset, ``options``
    the options it was reset with (recorded only when there were some)."""
    record = {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "seed": int(seed),
        "index": int(index),
        "agent": agent,
        "groups": list(groups),
        "length": len(steps),
        "return": float(sum(s["reward"] for s in steps)),
        START: start,
        "steps": steps,
    }
    if options is not None:
        record[OPTIONS] = options
    return record


def _policy_action(policy: Any, observation: str, info: dict[str, Any]) -> str:
    """One action text from a callable ``policy(observation, info)`` or an agent (``act([obs], [info])[0]``)."""
    if hasattr(policy, "act"):
        return policy.act([observation], [info])[0]
    return policy(observation, info)


def _env_id(env: Any) -> str:
    """The id the env was made under, or the registered id of its class (metrics look the family up by it)."""
    spec = getattr(env, "spec", None) or getattr(env.unwrapped, "spec", None)
    if spec is not None:
        return spec.id
    import gymnasium as gym

    cls = type(env.unwrapped)
    path = f"{cls.__module__}:{cls.__name__}"
    found = [i for i, s in gym.registry.items() if s.entry_point in (path, cls)]
    if not found:
        raise ValueError(f"{cls.__name__} is not registered with Gymnasium, so its record could name no env id; "
                         "build it with fairgym.envs.make_env (or gym.make) from a registered id.")
    return found[0]


def record_episode(env: Any, policy: Any, seed: int, *, index: int = 0, options: dict[str, Any] | None = None,
                   agent: str | None = None, record_observations: bool = True) -> dict[str, Any]:
    """Play one episode of ``env`` with ``policy`` and return its record, as ``fairgym run`` writes it, so that
    ``fairgym.analysis.metrics.compute_metrics([record, ...])`` and the reports work on hand-stepped episodes.

    Args:
        env: a fairgym env (from ``make_env`` or ``gym.make``, wrapped or not).
        policy: ``policy(observation, info) -> action text``, or an agent (``act(observations, infos)``; it is
            calibrated on the env first when it asks, as the runner does).
        seed: the episode's seed (``env.reset(seed=seed, options=options)``).
        index: the episode's index in the run (records of one run have distinct indices).
        options: reset options (e.g. ``{"group": "Black"}`` where the env pins a group).
        agent: the name recorded (default: the agent's ``name``, the function's name).
        record_observations: keep each step's observation text.

    Returns:
        The episode record: every step (``step_record``), the state at reset (``start``), the return.
    """
    base = env.unwrapped
    if hasattr(policy, "act") and hasattr(policy, "calibrate"):
        env.reset(seed=seed, options=options)
        policy.calibrate(base)
    observation, info = env.reset(seed=seed, options=options)
    start = base.start_state() if hasattr(base, "start_state") else None
    steps: list[dict[str, Any]] = []
    done = False
    while not done:
        action = _policy_action(policy, observation, info)
        next_observation, reward, terminated, truncated, next_info = env.step(action)
        steps.append(step_record(observation if record_observations else None, info, action, reward, next_info,
                                 terminated=terminated, truncated=truncated))
        observation, info, done = next_observation, next_info, terminated or truncated
    spec = getattr(env, "spec", None)
    name = agent or getattr(policy, "name", None) or getattr(policy, "__name__", type(policy).__name__)
    return episode_record(env_id=_env_id(env), env_kwargs=dict(getattr(spec, "kwargs", None) or {}), seed=seed,
                          index=index, agent=str(name), groups=list(getattr(base, "groups", ())), steps=steps,
                          start=start, options=options)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def dumps(record: dict[str, Any]) -> str:
    """One JSON line; NaN is written as null so the file stays standard JSON.

    Most records hold no NaN, so they are written as they are; only one that does is copied with nulls
    (walking a 20,000-step record for NaNs costs more than writing it).
    """
    try:
        return json.dumps(record, default=_json_default, allow_nan=False)
    except ValueError:  # a NaN (or inf) somewhere
        return json.dumps(json_safe(record), allow_nan=False)


def append_episode(path: str | Path, record: dict[str, Any]) -> None:
    """Append one episode and flush it to disk, so a crash loses at most the episode in flight."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class RecordWarning(UserWarning):
    """A record file damaged in a way reading can step over: a torn last line, or episodes recorded twice alike."""


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The JSON object on each line of ``path``, in file order (none when it does not exist).

    A torn last line (no newline: a write cut short by a crash) is skipped with a ``RecordWarning`` naming the file
    and line; any other line that is not a JSON object is an error naming them.

    Raises:
        ValueError: a damaged line before the last.
    """
    for _, _, record in _numbered(path):
        yield record


def _numbered(path: str | Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(line number, line, record)`` for each JSON line of ``path``, damaged lines as ``iter_jsonl`` says."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                warnings.warn(f"{path}, line {number}: torn last line (a write cut short, e.g. by a crash), "
                              "skipped; resuming the run records that episode again.", RecordWarning, stacklevel=4)
                return
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}, line {number}: not a JSON record ({exc}); the file is damaged there. "
                                 "Delete or repair that line (a rerun then records its episode again).") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}, line {number}: holds a JSON {type(record).__name__}, not a record.")
            yield number, line, record


def _episodes(indices: set[int], limit: int = 6) -> str:
    """``episode 3``, ``episodes 1, 2``, ``episodes 0, 1, 2, 3, 4, 5 and 1994 more``."""
    values = sorted(indices)
    shown = ", ".join(str(v) for v in values[:limit]) + (f" and {len(values) - limit} more" if len(values) > limit
                                                         else "")
    return f"episode{'s' if len(values) > 1 else ''} {shown}"


def iter_episodes(path: str | Path) -> Iterator[dict[str, Any]]:
    """Episode records in file order, each index once (damaged lines as in ``iter_jsonl``).

    An episode recorded again with the very same line (two runs of one config writing one folder) is dropped with
    one ``RecordWarning``; an index recorded twice with different contents is an error naming the indices.

    Raises:
        ValueError: a damaged line before the last, a record without an index, or differing duplicates.
    """
    seen: dict[int, tuple[int, int]] = {}  # index -> (line number, hash of the line)
    copies: list[int] = []
    clashes: list[tuple[int, int, int]] = []  # (index, first line, later line)
    for number, line, record in _numbered(path):
        index = record.get("index")
        if not isinstance(index, int):
            raise ValueError(f"{path}, line {number}: not an episode record (no integer 'index').")
        if index not in seen:
            seen[index] = (number, hash(line))
            yield record
        elif seen[index][1] == hash(line):
            copies.append(index)
        else:
            clashes.append((index, seen[index][0], number))
    if clashes:
        index, first, later = clashes[0]
        raise ValueError(f"{path} records {_episodes({c[0] for c in clashes})} more than once with different "
                         f"contents (episode {index}: lines {first} and {later}), as when two runs write one folder; "
                         "keep one line per episode, or rerun into a new folder.")
    if copies:
        warnings.warn(f"{path} records {_episodes(set(copies))} twice with identical contents "
                      f"({len(copies)} extra lines, as when two runs of one config write one folder); each is read "
                      "once.", RecordWarning, stacklevel=2)


def read_episodes(path: str | Path) -> list[dict[str, Any]]:
    """All complete episode records, sorted by episode index (see ``iter_episodes`` for damaged files)."""
    return sorted(iter_episodes(path), key=lambda r: r["index"])
