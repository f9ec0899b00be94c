"""The sweep on a local Ray cluster of 2 CPU workers: the same files as the local executor, a worker killed in the
middle of an arm (the arm resumes from its checkpoint on a retry, or is recorded failed and a rerun resumes it), and
the sweep folder's lock keeping a second sweep out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fairgym.locks import FolderBusyError
from fairgym.training.sweep import run_sweep
from fairgym.training.sweep_folder import read_status

ray = pytest.importorskip("ray")  # the [ray] extra; make test installs it (requirements-ray.txt)
from test_sweep import tiny_sweep  # noqa: E402  # tests/training is on pytest's path

pytestmark = pytest.mark.slow  # starts Ray's processes
KILL = "kill-once"  # a train folder holding this file: its worker kills itself after its first checkpoint
ATTEMPTS = "attempts.jsonl"  # per training start in a Ray worker: its pid and the checkpoint it resumed from


def worker_fault_hook():
    """Ray's ``worker_process_setup_hook``: runs in every worker process as it starts (pickled by value, being
    nested). A training whose folder holds ``KILL`` kills its own process with SIGKILL right after its first
    checkpoint is written, once (the file is renamed first); every training start logs its pid and resume point."""

    def install():
        import json
        import os
        import signal
        from pathlib import Path

        from transformers import TrainerCallback

        from fairgym.training import trainers

        real_build, real_check = trainers.build_trainer, trainers.check_run_folder

        class KillOnce(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                marker = Path(args.output_dir) / "kill-once"
                if marker.exists():
                    marker.rename(marker.with_name(f"killed-{os.getpid()}"))
                    os.kill(os.getpid(), signal.SIGKILL)

        def build_trainer(config, model, tokenizer, dataset, callbacks=None):
            return real_build(config, model, tokenizer, dataset, [*(callbacks or []), KillOnce()])

        def check_run_folder(config):
            found = real_check(config)
            with open(Path(config.output_dir) / "attempts.jsonl", "a") as log:
                log.write(json.dumps({"pid": os.getpid(), "resume_from": found and Path(found).name}) + "\n")
            return found

        trainers.build_trainer, trainers.check_run_folder = build_trainer, check_run_folder

    return install


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs (2 workers at a time) with the fault hook in every worker; shut down after."""
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"worker_process_setup_hook": worker_fault_hook()})
    yield
    ray.shutdown()


def fault_sweep(model_dir: Path, max_retries: int):
    """Base, full and LoRA r=2, 3 steps with a checkpoint after each, no diagnostics, on Ray."""
    return tiny_sweep(model_dir, name="fault", diagnostics={"enabled": False},
                      executor={"kind": "ray", "max_retries": max_retries},
                      train={"max_steps": 3, "episodes": 1, "batch_size": 2, "max_length": 512, "save_steps": 1,
                             "env_kwargs": {"max_steps": 3}})


def attempts(train_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (train_dir / ATTEMPTS).read_text().splitlines()]


def without_timings(report: str) -> str:
    """The report with its seconds blanked (``done, 18 s``; ``12.3 s of training``)."""
    return re.sub(r"\b\d+(\.\d+)? s\b", "<t> s", report)


def test_ray_sweep_writes_the_same_metrics_and_report_as_the_local_one(cluster, tiny_model_dir, tmp_path):
    local = run_sweep(tiny_sweep(tiny_model_dir), out_root=tmp_path / "local")
    on_ray = run_sweep(tiny_sweep(tiny_model_dir, executor={"kind": "ray"}), out_root=tmp_path / "ray")
    files = sorted(p.relative_to(local) for p in local.rglob("*.json")
                   if p.name in ("metrics.json", "diagnostics.json", "learning_rates.json"))
    assert len(files) == 10  # teacher, base, full, lora: per env and together; diagnostics; learning rates
    for name in files:
        assert json.loads((on_ray / name).read_text()) == json.loads((local / name).read_text()), name
    for arm in ("base", "full-s0", "lora-r2-s0"):  # each arm's lock went with the worker that held it
        assert read_status(on_ray / arm)["state"] == "done" and not (on_ray / arm / ".fairgym.lock").exists()
    assert Path(read_status(on_ray / "full-s0")["weights"]["model"]).is_absolute()  # workers got the folder absolute
    report = (on_ray / "report.md").read_text()
    assert "| lora-r2 |" in report and "KL vs base" in report
    assert without_timings(report) == without_timings((local / "report.md").read_text())
    assert {p.name for p in (on_ray / "plots").glob("*.png")} == {p.name for p in (local / "plots").glob("*.png")}


def test_a_worker_killed_mid_arm_resumes_the_arm_from_its_checkpoint(cluster, tiny_model_dir, tmp_path):
    train = tmp_path / "fault" / "lora-r2-s0" / "train"
    train.mkdir(parents=True)
    (train / KILL).touch()
    sweep_dir = run_sweep(fault_sweep(tiny_model_dir, max_retries=1), out_root=tmp_path, report=False)
    first, second = attempts(train)
    killed = next(train.glob("killed-*")).name
    assert killed == f"killed-{first['pid']}" and first["resume_from"] is None
    assert second["pid"] != first["pid"] and second["resume_from"] == "checkpoint-1"  # another worker took it over
    assert json.loads((train / "trainer_state.json").read_text())["global_step"] == 3
    assert all(read_status(sweep_dir / arm)["state"] == "done" for arm in ("base", "full-s0", "lora-r2-s0"))
    assert len(attempts(sweep_dir / "full-s0" / "train")) == 1


def test_an_arm_lost_past_its_retries_is_recorded_failed_and_a_rerun_resumes_it(cluster, tiny_model_dir, tmp_path):
    train = tmp_path / "fault" / "lora-r2-s0" / "train"
    train.mkdir(parents=True)
    (train / KILL).touch()
    config = fault_sweep(tiny_model_dir, max_retries=0)
    sweep_dir = run_sweep(config, out_root=tmp_path, report=False)
    lost = read_status(sweep_dir / "lora-r2-s0")
    assert lost["state"] == "failed" and "died" in lost["traceback"].lower(), lost
    assert lost["error"].startswith(("WorkerCrashedError", "ActorDiedError", "RayError"))
    assert read_status(sweep_dir / "full-s0")["state"] == "done" and read_status(sweep_dir / "base")["state"] == "done"
    finished = {arm: (sweep_dir / arm / "status.json").stat().st_mtime_ns for arm in ("base", "full-s0")}

    run_sweep(config, out_root=tmp_path, report=False)  # the command again: the lost arm resumes, the rest stay
    assert read_status(sweep_dir / "lora-r2-s0")["state"] == "done"
    assert [a["resume_from"] for a in attempts(train)] == [None, "checkpoint-1"]
    assert finished == {arm: (sweep_dir / arm / "status.json").stat().st_mtime_ns for arm in finished}


def test_a_second_sweep_into_a_busy_folder_is_refused_before_any_task(tiny_model_dir, tmp_path):
    from test_locks import hold_in_another_process  # tests/ is on pytest's path (its conftest.py)

    holder = hold_in_another_process(tmp_path / "tiny")
    try:
        with pytest.raises(FolderBusyError, match=f"pid {holder.pid}"):
            run_sweep(tiny_sweep(tiny_model_dir, executor={"kind": "ray"}), out_root=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "tiny" / "config.yaml").exists()  # refused before it wrote anything
