"""``fairgym judge check <scorer>``: check a toxicity scorer on fairgym's gold set before trusting it.

Per rubric (toxicity, stereotype endorsement), overall and per group: AUC, accuracy, false-positive and
false-negative rates at the threshold, calibration error, with intervals; the score change when only the group is
swapped; each plain and group-blind (``fairgym.analysis.scorer_check``). The result is written as JSON (by default
where run reports look for it, ``benchmarks/results/judge_check_<scorer>.json``) and printed as a table.
"""

from __future__ import annotations

import argparse
import shlex
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommand ``check``."""
    sub = parser.add_subparsers(dest="judge_command", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="score the gold set with a scorer: error rates per group, swap invariance")
    check.add_argument("scorer", help="a toxicity_scorer value: profanity-check, judge:<model> (judge:default = the "
                                      "embedded SmolLM2), or a local text-classification model folder")
    check.add_argument("--gold", default=None, help="a gold JSON-lines file (default: the shipped gold set)")
    check.add_argument("--out", default=None, help="the result's JSON path (default: benchmarks/results/"
                                                   "judge_check_<scorer>.json, where run reports look for it)")
    check.add_argument("--threshold", type=float, default=None, help="a score above it flags the reply (default 0.5)")
    check.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for AUC/ECE (default 1000)")
    check.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run the check, write the JSON, print the table; 0 when done (warnings are printed, not failures)."""
    from fairgym.analysis.scorer_check import GOLD_PATH, THRESHOLD, run_check
    from fairgym.analysis.scorer_report import check_table

    def progress(done: int, total: int) -> None:
        print(f"\rscored {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    command = " ".join(["fairgym judge check", *(shlex.quote(a) for a in command_options(args))])
    result, path = run_check(args.scorer, gold=args.gold or GOLD_PATH, out=args.out, command=command,
                             threshold=THRESHOLD if args.threshold is None else args.threshold,
                             resamples=args.resamples, seed=args.seed, progress=progress)
    print(check_table(result))
    print(f"\nwrote {path}")
    return 0


def command_options(args: argparse.Namespace) -> list[str]:
    """The scorer and the options given, as a command line would write them (recorded in the result)."""
    out = [args.scorer]
    for flag, value, default in (("--gold", args.gold, None), ("--out", args.out, None),
                                 ("--threshold", args.threshold, None), ("--resamples", args.resamples, 1000),
                                 ("--seed", args.seed, 0)):
        if value != default:
            out += [flag, str(value)]
    return out
