"""Wall time of one sweep on the local executor and on a local Ray cluster of 2 CPU workers.

The sweep: the tests' tiny 2-layer Llama (random weights, in-memory tokenizer), base + full + LoRA r = 1, 2, 4 (5
arms, 4 trained for ``--steps`` steps), 4 evaluation episodes of 5 Lending decisions per arm, the diagnostics and
the report. Each executor runs it in a fresh process (``--run local|ray``), into its own folder; the Ray run starts
its own cluster (``ray.init(num_cpus=2)``, one CPU per stage, so 2 stages at a time, each torch on 1 thread) and
its start-up is timed apart. The local run is what ``fairgym sweep`` does: every stage in one process, torch on
every CPU this process may use (``fairgym.threads``). Both write the same metrics (checked, recorded as
``same_metrics``). Writes ``benchmarks/results/sweep_executors.json``.

What the ratio can show on this machine: 2 cores shared with other work (the load average is recorded before and
after), tiny models whose steps take milliseconds, so the time is mostly process start-up, imports, model loading
and evaluation loops. It measures the overhead Ray adds (start-up, worker processes that import torch and fairgym)
against the overlap it wins by running 2 stages at once. It cannot show the case Ray is for, many GPUs or machines
each training a large arm, where a sweep of N arms on N GPUs takes about one arm's time instead of N.

    python benchmarks/sweep_executors.py [--steps 4] [--out runs/benchmarks/sweep_executors]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fairgym.threads import configure_threads

THREADS = configure_threads()  # as the fairgym CLI does, before torch loads
os.environ.setdefault("WANDB_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' in-memory tokenizer
RESULTS = Path(__file__).parent / "results" / "sweep_executors.json"
LENDING = "fairgym/Lending-v0"


def sweep_config(model_dir: Path, steps: int, kind: str):
    """The benchmark's sweep: 5 arms on the tiny model, executed by ``kind``."""
    from fairgym.config import from_dict
    from fairgym.training.sweep_config import SweepConfig

    return from_dict(SweepConfig, {
        "name": "bench", "model": str(model_dir), "ranks": [1, 2, 4], "seeds": [0], "device": "cpu",
        "executor": {"kind": kind, "num_cpus": 1},
        "train": {"max_steps": steps, "episodes": 2, "batch_size": 2, "max_length": 512, "save_steps": 1000,
                  "env_kwargs": {"max_steps": 5}},
        "eval": {"envs": [LENDING], "episodes": 4, "seed": 100, "env_kwargs": {LENDING: {"max_steps": 5}},
                 "num_envs": 4},
        "diagnostics": {"decisions": 8, "episodes": 2, "spectrum_ranks": [1, 2, 4]},
    })


def tiny_model(folder: Path) -> Path:
    """The tests' tiny Llama and tokenizer, saved once."""
    if not (folder / "config.json").is_file():
        from conftest import build_tiny_model, build_tiny_tokenizer

        tokenizer = build_tiny_tokenizer()
        build_tiny_model(tokenizer).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def run_once(kind: str, out: Path, steps: int) -> dict:
    """One sweep in this process on ``kind``; seconds of the sweep (and of Ray's start-up, timed apart)."""
    from fairgym.training.sweep import run_sweep

    config = sweep_config(tiny_model(out / "model"), steps, kind)
    record: dict = {"executor": kind, "threads": THREADS.threads}
    if kind == "ray":
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        record["ray_start_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    sweep_dir = run_sweep(config, out_root=out / kind)
    record["sweep_seconds"] = round(time.perf_counter() - started, 2)
    if kind == "ray":
        import ray

        ray.shutdown()
    from fairgym.training.sweep_arms import plan_arms
    from fairgym.training.sweep_folder import read_status

    arms = plan_arms(config)
    record["arms"] = len(arms)
    record["arms_done"] = sum(read_status(sweep_dir / arm.name)["state"] == "done" for arm in arms)
    return record


def processor() -> str:
    """The CPU's model name (Linux), else what ``platform`` says."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    return names[0] if names else platform.processor()


def metrics_of(sweep_dir: Path) -> dict:
    """Every ``metrics.json`` of a sweep folder by its path inside the folder."""
    from fairgym.runfiles import METRICS_FILE

    return {str(p.relative_to(sweep_dir)): json.loads(p.read_text()) for p in sorted(sweep_dir.rglob(METRICS_FILE))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per trained arm")
    parser.add_argument("--out", default="runs/benchmarks/sweep_executors", help="scratch folder (emptied first)")
    parser.add_argument("--run", choices=("local", "ray"), help=argparse.SUPPRESS)  # one executor, in this process
    args = parser.parse_args()
    out = Path(args.out)
    if args.run:
        print("RESULT " + json.dumps(run_once(args.run, out, args.steps)), flush=True)
        return
    shutil.rmtree(out / "local", ignore_errors=True)
    shutil.rmtree(out / "ray", ignore_errors=True)
    tiny_model(out / "model")
    load_before = os.getloadavg()
    runs = {}
    for kind in ("local", "ray"):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--run", kind, "--out", str(out), "--steps", str(args.steps)],
                              capture_output=True, text=True, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        runs[kind] = {**json.loads(line[len("RESULT "):]), "process_seconds": round(time.perf_counter() - started, 2)}
        print(kind, runs[kind], flush=True)
    local, ray = runs["local"], runs["ray"]
    result = {
        "what": "one tiny-model sweep (base, full, LoRA r=1/2/4; 5 arms, 4 trained) on the local executor and on a "
                "local Ray cluster of 2 CPU workers; sweep_seconds excludes interpreter start and Ray's start-up, "
                "process_seconds includes both",
        "machine": {"cpus": os.cpu_count(), "usable_cpus": THREADS.threads, "processor": processor(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "steps_per_arm": args.steps, "local": local, "ray": ray,
        "ray_over_local_sweep_seconds": round(ray["sweep_seconds"] / local["sweep_seconds"], 3),
        "ray_over_local_process_seconds": round(ray["process_seconds"] / local["process_seconds"], 3),
        "same_metrics": metrics_of(out / "local" / "bench") == metrics_of(out / "ray" / "bench"),
        "caveat": "2 cores shared with other processes and millisecond training steps: the ratio measures Ray's "
                  "overhead against running 2 stages at once, not the many-GPU or many-machine case Ray is for",
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
