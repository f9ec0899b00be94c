"""``fairgym report RUN_DIR``: write ``report.md`` and ``plots/*.png`` for a run or sweep folder (optionally W&B)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fairgym.runfiles import EPISODES_FILE, STATUS_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``fairgym report``."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a run folder holding episodes.jsonl (config.yaml and metrics.json if present), "
                             "or a sweep folder written by `fairgym sweep`")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the run or sweep report to W&B (offline unless W&B is configured; WANDB_MODE "
                             "wins); without it nothing is logged")
    parser.add_argument("--project", default="fairgym", help="W&B project (with --wandb)")


def is_sweep_folder(folder: Path) -> bool:
    """A sweep folder has arm folders with ``status.json`` and no ``episodes.jsonl`` of its own."""
    folder = Path(folder)
    return not (folder / EPISODES_FILE).exists() and any(folder.glob(f"*/{STATUS_FILE}"))


def run(args: argparse.Namespace) -> int:
    """Write the report, print the per-group table and the path of ``report.md``."""
    from fairgym.analysis.metrics import summary_table
    from fairgym.analysis.report import load_run, render_report

    if is_sweep_folder(args.run_dir):
        from fairgym.analysis.sweep_report import write_sweep_report

        print(write_sweep_report(args.run_dir, wandb=args.wandb))
        return 0
    from fairgym.analysis.trajectories import run_profile

    episodes, config, metrics = load_run(args.run_dir)
    report = render_report(args.run_dir, episodes, config, metrics)
    print(summary_table(metrics, run_profile(episodes)))
    if args.wandb:
        from fairgym.analysis.wandb_log import log_run

        log_run(args.run_dir, config, metrics, episodes, project=args.project, name=Path(args.run_dir).name)
    print(report)
    return 0
