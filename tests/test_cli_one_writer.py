"""Two ``fairgym run`` commands on one folder: the second is refused at once naming the first, which finishes with
its records intact; after ``kill -9`` of a writer the next command takes the folder over and resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fairgym.envs import records
from fairgym.runfiles import EPISODES_FILE, LOCK_FILE, RUN_STATS_FILE


def command(out: Path, episodes: int) -> list[str]:
    return [sys.executable, "-m", "fairgym", "run", "--agent", "random", "--episodes", str(episodes),
            "--env-opt", "max_steps=20", "--num-envs", "2", "--out", str(out), "--no-wandb"]


def run(out: Path, episodes: int) -> subprocess.CompletedProcess:
    return subprocess.run(command(out, episodes), capture_output=True, text=True,
                          env={**os.environ, "WANDB_MODE": "disabled"}, timeout=300)


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def stopped_writer(out: Path, episodes: int) -> subprocess.Popen:
    """A ``fairgym run`` that holds ``out`` and has recorded an episode, stopped (SIGSTOP) so it stays mid-run."""
    proc = subprocess.Popen(command(out, episodes), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    deadline = time.monotonic() + 120
    while complete_lines(out / EPISODES_FILE) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None, "the writer finished before it could be paused: give it more episodes"
    return proc


def test_second_run_on_a_folder_is_refused_and_the_first_keeps_its_records(tmp_path):
    out = tmp_path / "r"
    first = stopped_writer(out, episodes=300)
    try:
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        second = run(out, episodes=300)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the refused command wrote nothing
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2 and second.stdout == ""
    (line,) = second.stderr.splitlines()
    assert line.startswith(f"fairgym run: error: {out} is being written by another fairgym command: pid {first.pid} "
                           f"on {socket.gethostname()}, started ")
    indices = [json.loads(row)["index"] for row in (out / EPISODES_FILE).read_text().splitlines()]
    assert sorted(indices) == list(range(300))  # every episode once
    assert not (out / LOCK_FILE).exists()


def test_after_kill_9_the_next_run_resumes(tmp_path):
    out = tmp_path / "r"
    writer = stopped_writer(out, episodes=5000)
    recorded = complete_lines(out / EPISODES_FILE)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert (out / LOCK_FILE).exists()  # left by the killed writer, whose lock died with it
    resumed = run(out, episodes=recorded + 3)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / RUN_STATS_FILE).read_text())["episodes_run"] == 3  # resumed, not restarted
    indices = [json.loads(row)["index"] for row in (out / EPISODES_FILE).read_text().splitlines()]
    assert sorted(indices) == list(range(recorded + 3))
    assert len(records.read_episodes(out / EPISODES_FILE)) == recorded + 3 and not (out / LOCK_FILE).exists()
