"""Does a low-rank fine-tune learn the debias more slowly, or learn less of it? Residue learning curves (the rank
study, part 4; after Biderman et al. 2024, "LoRA learns less and forgets less").

Each arm (full, or LoRA at rank r) debiases the hard implant of ``configs/sweeps/study-hard.yaml`` (the implant
cached in its sweep folder, built here when missing) with the study's recipe for ``--steps`` steps at a constant
rate after warm-up, and is read out at ``--at`` budgets on the residue stage's items and measures
(``fairgym.training.sweep_residue``: the paired margin gap on decision states with the descriptor swapped, the
hidden residue on the implant's answers, the flips and the teacher agreement), so a checkpoint is measured exactly
as the sweep measures an arm. The rate of each arm is the sweep's choice for its label (``learning_rates.json``)
when the sweep folder holds one, else ``--lr``.

    python benchmarks/learning_curves.py --arm full --arm lora-r1 --arm lora-r16 --arm lora-r64
    python benchmarks/learning_curves.py --arm full --arm lora-r1 --seed 1   # another training seed (data and init)

Writes ``benchmarks/results/learning_curves.json`` (one entry per arm and seed, kept across runs) and
``benchmarks/results/learning_curves.png``.
"""

from __future__ import annotations

from fairgym.threads import configure_threads

configure_threads()  # before torch loads

import argparse
import dataclasses
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from fairgym.analysis.residue_report import implant_alignment
from fairgym.analysis.stats import bootstrap_ci
from fairgym.training import trainers
from fairgym.training.implant import implant_bias
from fairgym.training.lr_selection import read_choices
from fairgym.training.sweep_config import SweepConfig, load_sweep_config
from fairgym.training.sweep_folder import implant_dir
from fairgym.training.sweep_residue import ResidueItems, measure, residue_items

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MEASURES = ("margin_gap_abs", "implant_alignment", "hidden_nll", "flip", "agreement")


class Readout(TrainerCallback):
    """Reads the live model out on the residue items at each budget in ``at`` (and before the first step)."""

    def __init__(self, items: ResidueItems, config: SweepConfig, at: list[int]) -> None:
        self.items, self.config, self.at, self.points = items, config, set(at), []
        self.start = time.perf_counter()
        self.base_gap: list[float] | None = None  # the step-0 read-out: the implanted base itself


    def record(self, step: int, model: Any, tokenizer: Any) -> None:
        was_training = model.training
        model.eval()
        try:
            values = measure(model, tokenizer, self.items, self.config)
        finally:
            model.train(was_training)
        if self.base_gap is None:
            self.base_gap = values["margin_gap"]
        values["implant_alignment"] = implant_alignment(values["margin_gap"], self.base_gap).tolist()
        point = {"step": step, "seconds": round(time.perf_counter() - self.start, 1),
                 **{m: bootstrap_ci(values[m]) for m in MEASURES if m in values},
                 "margin_gap_items": [round(g, 5) for g in values["margin_gap"]]}
        self.points.append(point)
        print(json.dumps({"step": step, **{m: round(point[m]["mean"], 4) for m in MEASURES if m in point}}),
              flush=True)

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.record(0, model, processing_class)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step in self.at:
            self.record(state.global_step, model, processing_class)


def parse_arm(spec: str) -> tuple[str, int | None]:
    """``full`` or ``lora-r16`` -> (method, rank)."""
    found = re.fullmatch(r"full|lora-r(\d+)", spec)
    if not found:
        raise SystemExit(f"--arm {spec!r} must be 'full' or 'lora-r<rank>'")
    return ("full", None) if spec == "full" else ("lora", int(found.group(1)))


def run_arm(spec: str, config: SweepConfig, base: Path, items: ResidueItems, args: argparse.Namespace,
            rates: dict[str, Any]) -> dict[str, Any]:
    method, rank = parse_arm(spec)
    chosen = rates.get(spec)
    lr = chosen.learning_rate if chosen is not None and chosen.learning_rate else args.lr
    folder = Path(args.out) / f"{spec}-s{args.seed}"
    shutil.rmtree(folder, ignore_errors=True)  # scratch: a rerun of the arm starts over
    train = dataclasses.replace(config.arm_config(method=method, rank=rank or 1, seed=args.seed, output_dir=folder,
                                                  learning_rate=lr, model=str(base)),
                                max_steps=args.steps, lr_scheduler="constant_with_warmup", warmup=0.05,
                                save_steps=10_000, resume=False, report_to="none")
    readout = Readout(items, config, args.at)
    stock = trainers.build_trainer

    def with_readout(cfg, model, tokenizer, dataset, callbacks=None):
        return stock(cfg, model, tokenizer, dataset, [*(callbacks or []), readout])

    trainers.build_trainer = with_readout
    started = time.perf_counter()
    try:
        trainers.train(train)
    finally:
        trainers.build_trainer = stock
    shutil.rmtree(folder, ignore_errors=True)  # the curve is the result, not the weights
    return {"arm": spec, "seed": args.seed, "learning_rate": lr,
            "rate_from": "the sweep's choice" if chosen else "--lr", "steps": args.steps,
            "scheduler": "constant_with_warmup (5%)", "points": readout.points,
            "seconds": round(time.perf_counter() - started, 1)}


def figure(entries: list[dict[str, Any]]) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(MEASURES), 3.4), layout="tight")
    arms = sorted({e["arm"] for e in entries}, key=lambda a: (a != "full", len(a), a))
    colors = {arm: f"C{i}" for i, arm in enumerate(arms)}
    for ax, name in zip(fig.subplots(1, len(MEASURES)), MEASURES, strict=True):
        for entry in sorted(entries, key=lambda e: (arms.index(e["arm"]), e.get("seed", 0))):
            points = [p for p in entry["points"] if name in p and p["step"] > 0]
            steps = [p["step"] for p in points]
            seed = entry.get("seed", 0)
            ax.plot(steps, [p[name]["mean"] for p in points], marker="o", color=colors[entry["arm"]],
                    linestyle=("-", "--", ":", "-.")[seed % 4], label=f"{entry['arm']} seed {seed}")
            ax.fill_between(steps, [p[name]["low"] for p in points], [p[name]["high"] for p in points],
                            color=colors[entry["arm"]], alpha=0.12, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("optimizer steps (budget)")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("residue against the debias budget (hard implant; line: one training seed; band: interval over "
                 "items)", fontsize=10)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", action="append", required=True, help="full or lora-r<rank> (repeatable)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "sweeps" / "study-hard.yaml"))
    parser.add_argument("--sweep-dir", default="runs/study-hard", help="the sweep folder (its implant and rates)")
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--at", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--states", type=int, default=200, help="decision states read out per budget")
    parser.add_argument("--seed", type=int, default=0, help="training seed (the sweep's: data episodes and init)")
    parser.add_argument("--lr", type=float, default=1e-3, help="the rate of an arm the sweep has not chosen one for")
    parser.add_argument("--out", default="runs/learning-curves")
    args = parser.parse_args()
    config = load_sweep_config(args.config)
    config = dataclasses.replace(config, residue=dataclasses.replace(config.residue, states=args.states,
                                                                     heldout=min(64, args.states)))
    sweep_dir = Path(args.sweep_dir)
    cache = implant_dir(config, sweep_dir)
    if not (cache / "model" / "config.json").exists():
        implant_bias(config.implant_config(cache))
    items = residue_items(config)
    rates = read_choices(sweep_dir) if sweep_dir.exists() else {}
    path = RESULTS / "learning_curves.json"
    for spec in args.arm:
        entry = {**run_arm(spec, config, cache / "model", items, args, rates), "items": items.summary(),
                 "command": "python benchmarks/learning_curves.py " + " ".join(sys.argv[1:])}
        results = json.loads(path.read_text()) if path.exists() else []  # read now: another run may have written
        results = [r for r in results if (r["arm"], r.get("seed", 0)) != (spec, args.seed)] + [entry]
        path.write_text(json.dumps(results, indent=1) + "\n")
        figure(results).savefig(RESULTS / "learning_curves.png", dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
