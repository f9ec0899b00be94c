"""Intervals over seeds for every headline number, without torch (a report needs no model).

- ``seed_ci``: Student-t interval of the mean over seeds (the sweep report's ``mean ± half-width``);
- ``bootstrap_ci``: percentile bootstrap interval of the mean, seeded.

``None`` and ``nan`` values are dropped: a seed where a metric is undefined adds no information.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
