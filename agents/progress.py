"""Progress of a run that reaches a log, and the run's counters kept across invocations.

On a terminal the runner shows a tqdm bar. Elsewhere (``nohup``, Slurm, CI: stderr is a file or a pipe) a bar
would print nothing useful, so :class:`LogProgress` writes a plain line every ``every`` seconds instead: episodes
done of the total, steps this invocation, the rate and an ETA, and one line at the end. A resumed run says first
how many episodes it found and how many it adds (:func:`resume_line`).

``run_stats.json`` keeps totals over every invocation of a run folder and lists each invocation's own counts
(:func:`merge_run_stats`), so resuming a run to 10 episodes no longer leaves ``"episodes_run": 2`` behind.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import Any, TextIO

PROGRESS_EVERY = 15.0  # seconds between log lines when stderr is not a terminal


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _rate(per_second: float) -> str:
    """Episodes per second, minute or hour, whichever reads as a number of at least 1."""
    for unit, scale in (("s", 1), ("min", 60), ("h", 3600)):
        if per_second * scale >= 1 or unit == "h":
            return f"{per_second * scale:.3g} episodes/{unit}"
    return ""


def resume_line(label: str, found: int, adding: int) -> str:
    """``"<label>: resuming: found 2 episodes in episodes.jsonl, adding 8 (to 10)"``."""
    return (f"{label}: resuming: found {found} episode{'s' * (found != 1)} in episodes.jsonl, adding {adding} "
            f"(to {found + adding})")


class LogProgress:
    """Plain progress lines for a log: at most one every ``every`` seconds, and one when closed.

    Args:
        label: what runs (``"llm on fairgym/Lending-v0"``).
        total: episodes the run will hold when done (recorded and new).
        initial: episodes already recorded before this invocation.
        every: seconds between lines.
        max_steps: steps per episode at most (the env's ``max_steps``): before any episode ends, the ETA is the
            bound it gives (episodes may end sooner).
        stream: where lines go (default ``sys.stderr``, read when a line is written).
        clock: the time source (``time.monotonic``; tests pass their own).
    """

    def __init__(self, label: str, total: int, initial: int = 0, *, every: float = PROGRESS_EVERY,
                 max_steps: int | None = None, stream: TextIO | None = None, clock: Any = time.monotonic) -> None:
        self.label, self.total, self.initial, self.every = label, total, initial, every
        self.max_steps = max_steps
        self.stream, self.clock = stream, clock
        self.done, self.steps, self.lines = initial, 0, 0
        self.started = self.last = clock()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, episodes: int = 1) -> None:
        """``episodes`` more finished; writes a line when ``every`` seconds passed since the last."""
        self.done += episodes
        self._maybe_write()

    def add_steps(self, steps: int) -> None:
        """``steps`` more env steps taken (episodes may be long: a line can come before any episode ends)."""
        self.steps += steps
        self._maybe_write()

    def line(self) -> str:
        """The current progress as one line."""
        elapsed = self.clock() - self.started
        added = self.done - self.initial
        parts = [f"{self.label}: {self.done}/{self.total} episodes", f"{self.steps} steps in {_duration(elapsed)}"]
        if added and elapsed > 0:
            rate = added / elapsed
            parts.append(_rate(rate))
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        elif self.done < self.total and elapsed > 0 and self.steps:
            step_rate = self.steps / elapsed
            parts.append(f"{step_rate:.3g} steps/s")
            if self.max_steps:  # no episode has ended: the most steps left bounds the time left
                left = max(0, (self.total - self.initial) * self.max_steps - self.steps)
                parts.append(f"ETA at most {_duration(left / step_rate)}")
        return ", ".join(parts)

    def _maybe_write(self) -> None:
        if self.clock() - self.last >= self.every:
            self._write(self.line())

    def _write(self, text: str) -> None:
        self.last = self.clock()
        self.lines += 1
        print(text, file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        """The last line (what this invocation added, how long it took), unless the run was over before the first
        progress line was due: a run of a few seconds stays quiet."""
        if not self.lines and self.clock() - self.started < self.every:
            return
        added = self.done - self.initial
        self._write(f"{self.label}: done, {self.done}/{self.total} episodes ({added} added, {self.steps} steps, "
                    f"{_duration(self.clock() - self.started)})")


def _add(total: Any, value: Any) -> Any:
    """Counters summed: numbers add, dicts add key by key, anything else keeps the latest value."""
    if isinstance(total, dict) and isinstance(value, dict):
        return {k: _add(total.get(k), v) for k, v in value.items()} | {k: v for k, v in total.items()
                                                                        if k not in value}
    if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(total, (int, float)):
        return total + value
    return value


def invocation_stats(found: int, episodes: int, steps: int, seconds: float, agent: dict[str, Any]) -> dict[str, Any]:
    """One invocation's counts: episodes found before it and run by it, steps, seconds and the agent's counters."""
    return {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "episodes_found": found,
            "episodes_run": episodes, "steps_run": steps, "wall_seconds": round(seconds, 4),
            "steps_per_second": round(steps / seconds, 2) if seconds > 0 else None, "agent": agent}


def merge_run_stats(previous: dict[str, Any] | None, invocation: dict[str, Any]) -> dict[str, Any]:
    """``run_stats.json`` after one more invocation: totals over every invocation, then their list.

    A file written before fairgym kept the list (one invocation's counts at the top level) counts as one earlier
    invocation.
    """
    earlier = list((previous or {}).get("invocations") or [])
    if previous and not earlier and "episodes_run" in previous:
        earlier = [{k: previous[k] for k in ("episodes_run", "steps_run", "wall_seconds", "agent") if k in previous}]
    invocations = [*earlier, invocation]
    totals: dict[str, Any] = {"episodes_run": 0, "steps_run": 0, "wall_seconds": 0.0, "agent": {}}
    for entry in invocations:
        totals = {k: _add(totals[k], entry.get(k, type(totals[k])())) for k in totals}
    seconds = totals["wall_seconds"]
    totals["wall_seconds"] = round(seconds, 4)
    totals["steps_per_second"] = round(totals["steps_run"] / seconds, 2) if seconds > 0 else None
    return {**totals, "invocations": invocations}
