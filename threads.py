"""CPU threads for torch: how many, and how they wait, chosen once before torch is imported.

torch's OpenMP threads split every op (a matmul, a layer norm) between them and meet at a barrier after it. By
default a thread that reaches the barrier first spins (libgomp spins ~300,000 times, then sleeps). When another
process holds one of the cores, the thread sharing that core is preempted, and its partner spins on the other
core, which therefore never goes idle, so the scheduler never moves the preempted thread over: every op waits a
scheduler time slice. A model of a few hundred small ops per forward pass then runs ~20x slower, where a fair
share of the CPU would cost at most ~2x. Waiting passively (``OMP_WAIT_POLICY=PASSIVE``: sleep at once) frees
the core for the preempted thread and keeps the slowdown near the neighbour's share.

``configure_threads()`` runs when ``fairgym`` is imported (``fairgym/__init__.py``, before any fairgym module
imports torch), so a script or notebook gets what the CLI gets, and again first in every entry point (``fairgym``
CLI: run, train, sweep, report; the benchmarks). It only fills what the user left unset: ``OMP_WAIT_POLICY`` (unless
``GOMP_SPINCOUNT`` already says how to wait), ``KMP_BLOCKTIME`` (the same for Intel's OpenMP), and
``OMP_NUM_THREADS`` = the CPUs this process may run on (``os.sched_getaffinity``, capped by a cgroup CPU quota,
divided among the processes of a distributed launch on this node). OpenMP reads these when torch loads it, so a
process that imported torch before the call keeps its wait policy: then only the safe subset applies
(``torch.set_num_threads``, lowered to the usable CPUs, never raised) and importing fairgym logs a one-line note
saying how to get the passive wait.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

WAIT_POLICY_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
USER_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
_filled: set[str] = set()  # variables fairgym itself set in this process (not the user's)


@dataclass(frozen=True)
class ThreadSettings:
    """What ``configure_threads`` chose.

    Attributes:
        threads: torch intra-op threads (``OMP_NUM_THREADS``).
        wait_policy: ``OMP_WAIT_POLICY`` in effect (``None`` when ``GOMP_SPINCOUNT`` decides instead).
        set_by_user: the variables the user had set, which were kept as they were.
        torch_was_loaded: torch was imported before the call (its wait policy could not change any more).
    """

    threads: int
    wait_policy: str | None
    set_by_user: tuple[str, ...]
    torch_was_loaded: bool


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota when there is one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def cgroup_cpu_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs' worth of time the cgroup may use (``cpu.max`` = "quota period"), or ``None`` when unlimited."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def default_threads() -> int:
    """``usable_cpus()`` shared among the processes a distributed launch runs on this node."""
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("LOCAL_SIZE") or 1)
    return max(1, usable_cpus() // max(1, local_processes))


def _thread_count(value: str) -> int | None:
    """The outer level of an ``OMP_NUM_THREADS`` value (``"4"`` or ``"4,2"``), or ``None`` when it is not one."""
    first = value.split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def configure_threads() -> ThreadSettings:
    """Set torch's thread count and OpenMP wait policy (user settings win); call before importing torch.

    Calling it again changes nothing: what an earlier call set counts as fairgym's, not the user's. When torch is
    already loaded only its thread count can change, and only downwards (a count the user chose stays).
    """
    user = tuple(k for k in USER_VARIABLES if os.environ.get(k) and k not in _filled)
    defaults = dict(WAIT_POLICY_DEFAULTS)
    if "GOMP_SPINCOUNT" in user:  # an explicit spin count already says how libgomp waits
        defaults.pop("OMP_WAIT_POLICY")
    threads = _thread_count(os.environ.get("OMP_NUM_THREADS", ""))
    if threads is None:
        threads = default_threads()
        defaults["OMP_NUM_THREADS"] = str(threads)
    for name, value in defaults.items():
        if not os.environ.get(name):
            os.environ[name] = value
            _filled.add(name)
    loaded = "torch" in sys.modules
    if loaded and sys.modules["torch"].get_num_threads() > threads:
        sys.modules["torch"].set_num_threads(threads)
    return ThreadSettings(threads=threads, wait_policy=os.environ.get("OMP_WAIT_POLICY"), set_by_user=user,
                          torch_was_loaded=loaded)


def late_import_note(settings: ThreadSettings) -> str | None:
    """One line for a process that loaded torch before fairgym without choosing a wait policy, else ``None``."""
    chose_wait = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"} & set(settings.set_by_user)
    if not settings.torch_was_loaded or chose_wait:
        return None
    return (f"fairgym: torch was imported before fairgym, so OpenMP keeps its busy wait (up to ~20x slower on a "
            f"shared CPU); import fairgym before torch, or set OMP_WAIT_POLICY=PASSIVE before starting Python "
            f"(torch threads: {settings.threads}).")


def configure_on_import() -> ThreadSettings:
    """``configure_threads()`` for ``import fairgym``; logs ``late_import_note`` (logger ``fairgym.threads``)."""
    settings = configure_threads()
    note = late_import_note(settings)
    if note:
        logging.getLogger(__name__).warning(note)
    return settings
