"""A schema version in every saved config: written first in ``config.yaml``, read back as ``--config``, and a
folder saved before a change (no version, or a lower one) refused naming the change and how to proceed."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from fairgym.agents.runs import RunConfig
from fairgym.commands import main
from fairgym.config import SCHEMA_KEY, SchemaError, check_schema, from_dict, save_config, schema_version
from fairgym.runfiles import CONFIG_FILE
from fairgym.training.config import TrainConfig
from fairgym.training.sweep_config import SweepConfig
from fairgym.training.sweep_folder import check_sweep_folder

RUN = ["run", "--agent", "random", "--episodes", "2", "--env-opt", "max_steps=3", "--no-wandb"]


def drop_version(path) -> None:
    data = yaml.safe_load(path.read_text())
    del data[SCHEMA_KEY]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("cls", [RunConfig, TrainConfig, SweepConfig])
def test_every_saved_config_starts_with_its_version_and_reads_back(cls, tmp_path):
    save_config(cls(), tmp_path / CONFIG_FILE)
    text = (tmp_path / CONFIG_FILE).read_text()
    assert text.startswith(f"{SCHEMA_KEY}: {schema_version(cls)}\n") and schema_version(cls) >= 1
    assert from_dict(cls, yaml.safe_load(text)) == cls()  # a saved config.yaml is a valid --config


def test_a_run_folder_without_a_version_is_refused_naming_the_change_and_the_way_on(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    drop_version(out / CONFIG_FILE)
    before = (out / "episodes.jsonl").read_bytes()
    assert main([*RUN, "--episodes", "4", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"fairgym run: error: {out / CONFIG_FILE} has no schema version: it predates RunConfig schema 1 "
                    f"({RunConfig.SCHEMA_CHANGES[1]}), so resuming it could mix results of two fairgym versions. "
                    f"Write to a new folder; or, if you know this one is unaffected, set `schema_version: 1` at the "
                    f"top of {out / CONFIG_FILE}.")
    assert (out / "episodes.jsonl").read_bytes() == before
    text = (out / CONFIG_FILE).read_text()
    (out / CONFIG_FILE).write_text(f"schema_version: 1\n{text}")  # the way on the message names
    assert main([*RUN, "--episodes", "4", "--out", str(out)]) == 0


def test_a_newer_or_malformed_version_is_refused():
    with pytest.raises(SchemaError, match=r"x.yaml was written by a newer fairgym \(RunConfig schema 99"):
        check_schema(RunConfig, {SCHEMA_KEY: 99}, "x.yaml")
    with pytest.raises(SchemaError, match=r"schema_version='1' must be an integer"):
        check_schema(RunConfig, {SCHEMA_KEY: "1"}, "x.yaml")
    assert check_schema(RunConfig, {SCHEMA_KEY: 1, "agent": "random"}, "x.yaml") == {"agent": "random"}


def test_a_lower_version_names_the_first_change_it_predates(monkeypatch):
    monkeypatch.setattr(RunConfig, "SCHEMA_CHANGES", {1: "first", 2: "second", 3: "third"})
    with pytest.raises(SchemaError, match=r"has schema version 1: it predates RunConfig schema 2 \(second\).*"
                                          r"set `schema_version: 3`"):
        check_schema(RunConfig, {SCHEMA_KEY: 1}, "x.yaml")


def test_a_training_folder_without_a_version_is_refused_before_anything_loads(tiny_model_dir, tmp_path):
    from fairgym.training.trainers import train

    config = TrainConfig(model=str(tiny_model_dir), output_dir=str(tmp_path / "run"), device="cpu")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / CONFIG_FILE).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    with pytest.raises(SchemaError, match=r"has no schema version: it predates TrainConfig schema 1"):
        train(config)


def test_a_sweep_folder_without_a_version_is_refused(tmp_path):
    config = SweepConfig(name="s")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / CONFIG_FILE).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    with pytest.raises(SchemaError, match=r"s/config.yaml has no schema version: it predates SweepConfig schema 1 "
                                          r"\(sweep folders record a schema version; one without may predate "
                                          r"learning rates chosen per arm\)"):
        check_sweep_folder(config, tmp_path / "s")
    save_config(config, tmp_path / "s" / CONFIG_FILE)
    check_sweep_folder(config, tmp_path / "s")  # the same config, versioned: accepted
