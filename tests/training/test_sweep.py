"""The rank sweep on tiny models: files, resume, failures recorded, bad configs rejected before training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fairgym.config import UnknownNameError
from fairgym.runfiles import env_folder
from fairgym.training import trainers
from fairgym.training.sweep import run_sweep
from fairgym.training.sweep_arms import plan_arms
from fairgym.training.sweep_config import SweepConfig, load_sweep_config
from fairgym.training.sweep_folder import read_status

LENDING = "fairgym/Lending-v0"


def tiny_sweep(model_dir: Path, **overrides) -> SweepConfig:
    data = {
        "name": "tiny", "model": str(model_dir), "recipe": "sft", "ranks": [2], "include_full": True, "seeds": [0],
        "device": "cpu",
        "train": {"max_steps": 2, "episodes": 1, "batch_size": 2, "max_length": 512, "save_steps": 50,
                  "env_kwargs": {"max_steps": 3}, "counterfactual": True},
        "eval": {"envs": [LENDING], "episodes": 2, "seed": 100, "env_kwargs": {LENDING: {"max_steps": 3}},
                 "num_envs": 2},
        "diagnostics": {"decisions": 6, "episodes": 2, "spectrum_ranks": [1, 2, 4]},
        "residue": {"states": 10, "heldout": 4, "prompts": 3, "samples": 2, "lambdas": [0.0, 0.5, 1.0],
                    "batch_size": 8},
    }
    data.update(overrides)
    from fairgym.config import from_dict

    return from_dict(SweepConfig, data)


@pytest.fixture(scope="module")
def swept(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps")
    return run_sweep(tiny_sweep(tiny_model_dir), out_root=out)


def test_sweep_writes_every_file_and_plot(swept):
    for arm in ("base", "full-s0", "lora-r2-s0"):
        assert read_status(swept / arm)["state"] == "done", (swept / arm / "status.json").read_text()
        assert (swept / arm / "Lending-v0" / "episodes.jsonl").read_text().count("\n") == 2
        metrics = json.loads((swept / arm / "metrics.json").read_text())[LENDING]
        assert "fairness/demographic_parity_difference" in metrics
    assert (swept / "lora-r2-s0" / "train" / "adapter" / "adapter_config.json").exists()
    assert (swept / "config.yaml").exists()
    # the fair teacher replayed at the states each arm reached: the teacher agrees with itself everywhere
    teacher = json.loads((swept / "teacher" / "metrics.json").read_text())[LENDING]
    assert teacher["task/teacher_agreement"] == 1.0
    base = json.loads((swept / "base" / "metrics.json").read_text())[LENDING]
    assert 0.0 <= base["task/teacher_agreement"] <= 1.0 and "task/teacher_agreement/Black" in base
    diag = json.loads((swept / "diagnostics.json").read_text())
    assert diag["decisions"] == 6 and diag["choices"] == ["approve", "deny"]
    assert diag["arms"]["base"]["kl_vs_base"]["mean"] == pytest.approx(0.0, abs=1e-6)
    lora = diag["arms"]["lora-r2-s0"]
    assert lora["kl_vs_base"]["mean"] > 0 and lora["kl_vs_full"]["n"] == 6
    assert len(lora["logit_lens"]["mean"]) == 3  # embeddings + 2 layers
    assert 0.0 <= lora["flip_rate"]["overall"] <= 1.0
    assert 0.0 <= lora["update"]["subspace_share"] <= lora["update"]["top_r_share"] + 1e-6
    assert lora["intruders"]["layers"] == 2 * 7 and lora["intruders"]["total"] >= 0  # all-linear: 7 per layer
    assert set(diag["spectrum"]["0"]["energy_share"]) == {"1", "2", "4"}
    plots = {p.name for p in (swept / "plots").glob("*.png")}
    assert {"bias_vs_rank.png", "kl_vs_rank.png", "logit_lens.png", "update_energy.png",
            "gap_trajectory_Lending-v0.png", "credit_drift_Lending-v0.png"} <= plots
    assert "compounding_Lending-v0.png" in plots
    report = (swept / "report.md").read_text()
    assert "| lora-r2 |" in report and "| full |" in report and "KL vs base" in report
    assert "| teacher |" in report and "imitates teacher" in report and "intruder dims" in report


def test_rerun_skips_finished_arms(swept, tiny_model_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(trainers, "train", lambda config: calls.append(config) or pytest.fail("retrained"))
    before = {a: (swept / a / "status.json").stat().st_mtime_ns for a in ("base", "full-s0", "lora-r2-s0")}
    run_sweep(tiny_sweep(tiny_model_dir), out_root=swept.parent)
    assert calls == []
    assert before == {a: (swept / a / "status.json").stat().st_mtime_ns for a in before}


def test_report_only_cli_rewrites_report(swept, tiny_model_dir, tmp_path):
    from fairgym.commands import main

    (swept / "report.md").unlink()
    config = tmp_path / "tiny.yaml"
    import yaml

    config.write_text(yaml.safe_dump(yaml.safe_load((swept / "config.yaml").read_text())))
    assert main(["sweep", str(config), "--out", str(swept.parent), "--report-only"]) == 0
    assert (swept / "report.md").exists()


def test_fairgym_report_on_a_sweep_folder_writes_the_sweep_report(swept, capsys):
    from fairgym.commands import main

    (swept / "report.md").unlink()
    assert main(["report", str(swept)]) == 0
    assert "| lora-r2 |" in (swept / "report.md").read_text()
    assert str(swept / "report.md") in capsys.readouterr().out


def test_failing_arm_is_recorded_and_the_others_go_on(tiny_model_dir, tmp_path, monkeypatch):
    real_train = trainers.train

    def flaky(config):
        if config.rank == 2:
            raise RuntimeError("boom in rank 2")
        return real_train(config)

    monkeypatch.setattr(trainers, "train", flaky)
    config = tiny_sweep(tiny_model_dir, ranks=[2, 3], include_full=False,
                        diagnostics={"decisions": 4, "episodes": 1})
    sweep_dir = run_sweep(config, out_root=tmp_path)
    failed = read_status(sweep_dir / "lora-r2-s0")
    assert failed["state"] == "failed" and "boom in rank 2" in failed["error"] and "Traceback" in failed["traceback"]
    assert read_status(sweep_dir / "lora-r3-s0")["state"] == "done"
    assert read_status(sweep_dir / "base")["state"] == "done"
    assert "failed" in (sweep_dir / "report.md").read_text()


def test_lora_diagnosed_before_full_gets_kl_vs_full_on_rerun(tiny_model_dir, tmp_path, monkeypatch):
    """A full arm that failed, then succeeds on a rerun: the LoRA arms' diagnostics gain their KL vs full."""
    real_train = trainers.train

    def full_fails(config):
        if config.method == "full":
            raise RuntimeError("full arm interrupted")
        return real_train(config)

    config = tiny_sweep(tiny_model_dir, diagnostics={"decisions": 4, "episodes": 1, "spectrum_ranks": [1, 2]})
    monkeypatch.setattr(trainers, "train", full_fails)
    sweep_dir = run_sweep(config, out_root=tmp_path, report=False)
    assert "kl_vs_full" not in json.loads((sweep_dir / "diagnostics.json").read_text())["arms"]["lora-r2-s0"]
    monkeypatch.setattr(trainers, "train", real_train)
    run_sweep(config, out_root=tmp_path, report=False)
    diag = json.loads((sweep_dir / "diagnostics.json").read_text())
    lora = diag["arms"]["lora-r2-s0"]
    assert lora["kl_vs_full"]["n"] == diag["decisions"] > 0 and "subspace_share" in lora["update"]


@pytest.mark.parametrize(("override", "error", "match"), [
    ({"rank": [1]}, UnknownNameError, "Did you mean 'ranks'"),
    ({"ranks": []}, ValueError, "ranks is empty"),
    ({"ranks": [0]}, ValueError, "int >= 1"),
    ({"eval": {"envs": ["fairgym/Lendng-v0"]}}, UnknownNameError, "Lending-v0"),
    ({"recipe": "ppo"}, UnknownNameError, "recipe"),
    ({"train": {"max_step": 3}}, ValueError, "max_steps"),
    ({"train": {"rank": 3}}, ValueError, "set per arm"),
    ({"variants": ["dorra"]}, UnknownNameError, "dora"),
    ({"implant": {"max_stepz": 3}}, ValueError, "implant.*max_steps"),
    ({"eval": {"envs": [LENDING], "env_kwargs": {LENDING: {"max_step": 3}}}}, UnknownNameError, "max_steps"),
])
def test_bad_config_fails_before_training(override, error, match, tmp_path, monkeypatch):
    import yaml

    monkeypatch.setattr(trainers, "train", lambda config: pytest.fail("trained despite a bad config"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", **override}))
    with pytest.raises(error, match=match):
        load_sweep_config(path)


def test_cli_reports_bad_config_with_exit_code_2(tmp_path, capsys):
    from fairgym.commands import main

    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nranks: []\n")
    assert main(["sweep", str(path)]) == 2
    assert "ranks is empty" in capsys.readouterr().err


def test_implant_config_takes_the_sweep_model_env_and_a_full_update(tmp_path):

    config = SweepConfig(model="some/model", implant={"max_steps": 3, "teacher_kwargs": {"penalty": 200}},
                         train={"env_kwargs": {"max_steps": 4}})
    implant = config.implant_config(tmp_path / "implant")
    assert (implant.model, implant.method, implant.max_steps) == ("some/model", "full", 3)
    assert implant.env_kwargs == {"max_steps": 4} and implant.output_dir == str(tmp_path / "implant")


def test_plan_arms_orders_base_full_then_ranks_per_seed():
    config = SweepConfig(ranks=[1, 8], seeds=[0, 1], variants=["dora"])
    names = [a.name for a in plan_arms(config)]
    assert names[:4] == ["base", "full-s0", "lora-r1-s0", "lora-r8-s0"]
    assert "dora-r8-s1" in names and len(names) == 1 + 2 * (1 + 2 + 2)
    assert {a.label for a in plan_arms(config)} == {"base", "full", "lora-r1", "lora-r8", "dora-r1", "dora-r8"}


def test_dialogue_eval_writes_toxicity_per_turn(tiny_model_dir, tmp_path):
    """A sweep evaluated on Dialogue (generation) records toxicity and plots it per turn and group."""
    dialogue = "fairgym/Dialogue-v1"
    config = tiny_sweep(tiny_model_dir, name="tiny-dialogue", ranks=[1], include_full=False,
                        eval={"envs": [dialogue], "episodes": 2, "seed": 7, "num_envs": 2,
                              "env_kwargs": {dialogue: {"max_steps": 3}}},
                        diagnostics={"enabled": False})
    sweep_dir = run_sweep(config, out_root=tmp_path)
    episodes = (sweep_dir / "base" / "Dialogue-v1" / "episodes.jsonl").read_text().splitlines()
    steps = [s for line in episodes for s in json.loads(line)["steps"]]
    assert len(steps) == 6 and all(0.0 <= s["outcome"]["toxicity"] <= 1.0 for s in steps if s["action_valid"])
    metrics = json.loads((sweep_dir / "base" / "metrics.json").read_text())[dialogue]
    assert "toxicity/mean" in metrics
    plots = {p.name for p in (sweep_dir / "plots").glob("*.png")}
    assert any("toxicity" in name for name in plots), plots


def test_dora_variant_arm_trains_and_is_diagnosed(tiny_model_dir, tmp_path):
    """A PEFT variant listed in ``variants`` becomes its own arm at every rank, trained and diagnosed like LoRA."""
    config = tiny_sweep(tiny_model_dir, name="tiny-dora", ranks=[2], include_full=False, variants=["dora"])
    assert [a.name for a in plan_arms(config)] == ["base", "lora-r2-s0", "dora-r2-s0"]
    sweep_dir = run_sweep(config, out_root=tmp_path)
    assert read_status(sweep_dir / "dora-r2-s0")["state"] == "done"
    adapter = json.loads((sweep_dir / "dora-r2-s0" / "train" / "adapter" / "adapter_config.json").read_text())
    assert adapter["use_dora"] is True and adapter["r"] == 2
    diag = json.loads((sweep_dir / "diagnostics.json").read_text())
    assert diag["arms"]["dora-r2-s0"]["kl_vs_base"]["mean"] > 0


# ---- a rerun never mixes results from two configs -------------------------------------------------------------
def test_rerun_with_other_training_settings_is_refused_naming_the_fields(swept, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(trainers, "train", lambda config: pytest.fail("trained despite a refused config"))
    saved = (swept / "config.yaml").read_bytes()
    report = (swept / "report.md").read_bytes()
    changed = tiny_sweep(tiny_model_dir, train={**dataclasses.asdict(tiny_sweep(tiny_model_dir).train), "max_steps": 3,
                                                "learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"train\.learning_rate: saved 0\.0001, now 0\.001.*train\.max_steps: "
                                         r"saved 2, now 3"):
        run_sweep(changed, out_root=swept.parent)
    assert (swept / "config.yaml").read_bytes() == saved and (swept / "report.md").read_bytes() == report


def test_cli_rerun_with_other_eval_settings_exits_2_and_keeps_the_config(swept, tmp_path, capsys):
    import yaml

    from fairgym.commands import main

    saved = (swept / "config.yaml").read_bytes()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load(saved)))
    for extra in ([], ["--report-only"]):
        assert main(["sweep", str(config), "eval.episodes=3", "--out", str(swept.parent), *extra]) == 2
        assert "eval.episodes: saved 2, now 3" in capsys.readouterr().err
    assert (swept / "config.yaml").read_bytes() == saved


def test_result_free_fields_may_change_and_explicit_defaults_equal_omitted(tiny_model_dir):
    from fairgym.training.sweep_folder import sweep_config_differences

    saved = tiny_sweep(tiny_model_dir)
    grown = tiny_sweep(tiny_model_dir, ranks=[2, 4], seeds=[0, 1], variants=["dora"], include_base=False,
                       wandb_project="other",
                       train={**dataclasses.asdict(saved.train), "logging_steps": 5, "learning_rate": 1e-4})
    assert sweep_config_differences(saved, grown) == {}  # 1e-4 is TrainConfig's default learning rate
    relabelled = tiny_sweep(tiny_model_dir, eval={**dataclasses.asdict(saved.eval), "min_agreement": 0.95,
                                                   "collapse_margin": 0.1})
    assert sweep_config_differences(saved, relabelled) == {}  # verdict thresholds label arms, change no numbers
    assert set(sweep_config_differences(saved, tiny_sweep(tiny_model_dir, seeds=[1]))) == {"lr_selection.train_seed"}
    assert set(sweep_config_differences(saved, tiny_sweep(tiny_model_dir, model="other"))) == {"model"}
    assert set(sweep_config_differences(saved, tiny_sweep(tiny_model_dir, lora_lr_multiplier=4.0))) == {
        "lora_lr_multiplier"}


def test_implant_cache_is_keyed_by_its_settings(tiny_model_dir, tmp_path, monkeypatch):
    from fairgym.training import implant
    from fairgym.training.sweep import prepare_base

    built = []

    def fake_implant(train_config):
        model = Path(train_config.output_dir) / "model"
        model.mkdir(parents=True)
        (model / "config.json").write_text("{}")
        built.append(train_config.teacher_kwargs)
        return model

    monkeypatch.setattr(implant, "implant_bias", fake_implant)
    first = tiny_sweep(tiny_model_dir, implant={"max_steps": 2, "teacher_kwargs": {"penalty": 100}})
    other = tiny_sweep(tiny_model_dir, implant={"max_steps": 2, "teacher_kwargs": {"penalty": 300}})
    logging_only = tiny_sweep(tiny_model_dir, implant={"max_steps": 2, "teacher_kwargs": {"penalty": 100},
                                                       "logging_steps": 7})
    a = prepare_base(first, tmp_path)
    b = prepare_base(other, tmp_path)
    assert a != b and built == [{"penalty": 100}, {"penalty": 300}]
    assert prepare_base(logging_only, tmp_path) == a and len(built) == 2  # reused: same implant
    explicit_default = tiny_sweep(tiny_model_dir, implant={"max_steps": 2, "teacher_kwargs": {"penalty": 100},
                                                           "warmup": 0.0, "lr_scheduler": "linear"})
    assert prepare_base(explicit_default, tmp_path) == a and len(built) == 2  # a default spelled out: same key
    warmed = tiny_sweep(tiny_model_dir, implant={"max_steps": 2, "teacher_kwargs": {"penalty": 100}, "warmup": 0.5})
    assert prepare_base(warmed, tmp_path) != a and len(built) == 3


def test_sub_sweeps_in_one_config(tmp_path):
    import yaml

    from fairgym.training.sweep_config import load_sweep_configs

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "study", "ranks": [1, 2], "seeds": [0, 1],
                                    "sweeps": {"lending": {}, "dialogue": {"eval": {"envs": ["fairgym/Dialogue-v1"]},
                                                                           "diagnostics": {"enabled": False}}}},
                                   sort_keys=False))
    lending, dialogue = load_sweep_configs(path, ["seeds=[0,1,2]"])
    assert (lending.name, dialogue.name) == ("study-lending", "study-dialogue")
    assert lending.seeds == dialogue.seeds == [0, 1, 2] and dialogue.eval.envs == ["fairgym/Dialogue-v1"]
    with pytest.raises(ValueError, match="load_sweep_configs"):
        load_sweep_config(path)
    (picked,) = load_sweep_configs(path, only=["dialogue"])  # fairgym sweep --only dialogue
    assert picked.name == "study-dialogue" and picked.eval.envs == ["fairgym/Dialogue-v1"]
    with pytest.raises(ValueError, match="sub-sweep \\(--only\\) 'dialog'.*Did you mean 'dialogue'"):
        load_sweep_configs(path, only=["dialog"])


@pytest.mark.parametrize(("override", "match"), [
    ({"learning_rates": {"lorra": [1e-4]}}, "Did you mean 'lora'"),
    ({"learning_rates": {"full": []}}, "learning rates > 0"),
    ({"learning_rates": {"full": [0.0]}}, "learning rates > 0"),
    ({"lora_lr_multiplier": 0}, "lora_lr_multiplier"),
    ({"learning_rates": {"full": [1e-4]}, "lr_selection": {"seed": 10_001}}, "overlap the evaluation seeds"),
    ({"learning_rates": {"full": [1e-4]}, "lr_selection": {"seed": 3}}, "overlap the training data seeds"),
])
def test_bad_learning_rate_settings_fail_before_training(override, match, tmp_path):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "seeds": [0, 1], "train": {"episodes": 4}, **override}))
    with pytest.raises(ValueError, match=match):
        load_sweep_config(path)


def test_study_results_keeps_summary_report_and_plots(swept, tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "study_results.py"), str(swept),
                           "--out", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    kept = tmp_path / swept.name
    summary = json.loads((kept / "summary.json").read_text())
    assert set(summary["arms"]) == {a.name for a in plan_arms(tiny_sweep(Path(summary["config"]["model"])))} | {
        "teacher"}
    assert all(arm["state"] == "done" and arm["metrics"] for arm in summary["arms"].values())
    assert (kept / "report.md").read_text() == (swept / "report.md").read_text()
    assert {p.name for p in (kept / "plots").glob("*.png")} == {p.name for p in (swept / "plots").glob("*.png")}


def test_recorded_weights_are_found_from_another_working_directory(tmp_path, monkeypatch):
    from fairgym.training.sweep_folder import locate_weights

    sweep_dir = tmp_path / "elsewhere" / "runs" / "study"
    adapter = sweep_dir / "lora-r8-s0" / "train" / "adapter"
    adapter.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # the run wrote "runs/study/..." from a working directory that is not this one
    assert locate_weights("runs/study/lora-r8-s0/train/adapter", sweep_dir) == str(adapter)
    assert locate_weights("runs/study/lora-r8-s0/train/missing", sweep_dir) == "runs/study/lora-r8-s0/train/missing"
    assert locate_weights("embedded:smollm2-135m-instruct", sweep_dir) == "embedded:smollm2-135m-instruct"
    assert locate_weights(None, sweep_dir) is None and locate_weights(str(adapter), sweep_dir) == str(adapter)


def test_rescore_recomputes_metrics_from_saved_episodes_without_loading_a_model(swept, tmp_path, monkeypatch,
                                                                               capsys):
    import shutil

    import yaml

    from fairgym.commands import main
    from fairgym.training import sweep_arms

    copy = tmp_path / "out" / swept.name
    shutil.copytree(swept, copy)
    arm_metrics = copy / "lora-r2-s0" / "metrics.json"
    original = json.loads(arm_metrics.read_text())
    env_id = next(iter(original))
    arm_metrics.write_text(json.dumps({env_id: {"task/profit": -1.0}}))  # as if written by an older version
    monkeypatch.setattr(sweep_arms, "load_arm_model", lambda *a, **k: pytest.fail("rescoring loaded a model"))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load((swept / "config.yaml").read_text())))
    assert main(["sweep", str(config), "--out", str(copy.parent), "--rescore"]) == 0
    rescored = json.loads(arm_metrics.read_text())
    assert rescored.keys() == original.keys()
    assert rescored[env_id] == pytest.approx(original[env_id], nan_ok=True)
    (copy / "lora-r2-s0" / env_folder(env_id) / "episodes.jsonl").unlink()
    assert main(["sweep", str(config), "--out", str(copy.parent), "--rescore"]) == 2
    assert "lora-r2-s0 is done but has no" in capsys.readouterr().err


def test_residue_stage_measures_every_arm_on_the_same_items_and_calibrates(tiny_model_dir, tmp_path):
    """Paired residue measures per arm on one set of items, and the dose-response between full and the implanted
    base: lambda 0 reproduces full's measures and lambda 1 the base's; the report carries both."""
    config = tiny_sweep(tiny_model_dir, name="tiny-residue", include_full=True, ranks=[1],
                        implant={"max_steps": 2, "episodes": 1, "batch_size": 2},
                        diagnostics={"enabled": False})
    sweep_dir = run_sweep(config, out_root=tmp_path)
    residue = json.loads((sweep_dir / "residue.json").read_text())
    heldout = residue["items"]["heldout"]  # states where the implant's answer differs from the fair teacher's
    assert residue["items"]["states"] == 10 and 1 <= heldout <= 4
    arms = residue["arms"]
    assert set(arms) == {"base", "full-s0", "lora-r1-s0"}
    for entry in arms.values():
        values = entry["values"]
        assert len(values["margin_gap"]) == 10 and len(values["hidden_nll"]) == heldout
        assert values["margin_gap_abs"] == [abs(g) for g in values["margin_gap"]]
        assert set(values["flip"]) <= {0.0, 1.0} and len(values["agreement"]) == 10
    curve = residue["calibration"]["curve"]
    assert curve["lambdas"] == [0.0, 0.5, 1.0]
    # the ends are the two arms' own measures (bit-exact, tests/analysis/test_residue.py), not measured twice
    assert residue["calibration"]["reused"] == [0.0, 1.0]
    for measure in ("margin_gap", "hidden_nll"):
        at = curve["values"][measure]
        assert at[0] == arms["full-s0"]["values"][measure] and at[-1] == arms["base"]["values"][measure]
        assert at[1] != at[0] and at[1] != at[-1]  # the midpoint is a model of its own
    summary = residue["calibration"]["summary"]["measures"]
    assert "minimum_detectable_lambda" in summary["margin_gap_abs"]
    report = (sweep_dir / "report.md").read_text()
    assert "## Residue: paired, on the same items" in report and "minimum detectable λ" in report
    assert "| full |" in report and "±0" not in report and "± 0" not in report
    plots = {p.name for p in (sweep_dir / "plots").glob("*.png")}
    assert {"residue_vs_rank.png", "dose_response.png"} <= plots

    # new doses on a rerun: the calibration is redone (ends reused), no arm is trained or measured again
    from fairgym.training import sweep_residue

    measured = []
    stock = sweep_residue.measure

    def counting(model, tokenizer, items, cfg):
        measured.append(1)
        return stock(model, tokenizer, items, cfg)

    more = dataclasses.replace(config, residue=dataclasses.replace(config.residue, lambdas=[0.0, 0.25, 0.5, 1.0]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainers, "train", lambda cfg: pytest.fail("trained again for new doses"))
        patch.setattr(sweep_residue, "measure", counting)
        run_sweep(more, out_root=tmp_path)
    again = json.loads((sweep_dir / "residue.json").read_text())
    assert again["calibration"]["curve"]["lambdas"] == [0.0, 0.25, 0.5, 1.0] and len(measured) == 2
    assert again["arms"] == arms and again["calibration"]["reused"] == [0.0, 1.0]
