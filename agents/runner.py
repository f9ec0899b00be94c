"""The batched episode runner: many env copies stepped together, one ``agent.act`` call per step.

Episode ``i`` is seeded with ``seed + i``. Up to ``num_envs`` episodes are live at once; when one finishes its
slot takes the next pending episode (no autoreset, no wasted decisions). With every observation the runner passes
the agent its ``DecisionKey`` (episode seed, turn; ``fairgym.agents.base``) when the agent's ``act`` accepts
``decision_keys``, so an agent that seeds each decision from its key (every fairgym agent does) gives records that
do not depend on the batch size or on resuming. Each finished episode is appended and flushed to
``out_dir/episodes.jsonl``; a rerun with the same arguments resumes: episodes already recorded are skipped, none
is lost or repeated, and the run says how many it found and how many it adds.

With ``balance_groups`` every seed is played once per group of the env (``reset(options={"group": g})``, for envs
whose class declares ``pins_group``): episode ``j`` has seed ``seed + j // len(groups)`` and group
``groups[j % len(groups)]``, so groups are compared on paired episodes that share their random numbers
(``fairgym.analysis.pairing`` reads the pairs).

Progress: a tqdm bar on a terminal, else a plain line every ``progress_every`` seconds (``fairgym.agents.progress``),
so logs of nohup, Slurm or CI jobs show it too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairgym.agents.base import Agent, DecisionKey, accepts_decision_keys
from fairgym.agents.progress import PROGRESS_EVERY, LogProgress, invocation_stats, merge_run_stats, resume_line
from fairgym.envs import records
from fairgym.runfiles import EPISODES_FILE, RUN_STATS_FILE, read_json, write_json


@dataclass(frozen=True)
class Planned:
    """One episode of the run: its index, its seed and its reset options (``{"group": g}`` when balanced)."""

    index: int
    seed: int
    options: dict[str, Any] | None = None


def plan_entry(index: int, seed: int, groups: tuple[str, ...] | None = None) -> Planned:
    """Episode ``index`` has seed ``seed + index``; balanced over ``groups``, seed ``seed + index // len(groups)``
    and group ``groups[index % len(groups)]`` (each seed once per group)."""
    if not groups:
        return Planned(index, seed + index)
    return Planned(index, seed + index // len(groups), {"group": groups[index % len(groups)]})


def plan_episodes(episodes: int, seed: int, groups: tuple[str, ...] | None = None) -> list[Planned]:
    """The run's episodes: ``episodes`` seeds, each once (or, balanced over ``groups``, once per group)."""
    return [plan_entry(i, seed, groups) for i in range(episodes * max(1, len(groups or ())))]


@dataclass
class _Slot:
    """One live episode: its env, index and seed, pending observation/info, state at reset and the steps so far."""

    env: Any
    index: int
    seed: int
    options: dict[str, Any] | None
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


def _check_record(record: dict[str, Any], env_id: str, env_kwargs: dict[str, Any], planned: Planned,
                  agent: str) -> None:
    """A recorded episode must come from the same run settings, else resuming would mix two runs."""
    expected = {"env_id": env_id, "env_kwargs": env_kwargs, "seed": planned.seed, "agent": agent,
                records.OPTIONS: planned.options}
    for key, value in expected.items():
        if record.get(key) != value:
            raise ValueError(
                f"episodes.jsonl already holds episode {record['index']} with {key}={record.get(key)!r}, but this "
                f"run has {key}={value!r}. Use another output folder (--out) or the settings of the recorded run.")


def load_recorded(path: Path, env_id: str, env_kwargs: dict[str, Any], seed: int, agent: str,
                  groups: tuple[str, ...] | None = None) -> dict[int, dict]:
    """Recorded episodes by index, each checked against the run settings and its ``plan_entry`` (``groups``: the
    run is balanced over them); a torn last line is ignored."""
    done: dict[int, dict] = {}
    for record in records.iter_episodes(path):
        _check_record(record, env_id, env_kwargs, plan_entry(record["index"], seed, groups), agent)
        done[record["index"]] = record
    return done


def pinnable_groups(env: Any) -> tuple[str, ...]:
    """The env's groups when its class declares ``pins_group`` (``reset(options={"group": g})`` makes ``g`` the
    episode's group), for a run balanced over them.

    Raises:
        ValueError: the env cannot pin a group at reset.
    """
    base = env.unwrapped
    if not getattr(type(base), "pins_group", False):
        raise ValueError(f"balance_groups needs an env whose reset pins one group (options={{'group': ...}}); "
                         f"{type(base).__name__} does not (pins_group is not declared, e.g. its decisions span all "
                         "groups). Drop --balance-groups for this env.")
    return tuple(base.groups)


def make_run_env(env_id: str, env_kwargs: dict[str, Any], env_url: str | None = None) -> Any:
    """One env of a run: ``make_env`` here, or a session of the env served at ``env_url`` (``fairgym serve``)."""
    if env_url:
        from fairgym.serve.remote import make_remote_env

        return make_remote_env(env_url, env_id, **env_kwargs)
    from fairgym.envs import make_env

    return make_env(env_id, **env_kwargs)


def _make_envs(env_id: str, env_kwargs: dict[str, Any], count: int, env_url: str | None = None) -> list[Any]:
    return [make_run_env(env_id, env_kwargs, env_url) for _ in range(count)]


def _start(env: Any, planned: Planned) -> _Slot:
    observation, info = env.reset(seed=planned.seed, options=planned.options)
    start_state = getattr(env.unwrapped, "start_state", None)
    return _Slot(env=env, index=planned.index, seed=planned.seed, options=planned.options, observation=observation,
                 info=info, start=start_state() if start_state else None)


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


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, episodes: int = 1) -> None:
        return None

    def add_steps(self, steps: int) -> None:
        return None


def _progress(total: int, initial: int, enabled: bool, desc: str, every: float, max_steps: int | None) -> Any:
    """A tqdm bar on a terminal, plain lines every ``every`` seconds elsewhere (a log), nothing when disabled."""
    if not enabled:
        return _NoProgress()
    if not sys.stderr.isatty():
        return LogProgress(desc, total, initial, every=every, max_steps=max_steps)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc=desc, unit="ep")
    bar.add_steps = lambda steps: None  # the bar counts episodes only
    return bar


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
    env_id: str, env_kwargs: dict[str, Any], agent: Agent, envs: list[Any], todo: list[Planned],
    options: _Options, progress: Any = None,
) -> Iterator[dict[str, Any]]:
    """Step the episodes in ``todo`` with ``len(envs)`` live at once; yield each record as it finishes."""
    pending = iter(todo)
    # envs first: zip stops at the shorter without drawing an episode it cannot use
    slots = [_start(env, p) for env, p in zip(envs, pending, strict=False)]
    while slots:
        live = []
        stepped = _step_batch(slots, agent, options)
        if progress is not None:
            progress.add_steps(len(stepped))
        for slot, finished in stepped:
            if not finished:
                live.append(slot)
                continue
            yield records.episode_record(env_id=env_id, env_kwargs=env_kwargs, seed=slot.seed,
                                         index=slot.index, agent=agent.name,
                                         groups=list(getattr(slot.env.unwrapped, "groups", ())), steps=slot.steps,
                                         start=slot.start, options=slot.options)
            nxt = next(pending, None)
            if nxt is not None:
                live.append(_start(slot.env, nxt))
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
    balance_groups: bool = False,
    progress_every: float = PROGRESS_EVERY,
) -> list[dict[str, Any]]:
    """Run ``episodes`` seeded episodes of ``env_id`` with ``agent``, batching ``num_envs`` envs per agent call.

    Args:
        env_id: a registered env id, e.g. ``"fairgym/Lending-v0"``.
        agent: any object following ``fairgym.agents.base.Agent``; ``agent.calibrate(env)`` is called first
            when the agent defines it, and ``agent.reset(seed)`` before the first step.
        episodes: episodes to run; episode ``i`` is seeded with ``seed + i`` (with ``balance_groups``: seeds to
            run, each once per group).
        seed: the base seed.
        out_dir: when given, each finished episode is appended and flushed to ``out_dir/episodes.jsonl`` and the
            counters are added to ``out_dir/run_stats.json`` (totals over invocations, and each invocation's);
            episodes already recorded there (same env, kwargs, agent and seed) are skipped, so a rerun resumes.
        env_kwargs: keyword arguments for ``make_env``.
        num_envs: env copies stepped together (one agent call per step for all of them).
        progress: show progress on stderr: a tqdm bar on a terminal, else a plain line every ``progress_every``
            seconds; a resumed run says how many episodes it found and adds.
        record_observations: keep each step's observation text in the record (training data and LLM replays
            need it); ``False`` writes ``null`` instead, for long episodes whose metrics need only the structure.
        env_url: play the episodes on the env served there (``fairgym serve``; one session per env copy) instead
            of in this process; the records are the same.
        balance_groups: play every seed once per group of the env (``reset(options={"group": g})``; the env class
            must declare ``pins_group``), recorded as episode ``seed_index * len(groups) + group_index``.
        progress_every: seconds between progress lines when stderr is not a terminal.

    Returns:
        The records of the run's episodes (already recorded and new), sorted by index; a folder holding more
        episodes than asked for keeps them, but they are not returned.

    Raises:
        ValueError: bad arguments, ``out_dir`` holding episodes of a different run, or ``balance_groups`` on an
            env that cannot pin a group.
    """
    _check_args(episodes, seed, num_envs)
    env_kwargs = dict(env_kwargs or {})
    envs = _make_envs(env_id, env_kwargs, 1, env_url)
    try:  # every env is closed, a served env's session released, whatever fails after the first is made
        groups = pinnable_groups(envs[0]) if balance_groups else None
        plan = plan_episodes(episodes, seed, groups)
        path = Path(out_dir) / EPISODES_FILE if out_dir is not None else None
        done = load_recorded(path, env_id, env_kwargs, seed, agent.name, groups) if path else {}
        todo = [p for p in plan if p.index not in done]
        envs += _make_envs(env_id, env_kwargs, min(num_envs, len(todo)) - 1, env_url)
        calibrate(agent, envs[0], seed)
        agent.reset(seed)
        label = f"{agent.name} on {env_id}"
        found = sum(p.index in done for p in plan)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            _repair_tail(path)
            if progress and found:
                print(resume_line(f"{label} ({path.parent})", found, len(todo)), file=sys.stderr, flush=True)
        started, steps = time.perf_counter(), 0
        options = _Options(keyed=accepts_decision_keys(agent), record_observations=record_observations)
        max_steps = getattr(envs[0].unwrapped, "max_steps", None)
        with _progress(len(plan), found, progress and bool(todo), label, progress_every, max_steps) as bar:
            for record in _episodes_loop(env_id, env_kwargs, agent, envs, todo, options, bar):
                if path:
                    records.append_episode(path, record)
                done[record["index"]] = record
                steps += record["length"]
                bar.update(1)
    finally:
        for env in envs:
            env.close()
    if path:
        _write_run_stats(path.parent, agent, found, len(todo), steps, time.perf_counter() - started)
    return [done[p.index] for p in plan if p.index in done]


def _check_args(episodes: int, seed: int, num_envs: int) -> None:
    for name, value, low in (("episodes", episodes, 0), ("seed", seed, 0), ("num_envs", num_envs, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _write_run_stats(folder: Path, agent: Agent, found: int, episodes: int, steps: int, seconds: float) -> None:
    """This invocation's counts added to ``run_stats.json``: totals over invocations, and the list of them."""
    counters = agent.stats.as_dict() if hasattr(agent, "stats") else {}
    path = folder / RUN_STATS_FILE
    write_json(path, merge_run_stats(read_json(path), invocation_stats(found, episodes, steps, seconds, counters)))
