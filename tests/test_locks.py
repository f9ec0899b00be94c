"""One writer per folder: the lock refuses a second process naming the holder, dies with its holder (kill -9),
is reentrant within a process, and leaves no folder behind when the writer fails having written nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fairgym.locks import FolderBusyError, folder_lock
from fairgym.runfiles import LOCK_FILE

HOLD = ("import sys, time\nfrom fairgym.locks import folder_lock\nwith folder_lock(sys.argv[1]):\n"
        "    print('held', flush=True)\n    time.sleep(120)\n")


def hold_in_another_process(folder: Path) -> subprocess.Popen:
    """A process that takes ``folder``'s lock and sleeps; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def holder(tmp_path):
    proc = hold_in_another_process(tmp_path / "run")
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_process_is_refused_naming_the_holder_and_writes_nothing(tmp_path, holder):
    folder = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(FolderBusyError) as caught, folder_lock(folder):
        pass
    message = str(caught.value)
    assert f"pid {holder.pid} on {socket.gethostname()}, started " in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_kill_9_releases_the_lock_and_the_next_writer_takes_over(tmp_path, holder):
    folder = tmp_path / "run"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (folder / LOCK_FILE).exists()  # a killed holder leaves its file; the lock itself is gone with it
    with folder_lock(folder):
        assert f'"pid": {os.getpid()}' in (folder / LOCK_FILE).read_text()
    assert not (folder / LOCK_FILE).exists()


def test_reentrant_within_a_process_and_per_folder_for_nested_folders(tmp_path):
    with folder_lock(tmp_path / "sweep"), folder_lock(tmp_path / "sweep" / "arm" / "train"):
        with folder_lock(tmp_path / "sweep"):  # the same folder again: counted, not refused
            pass
        assert (tmp_path / "sweep" / LOCK_FILE).exists() and (tmp_path / "sweep" / "arm" / "train" / LOCK_FILE).exists()
    assert not list(tmp_path.rglob(LOCK_FILE))


def test_a_failed_writer_removes_the_folder_it_created_only_when_empty(tmp_path):
    with pytest.raises(ValueError), folder_lock(tmp_path / "new"):
        raise ValueError("bad input")
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError), folder_lock(tmp_path / "kept") as folder:
        (folder / "episodes.jsonl").write_text("{}\n")
        raise ValueError("crash after writing")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["episodes.jsonl"]
