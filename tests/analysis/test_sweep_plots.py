"""The sweep report's figures: data in, matplotlib Figure out; each arm's episodes read once per report."""

from __future__ import annotations

from collections import Counter

import pytest
from matplotlib.figure import Figure
from sweep_fixture import build_sweep

from fairgym.analysis import plots, sweep_report


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return build_sweep(tmp_path_factory.mktemp("sweep"))


def test_report_reads_each_arms_episodes_once(sweep_dir, monkeypatch):
    reads: Counter = Counter()
    real = sweep_report.read_episodes

    def counting(path):
        reads[str(path)] += 1
        return real(path)

    monkeypatch.setattr(sweep_report, "read_episodes", counting)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    sweep_report.write_sweep_report(sweep_dir)
    assert len(reads) == 7  # base + 2 seeds x (full, lora-r1, lora-r8), one Lending env each
    assert set(reads.values()) == {1}, reads


def test_sweep_figures_are_figures_built_from_data(sweep_dir):
    sweep = sweep_report.load_sweep(sweep_dir)
    intervals = {e: sweep_report.trajectory_intervals(sweep, e) for e in sweep_report.compounding_envs(sweep)}
    figures = sweep_report.sweep_figures(sweep, intervals)
    assert set(figures) == {"bias_vs_rank", "kl_vs_rank", "logit_lens", "update_energy", "compounding_Lending-v0",
                            "gap_trajectory_Lending-v0", "credit_drift_Lending-v0"}
    assert all(isinstance(f, Figure) for f in figures.values())
    panel = plots.RankPanel("DP diff", {"lora (rank r)": ([1, 8], [0.3, 0.1], [0.05, 0.0])}, {"full": 0.05})
    axes = plots.against_rank_figure([panel, panel]).axes
    assert len(axes) == 2 and axes[0].get_xscale() == "log" and axes[0].get_title() == "DP diff"
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["full", "lora (rank r)"]


@pytest.mark.parametrize("flag", [[], ["--wandb"]])
def test_fairgym_report_on_a_sweep_logs_to_wandb_only_with_the_flag(sweep_dir, monkeypatch, capsys, flag):
    """As for a run folder: `fairgym report` creates no W&B run (offline or not) unless asked."""
    from fairgym.commands import main

    calls = []
    monkeypatch.setattr(sweep_report, "log_sweep_report", lambda *args, **kwargs: calls.append(args[0]))
    assert main(["report", str(sweep_dir), *flag]) == 0
    assert len(calls) == (1 if flag else 0)
    assert capsys.readouterr().out.strip().endswith("report.md")
