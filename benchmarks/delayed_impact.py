"""The delayed-impact experiment (D'Amour et al. 2020, "Fairness is not static") through ``fairgym run``, timed.

Runs ``fairgym run --config configs/runs/delayed-impact-<agent>.yaml`` for ``max-utility`` and ``eo-threshold``
as parallel processes (``--jobs``, one per core by default) into a fresh folder and times the whole: env steps,
agent decisions, records (``episodes.jsonl``) and metrics (``metrics.json``) included, process start-up too.
Then it reads the records back and reports, per agent, for the disadvantaged and the advantaged group (the one
with the lower / higher mean repayment probability at reset): loans, true-positive rate, change of the mean
credit score and of the mean repayment probability, and the gap in mean repayment probability between the
groups (at reset, at its widest, at the end). Every number is a pure function of the records
(``fairgym.analysis.metrics``), computed per episode (one episode per seed) and given as the mean ± the 95%
t-interval over seeds. Writes ``benchmarks/results/delayed_impact.{json,md}``, and each agent's run report
(``fairgym report``: ``report.md`` and ``plots/`` in its run folder, timed) with copies of its TPR, credit and
repayment-probability figures as ``benchmarks/results/delayed_impact_<agent>_<figure>.png``.

Usage:
    python benchmarks/delayed_impact.py [--episodes 8] [--steps 20000] [--out runs/delayed-impact] [--jobs 2]
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

import numpy as np

from fairgym.analysis.lending import credit_drift, start_means
from fairgym.analysis.metrics import compute_metrics
from fairgym.analysis.report import write_report
from fairgym.analysis.trajectories import run_groups, step_frame
from fairgym.envs.records import read_episodes
from fairgym.runfiles import EPISODES_FILE, PLOTS_DIR, RUN_STATS_FILE, read_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
AGENTS = {"max-utility": "configs/runs/delayed-impact-max-utility.yaml",
          "eo-threshold": "configs/runs/delayed-impact-eo.yaml"}
REPAY = "group_repay_probability"
FIGURES = ("true_positive_rate", "credit_drift", "repay_probability_drift")  # the report's, copied to results


def run_all(args: argparse.Namespace) -> dict[str, float]:
    """Both agents' ``fairgym run`` in parallel (at most ``jobs`` at once); wall time and CPU seconds."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    pending = list(AGENTS.items())
    running: list[subprocess.Popen] = []
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < args.jobs:
            agent, config = pending.pop(0)
            cmd = [sys.executable, "-m", "fairgym", "run", "--config", str(ROOT / config), "--out",
                   str(args.out / agent), "--episodes", str(args.episodes), "--env-opt", f"max_steps={args.steps}"]
            running.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
        running[0].wait()
        if running[0].returncode:
            raise SystemExit(f"fairgym run failed ({running[0].args}); rerun it alone to see why.")
        running = [p for p in running if p.poll() is None]
    wall = time.perf_counter() - start
    children = os.times()
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(children.children_user + children.children_system, 2)}


def ci(values: list[float]) -> dict[str, float]:
    from fairgym.analysis.stats import seed_ci  # scipy comes with it: imported after the timed runs

    return seed_ci(values)


def per_seed(episode: dict, roles: dict[str, str]) -> dict[str, float]:
    """The table's numbers for one episode (one seed), from its records."""
    m = compute_metrics([episode])
    start = episode["start"][REPAY]
    out = {}
    for role, g in roles.items():
        out[f"loans/{role}"] = m[f"task/approvals/{g}"]
        out[f"tpr/{role}"] = m[f"fairness/true_positive_rate/{g}"]
        out[f"credit_change/{role}"] = m[f"fairness/credit_drift/{g}"]
        out[f"repay_change/{role}"] = m[f"fairness/repay_probability_drift/{g}"]
    out["gap/reset"] = start[roles["advantaged"]] - start[roles["disadvantaged"]]
    out["gap/end"] = out["gap/reset"] + out["repay_change/advantaged"] - out["repay_change/disadvantaged"]
    out["gap/change"] = out["gap/end"] - out["gap/reset"]
    # halfway (10,000 of 20,000 steps: the length of ml-fairness-gym's earlier lending runs)
    half = episode["steps"][len(episode["steps"]) // 2 - 1]["outcome"][REPAY]
    out["gap/half"] = half[roles["advantaged"]] - half[roles["disadvantaged"]]
    out["widened/half"] = float(out["gap/half"] > out["gap/reset"])
    out["widened/end"] = float(out["gap/end"] > out["gap/reset"])
    out["tpr_gap"] = abs(out["tpr/advantaged"] - out["tpr/disadvantaged"])  # per seed: the paper's recall gap
    return out


def repay_series(episodes: list[dict], groups: list[str]) -> dict[str, np.ndarray]:
    """Mean over seeds of each group's mean repayment probability after every step (reset first)."""
    starts = start_means(episodes, REPAY)
    drift = credit_drift(step_frame(episodes), groups, starts, REPAY)
    base = {g: float(np.mean([s[g] for s in starts.values()])) for g in groups}
    return {g: np.concatenate([[base[g]], base[g] + drift[g].to_numpy()]) for g in groups}


def analyse(out: Path) -> dict:
    results: dict = {"agents": {}}
    for agent in AGENTS:
        episodes = read_episodes(out / agent / EPISODES_FILE)
        groups = run_groups(episodes)
        start = episodes[0]["start"][REPAY]
        low, high = sorted(groups, key=lambda g: start[g])
        roles = {"disadvantaged": low, "advantaged": high}
        seeds = [per_seed(ep, roles) for ep in episodes]
        series = repay_series(episodes, groups)
        gap = series[high] - series[low]
        stats = {k: ci([s[k] for s in seeds]) for k in seeds[0]}
        stats["gap/widest"] = {"mean": float(gap.max()), "step": int(gap.argmax())}
        results["agents"][agent] = {"roles": roles, "seeds": [ep["seed"] for ep in episodes],
                                    "steps_per_episode": [ep["length"] for ep in episodes], "stats": stats,
                                    "series": {g: series[g][::100].round(5).tolist() for g in groups},
                                    "run_stats": read_json(out / agent / RUN_STATS_FILE)}
    results["claims"] = claims(results["agents"])
    return results


def claims(agents: dict) -> dict[str, bool]:
    """The published finding, checked on the means over seeds."""
    mu, eo = (agents[a]["stats"] for a in ("max-utility", "eo-threshold"))
    mean = {name: {k: v["mean"] for k, v in s.items()} for name, s in (("mu", mu), ("eo", eo))}
    return {
        "eo equalises the TPR (smaller gap than max-utility)": mean["eo"]["tpr_gap"] < mean["mu"]["tpr_gap"],
        "eo gives the disadvantaged group more loans": mean["eo"]["loans/disadvantaged"]
        > mean["mu"]["loans/disadvantaged"],
        "the disadvantaged group's mean credit falls further under eo": mean["eo"]["credit_change/disadvantaged"]
        < mean["mu"]["credit_change/disadvantaged"],
        "under max-utility the P(repay) gap narrows (end < reset)": mean["mu"]["gap/change"] < 0,
        "under eo the P(repay) gap widens (end > reset)": mean["eo"]["gap/change"] > 0,
        "under eo the P(repay) gap widens at first (widest > reset)": mean["eo"]["gap/widest"]
        > mean["eo"]["gap/reset"],
        "under eo the P(repay) gap is wider halfway (step 10,000 of 20,000) than at reset": mean["eo"]["gap/half"]
        > mean["eo"]["gap/reset"],
        "the P(repay) gap ends wider under eo than under max-utility": mean["eo"]["gap/end"] > mean["mu"]["gap/end"],
    }


def fmt(stat: dict[str, float], digits: int) -> str:
    half = stat.get("half_width", float("nan"))
    return f"{stat['mean']:.{digits}f} ± {half:.{digits}f}"


def table(results: dict) -> str:
    from fairgym.analysis.report import markdown_table

    header = ["agent", "loans (dis. / adv.)", "TPR (dis. / adv.)", "\\|TPR gap\\|", "mean credit change (dis. / adv.)",
              "P(repay) change (dis. / adv.)", "P(repay) gap: reset → half → end (change)", "widest gap (step)",
              "seeds whose gap widened (half / end)"]
    rows = []
    for agent, res in results["agents"].items():
        s = res["stats"]
        rows.append([
            f"`{agent}`",
            f"{fmt(s['loans/disadvantaged'], 0)} / {fmt(s['loans/advantaged'], 0)}",
            f"{fmt(s['tpr/disadvantaged'], 3)} / {fmt(s['tpr/advantaged'], 3)}",
            fmt(s["tpr_gap"], 3),
            f"{fmt(s['credit_change/disadvantaged'], 1)} / {fmt(s['credit_change/advantaged'], 1)}",
            f"{fmt(s['repay_change/disadvantaged'], 3)} / {fmt(s['repay_change/advantaged'], 3)}",
            f"{s['gap/reset']['mean']:.3f} → {fmt(s['gap/half'], 3)} → {fmt(s['gap/end'], 3)} "
            f"({fmt(s['gap/change'], 3)})",
            f"{s['gap/widest']['mean']:.3f} ({s['gap/widest']['step']})",
            f"{round(s['widened/half']['mean'] * s['widened/half']['n'])} / "
            f"{round(s['widened/end']['mean'] * s['widened/end']['n'])} of {s['widened/end']['n']}",
        ])
    return markdown_table(header, rows)


def reports(out: Path) -> dict[str, float]:
    """Each agent's ``fairgym report`` (``report.md`` and ``plots/`` in its run folder), its seconds, and copies of
    the figures in :data:`FIGURES` in ``benchmarks/results``."""
    seconds = {}
    for agent in AGENTS:
        start = time.perf_counter()
        write_report(out / agent)
        seconds[agent] = round(time.perf_counter() - start, 2)
        for figure in FIGURES:
            shutil.copy(out / agent / PLOTS_DIR / f"{figure}.png", RESULTS / f"delayed_impact_{agent}_{figure}.png")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8, help="seeds (one episode each)")
    parser.add_argument("--steps", type=int, default=20000, help="steps per episode")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "delayed-impact")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs at once")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)  # a fresh run: resuming would time nothing
    args.out.mkdir(parents=True)
    timing = run_all(args)
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average_1min": round(os.getloadavg()[0], 2)},
               "episodes": args.episodes, "steps": args.steps, "jobs": args.jobs, **timing, **analyse(args.out)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    results["report_seconds"] = reports(args.out)
    markdown = table(results)
    (RESULTS / "delayed_impact.md").write_text(markdown + "\n")
    (RESULTS / "delayed_impact.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown)
    print(f"\nwall time {timing['wall_seconds']} s for {2 * args.episodes} episodes x {args.steps} steps "
          f"({args.jobs} at once; {timing['cpu_seconds']} CPU s); load average {results['machine']}; "
          f"fairgym report per agent: {results['report_seconds']} s")
    for claim, holds in results["claims"].items():
        print(f"{'yes' if holds else 'NO '}  {claim}")


if __name__ == "__main__":
    main()
