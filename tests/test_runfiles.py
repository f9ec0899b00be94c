"""Run folders: file names spelled in one module, one NaN-safe JSON conversion, atomic writes, arm names."""

from __future__ import annotations

import ast
import json
import math
import pathlib

import numpy as np
import pytest

from fairgym import runfiles
from fairgym.analysis.metrics import read_metrics, write_metrics
from fairgym.envs import keys, records

ROOT = pathlib.Path(runfiles.__file__).resolve().parent
FILE_NAMES = {value for name, value in vars(runfiles).items() if name.endswith("_FILE")}


def _string_constants(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


@pytest.mark.parametrize("path", sorted(p for p in ROOT.rglob("*.py") if "tests" not in p.relative_to(ROOT).parts
                                        and p.name != "runfiles.py" and ".venv" not in p.parts),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_run_folder_file_names_are_spelled_only_in_runfiles(path):
    spelled = FILE_NAMES & _string_constants(path)
    assert not spelled, f"{path.relative_to(ROOT)} spells {sorted(spelled)}; import the name from fairgym.runfiles"


def test_json_safe_turns_nan_inf_and_numpy_into_plain_json():
    data = {"nan": float("nan"), "inf": float("inf"), "np": np.float32(0.5), "arr": np.array([1, 2]),
            "nested": [(1, float("-inf"))], 3: None}
    assert runfiles.json_safe(data) == {"nan": None, "inf": None, "np": 0.5, "arr": [1, 2], "nested": [[1, None]],
                                        "3": None}


def test_write_json_is_atomic_and_standard(tmp_path):
    path = runfiles.write_json(tmp_path / "sub" / "status.json", {"x": float("nan"), "y": 1})
    assert json.loads(path.read_text()) == {"x": None, "y": 1}
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary file left behind
    assert runfiles.read_json(tmp_path / "missing.json", {"state": "pending"}) == {"state": "pending"}


def test_records_and_metrics_write_inf_as_null(tmp_path):
    line = records.dumps({"index": 0, "steps": [{"reward": float("inf")}]})
    assert json.loads(line)["steps"][0]["reward"] is None
    write_metrics(tmp_path / "metrics.json", {"task/return_mean": float("inf"), "fairness/x": float("nan")})
    assert all(math.isnan(v) for v in read_metrics(tmp_path / "metrics.json").values())


@pytest.mark.parametrize("label,seed", [("lora-r8", 0), ("dora-r16", 12), ("full", 3), ("base", None)])
def test_arm_label_inverts_arm_name(label, seed):
    assert runfiles.arm_label(runfiles.arm_name(label, seed), seed) == label


def test_step_info_inverts_step_record():
    before = {keys.TURN: 2, keys.GROUP: "A", keys.CHOICES: ["approve", "deny"], keys.CONTEXT: {"score": 600},
              keys.MESSAGES: [{"role": "user", "content": "hi"}]}
    after = {keys.ACTION_VALID: True, keys.PARSE_ERROR: None, keys.ACTION: {"approve": True}, keys.OUTCOME: {}}
    assert records.step_info(records.step_record("obs", before, "approve", 1.0, after)) == before


def test_episode_infos_are_what_the_agent_saw():
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes

    episode = run_episodes("fairgym/Lending-v0", make_agent("random"), episodes=1, env_kwargs={"max_steps": 4},
                           progress=False)[0]
    infos = records.episode_infos(episode)
    assert len(infos) == 4 and infos[0]["outcome"] is None and infos[0]["action_valid"] is True
    for info, step, before in zip(infos[1:], episode["steps"][1:], episode["steps"][:-1], strict=True):
        assert info["turn"] == step["turn"] and info["outcome"] == before["outcome"]  # the previous step's result
