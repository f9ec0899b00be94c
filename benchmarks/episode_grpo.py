"""Learning with the episode recipe on the embedded SmolLM2-135M: short Lending episodes, LoRA r=8 and full, each
with fairness weight 0 and > 0; mean episode reward and the fairness gap at every step, and rollout throughput.

Every arm is ``fairgym train grpo-episode`` through ``fairgym.training.train`` (same seeds, episodes and steps;
only ``method`` and the fairness weight differ) in a fresh subprocess. Per step it records TRL's mean total
reward and per-component means (``trainer_state.json``) and the rollouts' demographic parity difference and
invalid-action rate (``rollouts/step_metrics.jsonl``, the metrics ``fairgym run`` writes). CPU-cheap by default
(3-decision episodes, G=4, 4 tokens per reply). Writes ``benchmarks/results/episode_grpo.json``.

    python benchmarks/episode_grpo.py [--steps 8] [--max-decisions 3] [--fairness-weight 2.0]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
RESULTS = Path(__file__).parent / "results" / "episode_grpo.json"
GAP = "fairness/demographic_parity_difference"
ARMS = [("lora-r8", "lora", 0.0), ("lora-r8", "lora", None), ("full", "full", 0.0), ("full", "full", None)]
LEARNING_RATES = {"lora": 2e-4, "full": 2e-5}  # LoRA needs a larger step than a full update


def arm_config(method: str, fairness_weight: float, args: argparse.Namespace, out: Path) -> dict:
    """The ``TrainConfig`` fields of one arm."""
    return dict(recipe="grpo-episode", method=method, rank=8, output_dir=str(out), env_id="fairgym/Lending-v0",
                env_kwargs={"max_steps": args.max_decisions}, episodes=args.steps * args.batch // args.generations,
                max_steps=args.steps, batch_size=args.batch, num_generations=args.generations,
                max_completion_length=4, temperature=1.0, beta=0.0, learning_rate=LEARNING_RATES[method],
                save_steps=10_000, seed=0, device=args.device,
                reward_weights={"fairness": fairness_weight, "task_return": 1.0, "invalid_actions": 0.5})


def run_arm(fields: dict) -> dict:
    """Train one arm in this process; per-step reward and gap series, throughput, wall time."""
    from fairgym.envs.records import iter_episodes
    from fairgym.runfiles import STEP_METRICS_FILE
    from fairgym.training import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(**fields))
    wall = time.perf_counter() - started
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "reward" in h]
    steps = list(iter_episodes(result.output_dir / "rollouts" / STEP_METRICS_FILE))
    last = steps[-1] if steps else {}
    return {
        "reward_mean": [h["reward"] for h in logs],
        "task_return_mean": [h.get("rewards/task_return/mean") for h in logs],
        "fairness_gap": [s.get(GAP) for s in steps],
        "invalid_action_rate": [s.get("format/invalid_action_rate") for s in steps],
        "rollout_episodes_per_second": last.get("rollout/episodes_per_second"),
        "rollout_episodes": last.get("rollout/episodes"),
        "wall_seconds": round(wall, 1),
    }


def _mean(values: list) -> float:
    defined = [v for v in values if v is not None and not math.isnan(v)]
    return sum(defined) / len(defined) if defined else float("nan")


def summary(series: dict) -> dict:
    """First-half vs second-half means of the reward and of the gap (a learning signal robust to step noise)."""
    out = {}
    for key in ("reward_mean", "fairness_gap", "invalid_action_rate"):
        values = series[key]
        half = len(values) // 2
        out[key] = {"first_half": _mean(values[:half]), "second_half": _mean(values[half:])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-decisions", type=int, default=3, help="Lending decisions per episode")
    parser.add_argument("--batch", type=int, default=8, help="rollouts per step (batch_size)")
    parser.add_argument("--generations", type=int, default=4, help="GRPO group size G")
    parser.add_argument("--fairness-weight", type=float, default=2.0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--arm", default=None, help=argparse.SUPPRESS)  # internal: run one arm, print JSON
    args = parser.parse_args()
    if args.arm:
        print("RESULT " + json.dumps(run_arm(json.loads(args.arm))))
        return
    results = {"settings": {k: v for k, v in vars(args).items() if k != "arm"}, "arms": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, method, weight) in enumerate(ARMS):
            weight = args.fairness_weight if weight is None else weight
            fields = arm_config(method, weight, args, Path(tmp) / f"arm{i}")
            proc = subprocess.run([sys.executable, __file__, "--arm", json.dumps(fields)], capture_output=True,
                                  text=True, check=False)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"arm {label} fairness={weight} failed:\n{proc.stderr[-3000:]}")
            series = json.loads(line[len("RESULT "):])
            results["arms"].append({"arm": label, "fairness_weight": weight, **series, "summary": summary(series)})
            print(f"{label:8s} fairness={weight:<4} reward {series['reward_mean']} gap {series['fairness_gap']} "
                  f"{series['rollout_episodes_per_second']:.3f} ep/s", flush=True)
            write(results)  # after every arm, so an interrupted run keeps what it measured
    print(f"wrote {RESULTS}")


def write(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
