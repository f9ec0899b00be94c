"""Damaged record files name what is wrong: a torn last line is skipped with a warning naming file and line, a
damaged line before it and an episode recorded twice with different contents are errors naming them, and episodes
recorded twice alike are read once with a warning. ``fairgym report`` prints each in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fairgym.commands import main
from fairgym.envs import records
from fairgym.envs.records import RecordWarning
from fairgym.runfiles import EPISODES_FILE


@pytest.fixture
def run_dir(tmp_path):
    """A real run folder of 4 short episodes."""
    out = tmp_path / "run"
    assert main(["run", "--agent", "random", "--episodes", "4", "--env-opt", "max_steps=3", "--out", str(out),
                 "--no-wandb"]) == 0
    return out


def lines(run_dir) -> list[str]:
    return (run_dir / EPISODES_FILE).read_text().splitlines(keepends=True)


def write(run_dir, rows: list[str]) -> None:
    (run_dir / EPISODES_FILE).write_text("".join(rows))


def test_a_torn_last_line_is_skipped_with_a_warning_naming_file_and_line(run_dir):
    rows = lines(run_dir)
    write(run_dir, [*rows[:3], rows[3][:50]])
    with pytest.warns(RecordWarning, match=rf"{run_dir / EPISODES_FILE}, line 4: torn last line"):
        assert [e["index"] for e in records.read_episodes(run_dir / EPISODES_FILE)] == [0, 1, 2]


def test_fairgym_report_prints_the_torn_line_warning_in_one_line_and_reports(run_dir):
    rows = lines(run_dir)
    write(run_dir, [*rows[:3], rows[3][:50]])
    result = subprocess.run([sys.executable, "-m", "fairgym", "report", str(run_dir)], capture_output=True,
                            text=True, env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr
    assert (f"fairgym report: warning: {run_dir / EPISODES_FILE}, line 4: torn last line (a write cut short, e.g. "
            "by a crash), skipped") in result.stderr
    assert "- episodes: 3 (seeds 0..2)" in (run_dir / "report.md").read_text()


def test_a_damaged_line_before_the_last_is_an_error_naming_file_and_line(run_dir, capsys):
    rows = lines(run_dir)
    write(run_dir, [rows[0], rows[1][:50] + "\n", *rows[2:]])
    with pytest.raises(ValueError, match=rf"{run_dir / EPISODES_FILE}, line 2: not a JSON record \("):
        records.read_episodes(run_dir / EPISODES_FILE)
    assert main(["report", str(run_dir)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"fairgym report: error: {run_dir / EPISODES_FILE}, line 2: not a JSON record")


def test_episodes_recorded_twice_alike_are_read_once_with_a_warning(run_dir):
    rows = lines(run_dir)
    write(run_dir, [*rows, *rows[1:3]])
    with pytest.warns(RecordWarning, match=r"records episodes 1, 2 twice with identical contents \(2 extra lines"):
        assert [e["index"] for e in records.read_episodes(run_dir / EPISODES_FILE)] == [0, 1, 2, 3]
    with pytest.warns(RecordWarning):
        assert main(["report", str(run_dir)]) == 0  # the report's duplicate-label failure is gone


def test_an_episode_recorded_twice_differently_is_an_error_naming_it(run_dir, capsys):
    rows = lines(run_dir)
    write(run_dir, [*rows, rows[2].replace('"agent": "random"', '"agent": "other"')])
    with pytest.raises(ValueError, match=r"records episode 2 more than once with different contents \(episode 2: "
                                         r"lines 3 and 5\)"):
        records.read_episodes(run_dir / EPISODES_FILE)
    assert main(["report", str(run_dir)]) == 2
    assert capsys.readouterr().err.startswith(f"fairgym report: error: {run_dir / EPISODES_FILE} records episode 2 ")


def test_resume_refuses_differing_duplicates_before_running(run_dir, capsys):
    rows = lines(run_dir)
    write(run_dir, [*rows, rows[0].replace('"agent": "random"', '"agent": "other"')])
    before = (run_dir / EPISODES_FILE).read_bytes()
    assert main(["run", "--agent", "random", "--episodes", "6", "--env-opt", "max_steps=3", "--out", str(run_dir),
                 "--no-wandb"]) == 2
    assert "records episode 0 more than once" in capsys.readouterr().err
    assert (run_dir / EPISODES_FILE).read_bytes() == before


def test_a_line_that_is_not_an_episode_is_named(tmp_path):
    path = tmp_path / EPISODES_FILE
    path.write_text('{"index": 0}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"line 2: holds a JSON list, not a record"):
        records.read_episodes(path)
    path.write_text('{"index": 0}\n{"seed": 1}\n')
    with pytest.raises(ValueError, match=r"line 2: not an episode record \(no integer 'index'\)"):
        records.read_episodes(path)
