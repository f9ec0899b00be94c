"""Residue figures: full's band, the base's line and the lambda levels are drawn; the detection limit is marked."""

from __future__ import annotations

import numpy as np

from fairgym.analysis.calibration import LAMBDAS, dose_response, summarize
from fairgym.analysis.residue_plots import (
    ResiduePanel,
    dose_response_figure,
    paired_lens_figure,
    residue_vs_rank_figure,
)


def _summary():
    rng = np.random.default_rng(0)
    base = rng.normal(size=200)
    noise = np.where(np.arange(200) % 2 == 0, 1.0, -1.0)
    return summarize(dose_response(lambda lam: {"gap": (base + (lam if lam >= 0.1 else 0) + noise * (lam < 0.1)
                                                        * (lam > 0)).tolist(),
                                                "flat": base.tolist()}, LAMBDAS))


def test_dose_response_marks_the_minimum_detectable_lambda(tmp_path):
    summary = _summary()
    fig = dose_response_figure(summary, titles={"gap": "|margin gap|"})
    gap_ax, flat_ax = fig.axes
    vertical = [line for line in gap_ax.get_lines() if len(set(line.get_xdata())) == 1 and line.get_xdata()[0] == 0.1]
    assert vertical and "minimum detectable λ = 0.1" in [t.get_text() for t in gap_ax.get_legend().get_texts()]
    assert flat_ax.get_title() == "flat (no λ separated)" and gap_ax.get_title() == "|margin gap|"
    fig.savefig(tmp_path / "dose.png")
    assert (tmp_path / "dose.png").stat().st_size > 0


def test_residue_vs_rank_draws_full_band_base_line_and_lambda_levels():
    panel = ResiduePanel("|margin gap|", ranks={"lora": [1, 8]}, values={"lora": [(0.5, 0.4, 0.6), (0.2, 0.15, 0.25)]},
                         full=(0.1, 0.08, 0.12), base=2.0, lambda_levels={0.0: 0.1, 0.05: 0.3, 0.25: 0.9})
    ax = residue_vs_rank_figure([panel]).axes[0]
    levels = {round(line.get_ydata()[0], 6) for line in ax.get_lines() if len(set(line.get_ydata())) == 1}
    assert {0.3, 0.9, 0.1, 2.0} <= levels  # the lambda levels (not lambda = 0, which is full), full's mean, the base
    assert [t.get_text() for t in ax.texts] == ["λ=0.05", "λ=0.25"]
    assert len(ax.patches) == 1  # full's band
    assert ax.get_legend() is not None and "base (biased)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_paired_lens_draws_one_line_per_arm_with_its_interval():
    lenses = {"full": {"mean": [0.0, 0.1, -0.2], "low": [-0.1, 0.0, -0.3], "high": [0.1, 0.2, -0.1]},
              "base": {"mean": [0.0, -1.0, -3.0]}}
    ax = paired_lens_figure(lenses, groups=["Black", "white"]).axes[0]
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == ["full", "base"]
    assert len(ax.collections) == 1 and ax.get_ylabel() == "margin(Black) - margin(white)"
