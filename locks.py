"""One writer per folder: an exclusive OS lock on a run, sweep or training folder for a writer's whole life.

``fairgym run`` (``fairgym.agents.runs.execute``), ``fairgym train`` (``fairgym.training.train``) and ``fairgym
sweep`` (``fairgym.training.sweep.run_sweep``) hold ``folder_lock(folder)`` on the folder they write. The lock is
``fcntl.flock`` on ``<folder>/.fairgym.lock`` (``LOCK_FILE``, removed when the writer ends): the kernel drops the
lock when its process ends in any way, ``kill -9`` included, so a lock is never stale and the next command simply
takes it over and resumes. The file's text (pid, host, start time, command) only names the holder in the refusal;
the lock itself is the truth. A
second writer is refused at once with ``FolderBusyError``, having written nothing (it opens the existing file
without truncating it). Readers (``fairgym report``, ``fairgym sweep --report-only``) never lock.

Locks are per folder and reentrant within a process. A sweep holds its own folder while its arms train into
subfolders of it, each training holding the lock of its own subfolder: different files, so the nested writers
never wait on each other, and a folder locked twice by one process (a script calling ``execute`` inside its own
``folder_lock``) is counted, not refused. Per folder rather than per tree keeps Ray or ``accelerate`` workers of
one sweep free to lock the arm folders they write from other processes.

``filelock`` is not used: it opens the lock file with ``O_TRUNC`` on every attempt, which would erase the holder's
name that a refused command reads. ``flock`` works on local disks and on NFS (Linux emulates it with NFS locks); a
file system without locks (Lustre mounted without ``flock``) gets a warning and no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from fairgym.runfiles import LOCK_FILE

_GUARD = threading.Lock()
_HELD: set[str] = set()  # the folders (resolved) this process holds
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock; the message names it (pid, host, start time, command)."""


def holder_text() -> str:
    """What this process writes into a lock file it holds: pid, host, start time and command, as JSON."""
    program = Path(sys.argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name  # `python -m fairgym`: fairgym
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                       "command": shlex.join([name, *sys.argv[1:]])[:200]})


def describe_holder(text: str) -> str:
    """A lock file's text as words: ``pid 12 on node1, started 2025-06-01 10:00:00 UTC (`fairgym run ...`)``."""
    try:
        holder = json.loads(text)
        return (f"pid {holder['pid']} on {holder['host']}, started {holder['started']} "
                f"(`{holder.get('command', '?')}`)")
    except (ValueError, KeyError, TypeError):
        return "a process that is still starting (its name is not written yet)"


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace")


def _open_locked(folder: Path) -> int | None:
    """Open and lock ``folder/LOCK_FILE`` (``None`` where the file system has no locks).

    Raises:
        FolderBusyError: another process holds it.
    """
    path = folder / LOCK_FILE
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(_read(fd))
            os.close(fd)
            raise FolderBusyError(f"{folder} is being written by another fairgym command: {holder}. Wait for it "
                                  "to finish or stop it (a rerun then resumes), or write to another folder.") from None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in NO_LOCKS:
                raise
            warnings.warn(f"{folder}: this file system has no file locks ({exc.strerror}); nothing stops a second "
                          "command from writing this folder at the same time.", RuntimeWarning, stacklevel=3)
            return None
        # A holder that cleaned up an empty folder may have unlinked the file between our open and lock: retry.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, holder_text().encode())
    return fd


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created when missing) for the ``with`` block; yields the folder.

    The lock file goes when the block ends (one left by a killed holder is taken over); a folder this call created
    is removed again when the block fails having written nothing into it.

    Raises:
        FolderBusyError: another process writes ``folder``; nothing was written.
    """
    folder = Path(folder)
    key = str(folder.resolve())
    with _GUARD:
        reentered = key in _HELD
    if reentered:  # this process holds it already, in an outer block that releases it
        yield folder
        return
    created = not folder.exists()
    fd = _open_locked(folder)
    with _GUARD:
        _HELD.add(key)
    failed = True
    try:
        yield folder
        failed = False
    finally:
        with _GUARD:
            _HELD.discard(key)
        if fd is not None:
            _release(folder, fd, remove_folder=created and failed)


def _release(folder: Path, fd: int, remove_folder: bool) -> None:
    """Remove the lock file while still holding it (a waiter that opened it retries on the new one), remove the
    folder too when this lock created it and the writer failed leaving it empty (bad input writes nothing), then
    close: the last descriptor's close releases the lock."""
    try:
        (folder / LOCK_FILE).unlink(missing_ok=True)
        if remove_folder and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:  # the folder went meanwhile (removed by hand): nothing left to tidy
        pass
    finally:
        os.close(fd)
