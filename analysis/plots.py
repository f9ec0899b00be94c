"""Figures of a run's fairness trajectories and group metrics.

Every function takes metrics or trajectories and returns a ``matplotlib.figure.Figure`` built without pyplot
(no global state, no display needed: saving uses the Agg canvas), so reports, W&B and sweep reports can share
them. :func:`run_figures` adds the generic figures to those an env family's profile names. The rank sweep's
figures (metrics against rank, trajectories per arm, logit lens, update energy) are here too; ``sweep_report``
computes their data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fairgym.analysis.trajectories import ALL, BAND_HIGH, BAND_LOW, CUMULATIVE, EPISODES_RUNNING, Trajectories
from fairgym.envs.profiles import FamilyProfile, resolve

Series = dict[str, list[float]]
ALL_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.5}
RATE = (0.0, 1.0)  # the y range of a rate, a share or a score in [0, 1]


def _colors(groups: list[str]) -> dict[str, str]:
    """A stable color per group (tab10), the all-groups series in black."""
    palette = [f"C{i % 10}" for i in range(len(groups))]
    return {g: ("black" if g == ALL else c) for g, c in zip(groups, palette, strict=True)}


def _defined(values: list[float]) -> bool:
    """Whether a series has any value to draw (a group without data is left out, legend included)."""
    return any(not math.isnan(float(v)) for v in values)


def _turn_axis(ax) -> None:
    """Turns are whole numbers: integer ticks only."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("turn")


def _y_range(ax, ylim: tuple[float, float] | None, from_zero: bool) -> None:
    """Rates and scores on their whole range (``ylim``, e.g. 0..1: 0.01 then looks small), counts from 0."""
    if ylim is not None:
        pad = 0.02 * (ylim[1] - ylim[0])
        ax.set_ylim(ylim[0] - pad, ylim[1] + pad)
    elif from_zero:
        ax.set_ylim(bottom=0)


def _draw_lines(ax, traj: Trajectories, name: str, colors: dict[str, str]) -> None:
    series = {g: v for g, v in traj.get(name, {}).items() if _defined(v)}
    for group, values in series.items():
        turns = np.arange(len(values))
        style = ALL_STYLE if group == ALL else {"color": colors[group], "linewidth": 1.8}
        ax.plot(turns, np.asarray(values, float), marker="o", markersize=3, label=group, **style)
        band = band_of(traj, name, group) if group != ALL or len(series) == 1 else None  # groups' bands suffice
        if band is not None:
            ax.fill_between(turns, np.asarray(band[0], float), np.asarray(band[1], float), color=style["color"],
                            alpha=0.18, linewidth=0)
    _turn_axis(ax)
    ax.grid(alpha=0.3)


def band_of(traj: Trajectories, metric: str, group: str) -> tuple[list[float], list[float]] | None:
    """``(low, high)`` of ``metric``'s interval over episodes for ``group`` (``fairgym.analysis.bands``), or
    ``None`` when the trajectories carry none for it."""
    low = traj.get(metric + BAND_LOW, {}).get(group)
    high = traj.get(metric + BAND_HIGH, {}).get(group)
    if low is None or high is None or not _defined(low):
        return None
    return list(low), list(high)


def _one_turn(traj: Trajectories, metric: str) -> bool:
    """Whether every series of ``metric`` has a single turn (``max_steps=1``: a line would be one point)."""
    series = [v for v in traj.get(metric, {}).values() if _defined(v)]
    return bool(series) and all(len(v) == 1 for v in series)


def one_turn_figure(traj: Trajectories, metric: str, *, title: str, ylabel: str,
                    ylim: tuple[float, float] | None = None, from_zero: bool = False) -> Figure:
    """Episodes of one turn: one bar per group (all groups last, hatched) with its interval over episodes as an
    error bar where the trajectories carry one; groups without data are left out."""
    groups = [g for g, v in traj.get(metric, {}).items() if _defined(v)]
    groups = [g for g in groups if g != ALL] + [g for g in groups if g == ALL]
    fig = Figure(figsize=(max(4.2, 1.1 * len(groups) + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    colors = _colors(groups)
    values = [float(traj[metric][g][0]) for g in groups]
    bands = [band_of(traj, metric, g) for g in groups]
    errors = np.array([[v - b[0][0], b[1][0] - v] if b else [math.nan, math.nan] for v, b in zip(values, bands,
                                                                                                  strict=True)]).T
    ax.bar(range(len(groups)), values, color=[colors[g] if g != ALL else "lightgrey" for g in groups],
           edgecolor="black", linewidth=0.6, hatch=[("//" if g == ALL else "") for g in groups])
    if groups and not np.isnan(errors).all():
        ax.errorbar(range(len(groups)), values, yerr=np.nan_to_num(errors), fmt="none", ecolor="black", capsize=4)
    labels = [f"{g}\n{v:.3g}" + (f" [{b[0][0]:.2g}, {b[1][0]:.2g}]" if b else "")  # the value under its bar
              for g, v, b in zip(groups, values, bands, strict=True)]
    ax.set_xticks(range(len(groups)), labels, rotation=20 if len(groups) > 4 else 0, fontsize=8)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    _y_range(ax, ylim, from_zero)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{title}\n(one turn per episode)", fontsize=10)
    return fig


def trajectory_figure(traj: Trajectories, metric: str, *, title: str, ylabel: str,
                      ylim: tuple[float, float] | None = None, from_zero: bool = False) -> Figure:
    """Two panels for ``metric``: per step (turn t across episodes) and cumulative (all turns up to t);
    one line per group with data, the all-groups value dashed black, and a shaded interval over episodes where
    the trajectories carry one (``<metric>_band_low/high``). A single panel when there is no cumulative series;
    empty panels when the run has no series of ``metric`` (e.g. no episode took a valid decision). Episodes of one
    turn get :func:`one_turn_figure` instead (a line of one point says nothing).

    Args:
        ylim: the y range of a rate or score (e.g. ``(0, 1)``), so a small value looks small.
        from_zero: anchor the y axis at 0 (counts).
    """
    if _one_turn(traj, metric):
        return one_turn_figure(traj, metric, title=title, ylabel=ylabel, ylim=ylim, from_zero=from_zero)
    names = [metric] + ([metric + CUMULATIVE] if metric + CUMULATIVE in traj else [])
    fig = Figure(figsize=(5.2 * len(names), 3.8), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)[0]
    colors = _colors(list(traj.get(metric, {})))
    for ax, name in zip(axes, names, strict=True):
        _draw_lines(ax, traj, name, colors)
        if len(names) > 1:
            ax.set_title("cumulative (turns <= t)" if name.endswith(CUMULATIVE) else "per step (turn t)", fontsize=10)
    _y_range(axes[0], ylim, from_zero)
    low, high = axes[0].get_ylim()
    if ylim is None and not from_zero and low < 0 < high:  # a signed quantity (a drift, a gap): 0 is the reference
        for ax in axes:
            ax.axhline(0.0, color="grey", linewidth=0.8, label="_zero")
    axes[0].set_ylabel(ylabel)
    if axes[-1].get_legend_handles_labels()[0]:
        axes[-1].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return fig


def gaps_figure(traj: Trajectories, metrics: list[str], *, title: str, ylabel: str) -> Figure:
    """Between-group gaps over turns: each metric in its own color, per step thin and dotted, cumulative solid;
    the y axis from 0 (a gap is max - min). Episodes of one turn: one bar per metric."""
    present = [m for m in metrics if m in traj]
    if present and all(_one_turn(traj, m) for m in present if _defined(traj[m].get(ALL, []))):
        one = {m.split("/")[-1].replace("_", " "): {ALL: traj[m].get(ALL, [math.nan])} for m in present}
        return bars_figure({label: {"all groups, turn 0": v[ALL][0]} for label, v in one.items()},
                           title=f"{title}\n(one turn per episode)", ylabel=ylabel)
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for i, metric in enumerate(present):
        label = metric.split("/")[-1].replace("_", " ")
        styles: tuple[tuple[str, dict[str, Any]], ...] = ((metric, {"linestyle": ":", "linewidth": 1.0}),
                                                         (metric + CUMULATIVE, {"linestyle": "-", "linewidth": 2.0}))
        for name, style in styles:
            values = np.asarray(traj.get(name, {}).get(ALL, []), float)
            if not _defined(list(values)):
                continue
            suffix = " (cumulative)" if name.endswith(CUMULATIVE) else " (per step)"
            ax.plot(np.arange(len(values)), values, color=f"C{i}", marker="o", markersize=3, label=label + suffix,
                    **style)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylim(bottom=0)
    _turn_axis(ax)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(title)
    return fig


def bars_figure(values: dict[str, dict[str, float]], *, title: str, ylabel: str) -> Figure:
    """Grouped bars: one cluster per group, one bar per series (e.g. allocation share vs incident share).
    Bars carry their value; a ``nan`` value is drawn as no bar and labelled "n/a" (undefined, not zero)."""
    groups = list(dict.fromkeys(g for by_group in values.values() for g in by_group))
    fig = Figure(figsize=(max(5.0, 1.4 * len(groups) * max(1, len(values)) / 2 + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(values))
    x = np.arange(len(groups))
    top = 0.0
    for i, (label, by_group) in enumerate(values.items()):
        heights = [by_group.get(g, math.nan) for g in groups]
        bars = ax.bar(x + (i - (len(values) - 1) / 2) * width, np.nan_to_num(heights, nan=0.0), width, label=label)
        ax.bar_label(bars, labels=["n/a" if math.isnan(h) else f"{h:.2f}" for h in heights], fontsize=7)
        top = max([top] + [h for h in heights if not math.isnan(h)])
    ax.set_ylim(0.0, max(top, 0.05) * 1.3)  # room for the labels and the legend above the bars
    ax.set_xticks(x, groups, rotation=20 if len(groups) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if len(values) > 1:
        ax.legend(fontsize=8, ncol=len(values), loc="upper center")
    ax.set_title(title)
    return fig


def per_group(metrics: dict[str, float], metric: str) -> dict[str, float]:
    """``{group: value}`` of a per-group metric (keys ``<metric>/<group>``)."""
    prefix = metric + "/"
    return {k.removeprefix(prefix): float(v) for k, v in metrics.items()
            if k.startswith(prefix) and "/" not in k.removeprefix(prefix)}


def run_figures(metrics: dict[str, float], traj: Trajectories, profile: FamilyProfile) -> dict[str, Figure]:
    """The figures of one run: its family's (``profile.figures``), then the invalid-action rates and the episodes
    still running per turn."""
    family = resolve(profile.figures)
    figures = dict(family(metrics, traj)) if family is not None else {}
    invalid = per_group(metrics, "format/invalid_action_rate")
    invalid[ALL] = float(metrics.get("format/invalid_action_rate", math.nan))
    figures["invalid_action_rate"] = bars_figure({"invalid": invalid}, title="Invalid-action rate per group",
                                                 ylabel="share of steps")
    if EPISODES_RUNNING in traj and not _one_turn(traj, EPISODES_RUNNING):  # one turn: every episode reached it
        figures["episodes_running"] = trajectory_figure(traj, EPISODES_RUNNING, ylabel="episodes", from_zero=True,
                                                        title="Episodes still running at each turn")
    return figures


def save_figures(figures: dict[str, Figure], folder: Path, *, dpi: int = 110) -> dict[str, Path]:
    """Write each figure as ``<folder>/<name>.png``; returns name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figures.items():
        paths[name] = folder / f"{name}.png"
        fig.savefig(paths[name], dpi=dpi)
    return paths


# ---- the rank sweep's figures (``fairgym.analysis.sweep_report`` computes their data) -----------------------
RankSeries = dict[str, tuple[list[int], list[float], list[float]]]  # name -> (ranks, means, 95% half-widths)
REFERENCE_STYLE = {"full": {"linestyle": "--", "color": "k"}, "base": {"linestyle": ":", "color": "grey"}}


@dataclass
class RankPanel:
    """One panel of a metric against LoRA rank: each series' mean ± interval per rank, and reference lines
    (``{"full": mean, "base": mean}``) drawn across."""

    title: str
    series: RankSeries
    references: dict[str, float] = field(default_factory=dict)
    ylabel: str = ""


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _rank_panel(ax, panel: RankPanel) -> None:
    for name, (ranks, means, half_widths) in panel.series.items():
        ax.errorbar(ranks, means, yerr=half_widths, marker="o", capsize=3, label=name)
    for label, mean in panel.references.items():
        ax.axhline(mean, label=label, **REFERENCE_STYLE.get(label, {"linestyle": "-.", "color": "grey"}))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("LoRA rank r")
    ax.set_title(panel.title)
    if panel.ylabel:
        ax.set_ylabel(panel.ylabel)
    _legend(ax)


def against_rank_figure(panels: list[RankPanel], *, panel_width: float = 4.2) -> Figure:
    """One panel per metric against LoRA rank (residual bias, KL, flip rate), side by side."""
    fig = Figure(figsize=(panel_width * len(panels), 3.4), layout="tight")
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _rank_panel(ax, panel)
    return fig


def per_arm_figure(series: dict[str, Series], *, by_group: bool, title: str, suptitle: str) -> Figure:
    """A metric over the episode's turns: ``by_group=False``: one line per arm (its all-groups series) in one
    panel; ``by_group=True``: one panel per arm with a line per group. ``series``: arm -> group -> per turn."""
    n = len(series) if by_group else 1
    fig = Figure(figsize=(max(4.5, 3.2 * n), 3.3), layout="tight")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)
    for i, (arm, groups) in enumerate(series.items()):
        ax = axes[0][i if by_group else 0]
        for group, values in groups.items():
            if by_group and group != ALL:
                ax.plot(range(len(values)), values, marker=".", label=group)
            elif not by_group and group == ALL:
                ax.plot(range(len(values)), values, marker=".", label=arm)
        ax.set_title(arm if by_group else title, fontsize=9)
        _turn_axis(ax)
        _legend(ax)
    fig.suptitle(suptitle, fontsize=10)
    return fig


def intervals_figure(rows: list[dict[str, Any]], names: list[str], *, suptitle: str) -> Figure:
    """One panel per series name: each arm's mean per turn with a shaded interval (``rows``: dicts with ``arm``,
    ``series``, ``turn``, ``mean``, ``low``, ``high``, as ``sweep_report.trajectory_intervals`` gives)."""
    fig = Figure(figsize=(5.2 * len(names), 3.6), layout="tight")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        for arm in dict.fromkeys(r["arm"] for r in rows):
            part = [r for r in rows if r["arm"] == arm and r["series"] == name]
            if not part:
                continue
            turns = [r["turn"] for r in part]
            line = ax.plot(turns, [r["mean"] for r in part], label=arm, linewidth=1.2)[0]
            low, high = np.array([r["low"] for r in part], float), np.array([r["high"] for r in part], float)
            if not np.isnan(low).all():
                ax.fill_between(turns, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_title(name, fontsize=9)
        _turn_axis(ax)
        ax.axhline(0, color="grey", linewidth=0.5)
        _legend(ax)
    fig.suptitle(suptitle, fontsize=10)
    return fig


def logit_lens_figure(lenses: dict[str, dict[str, Any]], *, choices: list[str], groups: list[str]) -> Figure:
    """Mean decision margin and between-group margin gap per layer, one line per arm (``lenses``: arm ->
    ``{"mean": per layer, "group_gap": per layer or None}``)."""
    fig = Figure(figsize=(9, 3.4), layout="tight")
    axes = fig.subplots(1, 2)
    for arm, lens in lenses.items():
        axes[0].plot(lens["mean"], marker=".", label=arm)
        if lens.get("group_gap"):
            axes[1].plot(lens["group_gap"], marker=".", label=arm)
    axes[0].set_title(f"logit lens: margin {choices[0]} - {choices[1]}", fontsize=9)
    axes[1].set_title(f"paired margin gap {groups[0]} - {groups[-1]} (same states, descriptor swapped)", fontsize=9)
    for ax in axes:
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("layer (0 = embeddings)")
        _legend(ax)
    return fig


def update_energy_figure(curves: dict[str, dict[int, float]], points: list[tuple[int, float]]) -> Figure:
    """Energy share of the full update within the top r against r (one curve per seed), with each LoRA arm's
    actual update as a point (rank, share of the full update inside the arm's subspace)."""
    fig = Figure(figsize=(5.5, 3.6), layout="tight")
    ax = fig.subplots()
    for seed, shares in curves.items():
        ax.plot(list(shares), list(shares.values()), color="k", alpha=0.7, label=f"full ΔW, top-r (seed {seed})")
    if points:
        ax.scatter([p[0] for p in points], [p[1] for p in points], color="C1", zorder=3,
                   label="LoRA arm: full ΔW within its subspace")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank r")
    ax.set_ylabel("share of ||ΔW_full||²")
    ax.set_title("How much of the full update a rank-r update can hold", fontsize=9)
    ax.legend(fontsize=7)
    return fig
