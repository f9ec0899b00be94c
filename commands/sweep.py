"""``fairgym sweep CONFIG``: train and evaluate base / LoRA ranks / full arms, run the diagnostics, write the report.

A config with a ``sweeps:`` block runs each sub-sweep in turn (e.g. ``configs/sweeps/cpu-study.yaml``: Lending and
Dialogue), each into its own folder and report. ``--executor ray [--address auto]`` runs the stages as Ray tasks
(``docs/scale-out.md``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from fairgym.commands.config_help import add_config_help
from fairgym.runfiles import CONFIG_FILE, REPORT_FILE

if TYPE_CHECKING:
    from fairgym.training.sweep_config import SweepConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="sweep YAML, e.g. configs/sweeps/demo.yaml")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. ranks=[1,4] seeds=[0,1] eval.episodes=4")
    parser.add_argument("--out", default="runs", help="folder the sweep folder runs/<name>/ goes under")
    parser.add_argument("--no-report", action="store_true", help="skip report.md and the plots")
    parser.add_argument("--executor", choices=("local", "ray"), default=None,
                        help="where the stages run: local (this process, the default) or ray (Ray tasks across GPUs "
                             "and machines; pip install 'fairgym[ray]'); sets executor.kind")
    parser.add_argument("--address", default=None,
                        help="with --executor ray: the cluster to join, 'auto' or <head>:6379 (default: RAY_ADDRESS, "
                             "else Ray started on this machine); sets executor.address")
    parser.add_argument("--rescore", action="store_true",
                        help="recompute every finished arm's metrics from its saved episodes (no model loaded, "
                             "e.g. after fairgym gained a metric), then rewrite the report")
    parser.add_argument("--only", action="append", default=None, metavar="SUB_SWEEP",
                        help="with a sweeps: block, run only this sub-sweep (its entry under sweeps:, e.g. "
                             "dialogue-a32; repeat for more); default every one, in turn")
    parser.add_argument("--rates-only", action="store_true",
                        help="stop after the learning-rate selection: learning_rates.json (each arm's held-out loss "
                             "per grid rate and the winner), no arm trained or evaluated, no report")
    parser.add_argument("--report-only", action="store_true",
                        help="only (re)write report.md and the plots from what the sweep folder holds; the saved "
                             "config.yaml is never changed")
    from fairgym.training.sweep_config import SweepConfig

    add_config_help(parser, SweepConfig, "in the sweep YAML, or KEY=VALUE overrides", collapse=("train",),
                    extra=["train.<key>: any TrainConfig key (see `fairgym train --help`), shared by every trained "
                           "arm; the sweep sets the per-arm ones itself (method, rank, seed, output_dir, ...)."])


def run(args: argparse.Namespace) -> int:
    """Load every sweep of the config (errors before anything runs), then run, rescore or report them."""
    from fairgym.training.sweep_config import load_sweep_configs
    from fairgym.training.sweep_folder import check_sweep_folder

    # quoted, so YAML reads an address such as 10.0.0.1:6379 as the string it is
    flags = {"kind": args.executor, "address": args.address}
    executor = [f"executor.{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    # every config error, before training
    configs = load_sweep_configs(args.config, [*args.overrides, *executor], only=args.only)
    for config in configs:  # a folder holding other results is refused before any sweep runs
        check_sweep_folder(config, Path(args.out) / config.name)
        if not (args.report_only or args.rescore):
            check_sweep_rank(config)
        if args.rates_only and not config.learning_rates:
            raise ValueError(f"{config.name}: --rates-only chooses learning rates, and the sweep sets no grid; give "
                             "one, e.g. learning_rates: {lora: [0.001, 0.003], full: [0.0001, 0.0003]}.")
    if args.rescore:
        from fairgym.training.sweep import rescore_sweep

        for config in configs:
            done = rescore_sweep(config, Path(args.out) / config.name)
            print(f"[sweep] {config.name}: rescored {len(done)} arms from their episodes")
    if args.report_only or args.rescore:
        return report_only(configs, Path(args.out))
    if args.rates_only:
        return max(run_rates(config, args) for config in configs)
    return max(run_one(config, args) for config in configs)


def check_sweep_rank(config: SweepConfig) -> None:
    """Refuse, before anything trains, a largest LoRA rank above an adapted matrix's smaller side (reading the
    model's config only; each arm's training checks its memory when it starts)."""
    if not config.ranks:
        return
    import dataclasses

    from fairgym.training.capacity import adapted_matrices, check_rank, model_skeleton, with_adapter
    from fairgym.training.trl_config import lora_config

    rank = max(config.ranks)
    arm = dataclasses.replace(config.template, method="lora", rank=rank)  # the largest arm's adapter settings
    check_rank(rank, adapted_matrices(with_adapter(model_skeleton(config.model), lora_config(arm))))


def report_only(configs: list[SweepConfig], out: Path) -> int:
    """Rewrite each sweep's report from its folder; the config it reads is the one saved there."""
    from fairgym.analysis.sweep_report import write_sweep_report

    for config in configs:
        folder = Path(out) / config.name
        if not (folder / CONFIG_FILE).exists():
            raise FileNotFoundError(f"{folder} holds no sweep (no config.yaml) to report on; run the sweep first.")
        print(write_sweep_report(folder))
    return 0


def run_rates(config: SweepConfig, args: argparse.Namespace) -> int:
    """Choose one sweep's learning rates only and print each arm's choice."""
    from fairgym.training.lr_selection import read_choices
    from fairgym.training.sweep import run_sweep

    choices = read_choices(run_sweep(config, out_root=args.out, report=False, rates_only=True))
    for label, choice in choices.items():
        if choice.learning_rate is None:
            print(f"[sweep] {config.name}: {label} learning rate not chosen ({choice.error})")
            continue
        edge = " (at the grid's edge)" if choice.at_edge else ""
        print(f"[sweep] {config.name}: {label} learning rate {choice.learning_rate:g}{edge}")
    return 1 if any(c.learning_rate is None for c in choices.values()) else 0


def run_one(config: SweepConfig, args: argparse.Namespace) -> int:
    """Run one sweep and print its report; 1 when an arm is not done."""
    import time

    from fairgym.training.sweep import run_sweep
    from fairgym.training.sweep_arms import plan_arms
    from fairgym.training.sweep_folder import read_status

    started = time.perf_counter()
    sweep_dir = run_sweep(config, out_root=args.out, report=not args.no_report)
    print(f"[sweep] {config.name} finished in {time.perf_counter() - started:.0f} s: {sweep_dir}")
    if not args.no_report:
        print((sweep_dir / REPORT_FILE).read_text())
    failed = [a.name for a in plan_arms(config) if read_status(sweep_dir / a.name).get("state") != "done"]
    if failed:
        print(f"[sweep] arms not done: {', '.join(failed)} (see their status.json)")
    return 1 if failed else 0
