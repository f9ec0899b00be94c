"""A busy neighbour for the idle-vs-busy benchmarks: another process that keeps one CPU core busy.

``with busy_neighbour():`` starts ``python -c 'while True: pass'`` (not pinned: the scheduler places it, as it
would any other job's process) and kills it on exit. ``SPIN_ENV`` is libgomp's default wait (spin 300,000 times,
then sleep), spelled out so that ``fairgym.threads.configure_threads`` keeps it: the settings before fairgym
chose a passive wait, for a reference arm.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

SPIN_ENV = {"GOMP_SPINCOUNT": "300000"}


@contextlib.contextmanager
def busy_neighbour(settle_s: float = 0.5) -> Iterator[subprocess.Popen]:
    """One process spinning on a core for the duration of the block (started, given ``settle_s``, then killed)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(settle_s)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def ratio(busy: float, idle: float) -> float:
    """Busy throughput as a share of idle throughput (target >= 0.4)."""
    return round(busy / idle, 3) if idle else float("nan")
