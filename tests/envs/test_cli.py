"""``fairgym envs list`` and ``fairgym envs check``."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from fairgym.commands import main
from fairgym.envs import ENV_IDS


def test_list_prints_every_env_with_groups():
    result = subprocess.run([sys.executable, "-m", "fairgym", "envs", "list"], capture_output=True, text=True,
                            check=True)
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(ENV_IDS)
    assert all("groups: Black, white" in line for line in lines)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_ok(env_id, capsys):
    assert main(["envs", "check", env_id, "max_steps=3", "--steps", "4"]) == 0
    assert capsys.readouterr().out.startswith(f"OK {env_id}: check_env passed; 4 rollout steps")


def test_check_unknown_id_exits_2_with_suggestion(capsys):
    assert main(["envs", "check", "fairgym/Lendng-v0"]) == 2
    assert "Did you mean 'fairgym/Lending-v0'" in capsys.readouterr().err


def test_check_reports_a_broken_env(capsys, monkeypatch):
    from fairgym.envs.lending import LendingEnv

    calls = itertools.count()
    monkeypatch.setattr(LendingEnv, "_observation", lambda self: f"call {next(calls)}")  # not seed-determined
    assert main(["envs", "check", "fairgym/Lending-v0"]) == 1
    assert capsys.readouterr().out.startswith("FAIL fairgym/Lending-v0")


def test_check_says_the_rollout_spans_episodes(capsys):
    assert main(["envs", "check", "fairgym/Lending-v0", "max_steps=5"]) == 0
    out = capsys.readouterr().out
    assert "10 rollout steps across 2 episodes (reset when one ended; max_steps=5)" in out
    assert main(["envs", "check", "fairgym/Lending-v0", "max_steps=5", "--steps", "5"]) == 0
    assert "5 rollout steps in one episode" in capsys.readouterr().out
