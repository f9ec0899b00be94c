"""The residue section of the sweep report names the base it calibrates against: the implanted one, or the model's
own when the sweep implants nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fairgym.analysis.calibration import LAMBDAS, DoseCurve, summarize
from fairgym.analysis.report import markdown_table
from fairgym.analysis.residue_report import implant_alignment, residue_markdown, with_alignment


def _sweep(implant):
    values = {"margin_gap_abs": [0.1, 0.2, 0.3], "flip": [0.0, 0.0, 1.0]}
    return {"config": {"implant": implant},
            "arms": [{"name": "full-s0", "label": "full", "seed": 0},
                     {"name": "lora-r1-s0", "label": "lora-r1", "seed": 0}],
            "residue": {"items": {"env_id": "fairgym/Lending-v0", "states": 3, "heldout": 0, "prompts": 0},
                        "arms": {"base": {"values": {k: [v + 1 for v in vs] for k, vs in values.items()}},
                                 "full-s0": {"values": values},
                                 "lora-r1-s0": {"values": {k: [v + 0.5 for v in vs] for k, vs in values.items()}}}}}


def test_a_sweep_without_an_implant_calibrates_against_the_models_own_bias():
    text = "\n".join(residue_markdown(_sweep(None), markdown_table))
    assert "the base (no implant: the model's own bias), λ = 1" in text
    assert "implant's biased answer" not in text and "implanted base" not in text
    assert "| lora-r1 |" in text


def test_an_implanted_sweep_names_the_implanted_base_and_its_heldout_items():
    text = "\n".join(residue_markdown(_sweep({"teacher": "biased-threshold"}), markdown_table))
    assert "the implanted base, λ = 1" in text and "0 of them carrying the implant's biased answer" in text


def test_implant_alignment_is_the_slope_on_the_bases_gap_item_by_item():
    base = np.array([0.5, -0.3, 0.4, -0.6, 0.2, -0.1])
    assert implant_alignment(base, base).mean() == pytest.approx(1.0)
    assert implant_alignment(0.3 * base, base).mean() == pytest.approx(0.3)
    # as large a gap, but pointing its own way on each item: no share of the base's pattern
    unrelated = np.array([0.3, 0.5, 0.6, 0.4, 0.0, 0.0])
    assert np.abs(unrelated).mean() > 0.8 * np.abs(base).mean()
    assert implant_alignment(unrelated, base).mean() == pytest.approx(0.0, abs=1e-12)
    # the mean signed gap cancels across groups whose rules point different ways; the alignment does not
    assert abs(base.mean()) < 0.05 and implant_alignment(base, base).mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same items"):
        implant_alignment(base[:3], base)
    with pytest.raises(ValueError, match="base's gap is 0"):
        implant_alignment(base, np.zeros_like(base))


def test_residue_json_gains_the_alignment_of_every_arm_and_dose_without_measuring():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.5, 200)
    full = 0.05 * base + rng.normal(0, 0.05, 200)
    rows = [(full + lam * (base - full)).tolist() for lam in LAMBDAS]
    curve = DoseCurve(list(LAMBDAS), {"margin_gap": rows})
    residue = {"arms": {"base": {"values": {"margin_gap": base.tolist()}},
                        "full-s0": {"values": {"margin_gap": full.tolist()}},
                        "lora-r1-s0": {"values": {"margin_gap": (0.5 * base).tolist()}},
                        "lora-r8-s0": {"error": "RuntimeError: out of memory"}},
               "calibration": {"curve": curve.to_dict(), "summary": summarize(curve)}}
    out = with_alignment(residue)
    aligned = {name: np.mean(entry["values"]["implant_alignment"]) for name, entry in out["arms"].items()
               if "values" in entry}
    assert aligned["base"] == pytest.approx(1.0) and aligned["lora-r1-s0"] == pytest.approx(0.5)
    assert aligned["full-s0"] == pytest.approx(0.05, abs=0.03)
    entry = out["calibration"]["summary"]["measures"]["implant_alignment"]
    assert entry["mean"][-1] == pytest.approx(1.0) and entry["minimum_detectable_lambda"] is not None
    assert len(out["calibration"]["curve"]["values"]["implant_alignment"]) == len(LAMBDAS)
    # a file without the base's gaps (a reply env) is returned unchanged
    replies = {"arms": {"base": {"values": {"sampled_toxicity": [0.1, 0.2]}}}}
    assert with_alignment(json.loads(json.dumps(replies))) == replies


def test_the_report_shows_the_alignment_when_the_base_has_gaps():
    sweep = _sweep({"teacher": "biased-threshold"})
    gaps = {"base": [0.4, -0.4, 0.2], "full-s0": [0.0, 0.1, 0.0], "lora-r1-s0": [0.2, -0.2, 0.1]}
    for name, gap in gaps.items():
        sweep["residue"]["arms"][name]["values"]["margin_gap"] = gap
    sweep["residue"] = with_alignment(sweep["residue"])
    text = "\n".join(residue_markdown(sweep, markdown_table))
    section = text.split("### implant alignment", 1)[1]
    assert "| base | 1.000" in section and "| lora-r1 | 0.500" in section


def test_a_reply_env_is_not_described_with_swapped_descriptors():
    sweep = _sweep({"teacher": "hostile"})
    sweep["residue"]["items"].update(env_id="fairgym/Dialogue-v1", discrete=False, states=64, heldout=64, prompts=16)
    text = "\n".join(residue_markdown(sweep, markdown_table))
    assert "64 states from seeded fair-teacher episodes, 64 of them carrying the implant's biased answer, 16 reply" \
        in text
    assert "descriptor swapped" not in text
    lending = "\n".join(residue_markdown(_sweep({"teacher": "biased-threshold"}), markdown_table))
    assert "3 decision states from seeded fair-teacher episodes (their group descriptor swapped" in lending
