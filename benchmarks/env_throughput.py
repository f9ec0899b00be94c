"""Env throughput: steps per second of every fairgym env with a random agent.

Four ways per env: the text view stepped one env at a time (``single``) and through the batched runner
(``batched``, one agent call per step for ``--num-envs`` envs), and the numeric view (``make_numeric``) stepped
alone and in a ``gymnasium.vector.SyncVectorEnv``. Each measurement is warmed up once, then repeated
``--repeats`` times; the median is reported. Results go to ``benchmarks/results/env_throughput.json``.

Usage:
    python benchmarks/env_throughput.py [--steps 1000] [--repeats 3] [--num-envs 16] [--envs fairgym/Lending-v0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym

from fairgym.agents import make_agent
from fairgym.agents.runner import calibrate, run_episodes
from fairgym.envs import ENV_IDS, make_env

RESULTS = Path(__file__).resolve().parent / "results" / "env_throughput.json"
MAX_STEPS = 20


def timed(fn: Callable[[], int], repeats: int) -> float:
    """Median steps per second of ``fn`` (which returns the steps it took) after one warm-up call."""
    fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = fn()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def text_single(env_id: str, steps: int) -> Callable[[], int]:
    env, agent = make_env(env_id, max_steps=MAX_STEPS), make_agent("random")
    calibrate(agent, env, seed=0)  # the random agent reads the env's declared family there, as in the runner

    def go() -> int:
        obs, info = env.reset(seed=0)
        for i in range(steps):
            (action,) = agent.act([obs], [info])
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                obs, info = env.reset(seed=i)
        return steps

    return go


def text_batched(env_id: str, steps: int, num_envs: int) -> Callable[[], int]:
    episodes = max(num_envs, steps // MAX_STEPS)

    def go() -> int:
        records = run_episodes(env_id, make_agent("random"), episodes=episodes, num_envs=num_envs,
                               env_kwargs={"max_steps": MAX_STEPS}, progress=False)
        return sum(r["length"] for r in records)

    return go


def numeric_single(env_id: str, steps: int) -> Callable[[], int]:
    from fairgym.envs import make_numeric

    env = make_numeric(env_id, max_steps=MAX_STEPS)
    env.action_space.seed(0)

    def go() -> int:
        env.reset(seed=0)
        for i in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset(seed=i)
        return steps

    return go


def numeric_batched(env_id: str, steps: int, num_envs: int) -> Callable[[], int]:
    from fairgym.envs import make_numeric

    vec = gym.vector.SyncVectorEnv([lambda: make_numeric(env_id, max_steps=MAX_STEPS)] * num_envs)
    vec.action_space.seed(0)
    calls = max(1, steps // num_envs)

    def go() -> int:
        vec.reset(seed=0)
        for _ in range(calls):
            vec.step(vec.action_space.sample())
        return calls * num_envs

    return go


def measure(env_id: str, steps: int, repeats: int, num_envs: int) -> list[dict]:
    """Every view and mode of one env; a view that cannot be built is reported with its error."""
    cases = [("text", "single", 1, lambda: text_single(env_id, steps)),
             ("text", "batched", num_envs, lambda: text_batched(env_id, steps, num_envs)),
             ("numeric", "single", 1, lambda: numeric_single(env_id, steps)),
             ("numeric", "batched", num_envs, lambda: numeric_batched(env_id, steps, num_envs))]
    rows = []
    for view, mode, n, build in cases:
        row = {"env": env_id, "view": view, "mode": mode, "num_envs": n}
        try:
            row["steps_per_second"] = round(timed(build(), repeats), 1)
        except (ImportError, NotImplementedError, ValueError, TypeError) as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
        print(f"{env_id:24s} {view:8s} {mode:8s} x{n:<3d} {row.get('steps_per_second', row.get('error'))}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--num-envs", type=int, default=16, help="envs per batch")
    parser.add_argument("--envs", nargs="*", default=list(ENV_IDS), help="env ids (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = [row for env_id in args.envs for row in measure(env_id, args.steps, args.repeats, args.num_envs)]
    result = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count()},
              "settings": {"steps": args.steps, "repeats": args.repeats, "num_envs": args.num_envs,
                           "max_steps": MAX_STEPS, "agent": "random"},
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
