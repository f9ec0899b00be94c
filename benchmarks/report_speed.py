"""How long ``fairgym report`` takes beside the ``fairgym run`` that wrote the folder, on the delayed-impact runs.

For each episode count (``--episodes``, default 1 and 8 episodes of ``--steps`` 20,000 steps), runs
``fairgym run --config configs/runs/delayed-impact-eo.yaml --episodes N --out <tmp>`` and then ``fairgym report``
on that folder, each as its own process timed from start to exit (imports included: what a user waits for), and
gives their ratio against the target (the report within 2x the run). Then it times the report's stages in this
process (reading ``episodes.jsonl``, the step table, the trajectories, drawing and saving the figures, the
markdown), so a regression shows where it lies. ``--before REF`` also times the report of the first run folder
with fairgym at git revision ``REF`` (a temporary worktree), for a before/after. Writes
``benchmarks/results/report_speed.json``.

Usage:
    python benchmarks/report_speed.py [--episodes 1 8] [--steps 20000] [--before 2f5c915] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "report_speed.json"
CONFIG = "configs/runs/delayed-impact-eo.yaml"
TARGET = 2.0  # the report within this many times the run's wall time


def timed_command(args: list[str], *, pythonpath: str | None = None) -> float:
    """Wall seconds of ``python -m fairgym ARGS`` in a fresh process (W&B off); an error stops the benchmark."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fairgym", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"`fairgym {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return round(seconds, 2)


def stages(run_dir: Path) -> dict[str, float]:
    """Seconds of each stage of ``fairgym report`` on ``run_dir``, in this process."""
    from fairgym.analysis.metrics import trajectories
    from fairgym.analysis.plots import run_figures, save_figures
    from fairgym.analysis.report import load_run, render_report
    from fairgym.analysis.trajectories import run_profile, step_frame

    out: dict[str, float] = {}

    @contextmanager
    def stage(name: str):
        start = time.perf_counter()
        yield
        out[name] = round(time.perf_counter() - start, 3)

    with stage("read episodes.jsonl and metrics.json"):
        episodes, config, metrics = load_run(run_dir)
    with stage("step table"):
        step_frame(episodes)
    with stage("trajectories (step table included)"):
        traj = trajectories(episodes)
    with stage("draw figures"):
        figures = run_figures(metrics, traj, run_profile(episodes))
    with stage("save figures (png)"):
        save_figures(figures, run_dir / "plots-timed")
    with stage("whole report in process (trajectories and figures again, markdown)"):
        render_report(run_dir, episodes, config, metrics)
    return out


@contextmanager
def checkout(ref: str):
    """A PYTHONPATH under which ``import fairgym`` is fairgym at git revision ``ref`` (a temporary worktree)."""
    folder = Path(tempfile.mkdtemp(prefix="fairgym-before-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder / "tree"), ref], check=True,
                   capture_output=True)
    (folder / "path").mkdir()
    (folder / "path" / "fairgym").symlink_to(folder / "tree")
    try:
        yield str(folder / "path")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder / "tree")], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def case(work: Path, episodes: int, steps: int) -> tuple[Path, dict]:
    """Run then report one run folder; both wall times, their ratio and the report's stages."""
    run_dir = work / f"delayed-impact-eo-{episodes}x{steps}"
    load = round(os.getloadavg()[0], 2)
    run_s = timed_command(["run", "--config", CONFIG, "--episodes", str(episodes), "--env-opt",
                           f"max_steps={steps}", "--out", str(run_dir)])
    report_s = timed_command(["report", str(run_dir)])
    result = {"episodes": episodes, "steps_per_episode": steps, "run_seconds": run_s, "report_seconds": report_s,
              "report_over_run": round(report_s / run_s, 2), "within_target": report_s <= TARGET * run_s,
              "load_average_1min_before": load, "report_stages_seconds": stages(run_dir)}
    print(f"{episodes} x {steps}: run {run_s} s, report {report_s} s ({result['report_over_run']}x)", flush=True)
    return run_dir, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, nargs="+", default=[1, 8], help="episode counts, one run each")
    parser.add_argument("--steps", type=int, default=20000, help="steps per episode")
    parser.add_argument("--before", metavar="REF", help="also time the first run's report at this git revision")
    parser.add_argument("--keep", type=Path, help="write the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="fairgym-report-speed-"))
    if args.keep:
        shutil.rmtree(work, ignore_errors=True)  # fresh runs: a resumed run would time nothing
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "config": CONFIG,
                     "target_report_over_run": TARGET, "cases": []}
    try:
        folders = []
        for episodes in args.episodes:
            folder, result = case(work, episodes, args.steps)
            folders.append(folder)
            results["cases"].append(result)
        if args.before:
            load = round(os.getloadavg()[0], 2)
            with checkout(args.before) as pythonpath:
                before = timed_command(["report", str(folders[0])], pythonpath=pythonpath)
            results["before"] = {"ref": args.before, "episodes": args.episodes[0], "report_seconds": before,
                                 "run_seconds": results["cases"][0]["run_seconds"], "load_average_1min_before": load}
            print(f"before ({args.before}): report {before} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
