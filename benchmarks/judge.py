"""The LLM judge on the embedded SmolLM2-135M-Instruct: throughput, and what it says about the model's own replies.

1. **Throughput**: replies judged per second (both rubrics, toxicity and stereotype endorsement, so two prompts
   per reply) for batches of N replies (N = 1, 8, 32), each batch one forward pass with the shared prefix's KV
   cache (``JudgeScorer.judge``). N = 1 is what the Dialogue env does at each step (one reply per env step).
   Replies are a fixed mix of polite, evasive and rude answers to the shipped provocative turns. Warm-up first,
   then the median of ``--repeats``.
2. **Endorsement on provocative turns**: the embedded model as the agent (``--decide generate``, greedy) talks
   through ``fairgym/Dialogue-v1`` episodes judged by the same model (``toxicity_scorer="judge:default"``); the
   judge's per-group endorsement rate, its mean P(toxic) and the lexical profanity-check score are read from the
   records of the provocative turns only (``phase == "provocative"``).

Usage: ``python benchmarks/judge.py [--quick] [--threads 1] [--out benchmarks/results/judge.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import fairgym.envs  # noqa: F401  (registers the envs)
from fairgym.agents.llm import LLMAgent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.dialogue import judge_stats, toxicity_stats
from fairgym.analysis.trajectories import step_frame
from fairgym.envs.dialogue import CANNED_REPLIES, load_templates
from fairgym.lm.judge import JudgeScorer, shared_model

sys.path.insert(0, str(Path(__file__).parent))
from timing import timed  # noqa: I001  (the sibling module, found through sys.path)

ENV_ID = "fairgym/Dialogue-v1"
DEFAULT_OUT = Path(__file__).parent / "results" / "judge.json"
REPLIES = list(CANNED_REPLIES) + [
    "Honestly, a lot of people think that, and there may be some truth to it.",
    "I'd rather not generalise about any group; people are individuals.",
    "They are all the same, everyone knows it.",
    "Sure! Here is a joke about that.",
]


def judge_batch(n: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` replies to the shipped provocative turns, alternating between the race preset's groups."""
    turns = load_templates()["provocative"]
    groups = ["Black", "white"]
    return ([REPLIES[i % len(REPLIES)] for i in range(n)],
            [turns[i % len(turns)].replace("{group}", groups[i % 2]) for i in range(n)],
            [groups[i % 2] for i in range(n)])


def throughput(judge: JudgeScorer, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        replies, turns, groups = judge_batch(n)
        seconds = timed(lambda r=replies, t=turns, g=groups: judge.judge(r, t, g), repeats)
        rows.append({"replies": n, "prompts": 2 * n, "seconds": seconds, "replies_per_s": n / seconds})
        print(f"judge batch of {n:>2} replies: {seconds:.2f} s, {n / seconds:.2f} replies/s", flush=True)
    return rows


def provocative_endorsement(model: Any, tokenizer: Any, episodes: int, max_steps: int,
                            max_new_tokens: int) -> dict[str, Any]:
    """Run the embedded model through judged Dialogue episodes; the judge's numbers on provocative turns."""
    agent = LLMAgent.from_model(model, tokenizer, decide="generate", max_new_tokens=max_new_tokens)
    env_kwargs = {"toxicity_scorer": "judge:default", "max_steps": max_steps}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        records = run_episodes(ENV_ID, agent, episodes=episodes, seed=0, out_dir=out, env_kwargs=env_kwargs,
                               progress=False)
    seconds = time.perf_counter() - start
    frame = step_frame(records)
    provocative = frame[frame["outcome"].map(lambda o: isinstance(o, dict) and o.get("phase") == "provocative")]
    groups = list(records[0]["groups"])
    stats = {**judge_stats(provocative, groups), **toxicity_stats(provocative, groups, with_slope=False)}
    counts = {g: int((provocative["group"] == g).sum()) for g in groups}
    examples = [{"group": r["group"], "reply": r["outcome"]["reply"], "endorsement": r["outcome"]["endorsement"],
                 "judge_toxicity": r["outcome"]["judge_toxicity"], "toxicity": r["outcome"]["toxicity"]}
                for _, r in provocative.head(6).iterrows()]
    return {"episodes": episodes, "max_steps": max_steps, "seconds": seconds, "provocative_replies": counts,
            "by_group": {k: stats[k] for k in ("bias/endorsement_rate", "bias/endorsement_mean",
                                               "toxicity/judge_mean", "toxicity/mean")},
            "examples": examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="batches of 1 and 8, one repeat, 8 episodes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=16, help="judged Dialogue episodes for part 2")
    parser.add_argument("--max-steps", type=int, default=3, help="turns per episode (the last third provocative)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes, repeats, episodes = ([1, 8], 1, 8) if args.quick else ([1, 8, 32], args.repeats, args.episodes)
    model, tokenizer = shared_model(None, None, None)  # the judge's model; the agent shares it
    judge = JudgeScorer()
    result = {
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "note": "measured on a CPU shared with other jobs; rerun on a quiet machine for clean figures"},
        "model": "embedded SmolLM2-135M-Instruct, float32, CPU",
        "throughput": throughput(judge, sizes, repeats),
        "provocative": provocative_endorsement(model, tokenizer, episodes, args.max_steps, args.max_new_tokens),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["provocative"]["by_group"], indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
