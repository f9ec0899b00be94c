"""Episode records: one JSON line per episode, flushed; a torn last line never breaks reading."""

from __future__ import annotations

import json
import math

import pytest

from fairgym.envs import keys, records


def _episode(index: int, reward: float = 1.0) -> dict:
    before = {keys.TURN: 0, keys.GROUP: "A", keys.CHOICES: ["approve", "deny"], keys.CONTEXT: {"score": 600}}
    after = {keys.ACTION_VALID: True, keys.PARSE_ERROR: None, keys.ACTION: {"approve": True},
             keys.OUTCOME: {"approved": True, "rate": float("nan")}}
    step = records.step_record("obs", before, "approve", reward, after, truncated=True)
    return records.episode_record(env_id="fairgym/Lending-v0", env_kwargs={}, seed=index, index=index, agent="x",
                                  groups=["A", "B"], steps=[step])


def test_step_record_joins_decision_and_result_keys():
    step = _episode(0)["steps"][0]
    assert step[keys.GROUP] == "A" and step[keys.CHOICES] == ["approve", "deny"]
    assert step[keys.ACTION] == {"approve": True} and step["action_text"] == "approve" and step["truncated"]


def test_append_and_read_sorted_with_nan_as_null(tmp_path):
    path = tmp_path / "episodes.jsonl"
    for i in (2, 0, 1):
        records.append_episode(path, _episode(i, reward=i))
    episodes = records.read_episodes(path)
    assert [e["index"] for e in episodes] == [0, 1, 2] and [e["return"] for e in episodes] == [0.0, 1.0, 2.0]
    line = path.read_text().splitlines()[0]
    assert json.loads(line)["steps"][0]["outcome"]["rate"] is None and "NaN" not in line
    assert not math.isnan(episodes[0]["return"])


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "episodes.jsonl"
    records.append_episode(path, _episode(0))
    with open(path, "a") as fh:
        fh.write(records.dumps(_episode(1))[:40])  # a crash mid-write
    with pytest.warns(records.RecordWarning, match=r"episodes.jsonl, line 2: torn last line"):
        assert [e["index"] for e in records.read_episodes(path)] == [0]
    assert records.read_episodes(tmp_path / "missing.jsonl") == []
