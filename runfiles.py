"""Run folders: the names of the files fairgym writes, and the JSON helpers that write and read them.

One home for the layout that ``fairgym run``, ``fairgym train``, ``fairgym sweep`` and ``fairgym report`` share::

    <run>/config.yaml                  CONFIG_FILE: the resolved config
    <run>/episodes.jsonl               EPISODES_FILE: one record per finished episode (``fairgym.envs.records``)
    <run>/run_stats.json               RUN_STATS_FILE: the agent's counters and throughput
    <run>/metrics.json                 METRICS_FILE
    <train run>/rollouts/step_metrics.jsonl   STEP_METRICS_FILE: whole-episode GRPO's metrics per step
    <run>/report.md, <run>/plots/      REPORT_FILE, PLOTS_DIR
    <sweep>/<arm>/status.json          STATUS_FILE (arm folders are named ``arm_name(label, seed)``)
    <sweep>/<arm>/<Env-vN>/            ``env_folder(env_id)``: one run folder per evaluated env
    <sweep>/diagnostics.json           DIAGNOSTICS_FILE
    <sweep>/residue.json               RESIDUE_FILE: paired residue measures per arm and their calibration
    <sweep>/learning_rates.json        LEARNING_RATES_FILE
    <sweep>/lr-select/<label>/lr-<rate>/heldout.json   HELDOUT_FILE: a learning-rate grid point's held-out loss
    <run, train run or sweep>/.fairgym.lock   LOCK_FILE: its writer's lock and name (``fairgym.locks``)

JSON files hold standard JSON: ``json_safe`` turns nan/inf into null (the one NaN-safe conversion), and
``write_json`` replaces a file atomically, so a crash mid-write never leaves half a file. This module imports no
other fairgym module, so every folder (envs included) can import it without a cycle.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
EPISODES_FILE = "episodes.jsonl"
RUN_STATS_FILE = "run_stats.json"
METRICS_FILE = "metrics.json"
STEP_METRICS_FILE = "step_metrics.jsonl"
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"
STATUS_FILE = "status.json"
DIAGNOSTICS_FILE = "diagnostics.json"
RESIDUE_FILE = "residue.json"
LEARNING_RATES_FILE = "learning_rates.json"
HELDOUT_FILE = "heldout.json"
LOCK_FILE = ".fairgym.lock"


def json_safe(value: Any) -> Any:
    """Plain JSON data: nan/inf -> None, numpy scalars and arrays -> Python, tuples -> lists, dict keys -> str,
    anything else -> its ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``json_safe(data)`` atomically (a temporary file renamed over the target); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(json_safe(data), indent=indent, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_json(path: str | Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def env_folder(env_id: str) -> str:
    """The folder of an env's run inside an arm: ``"fairgym/Lending-v0"`` -> ``"Lending-v0"``."""
    return env_id.split("/")[-1]


def arm_name(label: str, seed: int | None) -> str:
    """An arm's folder name: its label and seed (``lora-r8``, 0 -> ``lora-r8-s0``); unseeded arms keep the label."""
    return label if seed is None else f"{label}-s{seed}"


def arm_label(name: str, seed: int | None) -> str:
    """The inverse of ``arm_name``: the arm without its seed (``lora-r8-s0`` -> ``lora-r8``), the unit that
    intervals over seeds are taken over."""
    return name.rsplit("-s", 1)[0] if seed is not None else name
