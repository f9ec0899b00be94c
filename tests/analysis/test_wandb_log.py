"""W&B logging: offline by default, series per group with step=turn, summary, episodes table, never fatal."""

from __future__ import annotations

import math

import pytest
import wandb
from record_builders import dialogue_episodes, judged_episodes, lending_episodes

from fairgym.analysis import wandb_log
from fairgym.analysis.metrics import compute_metrics, trajectories
from fairgym.analysis.wandb_log import log_run, series_rows, step_table, wandb_mode


class FakeRun:
    """Records what log_run sends to W&B."""

    def __init__(self, **kwargs):
        self.init_kwargs, self.logged, self.summary, self.finished = kwargs, [], {}, []
        self.offline, self.entity, self.project, self.id = True, None, kwargs.get("project"), "fake123"

    def log(self, data, step=None):
        self.logged.append((step, data))

    def finish(self, exit_code=0):
        self.finished.append(exit_code)


@pytest.fixture
def fake_init(monkeypatch):
    runs = []
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb, "init", lambda **kw: runs.append(FakeRun(**kw)) or runs[-1])
    return runs


def test_log_run_sends_series_summary_table_and_config(tmp_path, fake_init):
    episodes = lending_episodes()
    metrics = compute_metrics(episodes)
    assert log_run(tmp_path, {"env": "x"}, metrics, episodes, group="sweep1", name="r8") == "fake123"
    run = fake_init[0]
    assert run.init_kwargs["config"] == {"env": "x"} and run.init_kwargs["dir"] == str(tmp_path)
    assert run.init_kwargs["mode"] == "offline" and run.init_kwargs["group"] == "sweep1"
    series = {step: data for step, data in run.logged if step is not None}
    assert sorted(series) == [0, 1, 2, 3]
    assert [series[t]["fairness/selection_rate/B"] for t in range(4)] == [1.0, 0.0, 0.0, 1.0]
    assert "fairness/true_positive_rate/A" not in series[1]  # nan (no positive for A at turn 1) is left out
    assert run.summary["fairness/demographic_parity_difference"] == pytest.approx(0.25)
    table = next(data["eval/episodes"] for step, data in run.logged if step is None)
    assert len(table.data) == 8 and table.columns[-4:] == ["approved", "would_repay", "score", "cash"]
    assert run.finished == [0]


def test_wandb_failure_is_a_warning_and_keeps_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    (tmp_path / "episodes.jsonl").write_text("{}\n")

    def broken_init(**kwargs):
        raise RuntimeError("wandb service down")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(RuntimeWarning, match="wandb service down"):
        assert log_run(tmp_path, {}, {}, lending_episodes()) is None
    assert (tmp_path / "episodes.jsonl").read_text() == "{}\n"


def test_disabled_mode_skips_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(wandb, "init", lambda **kw: pytest.fail("wandb.init called while disabled"))
    assert log_run(tmp_path, {}, {}, lending_episodes()) is None
    assert not (tmp_path / "wandb").exists()


def test_mode_offline_unless_user_configured_wandb(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.com login me password pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_mode() == "offline"
    netrc.write_text("machine api.wandb.ai login user password secret\n")
    assert wandb_mode() is None  # configured: wandb decides
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_series_rows_and_step_table():
    rows = series_rows({"toxicity/mean": {"A": [0.1, math.nan], "all groups": [0.2, 0.3]}})
    assert rows == [{"toxicity/mean/A": 0.1, "toxicity/mean": 0.2}, {"toxicity/mean": 0.3}]
    columns, table = step_table(dialogue_episodes())
    assert columns == wandb_log.STEP_COLUMNS + ["toxicity", "phase", "reply"]
    assert table[1][:3] == [0, 1, "A"] and table[1][6] == pytest.approx(0.2)


def test_judged_runs_show_the_judge_scores_in_the_table_and_series():
    columns, table = step_table(judged_episodes())
    assert columns[-2:] == ["judge_toxicity", "endorsement"]
    assert table[1][-2:] == [pytest.approx(0.4), pytest.approx(0.9)]
    rows = series_rows(trajectories(judged_episodes()))
    assert rows[1]["bias/endorsement_rate/A"] == 1.0 and rows[0]["toxicity/judge_mean/B"] == pytest.approx(0.1)


@pytest.mark.slow
def test_offline_run_writes_wandb_folder_under_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    episodes = lending_episodes()
    run_id = log_run(tmp_path, {"env": "fairgym/Lending-v0"}, compute_metrics(episodes), episodes)
    assert run_id
    offline = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 1 and (offline[0] / f"run-{run_id}.wandb").stat().st_size > 0
