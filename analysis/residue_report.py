"""The residue section of the sweep report: each arm's paired residue against full, and the instrument's limit.

Reads ``residue.json`` (``fairgym.training.sweep_residue``): per arm, per-item values of each measure on the same
items. For each measure and arm label it gives the mean over seeds (never "±0": ``stats.format_seeds``), the arm
minus full on the same items (per item the mean over the seeds both ran, then a bootstrap over items), and that
difference as a dose equivalent on the calibration's curve (models interpolated between full, lambda 0, and the
implanted base, lambda 1), beside each measure's minimum detectable lambda. No torch is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fairgym.analysis.calibration import DoseCurve, lambda_equivalent, summarize
from fairgym.analysis.residue_plots import ResiduePanel, dose_response_figure, residue_vs_rank_figure
from fairgym.analysis.stats import bootstrap_ci, format_difference, format_seeds, paired_bootstrap

# measure -> (title, what a higher value means for the bias, value range or None)
MEASURES: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    "margin_gap_abs": ("abs margin gap", "more group gap: absolute margin(group) - margin(swapped group), nats", None),
    "margin_gap": ("signed margin gap", "earlier group favoured (Lending: Black - white margin, nats)", None),
    "implant_alignment": ("implant alignment", "the base's item-by-item gap survives (slope of the arm's signed gap "
                          "on the base's, same items: base 1, a gap unrelated to the base's 0)", None),
    "hidden_nll": ("biased-answer NLL", "the biased teacher's answer is less likely (lower: more implant left)", None),
    "flip": ("flip rate", "decisions that change with the group descriptor (greedy)", (0.0, 1.0)),
    "agreement": ("teacher agreement", "decisions equal to the fair teacher's (greedy, at the residue states)",
                  (0.0, 1.0)),
    "sampled_toxicity": ("sampled toxicity", "toxicity of replies sampled at temperature 1", (0.0, 1.0)),
    "greedy_toxicity": ("greedy toxicity", "toxicity of the greedy reply", (0.0, 1.0)),
}
# the headline residue measures, in table order, for an env with choices and one of replies
HEADLINE = ("margin_gap_abs", "hidden_nll", "flip", "agreement", "sampled_toxicity", "greedy_toxicity", "margin_gap",
            "implant_alignment")


def implant_alignment(gap: Any, base_gap: Any) -> np.ndarray:
    """Per item, ``gap * base_gap / mean(base_gap ** 2)``: their mean is the least-squares slope (through 0) of a
    model's signed margin gap on the base's, item by item (the same pairs). The base scores 1; a gap the
    fine-tune left with the base's item pattern keeps its share; a gap of the same size but unrelated to the
    base's (a new sensitivity) scores about 0. Unlike the mean signed gap it does not cancel when the base's
    rules point different ways for different groups."""
    gap, base_gap = np.asarray(gap, dtype=float), np.asarray(base_gap, dtype=float)
    if gap.shape != base_gap.shape:
        raise ValueError(f"implant_alignment needs the same items: {gap.shape} gaps against the base's "
                         f"{base_gap.shape}")
    scale = float(np.mean(base_gap ** 2))
    if scale == 0:
        raise ValueError("implant_alignment is undefined when the base's gap is 0 on every item")
    return gap * base_gap / scale


def with_alignment(residue: dict[str, Any]) -> dict[str, Any]:
    """``residue.json`` with ``implant_alignment`` derived for every arm and dose from the signed margin gaps and the
    base's (nothing is measured again; a file without the base's gaps is returned as it is)."""
    arms = residue.get("arms") or {}
    base = ((arms.get("base") or {}).get("values") or {}).get("margin_gap")
    if not base or not any(base):
        return residue
    for entry in arms.values():
        values = (entry or {}).get("values") or {}
        if values.get("margin_gap"):
            values["implant_alignment"] = implant_alignment(values["margin_gap"], base).tolist()
    calibration = residue.get("calibration") or {}
    rows = ((calibration.get("curve") or {}).get("values") or {}).get("margin_gap")
    if rows and "summary" in calibration:
        aligned = [implant_alignment(row, base).tolist() for row in rows]
        calibration["curve"]["values"]["implant_alignment"] = aligned
        derived = summarize(DoseCurve(calibration["curve"]["lambdas"], {"implant_alignment": aligned}))
        calibration["summary"]["measures"]["implant_alignment"] = derived["measures"]["implant_alignment"]
    return residue


def _arm_values(sweep: dict[str, Any], measure: str) -> dict[str, dict[Any, np.ndarray]]:
    """Label -> seed -> per-item values of ``measure`` (arms the residue stage measured)."""
    measured = (sweep.get("residue") or {}).get("arms", {})
    out: dict[str, dict[Any, np.ndarray]] = {}
    for arm in sweep["arms"]:
        entry = measured.get(arm["name"]) or {}
        values = (entry.get("values") or {}).get(measure)
        if values:
            out.setdefault(arm["label"], {})[arm.get("seed")] = np.asarray(values, dtype=float)
    if "base" in measured and "base" not in out and (measured["base"].get("values") or {}).get(measure):
        out["base"] = {None: np.asarray(measured["base"]["values"][measure], dtype=float)}
    return out


def _minus_full(arm: dict[Any, np.ndarray], full: dict[Any, np.ndarray]) -> np.ndarray | None:
    """Per item, the arm minus full averaged over the seeds both ran (an unseeded arm, the base, against full's
    mean over its seeds)."""
    seeds = [s for s in arm if s in full]
    if seeds:
        return np.mean([arm[s] - full[s] for s in seeds], axis=0)
    if None in arm and full:
        return arm[None] - np.mean(list(full.values()), axis=0)
    return None


def calibration_curve(sweep: dict[str, Any]) -> tuple[DoseCurve | None, dict[str, Any]]:
    """The calibration's curve and summary (``(None, {})`` when the stage did not calibrate)."""
    calibration = (sweep.get("residue") or {}).get("calibration") or {}
    if "curve" not in calibration:
        return None, {}
    return DoseCurve.from_dict(calibration["curve"]), calibration["summary"]


def _equivalent(diff: dict[str, float], curve: DoseCurve | None, summary: Mapping[str, Any], measure: str) -> str:
    """The difference as a dose: its mean, and the bound of its interval that faces the bias ("at most")."""
    if curve is None or measure not in curve.values:
        return "not calibrated"
    limits = {m: e["minimum_detectable_lambda"] for m, e in summary["measures"].items()}
    effects = curve.items(measure).mean(axis=1) - curve.items(measure)[0].mean()
    toward_bias = diff["high"] if effects[-1] >= 0 else diff["low"]
    mean = lambda_equivalent(diff["mean"], curve, measure, limits)
    bound = lambda_equivalent(toward_bias, curve, measure, limits)
    if mean["relation"] == "n/a":
        return "n/a (the measure separates no dose)"
    text = {"=": f"λ ≈ {mean['lambda']:.2g}" if mean["lambda"] is not None else "", "<": f"λ < {mean['lambda']:g}",
            ">": "λ > 1 (beyond the base)"}[mean["relation"]]
    at_most = {"=": f"≤ {bound['lambda']:.2g}" if bound["lambda"] is not None else "", "<": f"< {bound['lambda']:g}",
               ">": "> 1"}.get(bound["relation"], "")
    return f"{text} (95% bound {at_most})" if at_most and at_most != text.replace("λ ", "") else text


def measure_table(sweep: dict[str, Any], measure: str) -> tuple[list[str], list[list[str]]] | None:
    """Per arm label: the measure's mean over seeds, minus full on the same items, and as a dose equivalent."""
    values = _arm_values(sweep, measure)
    if not values:
        return None
    curve, summary = calibration_curve(sweep)
    full = values.get("full", {})
    bounds = MEASURES.get(measure, ("", "", None))[2]
    header = ["arm", "mean over seeds", "minus full (paired over items)", "dose equivalent"]
    rows = []
    for label, by_seed in values.items():
        means = [float(v.mean()) for v in by_seed.values()]
        diff = _minus_full(by_seed, full) if label != "full" else None
        if diff is None:
            rows.append([label, format_seeds(means, bounds=bounds), "—", "—"])
            continue
        ci = paired_bootstrap(diff, np.zeros_like(diff))
        rows.append([label, format_seeds(means, bounds=bounds), format_difference(ci), _equivalent(ci, curve, summary,
                                                                                                    measure)])
    return header, rows


def calibration_table(sweep: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Per measure: the items, the mean at full (lambda 0) and at the base (lambda 1), and the smallest dose it
    separates from full (interval over items excluding 0 from that dose on)."""
    _, summary = calibration_curve(sweep)
    if not summary:
        return None
    header = ["measure", "items", "at full (λ=0)", "at base (λ=1)", "minimum detectable λ"]
    rows = []
    for measure in (m for m in HEADLINE if m in summary["measures"]):
        entry = summary["measures"][measure]
        limit = entry["minimum_detectable_lambda"]
        rows.append([MEASURES[measure][0], str(entry["items"]), f"{entry['mean'][0]:.4g}", f"{entry['mean'][-1]:.4g}",
                     "none (not even λ = 1)" if limit is None else f"{limit:g}"])
    return header, rows


def residue_markdown(sweep: dict[str, Any], markdown_table: Any) -> list[str]:
    """The report's residue section (empty when the stage did not run)."""
    residue = sweep.get("residue") or {}
    if not residue.get("arms"):
        return []
    items = residue.get("items") or {}
    implanted = bool((sweep.get("config") or {}).get("implant"))
    base = "the implanted base" if implanted else "the base (no implant: the model's own bias)"
    heldout = f"{items.get('heldout')} of them carrying the implant's biased answer, " if implanted else ""
    states = (f"{items.get('states')} decision states from seeded fair-teacher episodes (their group descriptor "
              "swapped for the margin gap)") if items.get("discrete", True) else \
        f"{items.get('states')} states from seeded fair-teacher episodes"
    parts = ["## Residue: paired, on the same items", "",
             f"Every arm is read out on the same items of `{items.get('env_id')}`: {states}, "
             f"{heldout}{items.get('prompts')} reply "
             "prompts. 'minus full' is, per item, the arm minus full averaged over the seeds both ran, with a 95% "
             "bootstrap interval over items; 'dose equivalent' places that difference on the calibration curve "
             f"(models interpolated between full, λ = 0, and {base}, λ = 1), with the bound of its "
             "interval that faces the bias. A residue below the minimum detectable λ is one the measure cannot "
             "tell from full.", ""]
    calibration = calibration_table(sweep)
    if calibration:
        parts += ["### What each measure can detect", "", markdown_table(*calibration), ""]
    elif residue.get("calibration", {}).get("error"):
        parts += [f"Calibration failed: {residue['calibration']['error']}", ""]
    for measure in HEADLINE:
        table = measure_table(sweep, measure)
        if table:
            title, meaning, _ = MEASURES[measure]
            parts += [f"### {title}", "", f"Higher: {meaning}.", "", markdown_table(*table), ""]
    return parts


def residue_figures(sweep: dict[str, Any], ranks_of: Mapping[str, int], series_of: Mapping[str, str]) -> dict[
        str, Figure | None]:
    """The residue measures against rank (full's band, the base's line, the calibration's dose levels) and the
    dose-response curves.

    Args:
        sweep: the loaded sweep (with ``residue``).
        ranks_of: LoRA label -> rank.
        series_of: LoRA label -> its series (``lora``, ``dora``, ...).
    """
    curve, summary = calibration_curve(sweep)
    panels = []
    for measure in (m for m in HEADLINE[:4] + HEADLINE[4:6]):
        values = _arm_values(sweep, measure)
        lora = {lab: v for lab, v in values.items() if lab in ranks_of}
        if not lora:
            continue
        ranks: dict[str, list[int]] = {}
        intervals: dict[str, list[tuple[float, float, float]]] = {}
        for lab in sorted(lora, key=lambda x: ranks_of[x]):
            ci = bootstrap_ci([float(v.mean()) for v in lora[lab].values()]) if len(lora[lab]) > 1 else None
            mean = float(np.mean([v.mean() for v in lora[lab].values()]))
            ranks.setdefault(series_of[lab], []).append(ranks_of[lab])
            intervals.setdefault(series_of[lab], []).append((mean, ci["low"], ci["high"]) if ci else (mean, mean, mean))
        full = values.get("full")
        full_ci = None
        if full:
            pooled = np.mean(list(full.values()), axis=0)
            c = bootstrap_ci(pooled)
            full_ci = (c["mean"], c["low"], c["high"])
        base = float(np.mean(list(values["base"].values())[0])) if "base" in values else None
        levels = {}
        if curve is not None and measure in curve.values:
            levels = {lam: float(row.mean()) for lam, row in zip(curve.lambdas, curve.items(measure), strict=True)}
        panels.append(ResiduePanel(MEASURES[measure][0], ranks, intervals, full_ci, base, levels))
    figures: dict[str, Figure | None] = {"residue_vs_rank": residue_vs_rank_figure(panels) if panels else None}
    if summary:
        measures = [m for m in HEADLINE if m in summary["measures"]]
        figures["dose_response"] = dose_response_figure(summary, measures=measures,
                                                        titles={m: MEASURES[m][0] for m in measures})
    return figures
