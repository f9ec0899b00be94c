"""``fairgym sweep CONFIG``: train and evaluate base / LoRA ranks / full arms, run the diagnostics, write the report."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="sweep YAML, e.g. configs/sweeps/demo.yaml")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. ranks=[1,4] seeds=[0,1] eval.episodes=4")
    parser.add_argument("--out", default="runs", help="folder the sweep folder runs/<name>/ goes under")
    parser.add_argument("--no-report", action="store_true", help="skip report.md and the plots")
    parser.add_argument("--report-only", action="store_true",
                        help="only (re)write report.md and the plots from what the sweep folder holds")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from fairgym.training.sweep import load_sweep_config, run_sweep

    config = load_sweep_config(args.config, args.overrides)  # every config error surfaces here, before training
    if args.report_only:
        from fairgym.analysis.sweep_report import write_sweep_report

        print(write_sweep_report(Path(args.out) / config.name))
        return 0
    started = time.perf_counter()
    sweep_dir = run_sweep(config, out_root=args.out, report=not args.no_report)
    print(f"[sweep] {config.name} finished in {time.perf_counter() - started:.0f} s: {sweep_dir}")
    if not args.no_report:
        print((sweep_dir / "report.md").read_text())
    from fairgym.training.sweep import plan_arms, read_status

    failed = [a.name for a in plan_arms(config) if read_status(sweep_dir / a.name).get("state") != "done"]
    if failed:
        print(f"[sweep] arms not done: {', '.join(failed)} (see their status.json)")
    return 1 if failed else 0
