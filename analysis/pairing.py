"""Groups compared on paired episodes: a balanced run (``fairgym run --balance-groups``) plays every seed once per
group, so each seed gives one episode per group and the groups differ only in the group (and what it changes).

:func:`paired_episodes` finds the complete pairs (every group played with that seed; an episode records its group
as ``options["group"]``). :func:`paired_differences` computes each episode's run-level metrics
(``compute_metrics`` on the episode alone), and per metric each group's mean over the seeds and the paired
difference from the first group: its mean with a 95% t-interval over seeds, and in how many seeds it is above or
below 0. A paired difference cancels what the seed decides (the interlocutor's templates, the applicants' random
numbers), so it is a far tighter comparison than two unpaired group means.
"""

from __future__ import annotations

import math
from typing import Any

from fairgym.analysis.metrics import compute_metrics
from fairgym.analysis.stats import seed_ci
from fairgym.analysis.trajectories import run_groups
from fairgym.envs.records import OPTIONS

# run-level keys that describe the run's size rather than the policy, and parity gaps (one group per episode)
NOT_PAIRED = ("task/episodes", "task/steps")


def episode_group(episode: dict[str, Any]) -> str | None:
    """The group an episode was pinned to (``options["group"]``), or ``None`` for an unbalanced run's episode."""
    group = (episode.get(OPTIONS) or {}).get("group")
    return str(group) if group is not None else None


def paired_episodes(episodes: list[dict[str, Any]]) -> tuple[list[str], dict[int, dict[str, dict[str, Any]]]]:
    """``(groups, {seed: {group: episode}})`` over the seeds played with every group; empty when the run is not
    balanced (no episode pinned to a group)."""
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for episode in episodes:
        group = episode_group(episode)
        if group is not None:
            by_seed.setdefault(int(episode["seed"]), {})[group] = episode
    if not by_seed:
        return [], {}
    groups = [g for g in run_groups(episodes) if any(g in played for played in by_seed.values())]
    return groups, {s: played for s, played in sorted(by_seed.items()) if set(groups) <= set(played)}


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(float(value))


def paired_differences(episodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per run-level metric: each group's mean over the paired seeds, and each other group's paired difference from
    the first group (mean, 95% t-interval over seeds, seeds above / below 0). ``None`` when the run is unbalanced.

    Returns:
        ``{"groups": [...], "seeds": n, "rows": [{"metric", "means": {group: mean}, "differences": {group:
        {"mean", "low", "high", "above", "below"}}}]}``; a metric undefined in some episode of a pair leaves that
        seed out of its row.
    """
    groups, pairs = paired_episodes(episodes)
    if len(groups) < 2 or not pairs:
        return None
    values = {seed: {g: compute_metrics([ep]) for g, ep in played.items()} for seed, played in pairs.items()}
    first = groups[0]
    keys = [k for k in next(iter(values.values()))[first] if k.count("/") == 1 and k not in NOT_PAIRED]
    rows = []
    for key in keys:
        seeds = [s for s in values if all(_defined(values[s][g].get(key)) for g in groups)]
        if not seeds:
            continue
        means = {g: sum(values[s][g][key] for s in seeds) / len(seeds) for g in groups}
        differences = {}
        for g in groups[1:]:
            diffs = [values[s][g][key] - values[s][first][key] for s in seeds]
            ci = seed_ci(diffs)
            differences[g] = {"mean": ci["mean"], "low": ci["low"], "high": ci["high"],
                              "above": sum(d > 0 for d in diffs), "below": sum(d < 0 for d in diffs),
                              "seeds": len(diffs)}
        rows.append({"metric": key, "means": means, "differences": differences})
    return {"groups": groups, "seeds": len(pairs), "rows": rows}


def _cell(difference: dict[str, Any]) -> str:
    mean, low, high = difference["mean"], difference["low"], difference["high"]
    if low == high:  # no spread over seeds: a t-interval of width 0 would claim a precision it does not have
        return f"{mean:+.3g}, the same in all {difference['seeds']} seeds"
    interval = f" [{low:.3g}, {high:.3g}]" if not (math.isnan(low) or math.isnan(high)) else " (one seed)"
    return f"{mean:+.3g}{interval}; {difference['above']} above, {difference['below']} below 0 of {difference['seeds']}"


def paired_table(episodes: list[dict[str, Any]]) -> tuple[str, list[str], list[list[str]]] | None:
    """The report's paired comparison (``None`` for an unbalanced run): a sentence saying what it is, then the
    header and rows of a table with one row per metric: each group's mean and each other group's paired difference
    from the first."""
    result = paired_differences(episodes)
    if result is None:
        return None
    groups, first = result["groups"], result["groups"][0]
    header = ["metric", *[f"mean {g}" for g in groups], *[f"{g} − {first} (paired, 95% CI)" for g in groups[1:]]]
    rows = [[f"`{row['metric']}`", *[f"{row['means'][g]:.3g}" for g in groups],
             *[_cell(row["differences"][g]) for g in groups[1:]]] for row in result["rows"]]
    intro = (f"Every seed was played once per group ({result['seeds']} seeds with every group of {', '.join(groups)}). "
             f"Each metric is computed on each episode alone; the paired difference is, per seed, the group's value "
             f"minus {first}'s, averaged over seeds with a 95% t-interval, and counted above and below 0.")
    return intro, header, rows
