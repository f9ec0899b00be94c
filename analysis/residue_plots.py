"""Figures of residue measures that cannot mislead: every arm against the instrument's own scale.

Built without pyplot or torch (a report needs neither), from the JSON-safe summaries that ``calibration.summarize``
and the residue measures give:

- ``residue_vs_rank_figure``: a residue measure against LoRA rank (mean and interval over items or seeds), the full
  arm's interval as a band, the base as a line, and the measure's level at each calibration lambda as a dotted
  reference, so a LoRA point reads as "between lambda = 0.05 and 0.1", not as "0.02 above full";
- ``paired_lens_figure``: the paired logit-lens group gap (each state minus its descriptor-swapped twin) per layer,
  one line per arm, with its interval over items when given;
- ``dose_response_figure``: each measure against lambda, its paired difference from lambda = 0 with its interval,
  and the minimum detectable lambda marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

Interval = tuple[float, float, float]  # (mean, low, high)


@dataclass
class ResiduePanel:
    """One measure against LoRA rank.

    Attributes:
        title: the measure's name.
        ranks: LoRA ranks, per series name (e.g. ``{"lora": [1, 8]}``).
        values: per series, one ``(mean, low, high)`` per rank.
        full: the full arm's ``(mean, low, high)``: drawn as a band.
        base: the base's mean: drawn as a line.
        lambda_levels: the measure's mean at each calibration lambda (``{0.05: level, ...}``): dotted references.
        ylabel: the axis label.
    """

    title: str
    ranks: dict[str, list[int]]
    values: dict[str, list[Interval]]
    full: Interval | None = None
    base: float | None = None
    lambda_levels: dict[float, float] = field(default_factory=dict)
    ylabel: str = ""


def _errorbar(ax: Any, x: Sequence[float], intervals: Sequence[Interval], **style: Any) -> None:
    arr = np.asarray(intervals, dtype=float).reshape(-1, 3)
    yerr = np.vstack([arr[:, 0] - arr[:, 1], arr[:, 2] - arr[:, 0]])
    ax.errorbar(x, arr[:, 0], yerr=np.nan_to_num(np.clip(yerr, 0, None)), marker="o", capsize=3, **style)


def _residue_panel(ax: Any, panel: ResiduePanel) -> None:
    for lam, level in sorted(panel.lambda_levels.items()):
        if lam > 0:
            ax.axhline(level, color="grey", linestyle=":", linewidth=0.8)
            ax.annotate(f"λ={lam:g}", (1.0, level), xycoords=("axes fraction", "data"), fontsize=6, color="grey",
                        ha="right", va="bottom")
    if panel.full is not None:
        mean, low, high = panel.full
        ax.axhspan(low, high, color="C2", alpha=0.2, linewidth=0)
        ax.axhline(mean, color="C2", linewidth=1.2, label="full (band: interval)")
    if panel.base is not None:
        ax.axhline(panel.base, color="C3", linestyle="--", linewidth=1.2, label="base (biased)")
    for i, (name, ranks) in enumerate(panel.ranks.items()):
        _errorbar(ax, ranks, panel.values[name], color=f"C{i}", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("LoRA rank r")
    ax.set_title(panel.title, fontsize=9)
    if panel.ylabel:
        ax.set_ylabel(panel.ylabel)
    ax.legend(fontsize=7)


def residue_vs_rank_figure(panels: list[ResiduePanel], *, panel_width: float = 4.4) -> Figure:
    """One panel per residue measure against LoRA rank, with full's band, the base's line and the lambda levels."""
    fig = Figure(figsize=(panel_width * len(panels), 3.6), layout="tight")
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _residue_panel(ax, panel)
    return fig


def paired_lens_figure(lenses: Mapping[str, Mapping[str, Any]], *, groups: Sequence[str],
                       choices: Sequence[str] = ("approve", "deny")) -> Figure:
    """The paired group gap of the decision margin per layer, one line per arm.

    Args:
        lenses: arm -> ``paired_logit_lens`` result (``"mean"`` per layer; ``"low"``/``"high"`` per layer when an
            interval over items was computed).
        groups: the two descriptors, in the gap's order (earlier minus later).
        choices: the decision's two choices (the margin's sign).
    """
    fig = Figure(figsize=(6.4, 3.6), layout="tight")
    ax = fig.subplots()
    for arm, lens in lenses.items():
        layers = np.arange(len(lens["mean"]))
        line = ax.plot(layers, lens["mean"], marker=".", label=arm)[0]
        if lens.get("low") is not None and lens.get("high") is not None:
            ax.fill_between(layers, lens["low"], lens["high"], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"margin({groups[0]}) - margin({groups[-1]})")
    ax.set_title(f"paired logit lens: {choices[0]} - {choices[1]} margin, each state minus its swapped twin",
                 fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _lambda_axis(ax: Any, lambdas: Sequence[float]) -> None:
    smallest = min(x for x in lambdas if x > 0)
    ax.set_xscale("symlog", linthresh=smallest)
    ax.set_xlim(-0.3 * smallest, max(lambdas) * 1.15)
    ax.set_xticks(list(lambdas))
    ax.set_xticklabels([f"{x:g}" for x in lambdas], fontsize=7)
    ax.set_xlabel("λ (0 = full, 1 = biased base)")


def _symlog_y(ax: Any, values: Sequence[float]) -> None:
    """A symmetric-log y axis when the differences span orders of magnitude (small doses stay visible)."""
    sizes = np.abs(np.asarray(values, dtype=float))
    sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
    if sizes.size and sizes.max() / sizes.min() > 100:
        # a whole decade as the linear part, so the ticks at 0 and +-linthresh stay apart
        ax.set_yscale("symlog", linthresh=float(10 ** np.floor(np.log10(sizes.min()))))


def dose_response_figure(summary: Mapping[str, Any], *, measures: Sequence[str] | None = None,
                         titles: Mapping[str, str] | None = None, columns: int = 3) -> Figure:
    """Per measure: its paired difference from lambda = 0 against lambda with its interval over items, and the
    minimum detectable lambda marked (a vertical line; "no λ separated" in the title when there is none). A
    difference spanning orders of magnitude gets a symmetric-log y axis.

    Args:
        summary: ``calibration.summarize(curve)``.
        measures: which measures, in order (default: all).
        titles: optional display name per measure.
        columns: panels per row.
    """
    names = list(measures or summary["measures"])
    lambdas = summary["lambdas"]
    cols = min(columns, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4.0 * cols, 3.2 * rows), layout="tight")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        entry = summary["measures"][name]
        diffs = entry["difference"]
        _errorbar(ax, lambdas, [(d["mean"], d["low"], d["high"]) for d in diffs], color="C0",
                  label="mean difference from λ=0")
        ax.axhline(0, color="grey", linewidth=0.6)
        limit = entry.get("minimum_detectable_lambda")
        if limit is not None:
            ax.axvline(limit, color="C3", linestyle="--", linewidth=1.0, label=f"minimum detectable λ = {limit:g}")
        _lambda_axis(ax, lambdas)
        _symlog_y(ax, [d["mean"] for d in diffs])
        shown = (titles or {}).get(name, name)
        ax.set_title(shown + ("" if limit is not None else " (no λ separated)"), fontsize=9)
        ax.set_ylabel(f"arm(λ) - full ({entry['items']} items)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig
