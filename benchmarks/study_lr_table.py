"""The rank study, part 1: the best learning rate at each LoRA rank, per parametrization, from finished sweeps.

Reads each sweep folder's ``learning_rates.json`` (every arm's held-out teacher loss per grid rate, the winner, and
whether it sat at the edge of its extended grid) and its ``config.yaml`` (the env, the implant's teacher and
``train.alpha``), and writes one row per sweep and arm. It reads, never trains.

    python benchmarks/study_lr_table.py runs/study-lr-lending-2r runs/study-hard

Writes ``benchmarks/results/study_lr.json`` and ``study_lr.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from fairgym.runfiles import CONFIG_FILE, LEARNING_RATES_FILE

RESULTS = Path(__file__).resolve().parent / "results"


def _order(arm: str) -> tuple[int, int]:
    return (0, 0) if arm == "full" else (1, int(arm.split("-r")[1].split("-")[0]))


def sweep_rows(sweep_dir: Path) -> dict[str, Any]:
    """One sweep's parametrization and, per arm, the grid's losses and the chosen rate."""
    config = yaml.safe_load((sweep_dir / CONFIG_FILE).read_text())
    choices = json.loads((sweep_dir / LEARNING_RATES_FILE).read_text())
    train = config.get("train", {})
    implant = config.get("implant") or {}
    arms = {}
    for arm in sorted(choices, key=_order):
        c = choices[arm]
        arms[arm] = {"learning_rate": c["learning_rate"], "at_edge": bool(c.get("at_edge")),
                     "losses": {float(k): v for k, v in c["losses"].items()},
                     "extended": c.get("extended", []), "seconds": c.get("seconds")}
    return {"sweep": sweep_dir.name, "env": train.get("env_id"), "alpha": train.get("alpha", "2r"),
            "groups": len((train.get("env_kwargs") or {}).get("descriptors") or ["Black", "white"]),
            "implant": implant.get("teacher"), "steps": train.get("max_steps"), "arms": arms}


def _clarity(arm: dict[str, Any]) -> str:
    """``0.0003 (×4.2)``: the winner's loss and the lower of its grid neighbours' losses over it."""
    rates = sorted(arm["losses"])
    i = rates.index(arm["learning_rate"])
    winner = arm["losses"][rates[i]]
    neighbours = [arm["losses"][rates[j]] for j in (i - 1, i + 1) if 0 <= j < len(rates)]
    return f"{winner:.2g} (×{min(neighbours) / winner:.1f})" if neighbours and winner > 0 else f"{winner:.2g}"


def markdown(sweeps: list[dict[str, Any]]) -> str:
    ranks = sorted({a for s in sweeps for a in s["arms"]}, key=_order)
    lines = ["# Best learning rate per LoRA rank, by parametrization", "",
             "Held-out teacher loss on the debias data, selected per arm on a half-decade grid extended past an edge "
             "winner; `*` = still at the grid's edge.", "",
             "| sweep | env | implant | groups | alpha | " + " | ".join(ranks) + " |",
             "|---|---|---|---|---|" + "---|" * len(ranks)]
    for s in sweeps:
        cells = [f"{s['arms'][a]['learning_rate']:g}{'*' if s['arms'][a]['at_edge'] else ''}"
                 if a in s["arms"] else "–" for a in ranks]
        lines.append(f"| {s['sweep']} | {s['env']} | {s['implant']} | {s['groups']} | {s['alpha']} | "
                     + " | ".join(cells) + " |")
    lines += ["", "How clear each choice is: the winner's held-out loss, and the nearer grid neighbour's loss over it "
              "(a ratio near 1 is a close call between two rates):", "",
              "| sweep | " + " | ".join(ranks) + " |", "|---|" + "---|" * len(ranks)]
    for s in sweeps:
        lines.append(f"| {s['sweep']} | " + " | ".join(_clarity(s["arms"][a]) if a in s["arms"] else "–"
                                                        for a in ranks) + " |")
    lines += ["", "Held-out loss per grid rate:", ""]
    for s in sweeps:
        for arm, a in s["arms"].items():
            grid = ", ".join(f"{lr:g}: {loss:.4f}" for lr, loss in sorted(a["losses"].items()))
            lines.append(f"- {s['sweep']} {arm}: {grid}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders holding learning_rates.json")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sweeps = [sweep_rows(d) for d in args.sweeps]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "study_lr.json").write_text(json.dumps({"sweeps": sweeps}, indent=1) + "\n")
    (args.out / "study_lr.md").write_text(markdown(sweeps))
    print(markdown(sweeps))


if __name__ == "__main__":
    main()
