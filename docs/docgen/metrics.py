"""The metric keys each env family reports, read from the code itself: seeded episodes of the family's fair teacher
go through ``compute_metrics`` and ``trajectories``, and the keys that come out are listed with their scope."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from docgen.common import fmt, md_table

EPISODES, MAX_STEPS, SEED = 4, 6, 0


@dataclass(frozen=True)
class Key:
    """One metric key as it appears in ``metrics.json``, with ``<group>`` for a group descriptor."""

    key: str
    scope: str
    trajectory: str
    example: str


@functools.cache
def _run(env_id: str) -> tuple[dict[str, float], dict[str, Any], list[str]]:
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes
    from fairgym.analysis.metrics import compute_metrics, trajectories
    from fairgym.analysis.trajectories import run_groups
    from fairgym.envs import env_profile

    agent = make_agent(env_profile(env_id).fair_teacher)
    episodes = run_episodes(env_id, agent, episodes=EPISODES, seed=SEED, env_kwargs={"max_steps": MAX_STEPS},
                            progress=False)
    return compute_metrics(episodes), trajectories(episodes), run_groups(episodes)


def family_keys(env_id: str) -> list[Key]:
    """The keys of ``env_id``'s metrics, one row per key pattern (per-group keys folded into ``<group>``)."""
    from fairgym.analysis.trajectories import ALL, CUMULATIVE

    metrics, traj, groups = _run(env_id)
    rows: dict[str, Key] = {}
    for key, value in metrics.items():
        base, _, last = key.rpartition("/")
        per_group = last in groups
        name = base if per_group else key
        pattern = f"{base}/<group>" if per_group else key
        if pattern in rows:
            continue
        kinds = [label for label, series in (("per turn", name), ("cumulative", name + CUMULATIVE))
                 if series in traj and (ALL in traj[series] or per_group)]
        if per_group:
            example = ", ".join(f"{g}: {fmt(metrics.get(f'{base}/{g}', math.nan))}" for g in groups)
        else:
            example = fmt(value)
        rows[pattern] = Key(pattern, "per group" if per_group else "run", " + ".join(kinds) or "—", example)
    return list(rows.values())


def keys_section() -> str:
    """A table of keys per registered env (headed by the env's name, so pages can link ``metrics.md#lending-v0``)."""
    from docgen.envs import env_ids, page_path
    from fairgym.envs import env_profile

    out = []
    for env_id in env_ids():
        name = env_id.split("/")[-1]
        rows = [[f"`{k.key}`", k.scope, k.trajectory, k.example] for k in family_keys(env_id)]
        out.append(f"### {name}\n\nFamily `{env_profile(env_id).family}` ([env page](envs/{page_path(env_id)[5:]})); "
                   f"{EPISODES} episodes of {MAX_STEPS} steps by its fair teacher, seed {SEED}:\n\n"
                   + md_table(["key", "scope", "trajectories", "example value"], rows))
    return "\n".join(out)
