"""Decisions per second of the LLM agent on fairgym/Lending-v0 with the embedded SmolLM2-135M-Instruct.

Three ways to decide for N parallel envs (N = 1, 8, 32), one step each:

(a) naive loop: one ``generate`` call per env per step (greedy, up to ``--max-new-tokens``), then the env parses;
(b) batched generation: ``LLMAgent(decide="generate")``, one left-padded ``generate`` call for all N envs;
(c) batched choice scoring: ``LLMAgent(decide="choice")``, one forward pass with the shared prefix's KV cache.

The same run measures the machine's float32 matmul rate (``torch.matmul`` of two 2048 x 2048 matrices) and the
rate (c) achieves, counted as the issue asks (2 x parameters x tokens processed / time) and, stricter, counting
the LM head only at the positions whose logits are used. Warm-up first, then medians.

Idle vs busy, side by side: (c) at ``--busy-envs`` envs on this otherwise idle machine, then with a busy
neighbour (another process spinning on one core, started and stopped by the benchmark); target: busy >= 0.4x
idle decisions/s. ``--compare-spin`` repeats it in a subprocess with libgomp's default spin-wait (the settings
before ``fairgym.threads``) for reference.

Usage: ``python benchmarks/llm_decisions.py [--quick] [--compare-spin] [--out benchmarks/results/llm_decisions.json]``
"""

from __future__ import annotations

from fairgym.threads import configure_threads

THREADS = configure_threads()  # before torch loads: OpenMP reads its wait policy once

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import fairgym.envs  # noqa: F401  (registers the envs)
from fairgym.agents.llm import LLMAgent
from fairgym.envs import keys
from fairgym.lm.models import EMBEDDED_MODEL, load_model
from fairgym.lm.prompting import build_messages, render_prompt
from fairgym.lm.scoring import encode, encode_choices, shared_prefix_length

sys.path.insert(0, str(Path(__file__).parent))
from busy import SPIN_ENV, busy_neighbour, ratio  # noqa: I001  (sibling modules, found through sys.path)
from timing import timed  # noqa: I001

ENV_ID = "fairgym/Lending-v0"
DEFAULT_OUT = Path(__file__).parent / "results" / "llm_decisions.json"


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The float32 ``torch.matmul`` rate of this machine, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = timed(lambda: torch.matmul(a, b), repeats, warmup=2)
    return 2 * n**3 / seconds / 1e9


def lending_batch(n: int) -> tuple[list[Any], list[str], list[dict[str, Any]]]:
    envs = [gym.make(ENV_ID) for _ in range(n)]
    obs, infos = zip(*[env.reset(seed=i) for i, env in enumerate(envs)], strict=True)
    return envs, list(obs), list(infos)


def naive_step(model: Any, tok: Any, envs: list[Any], obs: list[str], infos: list[dict], max_new: int) -> list:
    """What most harnesses do: one generate call per env, then the env parses the text."""
    parsed = []
    with torch.inference_mode():
        for env, o, info in zip(envs, obs, infos, strict=True):
            text, _ = render_prompt(tok, build_messages(o, info), None)
            batch = tok(text, add_special_tokens=False, return_tensors="pt")
            out = model.generate(**batch, max_new_tokens=max_new, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            reply = tok.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            parsed.append(env.unwrapped.parse_action(reply))
    return parsed


def scoring_tokens(tok: Any, obs: list[str], infos: list[dict]) -> tuple[int, int]:
    """Tokens one choice-scoring step processes (prefix once + packed rows) and positions through the LM head."""
    prompts = [encode(tok, render_prompt(tok, build_messages(o, i), None)[0]) for o, i in zip(obs, infos, strict=True)]
    choices = encode_choices(tok, [i[keys.CHOICES] for i in infos])
    prefix = shared_prefix_length(prompts)
    tails = [sum(len(c) - 1 for c in row) for row in choices]
    rows = sum(len(p) - prefix + t for p, t in zip(prompts, tails, strict=True))
    head = len(prompts) * (max(tails) + 1) + 1
    return prefix + rows, head


def naive_rate(model: Any, tok: Any, n: int, args: argparse.Namespace) -> tuple[float, int]:
    """Decisions/s of the naive loop over ``n`` envs (one env at a time, so the rate does not depend on n)."""
    envs, obs, infos = lending_batch(n)
    seconds = timed(lambda: naive_step(model, tok, envs, obs, infos, args.max_new_tokens), args.repeats,
                    warmup=0 if args.quick else 1)
    return n / seconds, n


def bench_size(n: int, model: Any, tok: Any, args: argparse.Namespace, params: dict[str, int],
               naive: tuple[float, int] | None) -> dict[str, Any]:
    """One step of N envs three ways; ``naive`` is a rate measured once (``--quick``) or ``None``."""
    envs, obs, infos = lending_batch(n)
    gen = LLMAgent.from_model(model, tok, decide="generate", max_new_tokens=args.max_new_tokens)
    choice = LLMAgent.from_model(model, tok, decide="choice")
    t_choice = timed(lambda: choice.act(obs, infos), args.repeats)
    t_gen = timed(lambda: gen.act(obs, infos), args.repeats)
    naive_per_s, naive_n = naive or naive_rate(model, tok, n, args)
    tokens, head_positions = scoring_tokens(tok, obs, infos)
    flops_issue = 2 * params["all"] * tokens
    flops_strict = 2 * params["body"] * tokens + 2 * params["head"] * head_positions
    result = {
        "envs": n, "naive_envs_measured": naive_n,
        "naive_decisions_per_s": naive_per_s, "batched_generate_decisions_per_s": n / t_gen,
        "choice_decisions_per_s": n / t_choice,
        "choice_tokens_processed": tokens, "choice_seconds": t_choice,
        "choice_gflops": flops_issue / t_choice / 1e9, "choice_gflops_strict": flops_strict / t_choice / 1e9,
    }
    result["choice_speedup_vs_naive"] = result["choice_decisions_per_s"] / result["naive_decisions_per_s"]
    result["generate_speedup_vs_naive"] = result["batched_generate_decisions_per_s"] / result["naive_decisions_per_s"]
    return result


def idle_vs_busy(model: Any, tok: Any, n: int, repeats: int) -> dict[str, Any]:
    """Choice-scoring decisions/s for ``n`` envs, idle and then with one core busy, in this process."""
    envs, obs, infos = lending_batch(n)
    agent = LLMAgent.from_model(model, tok, decide="choice")
    idle = n / timed(lambda: agent.act(obs, infos), repeats)
    with busy_neighbour():
        busy = n / timed(lambda: agent.act(obs, infos), repeats)
    return {"envs": n, "idle_decisions_per_s": idle, "busy_decisions_per_s": busy,
            "busy_to_idle": ratio(busy, idle), "threads": dataclasses.asdict(THREADS),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "gomp_spincount": os.environ.get("GOMP_SPINCOUNT")}


def idle_vs_busy_spin_reference(args: argparse.Namespace) -> dict[str, Any]:
    """``idle_vs_busy`` in a subprocess that waits as libgomp does by default (spinning)."""
    cmd = [sys.executable, __file__, "--busy-only", "--busy-envs", str(args.busy_envs), "--repeats", "1"]
    out = subprocess.run(cmd, env={**os.environ, **SPIN_ENV}, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def param_counts(model: Any) -> dict[str, int]:
    """All parameters (tied weights once), the LM head's, and the rest but the input embedding."""
    total = sum(p.numel() for p in model.parameters())
    head = model.get_output_embeddings().weight.numel()
    embed = model.get_input_embeddings().weight.numel()
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    return {"all": total, "head": head, "body": total - embed - (0 if tied else head)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one timed repeat; the naive loop measured once, on --naive-envs envs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-new-tokens", type=int, default=48, help="generation limit for (a) and (b)")
    parser.add_argument("--naive-envs", type=int, default=3, help="envs the naive loop runs in --quick mode")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--busy-envs", type=int, default=8, help="envs of the idle-vs-busy comparison")
    parser.add_argument("--compare-spin", action="store_true",
                        help="also measure idle vs busy under libgomp's default spin-wait (slow when busy)")
    parser.add_argument("--busy-only", action="store_true", help=argparse.SUPPRESS)  # internal: print one JSON
    parser.add_argument("--repeats", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_model(None, device=args.device)
    if args.busy_only:
        print(json.dumps(idle_vs_busy(model, tok, args.busy_envs, args.repeats)))
        return 0
    params = param_counts(model)
    matmul = matmul_gflops()
    naive = naive_rate(model, tok, args.naive_envs, args) if args.quick else None
    rows = [bench_size(n, model, tok, args, params, naive) for n in args.sizes]
    for row in rows:
        row["choice_fraction_of_matmul"] = row["choice_gflops"] / matmul
        row["choice_fraction_of_matmul_strict"] = row["choice_gflops_strict"] / matmul
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    busy = {"fairgym": idle_vs_busy(model, tok, args.busy_envs, max(args.repeats, 2))}
    if args.compare_spin:
        busy["spin_wait_reference"] = idle_vs_busy_spin_reference(args)
    for name, row in busy.items():
        print(f"idle vs one core busy ({name}): {row['idle_decisions_per_s']:.2f} -> "
              f"{row['busy_decisions_per_s']:.2f} decisions/s ({row['busy_to_idle']}x; target >= 0.4)")
    report = {"env": ENV_ID, "model": EMBEDDED_MODEL, "device": args.device, "dtype": str(model.dtype),
              "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "quick": args.quick, "repeats": args.repeats, "max_new_tokens": args.max_new_tokens,
              "params": params, "matmul_gflops": matmul, "results": rows, "idle_vs_busy": busy}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"matmul {matmul:.1f} GFLOP/s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
