"""The run report: ``report.md`` and ``plots/*.png`` written beside a run's ``episodes.jsonl``.

The markdown pieces (:func:`run_markdown`, :func:`headline_markdown`, :func:`overall_markdown`,
:func:`plots_markdown`) take records, metrics or paths and return text, so other reports (a sweep) reuse them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from fairgym.analysis.metrics import (
    compute_metrics,
    read_metrics,
    split_metrics,
    table_rows,
    trajectories,
    trajectory_bands,
    write_metrics,
)
from fairgym.analysis.pairing import paired_table
from fairgym.analysis.plots import run_figures, save_figures
from fairgym.analysis.scorer_report import scorer_markdown
from fairgym.analysis.trajectories import run_env_id, run_profile
from fairgym.analysis.verdicts import run_flags
from fairgym.config import load_yaml
from fairgym.envs.profiles import FamilyProfile, resolve
from fairgym.envs.records import read_episodes
from fairgym.runfiles import CONFIG_FILE, EPISODES_FILE, METRICS_FILE, PLOTS_DIR, REPORT_FILE

# How to read the generic figures; each family's own come with its profile (``FamilyProfile.figure_notes``).
PLOT_NOTES: dict[str, str] = {
    "episodes_running": "How many episodes reached each turn: every per-turn value above is over this many "
                        "episodes, so late turns that few episodes reached are noisier.",
    "invalid_action_rate": "Share of steps whose action text did not parse, per group and overall (all groups). "
                           "A group with more invalid actions gets fewer real decisions.",
}
BAND_NOTE = ("Shaded around a line (or an error bar, for episodes of one turn): the 95% interval over episodes of "
             "that per-step value, Wilson for rates and Student t for mean scores. Groups without data are left out.")


def plot_notes(profile: FamilyProfile) -> dict[str, str]:
    """How to read each figure of a run of this family: the family's notes, then the generic ones."""
    return {**(resolve(profile.figure_notes) or {}), **PLOT_NOTES}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def headline_markdown(metrics: dict[str, float]) -> str:
    """The per-group table: one row per group, one column per per-group metric (``nan`` = undefined)."""
    header, rows = table_rows(metrics)
    return markdown_table(header, rows) if rows else "_No per-group metric._"


def overall_markdown(metrics: dict[str, float]) -> str:
    """Run-level metrics (between-group gaps, overall rates, task numbers) as a two-column table."""
    _, overall = split_metrics(metrics)
    cells = [[f"`{k}`", "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.4g}"] for k, v in overall.items()]
    return markdown_table(["metric", "value"], cells)


def run_markdown(episodes: list[dict[str, Any]], config: dict[str, Any]) -> str:
    """What was run: env, agent, episodes and seeds, steps, and the resolved config."""
    seeds = [int(ep.get("seed", 0)) for ep in episodes]
    lines = [f"- env: `{run_env_id(episodes)}` (kwargs: `{episodes[0].get('env_kwargs') or {}}`)",
             f"- agent: `{episodes[0].get('agent')}`",
             f"- episodes: {len(episodes)} (seeds {min(seeds)}..{max(seeds)}), "
             f"steps: {sum(len(ep.get('steps', [])) for ep in episodes)}",
             f"- groups: {', '.join(episodes[0].get('groups') or []) or '(none declared)'}"]
    if config:
        lines += ["", "<details><summary>resolved config</summary>", "", "```yaml",
                  yaml.safe_dump(config, sort_keys=False).rstrip(), "```", "", "</details>"]
    return "\n".join(lines)


def plots_markdown(paths: dict[str, Path], relative_to: Path, notes: dict[str, str] | None = None) -> str:
    """Each plot embedded with its "how to read" note (``notes``: name -> note, default the generic ones)."""
    notes = PLOT_NOTES if notes is None else notes
    parts = []
    for name, path in paths.items():
        title = name.replace("_", " ").capitalize()
        parts.append(f"### {title}\n\n![{name}]({Path(path).relative_to(relative_to).as_posix()})\n\n"
                     f"{notes.get(name, '')}".rstrip())
    return "\n\n".join(parts)


def load_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, float]]:
    """Episodes, config (``{}`` when absent) and metrics of a run folder; metrics are recomputed (and
    ``metrics.json`` rewritten) when the file is missing or counts a different number of episodes."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Run folder {str(run_dir)!r} does not exist (give the folder `fairgym run` wrote).")
    path = run_dir / EPISODES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist: {str(run_dir)!r} is not a run folder "
                                "(run `fairgym run` first, or give the folder that holds episodes.jsonl).")
    episodes = read_episodes(path)
    if not episodes:
        raise ValueError(f"{str(path)!r} holds no complete episode; run or resume the run first.")
    config = load_yaml(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else {}
    metrics_path = run_dir / METRICS_FILE
    metrics = read_metrics(metrics_path) if metrics_path.is_file() else {}
    if metrics.get("task/episodes") != len(episodes):
        metrics = compute_metrics(episodes)
        write_metrics(metrics_path, metrics)
    return episodes, config, metrics


def write_report(run_dir: Path) -> Path:
    """Write ``plots/*.png`` and ``report.md`` for the run in ``run_dir``; returns the path of ``report.md``.

    Raises:
        FileNotFoundError: when ``run_dir`` or its ``episodes.jsonl`` is missing.
        ValueError: when ``episodes.jsonl`` holds no complete episode.
    """
    return render_report(run_dir, *load_run(run_dir))


def render_report(run_dir: Path, episodes: list[dict[str, Any]], config: dict[str, Any],
                  metrics: dict[str, float]) -> Path:
    """``write_report`` for a run already loaded with ``load_run``."""
    run_dir = Path(run_dir)
    profile = run_profile(episodes)
    traj = {**trajectories(episodes), **trajectory_bands(episodes)}
    paths = save_figures(run_figures(metrics, traj, profile), run_dir / PLOTS_DIR)
    scorers = scorer_markdown(episodes)
    flags = run_flags(metrics, profile)
    paired = paired_table(episodes)
    text = "\n\n".join([
        f"# fairgym run report: {run_dir.name}", "## What was run", run_markdown(episodes, config),
        *(["## Read this first", "\n".join(f"- **Warning:** {flag}" for flag in flags)] if flags else []),
        *(["## Scorers", scorers] if scorers else []),
        "## Per group (whole run)", headline_markdown(metrics),
        "`nan` means undefined for lack of data (e.g. a group with no decisions), never zero. Rates are over all "
        "steps of all episodes; `decisions` counts the steps posed to each group (for a family that counts them so, "
        "the steps where a decision was taken) and `episodes` the episodes the group took part in.",
        *(["## Groups on paired episodes", paired[0], markdown_table(paired[1], paired[2])] if paired else []),
        "## Run level", overall_markdown(metrics), "## Plots", *([BAND_NOTE] if profile.bands is not None else []),
        plots_markdown(paths, run_dir, plot_notes(profile))])
    report = run_dir / REPORT_FILE
    report.write_text(text + "\n", encoding="utf-8")
    return report
