"""Keep a finished sweep's answer in the repository: its per-arm numbers, report and plots.

``runs/`` is git-ignored (it holds gigabytes of weights), so the documentation's results pages
(``docs/docgen/results.py``) need a committed source. For each sweep folder this writes
``benchmarks/results/<sweep>/``: ``summary.json`` (per arm: state, seconds, metrics per evaluated env, diagnostics;
the learning-rate choices; the spectrum), ``residue.json`` when the sweep measured the residue, ``report.md`` and
``plots/`` as ``fairgym sweep`` wrote them (the
report's image links stay valid). It reads, never trains.

    python benchmarks/study_results.py runs/cpu-study-lending runs/cpu-study-dialogue
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fairgym.analysis.sweep_report import load_sweep
from fairgym.runfiles import REPORT_FILE, RESIDUE_FILE, write_json

RESULTS = Path(__file__).resolve().parent / "results"


def keep(sweep_dir: Path, out_root: Path = RESULTS) -> Path:
    """Copy ``sweep_dir``'s summary, report and plots to ``out_root/<sweep>/``; returns that folder."""
    sweep = load_sweep(sweep_dir)
    if not (sweep_dir / REPORT_FILE).exists():
        raise FileNotFoundError(f"{sweep_dir} has no {REPORT_FILE}; run `fairgym sweep CONFIG --report-only` first.")
    out = out_root / sweep_dir.name
    out.mkdir(parents=True, exist_ok=True)
    diagnostics = sweep["diagnostics"].get("arms", {})
    arms = {a["name"]: {"label": a["label"], "state": a["state"], "seconds": a.get("seconds"),
                        "metrics": a["metrics"], "diagnostics": diagnostics.get(a["name"])} for a in sweep["arms"]}
    write_json(out / "summary.json", {
        "sweep": sweep_dir.name, "config": sweep["config"], "learning_rates": sweep["learning_rates"],
        "spectrum": sweep["diagnostics"].get("spectrum"), "arms": arms})
    shutil.copy2(sweep_dir / REPORT_FILE, out / REPORT_FILE)
    if (sweep_dir / RESIDUE_FILE).exists():  # the per-item residue measures and their calibration, for re-analysis
        shutil.copy2(sweep_dir / RESIDUE_FILE, out / RESIDUE_FILE)
    if (sweep_dir / "plots").is_dir():
        shutil.copytree(sweep_dir / "plots", out / "plots", dirs_exist_ok=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders, e.g. runs/cpu-study-lending")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder the copies go under")
    args = parser.parse_args()
    for sweep_dir in args.sweeps:
        print(keep(sweep_dir, args.out))


if __name__ == "__main__":
    main()
