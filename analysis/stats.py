"""Intervals over seeds for every headline number, without torch (a report needs no model).

- ``seed_ci``: Student-t interval of the mean over seeds (the sweep report's ``mean ± half-width``);
- ``bootstrap_ci``: percentile bootstrap interval of the mean, seeded;
- ``wilson_ci`` / ``clopper_pearson_ci`` (``proportion_ci``): intervals of a proportion ``k of n``;
- ``paired_bootstrap``: the mean difference of two arms on the same items, with an interval over items;
- ``bounded_ci``: the mean of a measure bounded to a range (a rate), its interval never outside the range;
- ``k_of_n``: "2 of 3 seeds equal to the teacher", counted by code;
- ``format_seeds``, ``format_proportion``, ``format_difference``: text that never prints "±0" (agreeing seeds read
  "all 3 seeds: 1.000", a proportion "0 of 32 (95% CI 0-0.107)", identical pairs "identical on all 512 items").

``None`` and ``nan`` values are dropped: a seed where a metric is undefined adds no information.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np


def _clean(values: Iterable[float | None]) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    return arr[~np.isnan(arr)]


def seed_ci(values: Iterable[float | None], confidence: float = 0.95) -> dict[str, float]:
    """Student-t interval of the mean over seeds; ``None``/``nan`` values are dropped.

    Returns:
        ``{"mean", "low", "high", "half_width", "n"}``. With one value the bounds are ``nan`` (no spread to
        estimate); with none everything but ``n`` is ``nan``.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    arr = _clean(values)
    n = int(arr.size)
    mean = float(arr.mean()) if n else float("nan")
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "half_width": float("nan"), "n": n}
    sem = float(arr.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem
    return {"mean": mean, "low": mean - half, "high": mean + half, "half_width": half, "n": n}


def bootstrap_ci(values: Iterable[float | None], confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> dict[str, float]:
    """Percentile bootstrap interval of the mean (seeded); ``None``/``nan`` values are dropped."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    arr = _clean(values)
    n = int(arr.size)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "half_width": float("nan"), "n": 0}
    means = np.random.default_rng(seed).choice(arr, size=(n_resamples, n), replace=True).mean(axis=1)
    low, high = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return {"mean": float(arr.mean()), "low": float(low), "high": float(high),
            "half_width": float(high - low) / 2, "n": n}


# ---- proportions, paired differences, bounded means, and formatting that never reads as certainty -------------
PROPORTION_METHODS = {"wilson": "wilson", "clopper-pearson": "exact"}  # our name -> scipy's


def proportion_ci(k: int, n: int, confidence: float = 0.95, method: str = "wilson") -> dict[str, float]:
    """Interval of a proportion ``k / n``: Wilson score (default) or Clopper-Pearson (exact), via scipy.

    Returns:
        ``{"k", "n", "rate", "low", "high"}``; with ``n == 0`` the rate and bounds are ``nan`` (no trials).

    Raises:
        ValueError: ``k`` outside ``0..n``, an unknown method or a confidence outside (0, 1).
    """
    from scipy.stats import binomtest

    if method not in PROPORTION_METHODS:
        raise ValueError(f"method={method!r} is not one of {sorted(PROPORTION_METHODS)}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k <= n):
        raise ValueError(f"a proportion needs integers 0 <= k <= n, got k={k!r}, n={n!r}.")
    if n == 0:
        return {"k": 0, "n": 0, "rate": float("nan"), "low": float("nan"), "high": float("nan")}
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method=PROPORTION_METHODS[method])
    return {"k": k, "n": n, "rate": k / n, "low": max(0.0, float(ci.low)), "high": min(1.0, float(ci.high))}


def wilson_ci(k: int, n: int, confidence: float = 0.95) -> dict[str, float]:
    """Wilson score interval of ``k / n`` (see ``proportion_ci``)."""
    return proportion_ci(k, n, confidence, "wilson")


def clopper_pearson_ci(k: int, n: int, confidence: float = 0.95) -> dict[str, float]:
    """Clopper-Pearson (exact binomial) interval of ``k / n`` (see ``proportion_ci``)."""
    return proportion_ci(k, n, confidence, "clopper-pearson")


def paired_bootstrap(a: Iterable[float | None], b: Iterable[float | None], confidence: float = 0.95,
                     n_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of ``a - b`` over the same items, with a percentile bootstrap interval over items (seeded).

    Items where either value is ``None``/``nan`` are dropped as pairs. An arm against itself gives exactly
    ``[0, 0]`` (every resampled mean of zeros is 0).

    Returns:
        ``{"mean", "low", "high", "half_width", "n"}`` (``n``: the pairs kept).

    Raises:
        ValueError: ``a`` and ``b`` differ in length (they must be the same items in the same order).
    """
    a_arr = np.asarray([np.nan if v is None else float(v) for v in a], dtype=float)
    b_arr = np.asarray([np.nan if v is None else float(v) for v in b], dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired_bootstrap needs the same items in a and b, got {a_arr.size} and {b_arr.size} values.")
    return bootstrap_ci(a_arr - b_arr, confidence, n_resamples, seed)


def bounded_ci(values: Iterable[float | None], low: float = 0.0, high: float = 1.0, confidence: float = 0.95,
               method: str = "bootstrap", seed: int = 0) -> dict[str, float]:
    """Interval of the mean of a measure bounded to ``[low, high]`` (a rate, a share), never outside its range.

    ``method="bootstrap"``: percentile bootstrap (its bounds are means of the data, so inside the range);
    ``method="t"``: the Student-t interval of ``seed_ci`` clipped to the range.

    Returns:
        As ``seed_ci``, with ``"clipped": True`` when the t-interval was cut at a bound.
    """
    if method not in ("bootstrap", "t"):
        raise ValueError(f"method={method!r} must be 'bootstrap' or 't'.")
    values = list(values)
    arr = _clean(values)
    if arr.size and (arr.min() < low or arr.max() > high):
        raise ValueError(f"values must lie in [{low}, {high}], got {arr.min():g}..{arr.max():g}.")
    ci = bootstrap_ci(arr, confidence, seed=seed) if method == "bootstrap" else seed_ci(arr, confidence)
    clipped = bool(ci["low"] < low or ci["high"] > high)
    ci["low"], ci["high"] = (float(np.clip(ci["low"], low, high)), float(np.clip(ci["high"], low, high)))
    return {**ci, "clipped": clipped}


def k_of_n(values: Iterable[float | bool | None], target: float | bool = True, tol: float = 1e-9,
           unit: str = "seeds", what: str = "equal to the teacher") -> dict[str, Any]:
    """How many of ``values`` equal ``target`` (within ``tol``), counted by code: ``"2 of 3 seeds equal to the
    teacher"``. ``None``/``nan`` values count in neither ``k`` nor ``n``."""
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    k = sum(abs(v - float(target)) <= tol for v in kept)
    return {"k": k, "n": len(kept), "text": f"{k} of {len(kept)} {unit} {what}".rstrip()}


def _num(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, trailing zeros dropped (``0.107``, ``0``, ``1``)."""
    text = f"{value:.{digits}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def _bounds(low: float, high: float, digits: int, sep: str) -> str:
    """``low{sep}high`` with enough decimals (up to 15) that two different bounds never print as one number."""
    for places in range(digits, max(digits, 15) + 1):
        lo, hi = _num(low, places), _num(high, places)
        if lo != hi:
            break
    return f"{lo}{sep}{hi}"


def format_proportion(k: int, n: int, confidence: float = 0.95, method: str = "wilson", digits: int = 3) -> str:
    """``"0 of 32 (95% CI 0-0.107)"``: the count, never a bare rate, with its Wilson/Clopper-Pearson interval."""
    ci = proportion_ci(k, n, confidence, method)
    if n == 0:
        return "0 of 0 (no trials)"
    rate = "" if k == 0 else f" = {_num(ci['rate'], digits)}"
    return f"{k} of {n}{rate} ({confidence:.0%} CI {_bounds(ci['low'], ci['high'], digits, '-')})"


def format_seeds(values: Iterable[float | None], digits: int = 3, confidence: float = 0.95,
                 bounds: tuple[float, float] | None = None, unit: str = "seeds") -> str:
    """A mean over seeds that never prints "±0": ``"all 3 seeds: 1.000"`` when they agree, ``"0.700 (1 seed)"``
    alone, else ``"0.531 (95% CI 0.2-0.9, 3 seeds)"`` (a t-interval, clipped to ``bounds`` when given)."""
    arr = _clean(values)
    if arr.size == 0:
        return "n/a (no seeds)"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f} (1 {unit.rstrip('s')})"
    if np.ptp(arr) <= 1e-12 * max(1.0, float(np.abs(arr).max())):  # equal up to float noise (3.4e-16)
        return f"all {arr.size} {unit}: {arr[0]:.{digits}f}"
    ci = bounded_ci(arr, *bounds, confidence, method="t") if bounds else seed_ci(arr, confidence)
    return f"{ci['mean']:.{digits}f} ({confidence:.0%} CI {_bounds(ci['low'], ci['high'], digits, ' to ')}, " \
           f"{arr.size} {unit})"


def format_difference(ci: dict[str, float], digits: int = 3, unit: str = "items", confidence: float = 0.95) -> str:
    """A paired difference (``paired_bootstrap``'s result): ``"+0.012 (95% CI 0.004 to 0.02, 512 items)"``, or
    ``"identical on all 512 items"`` when every pair is equal (no "±0")."""
    n = int(ci.get("n", 0))
    if n == 0 or math.isnan(ci["mean"]):
        return f"n/a (no {unit})"
    if ci["low"] == ci["high"] == ci["mean"] == 0:
        return f"identical on all {n} {unit}"
    bounds = _bounds(ci["low"], ci["high"], digits, " to ")
    return f"{ci['mean']:+.{digits}f} ({confidence:.0%} CI {bounds}, {n} {unit})"
