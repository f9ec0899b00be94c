"""Is the full debias update spread because of the bias, or is every short fine-tune on the task that shape? (The
rank study, part 2: "show with the update spectrum that the full debias update is spread".)

For one sweep (its implant cached in its folder, built here when missing), four full updates of the 210 adapted
matrices, each as the share of its energy the top r singular directions hold (``fairgym.analysis.diagnostics.
update_spectrum``'s measure, the same numbers as the sweep's ``update_energy`` figure):

- ``implant``: untouched model -> implanted model (the bias put in);
- ``debias``: implanted model -> the full arm (the sweep's recipe, rate and budget; the bias taken out);
- ``task only``: untouched model -> the same full fine-tune with nothing to remove (same data, rate, steps, seed);
- ``debias minus task``: the debias update minus the task-only one, matrix by matrix: the part of the debias update
  the bias asked for (is that part low rank, or spread?).

If ``task only`` is as concentrated as ``debias``, the spectrum is the task's and the fine-tune's, not the bias's:
no implant design can push the debias update's top-1 share much below it on that task.

    python benchmarks/update_spectrum.py --config configs/sweeps/study-hard.yaml --sweep-dir runs/study-hard
    python benchmarks/update_spectrum.py --config configs/sweeps/study-lr.yaml --only dialogue-2r \\
        --sweep-dir runs/study-lr-dialogue-2r

Writes ``benchmarks/results/update_spectrum.json`` (one entry per sweep, kept across runs).
"""

from __future__ import annotations

from fairgym.threads import configure_threads

configure_threads()  # before torch loads

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from fairgym.analysis.diagnostics import delta_spectrum, state_deltas
from fairgym.lm.models import load_model
from fairgym.training import trainers
from fairgym.training.implant import implant_bias
from fairgym.training.lr_selection import read_choices
from fairgym.training.sweep_config import load_sweep_configs
from fairgym.training.sweep_folder import implant_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RANKS = (1, 2, 4, 8, 16, 32, 64)


def weights(model_dir: str | Path | None) -> dict[str, Any]:
    """The model's weights, detached (``None``: the sweep's default model)."""
    model, _ = load_model(None if model_dir is None else str(model_dir), device="cpu", dtype="float32")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    del model
    return state


def summary(spectrum: dict[str, Any]) -> dict[str, Any]:
    """Overall shares, and the mean top-1 share per projection kind and per layer third (where the update
    concentrates)."""
    kinds: dict[str, list[float]] = {}
    thirds: dict[str, list[float]] = {}
    layer_of = {name: int(m.group(1)) for name in spectrum["matrices"] if (m := re.search(r"layers\.(\d+)\.", name))}
    top = max(layer_of.values()) + 1 if layer_of else 1
    for name, entry in spectrum["matrices"].items():
        share = entry["share"][1]
        kinds.setdefault(name.split(".")[-2], []).append(share)
        if name in layer_of:
            third = ("first", "middle", "last")[min(2, 3 * layer_of[name] // top)]
            thirds.setdefault(third, []).append(share)
    mean = {k: round(sum(v) / len(v), 3) for k, v in kinds.items()}
    return {"energy_share": {r: round(x, 4) for r, x in spectrum["energy_share"].items()},
            "mean_matrix_share": {r: round(x, 4) for r, x in spectrum["mean_matrix_share"].items()},
            "top1_by_kind": mean, "top1_by_layer_third": {k: round(sum(v) / len(v), 3) for k, v in thirds.items()},
            "matrices": len(spectrum["matrices"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "sweeps" / "study-hard.yaml"))
    parser.add_argument("--only", default=None, help="the entry of a sweeps: block (e.g. dialogue-2r)")
    parser.add_argument("--sweep-dir", required=True, help="the sweep folder (its implant and full's rate)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of both fine-tunes")
    parser.add_argument("--lr", type=float, default=None, help="full's rate when the sweep chose none")
    parser.add_argument("--out", default="runs/update-spectrum")
    args = parser.parse_args()
    (config,) = load_sweep_configs(args.config, only=[args.only] if args.only else None)
    if not config.implant:
        raise SystemExit(f"{args.config}: the sweep implants no bias; the comparison needs an implant")
    sweep_dir = Path(args.sweep_dir)
    cache = implant_dir(config, sweep_dir)
    if not (cache / "model" / "config.json").exists():
        implant_bias(config.implant_config(cache))
    chosen = read_choices(sweep_dir).get("full") if sweep_dir.exists() else None
    lr = chosen.learning_rate if chosen is not None and chosen.learning_rate else args.lr
    if lr is None:
        raise SystemExit(f"{sweep_dir}: no learning rate chosen for 'full'; pass --lr")
    started = time.perf_counter()
    untouched, implanted = weights(config.model), weights(cache / "model")
    tuned = {}
    for name, start in (("debias", cache / "model"), ("task only", config.model)):
        folder = Path(args.out) / f"{config.name}-{name.replace(' ', '-')}-s{args.seed}"
        shutil.rmtree(folder, ignore_errors=True)
        cfg = config.arm_config(method="full", rank=1, seed=args.seed, output_dir=folder, learning_rate=lr,
                                model=None if start is None else str(start))
        result = trainers.train(cfg)
        tuned[name] = weights(result.model_dir)
        shutil.rmtree(folder, ignore_errors=True)  # the spectrum is the result, not the weights
    deltas = {"implant": state_deltas(untouched, implanted), "debias": state_deltas(implanted, tuned["debias"]),
              "task only": state_deltas(untouched, tuned["task only"])}
    deltas["debias minus task"] = {k: d - deltas["task only"][k] for k, d in deltas["debias"].items()}
    entry: dict[str, Any] = {"sweep": config.name, "learning_rate": lr, "steps": config.template.max_steps,
                             "seed": args.seed, "implant_steps": (config.implant or {}).get("max_steps")}
    for name, delta in deltas.items():
        entry[name] = summary(delta_spectrum(delta, RANKS))
        print(name, json.dumps(entry[name]["energy_share"]), flush=True)
    entry["seconds"] = round(time.perf_counter() - started, 1)
    entry["command"] = "python benchmarks/update_spectrum.py " + " ".join(sys.argv[1:])
    path = RESULTS / "update_spectrum.json"
    results = json.loads(path.read_text()) if path.exists() else []  # read now: another run may have written
    results = [r for r in results if (r["sweep"], r["seed"]) != (config.name, args.seed)] + [entry]
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
