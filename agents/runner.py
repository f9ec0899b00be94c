"""The batched episode runner: many env copies stepped together, one ``agent.act`` call per step.

Episode ``i`` is seeded with ``seed + i``. Up to ``num_envs`` episodes are live at once; when one finishes its
slot takes the next pending episode (no autoreset, no wasted decisions). With every observation the runner passes
the agent its ``DecisionKey`` (episode seed, turn; ``fairgym.agents.base``) when the agent's ``act`` accepts
``decision_keys``, so an agent that seeds each decision from its key (every fairgym agent does) gives records that
do not depend on the batch size or on resuming. Each finished episode is appended and flushed to
``out_dir/episodes.jsonl``; a rerun with the same arguments resumes: episodes already recorded are skipped, none
is lost or repeated.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairgym.agents.base import Agent, DecisionKey, accepts_decision_keys
from fairgym.envs import records
from fairgym.runfiles import EPISODES_FILE, RUN_STATS_FILE, write_json


@dataclass
class _Slot:
    """One live episode: its env, index and seed, pending observation/info, state at reset and the steps so far."""

    env: Any
    index: int
    seed: int
    observation: str
    info: dict[str, Any]
    start: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a crash mid-write) so the next append starts on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _check_record(record: dict[str, Any], env_id: str, env_kwargs: dict[str, Any], seed: int, agent: str) -> None:
    """A recorded episode must come from the same run settings, else resuming would mix two runs."""
    expected = {"env_id": env_id, "env_kwargs": env_kwargs, "seed": seed + record["index"], "agent": agent}
    for key, value in expected.items():
        if record.get(key) != value:
            raise ValueError(
                f"episodes.jsonl already holds episode {record['index']} with {key}={record.get(key)!r}, but this "
                f"run has {key}={value!r}. Use another output folder (--out) or the settings of the recorded run.")


def load_recorded(path: Path, env_id: str, env_kwargs: dict[str, Any], seed: int, agent: str) -> dict[int, dict]:
    """Recorded episodes by index, checked against the run settings (a torn last line is ignored)."""
    done: dict[int, dict] = {}
    for record in records.iter_episodes(path):
        _check_record(record, env_id, env_kwargs, seed, agent)
        done[record["index"]] = record
    return done


def make_run_env(env_id: str, env_kwargs: dict[str, Any], env_url: str | None = None) -> Any:
    """One env of a run: ``make_env`` here, or a session of the env served at ``env_url`` (``fairgym serve``)."""
    if env_url:
        from fairgym.serve.remote import make_remote_env

        return make_remote_env(env_url, env_id, **env_kwargs)
    from fairgym.envs import make_env

    return make_env(env_id, **env_kwargs)


def _make_envs(env_id: str, env_kwargs: dict[str, Any], count: int, env_url: str | None = None) -> list[Any]:
    return [make_run_env(env_id, env_kwargs, env_url) for _ in range(max(count, 1))]


def _start(env: Any, index: int, seed: int) -> _Slot:
    observation, info = env.reset(seed=seed + index)
    start_state = getattr(env.unwrapped, "start_state", None)
    return _Slot(env=env, index=index, seed=seed + index, observation=observation, info=info,
                 start=start_state() if start_state else None)


@dataclass(frozen=True)
class _Options:
    """How the loop calls the agent and what it records."""

    keyed: bool  # the agent's act takes decision_keys
    record_observations: bool


def _step_batch(slots: list[_Slot], agent: Agent, options: _Options) -> list[tuple[_Slot, bool]]:
    """One agent call for every live slot, then one env step each; returns (slot, episode finished)."""
    observations, infos = [s.observation for s in slots], [s.info for s in slots]
    if options.keyed:
        decision_keys = [DecisionKey(episode_seed=s.seed, turn=len(s.steps)) for s in slots]
        keyed: Any = agent  # its act takes decision_keys (accepts_decision_keys checked it)
        actions = keyed.act(observations, infos, decision_keys=decision_keys)
    else:
        actions = agent.act(observations, infos)
    if len(actions) != len(slots):
        raise RuntimeError(f"agent {agent.name!r} returned {len(actions)} actions for {len(slots)} observations")
    details = (list(getattr(agent, "last_details", None) or []) + [None] * len(slots))[: len(slots)]
    out = []
    for slot, action, detail in zip(slots, actions, details, strict=True):
        observation, reward, terminated, truncated, info = slot.env.step(action)
        shown = slot.observation if options.record_observations else None
        slot.steps.append(records.step_record(shown, slot.info, action, reward, info,
                                              terminated=terminated, truncated=truncated, agent_details=detail))
        slot.observation, slot.info = observation, info
        out.append((slot, terminated or truncated))
    return out


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="ep", disable=not (enabled and sys.stderr.isatty()))


def calibrate(agent: Agent, env: Any, seed: int) -> None:
    """Give the agent the env's known parameters when it asks for them (``agent.calibrate(env)``).

    The env is reset with ``seed`` first, so hooks that read the pending state (e.g. default actions) work.
    Agents that do not apply to the env raise ``ValueError`` here, before anything is written.
    """
    hook = getattr(agent, "calibrate", None)
    if hook is not None:
        env.reset(seed=seed)
        hook(env.unwrapped)


def _episodes_loop(
    env_id: str, env_kwargs: dict[str, Any], agent: Agent, envs: list[Any], todo: list[int], seed: int,
    options: _Options,
) -> Iterator[dict[str, Any]]:
    """Step the episodes in ``todo`` with ``len(envs)`` live at once; yield each record as it finishes."""
    pending = iter(todo)
    # envs first: zip stops at the shorter without drawing an index it cannot use
    slots = [_start(env, i, seed) for env, i in zip(envs, pending, strict=False)]
    while slots:
        live = []
        for slot, finished in _step_batch(slots, agent, options):
            if not finished:
                live.append(slot)
                continue
            yield records.episode_record(env_id=env_id, env_kwargs=env_kwargs, seed=slot.seed,
                                         index=slot.index, agent=agent.name,
                                         groups=list(getattr(slot.env.unwrapped, "groups", ())), steps=slot.steps,
                                         start=slot.start)
            nxt = next(pending, None)
            if nxt is not None:
                live.append(_start(slot.env, nxt, seed))
        slots = live


def run_episodes(
    env_id: str,
    agent: Agent,
    *,
    episodes: int,
    seed: int = 0,
    out_dir: str | Path | None = None,
    env_kwargs: dict[str, Any] | None = None,
    num_envs: int = 8,
    progress: bool = True,
    record_observations: bool = True,
    env_url: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``episodes`` seeded episodes of ``env_id`` with ``agent``, batching ``num_envs`` envs per agent call.

    Args:
        env_id: a registered env id, e.g. ``"fairgym/Lending-v0"``.
        agent: any object following ``fairgym.agents.base.Agent``; ``agent.calibrate(env)`` is called first
            when the agent defines it, and ``agent.reset(seed)`` before the first step.
        episodes: episodes to run; episode ``i`` is seeded with ``seed + i``.
        seed: the base seed.
        out_dir: when given, each finished episode is appended and flushed to ``out_dir/episodes.jsonl`` and the
            agent's counters are written to ``out_dir/run_stats.json``; episodes already recorded there (same
            env, kwargs, agent and seed) are skipped, so a rerun resumes.
        env_kwargs: keyword arguments for ``make_env``.
        num_envs: env copies stepped together (one agent call per step for all of them).
        progress: show a tqdm bar (only when stderr is a terminal).
        record_observations: keep each step's observation text in the record (training data and LLM replays
            need it); ``False`` writes ``null`` instead, for long episodes whose metrics need only the structure.
        env_url: play the episodes on the env served there (``fairgym serve``; one session per env copy) instead
            of in this process; the records are the same.

    Returns:
        The records of episodes ``0 .. episodes - 1`` (already recorded and new), sorted by index; a folder
        holding more episodes than asked for keeps them, but they are not returned.

    Raises:
        ValueError: bad arguments, or ``out_dir`` holding episodes of a different run.
    """
    _check_args(episodes, seed, num_envs)
    env_kwargs = dict(env_kwargs or {})
    path = Path(out_dir) / EPISODES_FILE if out_dir is not None else None
    done = load_recorded(path, env_id, env_kwargs, seed, agent.name) if path else {}
    todo = [i for i in range(episodes) if i not in done]
    envs = _make_envs(env_id, env_kwargs, min(num_envs, len(todo)), env_url)
    try:
        calibrate(agent, envs[0], seed)
        agent.reset(seed)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            _repair_tail(path)
        started, steps = time.perf_counter(), 0
        options = _Options(keyed=accepts_decision_keys(agent), record_observations=record_observations)
        with _progress(episodes, episodes - len(todo), progress, f"{agent.name} on {env_id}") as bar:
            for record in _episodes_loop(env_id, env_kwargs, agent, envs, todo, seed, options):
                if path:
                    records.append_episode(path, record)
                done[record["index"]] = record
                steps += record["length"]
                bar.update(1)
    finally:
        for env in envs:  # a served env's session is released now, not when the process ends
            env.close()
    if path:
        _write_run_stats(path.parent, agent, len(todo), steps, time.perf_counter() - started)
    return [done[i] for i in range(episodes) if i in done]


def _check_args(episodes: int, seed: int, num_envs: int) -> None:
    for name, value, low in (("episodes", episodes, 0), ("seed", seed, 0), ("num_envs", num_envs, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _write_run_stats(folder: Path, agent: Agent, episodes: int, steps: int, seconds: float) -> None:
    """Agent counters and throughput of this invocation, beside the episodes."""
    stats = {"episodes_run": episodes, "steps_run": steps, "wall_seconds": round(seconds, 4),
             "steps_per_second": round(steps / seconds, 2) if seconds > 0 else None,
             "agent": agent.stats.as_dict() if hasattr(agent, "stats") else {}}
    write_json(folder / RUN_STATS_FILE, stats)
