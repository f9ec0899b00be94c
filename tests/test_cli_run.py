"""``fairgym run``: subprocess smoke test, config resolution (YAML < flags), resume, and errors that lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from fairgym.commands import build_parser, main
from fairgym.envs import records

LENDING = "fairgym/Lending-v0"
DIALOGUE = "fairgym/Dialogue-v1"


def fairgym(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "fairgym", *argv], capture_output=True, text=True, cwd=cwd, env=env)


def resolve(*argv: str):
    from fairgym.commands.run import resolve_config

    return resolve_config(build_parser().parse_args(["run", *argv]))


@pytest.mark.slow
def test_run_smoke_in_subprocess(tmp_path):
    out = tmp_path / "run"
    result = fairgym("run", "--env", LENDING, "--agent", "eo-threshold", "--episodes", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert {"config.yaml", "episodes.jsonl", "metrics.json", "run_stats.json"} <= {p.name for p in out.iterdir()}
    assert len(records.read_episodes(out / "episodes.jsonl")) == 4
    assert "Black" in result.stdout and "white" in result.stdout  # the per-group table
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task/episodes"] == 4 and "fairness/demographic_parity_difference" in metrics
    assert yaml.safe_load((out / "config.yaml").read_text())["agent"] == "eo-threshold"


@pytest.mark.slow
def test_unknown_agent_exits_2_listing_agents(tmp_path):
    result = fairgym("run", "--agent", "eo-treshold", "--episodes", "1", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "Did you mean 'eo-threshold'" in result.stderr and "fair-oracle" in result.stderr
    assert not (tmp_path / "x").exists()


def test_yaml_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"env": LENDING, "agent": "max-utility", "episodes": 9,
                                    "env_kwargs": {"max_steps": 4, "descriptors": "gender"}}))
    cfg = resolve("--config", str(path), "--episodes", "3", "--env-opt", "max_steps=7", "--agent-opt",
                  "threshold=600", "--no-wandb")
    assert (cfg.agent, cfg.episodes, cfg.wandb) == ("max-utility", 3, False)
    assert cfg.env_kwargs == {"max_steps": 7, "descriptors": "gender"}
    assert cfg.agent_kwargs == {"threshold": 600}
    assert cfg.out == "runs/Lending-v0-max-utility-s0"


def test_llm_flags_reach_only_the_llm_agent():
    cfg = resolve("--agent", "llm", "--model", "some/folder", "--decide", "generate", "--temperature", "0.7")
    assert cfg.agent_arguments()["model"] == "some/folder" and cfg.agent_arguments()["temperature"] == 0.7
    with pytest.raises(ValueError, match="apply to --agent llm only"):
        resolve("--agent", "random", "--model", "some/folder")


def test_llm_decides_as_the_env_declares():
    assert resolve("--agent", "llm", "--env", DIALOGUE).llm.decide == "generate"  # no choices to score there
    assert resolve("--agent", "llm", "--env", LENDING).llm.decide == "choice"
    assert resolve("--agent", "llm", "--env", DIALOGUE, "--decide", "choice").llm.decide == "choice"
    assert resolve("--agent", "random", "--env", DIALOGUE).llm.decide is None


def test_llm_on_dialogue_generates_by_default(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    assert main(["run", "--env", DIALOGUE, "--agent", "llm", "--model", str(tiny_model_dir), "--episodes", "1",
                 "--env-opt", "max_steps=2", "--max-new-tokens", "4", "--out", str(out), "--no-wandb"]) == 0
    (episode,) = records.read_episodes(out / "episodes.jsonl")
    assert episode["length"] == 2 and yaml.safe_load((out / "config.yaml").read_text())["llm"]["decide"] == "generate"


def test_llm_choice_on_dialogue_is_an_error_before_anything_is_written(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "run"
    assert main(["run", "--env", DIALOGUE, "--agent", "llm", "--model", str(tiny_model_dir), "--decide", "choice",
                 "--episodes", "1", "--out", str(out), "--no-wandb"]) == 2
    assert "decide='choice' needs info['choices']" in capsys.readouterr().err and not out.exists()


def test_the_implant_teachers_run_like_any_agent(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--agent", "biased-threshold", "--agent-opt", "penalty=1000", "--episodes", "3",
                 "--env-opt", "max_steps=4", "--out", str(out), "--no-wandb"]) == 0
    steps = [s for e in records.read_episodes(out / "episodes.jsonl") for s in e["steps"]]
    assert len(steps) == 12 and all(s["action_valid"] for s in steps)
    assert not any(s["action"]["approve"] for s in steps if s["group"] == "Black")  # 1000 points: never approved
    assert main(["run", "--agent", "hostile", "--episodes", "1", "--out", str(tmp_path / "x"), "--no-wandb"]) == 2


def test_unknown_yaml_key_suggests(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("agent: random\nepisode: 3\n")
    with pytest.raises(ValueError, match="Did you mean 'episodes'"):
        resolve("--config", str(path))


def test_rerun_resumes_and_extends(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["run", "--agent", "random", "--env-opt", "max_steps=3", "--out", out, "--no-wandb"]
    assert main([*argv, "--episodes", "3"]) == 0
    assert main([*argv, "--episodes", "5"]) == 0
    lines = (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in lines) == list(range(5))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["task/episodes"] == 5
    assert "5 episodes" in capsys.readouterr().out


@pytest.mark.parametrize(("agent", "env_opt", "extra"), [
    ("constant", "max_steps=3", []),  # another agent in the same folder
    ("random", "max_steps=3", ["--seed", "3"]),  # another seed
    ("random", "max_steps=4", []),  # other env arguments
    ("random", "max_step=3", []),  # an unknown env argument
    ("polite", "max_steps=3", []),  # an agent that does not apply to Lending
])
def test_bad_input_loses_nothing(tmp_path, capsys, agent, env_opt, extra):
    out = str(tmp_path / "run")
    assert main(["run", "--agent", "random", "--env-opt", "max_steps=3", "--episodes", "2", "--out", out,
                 "--no-wandb"]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    capsys.readouterr()
    assert main(["run", "--agent", agent, "--env-opt", env_opt, "--episodes", "4", "--out", out, "--no-wandb",
                 *extra]) == 2
    assert "fairgym run: error:" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def _one_line_error(capsys, command: str, path) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"fairgym {command}: error:") and f"{path}, line 2, column" in err
    return err


@pytest.mark.parametrize("command", [["run", "--no-wandb", "--config"], ["train", "sft", "--config"], ["sweep"]])
def test_yaml_syntax_error_is_one_line_for_every_command(tmp_path, capsys, command):
    bad = tmp_path / "bad.yaml"
    bad.write_text("episodes: 2\n  agent: random\n")
    assert main([*command, str(bad)]) == 2
    _one_line_error(capsys, command[0], bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # nothing written


def test_report_on_a_run_with_broken_config_yaml_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--agent", "random", "--env-opt", "max_steps=2", "--episodes", "1", "--out", str(out),
                 "--no-wandb"]) == 0
    (out / "config.yaml").write_text("env: fairgym/Lending-v0\n  agent: random\n")
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    _one_line_error(capsys, "report", out / "config.yaml")
    assert main(["run", "--agent", "random", "--episodes", "1", "--out", str(out), "--no-wandb"]) == 2
    _one_line_error(capsys, "run", out / "config.yaml")


@pytest.mark.slow
def test_no_progress_bars_when_stderr_is_not_a_terminal(tmp_path, tiny_model_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS",
                                                             "HF_DATASETS_DISABLE_PROGRESS_BARS")}
    result = subprocess.run([sys.executable, "-m", "fairgym", "run", "--agent", "llm", "--model", str(tiny_model_dir),
                             "--episodes", "1", "--env-opt", "max_steps=2", "--out", str(tmp_path / "run"),
                             "--no-wandb"], capture_output=True, text=True, env={**env, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr
    assert "it/s]" not in result.stderr and "Loading weights" not in result.stderr, result.stderr[-500:]


def test_balance_groups_plays_each_seed_per_group_and_the_summary_says_so(tmp_path, capsys):
    out = tmp_path / "balanced"
    argv = ["run", "--env", DIALOGUE, "--agent", "polite", "--episodes", "2", "--env-opt", "max_steps=1",
            "--balance-groups", "--no-wandb", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "4 episodes (2 seeds x each group) of fairgym/Dialogue-v1" in printed
    assert "warning: too few decisions to compare groups" in printed
    episodes = records.read_episodes(out / "episodes.jsonl")
    assert [(e["seed"], e["options"]["group"]) for e in episodes] == [(0, "Black"), (0, "white"), (1, "Black"),
                                                                      (1, "white")]
    assert yaml.safe_load((out / "config.yaml").read_text())["balance_groups"] is True
    assert main([a for a in argv if a != "--balance-groups"]) == 2  # the folder holds a balanced run
    assert "balance_groups=True, not False" in capsys.readouterr().err


def test_balance_groups_on_an_env_that_cannot_pin_a_group_writes_nothing(tmp_path, capsys):
    out = tmp_path / "alloc"
    assert main(["run", "--env", "fairgym/Allocation-v0", "--agent", "random", "--episodes", "1", "--balance-groups",
                 "--no-wandb", "--out", str(out)]) == 2
    assert "balance_groups needs an env whose reset pins one group" in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_saved_before_balance_groups_existed_still_resumes(tmp_path, capsys):
    out = tmp_path / "old"
    argv = ["run", "--env", LENDING, "--agent", "random", "--episodes", "1", "--no-wandb", "--out", str(out)]
    assert main(argv) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    del saved["balance_groups"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert main(["run", "--env", LENDING, "--agent", "random", "--episodes", "2", "--no-wandb", "--out",
                 str(out)]) == 0
    assert len(records.read_episodes(out / "episodes.jsonl")) == 2
