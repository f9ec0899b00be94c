"""write_report on records written to a run folder, the figures, and `fairgym report` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from record_builders import allocation_episodes, dialogue_episodes, judged_episodes, lending_episodes

from fairgym.analysis.metrics import compute_metrics, trajectories
from fairgym.analysis.plots import run_figures
from fairgym.analysis.report import headline_markdown, write_report
from fairgym.envs import env_profile
from fairgym.envs.records import append_episode

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_PLOTS = {
    "lending": {"selection_rate", "true_positive_rate", "parity_gaps", "credit_drift", "invalid_action_rate"},
    "allocation": {"allocation_vs_incidents", "allocation_gap", "invalid_action_rate"},
    "dialogue": {"toxicity", "invalid_action_rate"},
    "judged": {"toxicity", "judge_toxicity", "endorsement_rate", "invalid_action_rate"},
}
BUILDERS = {"lending": lending_episodes, "allocation": allocation_episodes, "dialogue": dialogue_episodes,
            "judged": judged_episodes}


def write_run(folder, episodes, config_text="env: test\nepisodes: 2\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for ep in episodes:
        append_episode(folder / "episodes.jsonl", ep)
    (folder / "config.yaml").write_text(config_text)
    return folder


@pytest.mark.parametrize("env", sorted(BUILDERS))
def test_write_report_writes_markdown_and_pngs(tmp_path, env):
    run_dir = write_run(tmp_path / env, BUILDERS[env]())
    report = write_report(run_dir)
    assert report == run_dir / "report.md"
    text = report.read_text()
    for name in EXPECTED_PLOTS[env]:
        png = run_dir / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000, name
        assert f"(plots/{name}.png)" in text
    assert "## Per group" in text and "| A |" in text and "env: test" in text
    metrics = json.loads((run_dir / "metrics.json").read_text())  # recomputed because it was missing
    assert metrics["task/episodes"] == len(BUILDERS[env]())


def test_report_recomputes_stale_metrics(tmp_path):
    run_dir = write_run(tmp_path / "run", lending_episodes())
    (run_dir / "metrics.json").write_text(json.dumps({"task/episodes": 1}))  # from before a resume
    write_report(run_dir)
    assert json.loads((run_dir / "metrics.json").read_text())["task/episodes"] == 2


def test_report_errors_name_the_missing_thing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="episodes.jsonl"):
        write_report(tmp_path)
    (tmp_path / "episodes.jsonl").write_text("")
    with pytest.raises(ValueError, match="no complete episode"):
        write_report(tmp_path)


def test_headline_table_marks_undefined_groups():
    md = headline_markdown(compute_metrics(lending_episodes(groups=("A", "B", "C"))))
    row_c = next(line for line in md.splitlines() if line.startswith("| C |"))
    assert "nan" in row_c and "| 0.75 |" in next(line for line in md.splitlines() if line.startswith("| A |"))


def test_figures_draw_one_line_per_group():
    episodes = lending_episodes()
    figures = run_figures(compute_metrics(episodes), trajectories(episodes), env_profile("fairgym/Lending-v0"))
    left_panel = figures["selection_rate"].axes[0]
    assert [line.get_label() for line in left_panel.get_lines()] == ["A", "B", "all groups"]
    assert list(left_panel.get_lines()[0].get_ydata()) == [1.0, 1.0, 0.0, 1.0]


@pytest.mark.slow
def test_fairgym_report_cli(tmp_path):
    run_dir = write_run(tmp_path / "run", dialogue_episodes())
    cmd = [sys.executable, "-m", "fairgym", "report", str(run_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(run_dir / "report.md")
    assert "slope" in done.stdout and (run_dir / "plots" / "toxicity.png").is_file()
    missing = subprocess.run(cmd[:-1] + [str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stderr



def test_sweep_headline_shows_judge_columns_only_for_judged_envs():
    from fairgym.analysis.sweep_report import headline_columns

    env = "fairgym/Dialogue-v0"
    judged = {"config": {"eval": {"envs": [env]}},
              "arms": [{"metrics": {env: {"toxicity/judge_mean": 0.2, "bias/endorsement_rate": 0.1}}}]}
    plain = {"config": {"eval": {"envs": [env]}}, "arms": [{"metrics": {env: {"toxicity/mean": 0.1}}}]}
    assert {"judge toxicity", "endorsement rate"} <= {title for _, _, title in headline_columns(judged)}
    assert not {"judge toxicity", "endorsement rate"} & {title for _, _, title in headline_columns(plain)}


def test_sweep_headline_says_when_a_diagnostic_covers_only_some_seeds():
    from fairgym.analysis.sweep_report import headline_table

    env = "fairgym/Lending-v0"
    arms = [{"name": f"lora-r1-s{s}", "label": "lora-r1", "state": "done", "metrics": {env: {}}} for s in range(3)]
    sweep = {"config": {"eval": {"envs": [env]}}, "arms": arms, "learning_rates": {},
             "diagnostics": {"arms": {"lora-r1-s0": {"kl_vs_base": {"mean": 0.37}, "flip_rate": {"overall": 0.5}},
                                      "lora-r1-s1": {"kl_vs_base": {"mean": 0.41}}}}}
    header, (row,) = headline_table(sweep)
    cell = dict(zip(header, row, strict=True))
    assert cell["seeds done"] == "3/3"
    assert cell["KL vs base"].endswith("(2 of 3 seeds)") and "[" in cell["KL vs base"]  # an interval, never ±0
    assert cell["flip rate"] == "0.5 (1 of 3 seeds)" and cell["KL vs full"] == "n/a"


def test_sweep_report_without_diagnostics_or_lending_shows_only_its_columns():
    from fairgym.analysis.sweep_report import headline_table, legend

    env = "fairgym/Dialogue-v0"
    sweep = {"config": {"eval": {"envs": [env]}}, "learning_rates": {}, "diagnostics": {},
             "arms": [{"name": "base", "label": "base", "state": "done", "metrics": {env: {"toxicity/mean": 0.9}}}]}
    header, rows = headline_table(sweep)
    assert header == ["arm", "seeds done", "learning rate", "toxicity", "tox slope", "looping replies"]
    assert rows[0][3] == "0.9" and rows[0][5] == "n/a"  # a sweep from before the metric existed
    text = " ".join(legend(sweep))
    assert "toxicity" in text and "KL" not in text and "teacher agreement" not in text


def test_sweep_without_diagnostics_draws_no_empty_kl_or_flip_panels():
    from fairgym.analysis.sweep_report import _rank_figure, bias_panels, kl_panels

    env = "fairgym/Dialogue-v0"
    rows = (("base", "base", None, "base", 0.9), ("full-s0", "full", None, "full", 0.02),
            ("lora-r1-s0", "lora-r1", 1, "lora", 0.7), ("lora-r8-s0", "lora-r8", 8, "lora", 0.03))
    arms = [{"name": n, "label": lab, "state": "done", "rank": r, "method": m, "seed": 0,
             "metrics": {env: {"toxicity/mean": t}}} for n, lab, r, m, t in rows]
    sweep = {"config": {"eval": {"envs": [env]}, "ranks": [1, 8]}, "arms": arms, "diagnostics": {},
             "learning_rates": {}}
    assert _rank_figure(kl_panels(sweep)) is None
    assert len(_rank_figure(bias_panels(sweep)).axes) == 1  # toxicity against rank; no empty flip-rate panel
