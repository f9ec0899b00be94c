"""A small sweep folder laid out as ``run_sweep`` writes it, played by scripted agents instead of trained models.

Every arm of a real ``SweepConfig`` plan gets seeded Lending episodes from a baseline agent (``runner``), their
metrics, a ``status.json`` and a diagnostics entry, so the sweep report can be loaded and rendered without any model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fairgym.agents import make_agent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.metrics import compute_metrics, write_metrics
from fairgym.config import from_dict, save_config
from fairgym.runfiles import CONFIG_FILE, DIAGNOSTICS_FILE, METRICS_FILE, env_folder, write_json
from fairgym.training.sweep_arms import plan_arms
from fairgym.training.sweep_config import SweepConfig
from fairgym.training.sweep_folder import write_status

LENDING = "fairgym/Lending-v0"
# arm method -> the scripted agent that plays it (a mix, so the arms differ)
AGENT_OF = {"base": ("constant", {}), "full": ("fair-oracle", {}), "lora": ("max-utility", {})}


def _diagnostics(arm: Any, i: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"kl_vs_base": {"mean": 0.01 * i}, "flip_rate": {"overall": 0.1 / (i + 1)},
                             "logit_lens": {"mean": [0.0, 0.1 * i, 0.2], "group_gap": [0.0, 0.05, 0.01 * i]}}
    if arm.method == "lora":
        entry.update(kl_vs_full={"mean": 0.02 * i}, update={"subspace_share": min(1.0, 0.1 * arm.rank)},
                     intruders={"total": i})
    return entry


def build_sweep(root: Path, *, name: str = "fixture", episodes: int = 3, max_steps: int = 6) -> Path:
    """Write the sweep folder ``root/name`` and return it."""
    config = from_dict(SweepConfig, {"name": name, "ranks": [1, 8], "seeds": [0, 1],
                                     "eval": {"episodes": episodes, "env_kwargs": {LENDING: {"max_steps": max_steps}}},
                                     "diagnostics": {"enabled": False}})
    folder = Path(root) / name
    folder.mkdir(parents=True)
    save_config(config, folder / CONFIG_FILE)
    diagnostics: dict[str, Any] = {"arms": {}, "env_id": LENDING, "choices": ["approve", "deny"], "decisions": 4,
                                   "spectrum": {"0": {"energy_share": {"1": 0.3, "2": 0.5, "8": 0.9}}}}
    for i, arm in enumerate(plan_arms(config)):
        agent_name, kwargs = AGENT_OF[arm.method]
        records = run_episodes(LENDING, make_agent(agent_name, **kwargs), episodes=episodes, seed=config.eval.seed,
                               out_dir=folder / arm.name / env_folder(LENDING),
                               env_kwargs={"max_steps": max_steps}, progress=False)
        metrics = compute_metrics(records)
        write_metrics(folder / arm.name / env_folder(LENDING) / METRICS_FILE, metrics)
        write_json(folder / arm.name / METRICS_FILE, {LENDING: metrics})
        write_status(folder / arm.name, state="done", arm=dataclasses.asdict(arm), seconds=1.0)
        diagnostics["arms"][arm.name] = _diagnostics(arm, i)
    write_json(folder / DIAGNOSTICS_FILE, diagnostics)
    return folder
