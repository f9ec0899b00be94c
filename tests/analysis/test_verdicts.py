"""Flags beside the numbers: a collapsed policy (one rule for run and sweep reports), groups with too few
decisions, and the counts in the per-group tables."""

from __future__ import annotations

import math

import pytest
from record_builders import DIALOGUE, dialogue_episodes, dialogue_step, episode, lending_episodes

from fairgym.analysis import sweep_report, verdicts
from fairgym.analysis.metrics import compute_metrics, summary_table
from fairgym.analysis.report import write_report
from fairgym.envs import env_profile
from fairgym.envs.profiles import FamilyProfile
from fairgym.envs.records import append_episode

PROFILE = FamilyProfile(family="Test", approval_metric="rate/approved")


def test_the_sweep_and_the_run_share_one_verdict():
    assert sweep_report.policy_verdict is verdicts.policy_verdict


@pytest.mark.parametrize(("rate", "expected"), [(0.97, "approves all"), (1.0, "approves all"),
                                                (0.03, "denies all"), (0.5, None), (0.94, None)])
def test_collapse_flag_reads_the_profiles_approval_metric(rate, expected):
    flag = verdicts.collapse_flag({"rate/approved": rate, "fairness/selection_rate": 0.5}, PROFILE)
    assert (flag is None) if expected is None else (expected in flag and "rate/approved" in flag)


def test_no_collapse_flag_without_an_approval_metric_or_a_value():
    assert verdicts.collapse_flag({"rate/approved": 1.0}, FamilyProfile(family="Other")) is None
    assert verdicts.collapse_flag({"rate/approved": math.nan}, PROFILE) is None
    assert verdicts.collapse_flag({}, PROFILE) is None


def test_thin_groups_name_groups_below_the_minimum():
    metrics = {"task/decisions/A": 12.0, "task/decisions/B": 300.0, "task/decisions": 312.0}
    assert verdicts.thin_groups(metrics) == {"A": 12}
    flag = verdicts.thin_groups_flag(metrics)
    assert "A: 12 (95% interval of a rate up to ±0.28)" in flag and "B" not in flag
    assert verdicts.thin_groups_flag(metrics, min_decisions=10) is None


def test_summary_table_flags_a_collapsed_lending_policy():
    metrics = compute_metrics(lending_episodes())
    metrics["fairness/selection_rate"] = 1.0  # as a policy approving everyone
    profile = env_profile("fairgym/Lending-v0")
    text = summary_table(metrics, profile)
    assert "warning: collapsed policy (approves all)" in text
    assert "warning: too few decisions to compare groups (A: 4" in text
    assert "warning" not in summary_table(metrics)  # without a profile: the table alone


def test_dialogue_tables_count_decisions_and_episodes_per_group():
    episodes = dialogue_episodes() + [episode(DIALOGUE, [dialogue_step(0, "B", 0.2)], index=2)]
    metrics = compute_metrics(episodes)
    assert metrics["task/decisions/A"] == 4 and metrics["task/decisions/B"] == 5
    assert metrics["task/episodes/A"] == 1 and metrics["task/episodes/B"] == 2
    header = summary_table(metrics).splitlines()[0].split()
    assert "decisions" in header and "episodes" in header


def test_run_report_flags_first(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for ep in lending_episodes():
        ep["steps"] = [{**s, "outcome": {**s["outcome"], "approved": True}} for s in ep["steps"]]
        append_episode(folder / "episodes.jsonl", ep)
    text = write_report(folder).read_text()
    first = text.index("## Read this first")
    assert first < text.index("## Per group")
    assert "collapsed policy (approves all)" in text[first:] and "too few decisions" in text[first:]
