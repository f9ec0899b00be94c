"""Learning with the episode recipe on the embedded SmolLM2-135M: short Lending episodes, LoRA r=8 and full, each
with fairness weight 0 and > 0, all started from one biased warm start; mean episode reward and the fairness gap
at every step, and rollout throughput.

Why a warm start: the embedded model does not follow Lending's answer format when it generates (greedy, it echoes
the instructions; sampled at temperature 1, 8 of 64 replies held "approve" or "deny" within 4 tokens), so GRPO
from it sees invalid actions only, an undefined gap and an inert fairness weight. RL starts from a policy that
follows the format: here fairgym's bias implant (``fairgym.training.implant``: full SFT on the ``biased-threshold``
teacher, the demo sweep's implant, which approves every white applicant and denies every Black one), built once and
cached under ``runs/benchmarks/episode_grpo/warm-<key>`` (``--warm-start none``: the embedded model as it is).
The question each pair of arms asks is the project's: does a fairness weight lower the gap a biased base starts
with, against weight 0 at equal steps?

Every arm is ``fairgym train grpo-episode`` through ``fairgym.training.train`` (same warm start, seeds, episodes
and steps; only ``method`` and the fairness weight differ) in a fresh subprocess. Per step it records TRL's mean
total reward and per-component means (``trainer_state.json``) and the rollouts' demographic parity difference,
approval rate and invalid-action rate (``rollouts/step_metrics.jsonl``, the metrics ``fairgym run`` writes).
Writes ``benchmarks/results/episode_grpo.json``.

    python benchmarks/episode_grpo.py [--steps 8] [--max-decisions 4] [--fairness-weight 2.0] [--warm-start none]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fairgym.threads import configure_threads

THREADS = configure_threads()  # before torch loads: OpenMP reads its wait policy once (spinning threads on a shared
# CPU made the first version of this benchmark several times slower)
os.environ.setdefault("WANDB_MODE", "disabled")
RESULTS = Path(__file__).parent / "results" / "episode_grpo.json"
WARM_CACHE = Path("runs/benchmarks/episode_grpo")
GAP = "fairness/demographic_parity_difference"
APPROVAL = "fairness/selection_rate"  # approvals over valid decisions; per group under APPROVAL/<group>
ARMS = [("lora-r8", "lora", 0.0), ("lora-r8", "lora", None), ("full", "full", 0.0), ("full", "full", None)]
LEARNING_RATES = {"lora": 5e-4, "full": 5e-5}  # LoRA at 10x the full rate, the demo sweep's rule
# The demo sweep's implant (configs/sweeps/demo.yaml): a pure group rule, DP difference 1 on its own episodes.
WARM_START = dict(recipe="sft", method="full", env_id="fairgym/Lending-v0", env_kwargs={"max_steps": 10},
                  teacher="biased-threshold", teacher_kwargs={"penalty": 1000, "threshold": 300}, episodes=16,
                  max_steps=12, batch_size=8, learning_rate=2e-4, max_length=512, save_steps=10_000, seed=0)


def warm_start(device: str | None) -> str:
    """The biased warm start's model folder, trained once and cached under a key of its settings."""
    from fairgym.training import TrainConfig
    from fairgym.training.implant import implant_bias

    fields = {**WARM_START, "device": device}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    folder = WARM_CACHE / f"warm-{key}"
    if not (folder / "model" / "config.json").is_file():
        started = time.perf_counter()
        implant_bias(TrainConfig(**fields, output_dir=str(folder)))
        print(f"warm start trained in {time.perf_counter() - started:.0f} s -> {folder}", flush=True)
    return str((folder / "model").resolve())


def arm_config(method: str, fairness_weight: float, args: argparse.Namespace, out: Path, model: str | None) -> dict:
    """The ``TrainConfig`` fields of one arm."""
    return dict(recipe="grpo-episode", model=model, method=method, rank=8, output_dir=str(out),
                env_id="fairgym/Lending-v0", env_kwargs={"max_steps": args.max_decisions},
                episodes=args.steps * args.batch // args.generations, max_steps=args.steps, batch_size=args.batch,
                num_generations=args.generations, max_completion_length=args.turn_tokens,
                temperature=args.temperature, beta=0.0, learning_rate=LEARNING_RATES[method], save_steps=10_000,
                seed=0, device=args.device,
                reward_weights={"fairness": fairness_weight, "task_return": 1.0, "invalid_actions": 0.5})


def run_arm(fields: dict) -> dict:
    """Train one arm in this process; per-step reward and gap series, throughput, wall time."""
    from fairgym.envs.records import iter_episodes, iter_jsonl
    from fairgym.runfiles import EPISODES_FILE, STEP_METRICS_FILE
    from fairgym.training import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(**fields))
    wall = time.perf_counter() - started
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "reward" in h]
    steps = list(iter_jsonl(result.output_dir / "rollouts" / STEP_METRICS_FILE))
    seeds = {e["global_step"]: e["seed"] for e in iter_episodes(result.output_dir / "rollouts" / EPISODES_FILE)}
    last = steps[-1] if steps else {}
    return {
        "step_seeds": [seeds.get(s["global_step"]) for s in steps],  # one group (seed) per step by default
        "reward_mean": [h["reward"] for h in logs],
        "task_return_mean": [h.get("rewards/task_return/mean") for h in logs],
        "fairness_gap": [s.get(GAP) for s in steps],
        "approval_rate": [s.get(APPROVAL) for s in steps],
        "approval_rate_by_group": {k.rsplit("/", 1)[1]: [s.get(k) for s in steps]
                                   for k in sorted(last) if k.startswith(APPROVAL + "/")},
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
    for key in ("reward_mean", "task_return_mean", "fairness_gap", "approval_rate", "invalid_action_rate"):
        values = series[key]
        half = len(values) // 2
        out[key] = {"first_half": _mean(values[:half]), "second_half": _mean(values[half:])}
    return out


def untrained_control(fields: dict) -> dict:
    """The warm start without any GRPO step, played on every seed of the arms with the same sampling: its task
    return and DP gap per seed, so a change along the arms' steps can be told from the seeds' own difficulty
    (each step plays a different seed, the same seed at the same step in every arm)."""
    import torch

    from fairgym.analysis.metrics import compute_metrics
    from fairgym.lm.models import load_model
    from fairgym.training import TrainConfig
    from fairgym.training import episode_grpo as eg
    from fairgym.training.episode_rewards import task_return

    config = TrainConfig(**fields)
    model, tokenizer = load_model(config.model, device=config.device or "cpu")
    spec = eg.EpisodeSpec(config.max_completion_length, config.temperature, eg.context_window(model))
    torch.manual_seed(config.seed)
    out = {}
    for seed in range(config.seed, config.seed + config.episodes):
        envs = [eg.make_env(config) for _ in range(config.num_generations)]
        rollouts = eg.play_episodes(model, tokenizer, envs, [seed] * len(envs), spec)
        episodes = [eg.episode_of(r, config.env_id, dict(config.env_kwargs), i, "warm-start", 0)
                    for i, r in enumerate(rollouts)]
        metrics = compute_metrics(episodes)
        out[str(seed)] = {"task_return_mean": sum(task_return(e) for e in episodes) / len(episodes),
                          "fairness_gap": metrics.get(GAP), "approval_rate": metrics.get(APPROVAL)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-decisions", type=int, default=4, help="Lending decisions per episode")
    parser.add_argument("--batch", type=int, default=4, help="rollouts per step (batch_size): one group")
    parser.add_argument("--generations", type=int, default=4, help="GRPO group size G")
    parser.add_argument("--turn-tokens", type=int, default=4, help="max_completion_length: tokens per reply")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--fairness-weight", type=float, default=2.0)
    parser.add_argument("--warm-start", choices=("implant", "none"), default="implant",
                        help="start from the cached biased implant (default) or from the embedded model as it is")
    parser.add_argument("--device", default=None)
    parser.add_argument("--control-only", action="store_true",
                        help="only play the untrained warm start on the arms' seeds; add it to the results file")
    parser.add_argument("--arm", default=None, help=argparse.SUPPRESS)  # internal: run one arm, print JSON
    args = parser.parse_args()
    if args.arm:
        print("RESULT " + json.dumps(run_arm(json.loads(args.arm))))
        return
    if args.control_only:
        model = warm_start(args.device) if args.warm_start == "implant" else None
        results = json.loads(RESULTS.read_text())
        results["untrained_warm_start"] = untrained_control(arm_config("full", 0.0, args, Path("unused"), model))
        write(results)
        print(json.dumps(results["untrained_warm_start"]))
        return
    settings = {k: v for k, v in vars(args).items() if k != "arm"}
    results = {"settings": {**settings, "learning_rates": LEARNING_RATES, "threads": dataclasses.asdict(THREADS),
                            "warm_start_config": WARM_START if args.warm_start == "implant" else None},
               "arms": []}
    model = warm_start(args.device) if args.warm_start == "implant" else None
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, method, weight) in enumerate(ARMS):
            weight = args.fairness_weight if weight is None else weight
            series = run_arm_subprocess(arm_config(method, weight, args, Path(tmp) / f"arm{i}", model), label)
            results["arms"].append({"arm": label, "fairness_weight": weight, **series, "summary": summary(series)})
            print(f"{label:8s} fairness={weight:<4} reward {series['reward_mean']} gap {series['fairness_gap']} "
                  f"{series['rollout_episodes_per_second']:.3f} ep/s", flush=True)
            write(results)  # after every arm, so an interrupted run keeps what it measured
    results["untrained_warm_start"] = untrained_control(arm_config("full", 0.0, args, Path(tmp), model))
    write(results)
    print(f"wrote {RESULTS}")


def run_arm_subprocess(fields: dict, label: str) -> dict:
    """One arm in a fresh process (no state carried between arms); its series."""
    proc = subprocess.run([sys.executable, __file__, "--arm", json.dumps(fields)], capture_output=True, text=True,
                          check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"arm {label} {fields['reward_weights']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def write(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
