"""Example rollouts per env: a few episodes of the scripted fair oracle in fairgym's record format, with metrics.

A reference for users of the env hubs (NeMo Gym ships an ``example_rollouts.jsonl`` per environment): what a
record holds (every step's observation, action text, reward, flags and ``info``) and what ``compute_metrics``
makes of it. Writes ``examples/rollouts/<Name>-v<N>/example_rollouts.jsonl`` (one episode per line, as
``episodes.jsonl``) and ``metrics.json`` for every registered env. Deterministic: a rerun writes the same files.
With ``--env-url`` the episodes are played on a served env (``fairgym serve``); the records are the same.

Usage:
    python examples/rollouts.py [--episodes 4] [--seed 0] [--agent fair-oracle] [--env-url URL]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fairgym.agents import make_agent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.metrics import compute_metrics, write_metrics
from fairgym.envs import ENV_IDS, records
from fairgym.runfiles import METRICS_FILE

OUT = Path(__file__).resolve().parent / "rollouts"
ROLLOUTS_FILE = "example_rollouts.jsonl"


def write_examples(env_id: str, agent: str, episodes: int, seed: int, env_url: str | None, out: Path) -> Path:
    """Run the episodes and write ``<out>/<env name>/{example_rollouts.jsonl, metrics.json}``; returns the folder."""
    folder = out / env_id.split("/")[-1]
    folder.mkdir(parents=True, exist_ok=True)
    played = run_episodes(env_id, make_agent(agent), episodes=episodes, seed=seed, progress=False, env_url=env_url)
    (folder / ROLLOUTS_FILE).write_text("".join(records.dumps(e) + "\n" for e in played))
    write_metrics(folder / METRICS_FILE, compute_metrics(played))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent", default="fair-oracle", help="a baseline that applies to every env")
    parser.add_argument("--env-url", default=None, help="play on this fairgym serve URL instead of in process")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for env_id in ENV_IDS:
        folder = write_examples(env_id, args.agent, args.episodes, args.seed, args.env_url, args.out)
        print(f"{env_id}: {args.episodes} episodes of {args.agent} -> {folder}")


if __name__ == "__main__":
    main()
