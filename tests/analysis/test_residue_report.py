"""The residue section of the sweep report names the base it calibrates against: the implanted one, or the model's
own when the sweep implants nothing."""

from __future__ import annotations

from fairgym.analysis.report import markdown_table
from fairgym.analysis.residue_report import residue_markdown


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
