"""The sweep's plan of stages and the executors that run it, without training: the plan's order, dependencies and
resources; the local executor's inputs, recorders and errors; the arm folder's lock; the executor settings (checked,
free to change on a rerun, set by the CLI flags); the local executor needing no Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_sweep import tiny_sweep  # tests/training is on pytest's path

from fairgym.locks import FolderBusyError
from fairgym.training.executors import LocalExecutor, Resources, Stage, check_plan
from fairgym.training.sweep import arm_stage, lost_arm, make_executor, sweep_stages
from fairgym.training.sweep_arms import Arm
from fairgym.training.sweep_config import ExecutorSettings
from fairgym.training.sweep_folder import check_sweep_folder, read_status


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise RuntimeError(message)


def test_local_executor_passes_inputs_in_order_and_records_lost_stages():
    stages = [Stage("one", add, (1, 0)), Stage("two", add, (1,), {"b": "one"}),
              Stage("broken", fail, ("boom",), lost=lambda error, trace: {"lost": error, "trace": trace}),
              Stage("three", add, (0,), {"b": "two"}, after=("broken",))]
    results = LocalExecutor().run(stages)
    assert results["three"] == 2 and results["broken"]["lost"] == "RuntimeError: boom"
    assert "Traceback" in results["broken"]["trace"] and "in fail" in results["broken"]["trace"]


def test_a_stage_without_a_recorder_stops_the_local_executor():
    ran = []
    with pytest.raises(RuntimeError, match="implant failed"):
        LocalExecutor().run([Stage("implant", fail, ("implant failed",)), Stage("after", ran.append, (1,))])
    assert ran == []


@pytest.mark.parametrize(("stages", "match"), [
    ([Stage("a", add, (1, 2)), Stage("a", add, (1, 2))], "names stage 'a' twice"),
    ([Stage("b", add, (1,), {"b": "a"}), Stage("a", add, (1, 2))], "needs a, which the plan does not list before"),
])
def test_check_plan_refuses_repeats_and_stages_before_what_they_need(stages, match):
    with pytest.raises(ValueError, match=match):
        check_plan(stages)


def test_the_sweep_plan_orders_stages_and_takes_resources_from_the_config(tiny_model_dir, tmp_path):
    config = tiny_sweep(tiny_model_dir, implant={"max_steps": 1}, learning_rates={"full": [1e-4, 3e-4], "lora": [1e-3]},
                        executor={"kind": "local", "num_cpus": 4, "num_gpus": 1})
    grid = tmp_path / "tiny" / "lr-select" / "full" / "lr-0.0003"
    grid.mkdir(parents=True)
    (grid / "heldout.json").write_text(json.dumps({"loss": 1.0}))  # trained already: not planned again
    stages = sweep_stages(config, tmp_path / "tiny")
    names = [s.name for s in stages]
    assert names == ["implant", "teacher", "lr-grid/full/lr-0.0001", "lr-grid/lora-r2/lr-0.001", "learning-rates",
                     "arm/base", "arm/full-s0", "arm/lora-r2-s0", "residue", "diagnostics", "report"]
    by_name = {s.name: s for s in stages}
    assert by_name["lr-grid/lora-r2/lr-0.001"].needs == ("implant",)
    assert set(by_name["learning-rates"].needs) == {"implant", "lr-grid/full/lr-0.0001", "lr-grid/lora-r2/lr-0.001"}
    assert by_name["arm/lora-r2-s0"].inputs == {"base_model": "implant", "rates": "learning-rates"}
    for measure in ("residue", "diagnostics"):  # both read the finished arms, neither the other
        assert {f"arm/{a}" for a in ("base", "full-s0", "lora-r2-s0")} <= set(by_name[measure].needs)
    assert "residue" not in by_name["diagnostics"].needs
    assert set(by_name["report"].needs) == set(names[:-1])
    model = Resources(num_cpus=4, num_gpus=1)
    assert all(by_name[n].resources == model for n in ("implant", "lr-grid/full/lr-0.0001", "arm/full-s0",
                                                         "residue", "diagnostics"))
    assert by_name["teacher"].resources == by_name["report"].resources == Resources(num_cpus=1, num_gpus=0)
    assert by_name["arm/base"].lost is not None and by_name["implant"].lost is None
    assert "report" not in [s.name for s in sweep_stages(config, tmp_path / "tiny", report=False)]


def test_an_arm_folder_written_by_another_process_is_left_to_it(tiny_model_dir, tmp_path):
    from test_locks import hold_in_another_process  # tests/ is on pytest's path (its conftest.py)

    config, arm = tiny_sweep(tiny_model_dir), Arm("base", "base")
    holder = hold_in_another_process(tmp_path / "base")
    try:
        with pytest.raises(FolderBusyError, match=f"pid {holder.pid}"):
            arm_stage(config, arm, tmp_path, "1/1", str(tiny_model_dir), {})
        status = lost_arm(tmp_path, arm, "FolderBusyError: busy", "trace")
    finally:
        holder.kill()
        holder.wait()
    assert status["state"] == "failed" and "not recorded" in status["error"]
    assert read_status(tmp_path / "base") == {"state": "pending"}  # nothing written into the other writer's folder
    status = lost_arm(tmp_path, arm, "WorkerCrashedError: died", "the worker died")  # free again: recorded
    assert read_status(tmp_path / "base") == {**status, "started": None}


@pytest.mark.parametrize(("fields", "match"), [
    ({"kind": "slurm"}, "Unknown SweepConfig.executor.kind 'slurm'"),
    ({"address": "auto"}, "set executor.kind=ray"),
    ({"kind": "ray", "num_gpus": 1.5}, "a fraction of one GPU or a whole number"),
    ({"kind": "ray", "num_cpus": 0}, "num_cpus=0 must be > 0"),
    ({"max_retries": -1}, "max_retries=-1 must be an int >= 0"),
])
def test_bad_executor_settings_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        ExecutorSettings(**fields)


def test_a_sweep_started_locally_may_resume_on_ray_but_not_with_other_results(tiny_model_dir, tmp_path):
    from fairgym.config import save_config

    save_config(tiny_sweep(tiny_model_dir), tmp_path / "config.yaml")
    check_sweep_folder(tiny_sweep(tiny_model_dir, executor={"kind": "ray", "address": "auto", "num_gpus": 1,
                                                            "max_retries": 5}), tmp_path)
    with pytest.raises(ValueError, match="train.max_steps"):
        check_sweep_folder(tiny_sweep(tiny_model_dir, executor={"kind": "ray"},
                                      train={"max_steps": 3, "episodes": 1, "batch_size": 2,
                                             "env_kwargs": {"max_steps": 3}, "counterfactual": True}), tmp_path)


def test_cli_executor_flags_set_the_executor_settings(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from fairgym.commands import main
    from fairgym.training import sweep

    seen = []
    monkeypatch.setattr(sweep, "run_sweep", lambda config, **kw: seen.append(config) or tmp_path / config.name)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "model": str(tiny_model_dir), "ranks": [2], "device": "cpu"}))
    main(["sweep", str(path), "--out", str(tmp_path), "--no-report", "--executor", "ray", "--address", "10.0.0.1:6379"])
    assert seen[0].executor == ExecutorSettings(kind="ray", address="10.0.0.1:6379")
    assert main(["sweep", str(path), "--out", str(tmp_path), "--address", "auto"]) == 2
    assert "set executor.kind=ray (--executor ray)" in capsys.readouterr().err


def test_the_local_executor_needs_no_ray(monkeypatch):
    code = ("import sys\nfrom fairgym.commands import sweep as command\nfrom fairgym.training import sweep\n"
            "from fairgym.training.sweep import make_executor\nfrom fairgym.training.sweep_config import "
            "ExecutorSettings\nassert type(make_executor(ExecutorSettings())).__name__ == 'LocalExecutor'\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    with pytest.raises(ValueError, match=r"pip install 'fairgym\[ray\]'"):
        make_executor(ExecutorSettings(kind="ray"))


def test_a_lost_arm_keeps_when_it_started(tmp_path):
    arm_dir = tmp_path / "full-s0"
    arm_dir.mkdir()
    (arm_dir / "status.json").write_text(json.dumps({"state": "running", "started": 123.0}))
    lost_arm(Path(tmp_path), Arm("full-s0", "full", seed=0), "WorkerCrashedError: died", "trace")
    assert read_status(arm_dir)["started"] == 123.0 and read_status(arm_dir)["state"] == "failed"
