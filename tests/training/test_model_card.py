"""What a training folder says about its run: the alpha rule in config.yaml, a base model recorded portably in
the adapter, and a model card that names the base instead of "[None]"."""

from __future__ import annotations

import json
import shutil

import yaml

from fairgym.lm.models import EMBEDDED_MODEL, load_model, recorded_base
from fairgym.training import TrainConfig, train
from fairgym.training.config import config_differences
from fairgym.training.model_card import base_description, portable_base


def test_alpha_rule_is_saved_explicitly_and_old_null_folders_still_resume(tiny_config):
    config = tiny_config(method="lora", rank=4)
    assert config.alpha == "2r" and config.lora_alpha == 8.0
    saved = {**json.loads(json.dumps(vars(config))), "alpha": None}  # a folder written before: alpha null
    assert config_differences(saved, config) == {}
    assert config_differences({**saved, "alpha": 4.0}, config) == {"alpha": (4.0, "2r")}


def test_adapter_records_its_base_portably_and_the_card_names_it(tiny_config, tiny_model_dir, tmp_path):
    here = tmp_path / "here"
    shutil.copytree(tiny_model_dir, here / "models" / "base")
    result = train(tiny_config(model=str(here / "models" / "base"), method="lora", rank=2, max_steps=1,
                               output_dir=str(here / "runs" / "a")))
    saved = yaml.safe_load((result.output_dir / "config.yaml").read_text())
    assert saved["alpha"] == "2r"  # the rule in use, not null
    recorded = json.loads((result.adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == "../../../models/base"  # relative to the adapter folder
    assert str(here) not in (result.adapter_dir / "README.md").read_text()
    card = (result.output_dir / "README.md").read_text()
    assert "[None]" not in card and "the local model `../../models/base` (relative to this folder)" in card
    # the base and the run folder move together (another machine): the adapter still finds and fits its base
    moved = tmp_path / "elsewhere"
    shutil.move(str(here), str(moved))
    adapter = moved / "runs" / "a" / "adapter"
    assert recorded_base(adapter) == str((moved / "models" / "base").resolve())
    model, _ = load_model(str(moved / "models" / "base"), str(adapter), device="cpu")
    assert hasattr(model, "peft_config")


def test_the_embedded_base_is_recorded_by_its_alias(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path / "run"))
    assert portable_base(config, tmp_path / "run" / "adapter") == EMBEDDED_MODEL
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in base_description(config, tmp_path / "run")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": EMBEDDED_MODEL}))
    assert recorded_base(adapter) == EMBEDDED_MODEL
    from fairgym.lm.models import EMBEDDED_DIRNAME, _same_base

    assert _same_base(EMBEDDED_MODEL, f"/any/cache/models/{EMBEDDED_DIRNAME}")
    assert not _same_base(EMBEDDED_MODEL, "/models/other")
