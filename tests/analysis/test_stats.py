"""Intervals over seeds (``fairgym.analysis.stats``), and the sweep report reading a sweep without torch."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from fairgym.analysis.stats import bootstrap_ci, seed_ci


def test_seed_ci_constant_values_has_zero_width():
    ci = seed_ci([0.2, 0.2, 0.2])
    assert ci["mean"] == pytest.approx(0.2) and ci["half_width"] == pytest.approx(0.0)
    assert ci["low"] == pytest.approx(ci["high"])


def test_seed_ci_drops_nan_and_matches_t_interval():
    ci = seed_ci([1.0, float("nan"), 3.0, None])
    assert ci["n"] == 2 and ci["mean"] == 2.0
    assert ci["half_width"] == pytest.approx(12.706204736 * math.sqrt(2) / math.sqrt(2), rel=1e-6)
    single = seed_ci([0.5])
    assert single["mean"] == 0.5 and math.isnan(single["low"])


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [0.1, 0.4, 0.2, 0.5, 0.3]
    a, b = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    assert a == b and a["low"] <= a["mean"] <= a["high"]
    assert bootstrap_ci([0.7] * 4)["half_width"] == 0.0


REPORT_WITHOUT_TORCH = """
import sys
from fairgym.analysis.sweep_report import write_sweep_report
report = write_sweep_report(sys.argv[1])
assert report.is_file() and (report.parent / "plots" / "bias_vs_rank.png").is_file(), "no report written"
heavy = sorted(m for m in ("torch", "transformers", "peft", "trl") if m in sys.modules)
print("heavy:", ",".join(heavy))
"""


def test_sweep_report_renders_without_importing_torch(tmp_path):
    from sweep_fixture import build_sweep

    folder = build_sweep(tmp_path)
    done = subprocess.run([sys.executable, "-c", REPORT_WITHOUT_TORCH, str(folder)], capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "heavy:", done.stdout
