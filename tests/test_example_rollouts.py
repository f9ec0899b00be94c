"""The committed example rollouts (examples/rollouts/) are what examples/rollouts.py writes now."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fairgym.envs import ENV_IDS

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "out of date: regenerate with `python examples/rollouts.py` and commit examples/rollouts/"


def load_script():
    spec = importlib.util.spec_from_file_location("example_rollouts", ROOT / "examples" / "rollouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_committed_examples_match_a_fresh_run(env_id, tmp_path):
    script = load_script()
    fresh = script.write_examples(env_id, "fair-oracle", 4, 0, None, tmp_path)
    committed = ROOT / "examples" / "rollouts" / fresh.name
    for name in (script.ROLLOUTS_FILE, script.METRICS_FILE):
        assert (committed / name).exists(), f"{committed / name} is missing; {REGENERATE}"
        if name.endswith(".jsonl"):
            ours = [json.loads(line) for line in (committed / name).read_text().splitlines()]
            theirs = [json.loads(line) for line in (fresh / name).read_text().splitlines()]
        else:
            ours, theirs = json.loads((committed / name).read_text()), json.loads((fresh / name).read_text())
        assert ours == theirs, f"{committed / name} {REGENERATE}"
    episodes = [json.loads(line) for line in (committed / script.ROLLOUTS_FILE).read_text().splitlines()]
    assert [e["seed"] for e in episodes] == [0, 1, 2, 3] and all(e["env_id"] == env_id for e in episodes)
