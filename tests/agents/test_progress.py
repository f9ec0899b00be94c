"""Progress that reaches a log (plain lines when stderr is not a terminal), the resume line, and run_stats.json
keeping totals over invocations with each invocation's counts."""

from __future__ import annotations

import io
import json

from fairgym.agents import make_agent
from fairgym.agents.progress import LogProgress, merge_run_stats, resume_line
from fairgym.agents.runner import run_episodes
from fairgym.runfiles import RUN_STATS_FILE

LENDING = "fairgym/Lending-v0"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_n_seconds_with_episodes_rate_and_eta():
    clock, stream = Clock(), io.StringIO()
    progress = LogProgress("llm on fairgym/Dialogue-v0", total=20, initial=0, every=30, stream=stream, clock=clock)
    clock.now = 10
    progress.add_steps(8)
    assert stream.getvalue() == ""  # not yet due
    clock.now = 40
    progress.update(4)
    line = stream.getvalue().strip()
    assert line == "llm on fairgym/Dialogue-v0: 4/20 episodes, 8 steps in 40 s, 6 episodes/min, ETA 2 min 40 s"
    clock.now = 50
    progress.update(1)
    assert len(stream.getvalue().splitlines()) == 1  # the next line waits another 30 s
    clock.now = 200
    progress.update(15)
    progress.close()
    assert stream.getvalue().splitlines()[-1] == ("llm on fairgym/Dialogue-v0: done, 20/20 episodes (20 added, "
                                                  "8 steps, 3 min 20 s)")


def test_long_episodes_report_steps_and_a_bounded_eta_before_the_first_episode_ends():
    clock, stream = Clock(), io.StringIO()
    progress = LogProgress("x", total=4, every=15, max_steps=20, stream=stream, clock=clock)
    clock.now = 20
    progress.add_steps(40)  # 80 steps at most, 40 left at 2 steps/s
    assert stream.getvalue().strip() == "x: 0/4 episodes, 40 steps in 20 s, 2 steps/s, ETA at most 20 s"
    quiet = io.StringIO()
    unbounded = LogProgress("x", total=4, every=15, stream=quiet, clock=clock)
    clock.now = 40
    unbounded.add_steps(40)
    assert quiet.getvalue().strip() == "x: 0/4 episodes, 40 steps in 20 s, 2 steps/s"


def test_a_short_run_stays_quiet():
    clock, stream = Clock(), io.StringIO()
    with LogProgress("x", total=4, every=15, stream=stream, clock=clock) as progress:
        clock.now = 2
        progress.update(4)
    assert stream.getvalue() == ""


def test_runner_writes_progress_and_the_resume_line_to_a_log(tmp_path, capsys):
    """Under pytest stderr is not a terminal: the runner writes plain lines, as under nohup or Slurm."""
    kwargs = {"seed": 3, "env_kwargs": {"max_steps": 4}, "num_envs": 2, "out_dir": tmp_path, "progress_every": 0}
    run_episodes(LENDING, make_agent("random"), episodes=2, **kwargs)
    first = capsys.readouterr().err.splitlines()
    assert first[-1].startswith("random on fairgym/Lending-v0: done, 2/2 episodes (2 added, 8 steps")
    assert not any("resuming" in line for line in first)
    run_episodes(LENDING, make_agent("random"), episodes=5, **kwargs)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"random on fairgym/Lending-v0 ({tmp_path}): resuming: found 2 episodes in episodes.jsonl, " \
                     "adding 3 (to 5)"
    assert any(line.startswith("random on fairgym/Lending-v0: 2/5 episodes") for line in err)
    assert err[-1].startswith("random on fairgym/Lending-v0: done, 5/5 episodes (3 added")


def test_progress_false_is_silent(tmp_path, capsys):
    run_episodes(LENDING, make_agent("random"), episodes=2, env_kwargs={"max_steps": 2}, out_dir=tmp_path,
                 progress=False, progress_every=0)
    run_episodes(LENDING, make_agent("random"), episodes=3, env_kwargs={"max_steps": 2}, out_dir=tmp_path,
                 progress=False, progress_every=0)
    assert capsys.readouterr().err == ""


def test_run_stats_keep_totals_over_invocations(tmp_path):
    kwargs = {"env_kwargs": {"max_steps": 4}, "out_dir": tmp_path, "progress": False}
    run_episodes(LENDING, make_agent("random"), episodes=2, **kwargs)
    run_episodes(LENDING, make_agent("random"), episodes=10, **kwargs)
    run_episodes(LENDING, make_agent("random"), episodes=10, **kwargs)  # finished: adds nothing
    stats = json.loads((tmp_path / RUN_STATS_FILE).read_text())
    assert stats["episodes_run"] == 10 and stats["steps_run"] == 40 == stats["agent"]["decisions"]
    assert [i["episodes_run"] for i in stats["invocations"]] == [2, 8, 0]
    assert [i["episodes_found"] for i in stats["invocations"]] == [0, 2, 10]
    assert [i["agent"]["decisions"] for i in stats["invocations"]] == [8, 32, 0]
    assert stats["wall_seconds"] >= max(i["wall_seconds"] for i in stats["invocations"])


def test_run_stats_written_before_the_list_count_as_one_invocation():
    old = {"episodes_run": 2, "steps_run": 8, "wall_seconds": 1.0, "steps_per_second": 8.0,
           "agent": {"calls": 4, "decisions": 8, "extra": {"new_tokens": 3}}}
    new = {"episodes_found": 2, "episodes_run": 8, "steps_run": 32, "wall_seconds": 3.0,
           "agent": {"calls": 16, "decisions": 32, "extra": {"new_tokens": 5}}}
    merged = merge_run_stats(old, new)
    assert merged["episodes_run"] == 10 and merged["steps_run"] == 40 and merged["steps_per_second"] == 10.0
    assert merged["agent"] == {"calls": 20, "decisions": 40, "extra": {"new_tokens": 8}}
    assert [i["episodes_run"] for i in merged["invocations"]] == [2, 8]


def test_resume_line():
    assert resume_line("x", 1, 4) == "x: resuming: found 1 episode in episodes.jsonl, adding 4 (to 5)"
