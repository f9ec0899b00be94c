"""Serve latency: steps per second and per-step latency of a served env through the socket, beside the in-process env.

For each env, four measurements with the same cycle of valid actions (episodes of ``MAX_STEPS`` decisions, reset
with the next seed when one ends; resets are not timed):

- ``in_process``: one env (``make_env``) stepped in this process;
- ``in_process_64``: 64 envs stepped in turn in one thread (the in-process counterpart of 64 sessions);
- ``sessions_1``: one WebSocket session of a ``fairgym serve`` process on 127.0.0.1 (``make_remote_env``), one
  step at a time (each a round trip);
- ``sessions_64``: 64 sessions at once, one client thread each.

Each gives the steps taken, steps per second (all sessions together, over the wall time) and the p50/p99 latency of
one ``env.step`` call as the caller sees it. The server runs in its own process (``fairgym serve``), so on this
2-core machine it shares the CPUs with the clients. Results go to ``benchmarks/results/serve_latency.json``.

Usage:
    python benchmarks/serve_latency.py [--steps 2000] [--steps-per-session 60] [--envs fairgym/Lending-v0 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from fairgym.envs import ENV_IDS, make_env
from fairgym.serve.process import server_process
from fairgym.serve.remote import make_remote_env

RESULTS = Path(__file__).resolve().parent / "results" / "serve_latency.json"
MAX_STEPS = 20
SESSIONS = 64
ACTIONS = {
    "fairgym/Lending-v0": ["approve", "deny"],
    "fairgym/Allocation-v0": ["North=2, South=2, East=1, West=1", "North=1, South=1, East=2, West=2"],
    "fairgym/Dialogue-v1": ["Thanks for sharing that.", "I would rather look at each person as an individual."],
}


def step_latencies(env: Any, env_id: str, steps: int, seed: int) -> list[float]:
    """Seconds of each of ``steps`` ``env.step`` calls (episodes reset with the next seed, untimed)."""
    actions, out, episode = ACTIONS[env_id], [], 0
    env.reset(seed=seed)
    for t in range(steps):
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(actions[t % len(actions)])
        out.append(time.perf_counter() - start)
        if terminated or truncated:
            episode += 1
            env.reset(seed=seed + 1000 * episode)
    return out


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"steps": len(ordered), "wall_seconds": round(wall, 3), "steps_per_second": round(len(ordered) / wall, 1),
            "p50_ms": round(1000 * statistics.median(ordered), 3),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3)}


def timed(fn: Any) -> tuple[list[float], float]:
    start = time.perf_counter()
    latencies = fn()
    return latencies, time.perf_counter() - start


def in_process_round_robin(env_id: str, count: int, steps_each: int) -> list[float]:
    envs = [make_env(env_id, max_steps=MAX_STEPS) for _ in range(count)]
    actions, out = ACTIONS[env_id], []
    episodes = [0] * count
    for i, env in enumerate(envs):
        env.reset(seed=i)
    for t in range(steps_each):
        for i, env in enumerate(envs):
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions[t % len(actions)])
            out.append(time.perf_counter() - start)
            if terminated or truncated:
                episodes[i] += 1
                env.reset(seed=i + 1000 * episodes[i])
    return out


def concurrent_sessions(url: str, env_id: str, count: int, steps_each: int) -> tuple[list[float], float]:
    """Step latencies of ``count`` sessions stepped at once, and the wall time from their start to the last step
    (opening and closing the sessions untimed)."""
    envs = [make_remote_env(url, env_id, max_steps=MAX_STEPS) for _ in range(count)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    results: list[list[float]] = [[] for _ in range(count)]
    go = threading.Barrier(count + 1)

    def run(i: int) -> None:
        go.wait()
        results[i] = step_latencies(envs[i], env_id, steps_each, seed=i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    go.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    for env in envs:
        env.close()
    return [x for r in results for x in r], wall


def measure(url: str, env_id: str, steps: int, steps_per_session: int) -> dict[str, Any]:
    step_latencies(make_env(env_id, max_steps=MAX_STEPS), env_id, 50, seed=0)  # warm-up (imports, scorers)
    out = {"in_process": summary(*timed(lambda: step_latencies(make_env(env_id, max_steps=MAX_STEPS), env_id,
                                                               steps, seed=0))),
           "in_process_64": summary(*timed(lambda: in_process_round_robin(env_id, SESSIONS, steps_per_session)))}
    remote = make_remote_env(url, env_id, max_steps=MAX_STEPS)
    step_latencies(remote, env_id, 50, seed=0)  # warm-up: the server builds the env and its scorer
    out["sessions_1"] = summary(*timed(lambda: step_latencies(remote, env_id, steps, seed=0)))
    remote.close()
    concurrent_sessions(url, env_id, SESSIONS, 5)  # warm-up: the server's threads and 64 envs
    out["sessions_64"] = summary(*concurrent_sessions(url, env_id, SESSIONS, steps_per_session))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps of the one-env measurements")
    parser.add_argument("--steps-per-session", type=int, default=60, help="steps of each of the 64 sessions")
    parser.add_argument("--envs", nargs="*", default=list(ENV_IDS))
    args = parser.parse_args()
    results: dict[str, Any] = {
        "note": "steps_per_second counts every session's steps over the wall time; p50/p99 are of one env.step "
                "call as the caller sees it (a WebSocket round trip for a served env). Server and clients share "
                "the machine's CPUs. Each served measurement follows a short warm-up run.",
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "max_steps": MAX_STEPS, "sessions": SESSIONS, "envs": {}}
    with server_process("--max-sessions", str(2 * SESSIONS)) as (url, _):
        for env_id in args.envs:
            results["envs"][env_id] = measure(url, env_id, args.steps, args.steps_per_session)
            print(env_id, json.dumps(results["envs"][env_id]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
