"""LLM decisions per second: a plain Python script against ``fairgym run``, side by side in one invocation.

The issue: a script that imports fairgym and calls ``make_agent("llm").act(...)`` ran ~18x slower than the CLI on a
shared CPU, because only the CLI set OpenMP's passive wait before torch loaded (``fairgym.threads``). Now importing
fairgym does it. Arms, each a fresh Python process doing the same work (``--episodes`` Lending episodes of
``--max-steps`` decisions, ``--num-envs`` observations per ``act`` call, choice scoring with the embedded
SmolLM2-135M-Instruct), alternated so that load on the machine reaches every arm alike:

- ``cli``: ``python -m fairgym run --agent llm ...``; its rate from ``run_stats.json`` (the agent's counters);
- ``api``: a plain script: ``from fairgym.agents import make_agent``, envs from ``make_env``, a loop of
  ``agent.act(observations, infos)`` and ``env.step``; no thread setup of its own;
- ``api_torch_first``: the same script with ``import torch`` before fairgym (the safe subset and the note apply).

Each arm's rate is decisions / seconds spent inside ``act`` (``agent.stats``), the counters the CLI writes, so model
loading is left out of every arm. One warm-up round first (untimed), then ``--repeats`` rounds; medians. Target: api
/ cli within 10% (0.9 .. 1.1), as the median over rounds of the ratio within a round (the two arms of a round run
back to back, so load from other jobs reaches both alike; the order alternates by round). The arms import whichever
fairgym the interpreter finds (``PYTHONPATH``); ``--baseline-pythonpath P`` adds ``cli_baseline`` and
``api_baseline``, the same two with ``PYTHONPATH=P`` (``""``: unset), e.g. a checkout from before the change,
measured in the same rounds.

Usage: ``python benchmarks/api_vs_cli.py [--quick] [--busy] [--out benchmarks/results/api_vs_cli.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from busy import busy_neighbour  # noqa: E402  (a sibling module, found through sys.path)

from fairgym.runfiles import RUN_STATS_FILE  # noqa: E402

ENV_ID = "fairgym/Lending-v0"
DEFAULT_OUT = Path(__file__).parent / "results" / "api_vs_cli.json"
TARGET = 0.10  # api within 10% of cli

# What a researcher writes in a script or notebook (no thread setup). Prints the agent's counters as JSON.
API_SCRIPT = """
import json, sys
{first}from fairgym.agents import make_agent
from fairgym.envs import make_env

episodes, max_steps, num_envs = (int(a) for a in sys.argv[1:4])
agent = make_agent("llm")
done = 0
while done < episodes:
    envs = [make_env("{env_id}", max_steps=max_steps) for _ in range(min(num_envs, episodes - done))]
    pairs = [env.reset(seed=done + i) for i, env in enumerate(envs)]
    live = list(range(len(envs)))
    while live:
        actions = agent.act([pairs[i][0] for i in live], [pairs[i][1] for i in live])
        still = []
        for i, action in zip(live, actions):
            obs, reward, terminated, truncated, info = envs[i].step(action)
            pairs[i] = (obs, info)
            if not (terminated or truncated):
                still.append(i)
        live = still
    done += len(envs)
print(json.dumps(agent.stats.as_dict()))
"""


def _clean_env(pythonpath: str | None = None) -> dict[str, str]:
    """This environment without thread settings, so each arm chooses its own as a fresh user's would
    (``pythonpath``: replaces ``PYTHONPATH``; ``""`` removes it)."""
    drop = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
    env = {**{k: v for k, v in os.environ.items() if k not in drop}, "WANDB_MODE": "disabled"}
    if pythonpath is not None:
        env.pop("PYTHONPATH", None)
        env.update({"PYTHONPATH": pythonpath} if pythonpath else {})
    return env


def run_api(args: argparse.Namespace, torch_first: bool = False, pythonpath: str | None = None) -> dict:
    script = API_SCRIPT.format(first="import torch\n" if torch_first else "", env_id=ENV_ID)
    done = subprocess.run([sys.executable, "-c", script, str(args.episodes), str(args.max_steps), str(args.num_envs)],
                          env=_clean_env(pythonpath), capture_output=True, text=True, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    return {**stats, "note": "torch was imported before fairgym" in done.stderr}


def run_cli(args: argparse.Namespace, pythonpath: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="fairgym-cli-") as tmp:
        subprocess.run([sys.executable, "-m", "fairgym", "run", "--env", ENV_ID, "--agent", "llm", "--episodes",
                        str(args.episodes), "--env-opt", f"max_steps={args.max_steps}", "--num-envs",
                        str(args.num_envs), "--no-wandb", "--out", str(Path(tmp) / "run")],
                       env=_clean_env(pythonpath), capture_output=True, text=True, check=True)
        stats = json.loads((Path(tmp) / "run" / RUN_STATS_FILE).read_text())
    return dict(stats["agent"])


def rate(stats: dict) -> float:
    return stats["decisions"] / stats["seconds"] if stats.get("seconds") else float("nan")


def arms(args: argparse.Namespace) -> dict:
    """Arm name -> a function running it once and returning the agent's counters (the arms ``--arms`` names)."""
    out = {"cli": lambda: run_cli(args), "api": lambda: run_api(args),
           "api_torch_first": lambda: run_api(args, torch_first=True)}
    if args.baseline_pythonpath is not None:
        out.update({"cli_baseline": lambda: run_cli(args, args.baseline_pythonpath),
                    "api_baseline": lambda: run_api(args, pythonpath=args.baseline_pythonpath)})
    wanted = args.arms.split(",") + (["cli_baseline", "api_baseline"] if args.baseline_pythonpath is not None else [])
    unknown = [a for a in wanted if a not in out]
    if unknown or not {"cli", "api"} <= set(wanted):
        raise SystemExit(f"--arms must name cli and api, and may add api_torch_first; got {args.arms!r}")
    return {name: out[name] for name in wanted}


def _ratio(rates: dict[str, list[float]], top: str, bottom: str) -> dict:
    """``top / bottom`` per round (measured back to back, so load on the machine reaches both alike) and the
    median of those ratios, beside the ratio of the medians."""
    per_round = [round(a / b, 3) for a, b in zip(rates[top], rates[bottom], strict=True)]
    return {"per_round": per_round, "median_of_rounds": statistics.median(per_round),
            "of_medians": round(statistics.median(rates[top]) / statistics.median(rates[bottom]), 3)}


def measure(args: argparse.Namespace) -> dict:
    """One warm-up round, then ``repeats`` rounds of every arm in turn (the order reversed every other round);
    per arm the rates and their median, and per pair of arms the ratio round by round."""
    runs = arms(args)
    for run in runs.values():  # warm-up: the model's cached conversion, file cache, imports
        run()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    notes: dict[str, bool] = {}
    for round_ in range(args.repeats):
        for name in (list(runs) if round_ % 2 == 0 else list(runs)[::-1]):
            stats = runs[name]()
            rates[name].append(round(rate(stats), 3))
            notes[name] = bool(stats.get("note", False))
    ratio = _ratio(rates, "api", "cli")
    result = {"decisions_per_second": rates, "median": {n: statistics.median(v) for n, v in rates.items()},
              "api_over_cli": ratio, "within_target": abs(ratio["median_of_rounds"] - 1) <= TARGET,
              "late_import_note_printed": notes}
    if "api_torch_first" in rates:
        result["torch_first_over_cli"] = _ratio(rates, "api_torch_first", "cli")
    if "api_baseline" in rates:
        result["baseline_api_over_cli"] = _ratio(rates, "api_baseline", "cli_baseline")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="8 episodes, 3 repeats")
    parser.add_argument("--busy", action="store_true", help="also measure with a busy neighbour on one core")
    parser.add_argument("--arms", default="cli,api,api_torch_first",
                        help="arms to run, comma-separated (cli and api at least)")
    parser.add_argument("--baseline-pythonpath", default=None,
                        help="also measure api and cli with this PYTHONPATH ('' = unset), e.g. an older checkout")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.quick:
        args.episodes, args.repeats = 8, 3
    started = time.time()
    result = {"settings": {k: getattr(args, k) for k in ("episodes", "max_steps", "num_envs", "repeats", "arms",
                                                        "baseline_pythonpath")},
              "decisions_per_arm_run": args.episodes * args.max_steps,
              "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                          "load_average_before": os.getloadavg(), "python": platform.python_version()},
              "no_neighbour": measure(args)}
    if args.busy:
        with busy_neighbour():
            result["busy_neighbour"] = measure(args)
    result["machine"]["load_average_after"] = os.getloadavg()
    result["wall_seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k in ("no_neighbour", "busy_neighbour")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
