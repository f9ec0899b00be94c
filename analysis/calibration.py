"""Dose-response calibration of a residue measure: how small a residue it can see, and what a residue is worth.

Models interpolated between the debiased full arm (lambda = 0) and the biased base (lambda = 1),
theta(lambda) = theta_full + lambda * (theta_base - theta_full), hold known doses of the bias. Measured on the same
items at every lambda (``fairgym.analysis.residue.calibrate`` does the interpolation; this module needs no torch):

- ``dose_response``: per-item values of each measure at each lambda (``DoseCurve``);
- ``minimum_detectable``: per measure, the smallest lambda from which on every lambda's paired difference from
  lambda = 0 has a bootstrap interval over items excluding 0, toward the bias: the instrument's detection limit;
- ``lambda_equivalent``: a measured residue (an arm minus full on the same items) as the lambda with the same effect,
  by monotone (isotonic) interpolation of the curve, or "below the smallest detectable lambda";
- ``summarize``: the JSON-safe summary a report and its plots read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairgym.analysis.stats import bootstrap_ci, paired_bootstrap

LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class DoseCurve:
    """Per-item values of each measure at each lambda, the same items at every lambda.

    Attributes:
        lambdas: the doses, ascending, starting at 0 (the full arm itself).
        values: measure name -> one list of per-item values per lambda (same order as ``lambdas``).
        seconds: measure time per lambda (as ``lambdas``).
    """

    lambdas: list[float]
    values: dict[str, list[list[float]]]
    seconds: list[float] = field(default_factory=list)

    def items(self, measure: str) -> np.ndarray:
        """``[lambdas, items]`` float array of ``measure`` (a ``KeyError`` names the measures there are)."""
        if measure not in self.values:
            raise KeyError(f"no measure {measure!r} in the curve; it has {sorted(self.values)}")
        return np.asarray(self.values[measure], dtype=float)

    def subset(self, share: float) -> DoseCurve:
        """The curve on an evenly spaced ``share`` (0 < share <= 1) of each measure's items: what the calibration
        would have seen with fewer items (e.g. a demo's budget), without measuring again."""
        if not 0 < share <= 1:
            raise ValueError(f"share={share!r} must be in (0, 1].")
        values = {}
        for name, rows in self.values.items():
            n = len(rows[0])
            keep = np.unique(np.linspace(0, n - 1, max(1, round(share * n))).round().astype(int))
            values[name] = [[row[i] for i in keep] for row in rows]
        return DoseCurve(list(self.lambdas), values, list(self.seconds))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``from_dict`` reads it back)."""
        return {"lambdas": list(self.lambdas), "values": self.values, "seconds": list(self.seconds)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DoseCurve:
        """The curve ``to_dict`` wrote."""
        return cls([float(x) for x in data["lambdas"]], {k: [list(map(float, v)) for v in vs]
                                                          for k, vs in data["values"].items()},
                   [float(s) for s in data.get("seconds", [])])


def check_lambdas(lambdas: Sequence[float]) -> list[float]:
    """``lambdas`` as floats: distinct, ascending, in [0, 1], starting at 0 (the reference every dose is compared
    with)."""
    out = [float(x) for x in lambdas]
    if not out or out[0] != 0.0 or any(b <= a for a, b in zip(out, out[1:], strict=False)) or out[-1] > 1:
        raise ValueError(f"lambdas={list(lambdas)!r} must ascend from 0 within [0, 1], e.g. {list(LAMBDAS)}.")
    return out


def dose_response(measure: Callable[[float], Mapping[str, Sequence[float]]],
                  lambdas: Sequence[float] = LAMBDAS) -> DoseCurve:
    """Measure per-item values at each lambda.

    Args:
        measure: ``measure(lam) -> {measure name: per-item values}``, the same items in the same order at every
            ``lam`` (``residue.calibrate`` makes one from a model and its two end states).
        lambdas: the doses; see ``check_lambdas``.

    Returns:
        The ``DoseCurve``.

    Raises:
        ValueError: bad lambdas, or a measure whose names or item count change between lambdas.
    """
    lambdas = check_lambdas(lambdas)
    values: dict[str, list[list[float]]] = {}
    seconds = []
    for lam in lambdas:
        started = time.perf_counter()
        measured = {k: [float(v) for v in vs] for k, vs in measure(lam).items()}
        seconds.append(round(time.perf_counter() - started, 2))
        if values and (set(measured) != set(values) or any(len(measured[k]) != len(values[k][0]) for k in values)):
            counts = {k: len(v) for k, v in measured.items()}
            raise ValueError(f"measure at lambda={lam} returned {counts} (measure: items), unlike lambda=0 "
                             f"({ {k: len(v[0]) for k, v in values.items()} }); it must score the same items at every "
                             "lambda.")
        for name, items in measured.items():
            values.setdefault(name, []).append(items)
    return DoseCurve(lambdas, values, seconds)


def differences(curve: DoseCurve, measure: str, confidence: float = 0.95, n_resamples: int = 2000,
                seed: int = 0) -> list[dict[str, Any]]:
    """Per lambda: the paired difference from lambda = 0 over items (``paired_bootstrap``), and whether its
    interval excludes 0 on the side the full dose (the largest lambda) moves the measure to (``detected``): a
    change away from the bias (e.g. a mean |gap| that first shrinks as full's own small gap of the other sign is
    cancelled) is not a detection of the bias."""
    items = curve.items(measure)
    toward = float(np.sign(np.nanmean(items[-1] - items[0])))
    out = []
    for lam, row in zip(curve.lambdas, items, strict=True):
        ci = paired_bootstrap(row, items[0], confidence, n_resamples, seed)
        detected = (toward > 0 and ci["low"] > 0) or (toward < 0 and ci["high"] < 0)
        out.append({"lambda": lam, **ci, "detected": bool(detected)})
    return out


def minimum_detectable(curve: DoseCurve, confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> dict[str, float | None]:
    """Per measure, the smallest lambda > 0 from which on every lambda's paired difference from lambda = 0 has an
    interval excluding 0, on the side of the bias (``differences``); ``None`` when not even the largest lambda is
    separated (the measure cannot see this bias).

    "From which on" keeps a chance exclusion at a small lambda, followed by a miss at the next, from setting the
    limit: the detection limit is where detection becomes reliable along the curve.
    """
    out: dict[str, float | None] = {}
    for measure in curve.values:
        detected = [d["detected"] for d in differences(curve, measure, confidence, n_resamples, seed)][1:]
        limit = None
        for lam, hit in zip(reversed(curve.lambdas[1:]), reversed(detected), strict=True):
            if not hit:
                break
            limit = lam
        out[measure] = limit
    return out


def _monotone_effects(curve: DoseCurve, measure: str) -> tuple[np.ndarray, float]:
    """The mean paired difference from lambda = 0 per lambda, oriented so the bias dose increases it (sign of
    the lambda = 1 end), then made non-decreasing by isotonic regression; and the orientation (+1/-1, 0: flat)."""
    from scipy.optimize import isotonic_regression

    items = curve.items(measure)
    effect = np.nanmean(items - items[0], axis=1)
    sign = float(np.sign(effect[-1]))
    if sign == 0:
        return effect, 0.0
    return isotonic_regression(sign * effect).x, sign


def lambda_equivalent(value: float, curve: DoseCurve, measure: str,
                      limits: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """A residue on ``measure`` (an arm minus full, mean over the calibration's items) as the lambda with the
    same effect.

    Args:
        value: the arm's mean paired difference from full (e.g. ``paired_bootstrap(arm, full)["mean"]``, or its
            interval bound that faces the bias, for "at most").
        curve: the calibration (lambda = 0 is full on the same items).
        measure: which of the curve's measures ``value`` is on.
        limits: ``minimum_detectable(curve)`` when already computed (else it is computed here).

    Returns:
        ``{"lambda", "relation", "text"}``: relation ``"="`` (interpolated), ``"<"`` (below the smallest
        detectable lambda: ``lambda`` is that limit), ``">"`` (beyond the largest lambda), or ``"n/a"`` (the
        measure separates no lambda from 0, or does not respond to the dose).
    """
    detectable = (limits if limits is not None else minimum_detectable(curve))[measure]
    effects, sign = _monotone_effects(curve, measure)
    if detectable is None or sign == 0 or not math.isfinite(value):
        return {"lambda": None, "relation": "n/a", "text": f"not calibrated: {measure} separates no dose from full"}
    lams, target = np.asarray(curve.lambdas), sign * float(value)
    floor = float(effects[curve.lambdas.index(detectable)])
    if target < floor:
        return {"lambda": detectable, "relation": "<",
                "text": f"below the lambda = {detectable:g} equivalent (the smallest detectable)"}
    if target > effects[-1]:
        return {"lambda": float(lams[-1]), "relation": ">", "text": f"beyond lambda = {lams[-1]:g} (the biased base)"}
    hi = int(np.argmax(effects >= target))
    lo = max(hi - 1, 0)
    span = effects[hi] - effects[lo]
    lam = float(lams[hi] if span <= 0 else lams[lo] + (target - effects[lo]) / span * (lams[hi] - lams[lo]))
    return {"lambda": lam, "relation": "=", "text": f"the lambda = {lam:.3g} equivalent"}


def summarize(curve: DoseCurve, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """JSON-safe summary per measure: the mean with its bootstrap interval over items at each lambda, the paired
    difference from lambda = 0 with its interval, and the minimum detectable lambda."""
    limits = minimum_detectable(curve, confidence, n_resamples, seed)
    out: dict[str, Any] = {"lambdas": list(curve.lambdas), "seconds": list(curve.seconds), "measures": {}}
    for measure in curve.values:
        levels = [bootstrap_ci(row, confidence, n_resamples, seed) for row in curve.items(measure)]
        diffs = differences(curve, measure, confidence, n_resamples, seed)
        out["measures"][measure] = {
            "items": int(curve.items(measure).shape[1]),
            "mean": [c["mean"] for c in levels], "low": [c["low"] for c in levels], "high": [c["high"] for c in levels],
            "difference": [{k: d[k] for k in ("lambda", "mean", "low", "high", "detected")} for d in diffs],
            "minimum_detectable_lambda": limits[measure],
        }
    return out
