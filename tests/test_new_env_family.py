"""A fourth env family, defined here and nowhere else, runs through ``fairgym run`` -> metrics -> report -> W&B and
through the sweep's evaluation of an arm and its report, with no edit to fairgym: its profile (one family metric,
one figure, a headline column, a W&B column) is declared on the class and looked up through the Gymnasium
registry; generic metrics apply to any family."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import pytest

from fairgym.commands import main
from fairgym.envs import env_traits, keys, records
from fairgym.envs.core import Decision, ParseError, TextEnv
from fairgym.envs.profiles import FamilyProfile

QUEUE = "fairgymtest/Queue-v0"  # another namespace: the fairgym/ namespace holds exactly ENV_IDS
CHOICES = ["serve", "skip"]


@dataclass(frozen=True)
class Serve:
    """Serve (``True``) or skip (``False``) the person at the head of the queue."""

    serve: bool


def served_share(episodes: list[dict], frame, groups: list[str]) -> dict[str, float]:
    """The Queue family's one metric: the share of people served, per group."""
    out = {}
    for group in groups:
        served = [s[keys.OUTCOME]["served"] for e in episodes for s in e["steps"]
                  if s[keys.GROUP] == group and s[keys.OUTCOME]]
        out[f"fairness/served_share/{group}"] = sum(served) / len(served) if served else float("nan")
    return out


def served_figure(metrics: dict[str, float], traj: dict) -> dict:
    """The Queue family's one figure."""
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    groups = [k.rsplit("/", 1)[1] for k in metrics if k.startswith("fairness/served_share/")]
    ax.bar(groups, [metrics[f"fairness/served_share/{g}"] for g in groups])
    return {"served_share": fig}


QUEUE_PROFILE = FamilyProfile(family="Queue", metrics=served_share,
                              figures=served_figure, figure_notes={"served_share": "Share served per group."},
                              headline=(("fairness/served_share/A", "served A"),), wandb_columns=("served",),
                              policies={})


class QueueEnv(TextEnv):
    """Serve or skip the person at the head of a queue; serving earns 1. A test-only fourth env family."""

    profile = QUEUE_PROFILE
    discrete_choices = True

    def __init__(self, *, max_steps: int = 4, **kwargs: Any) -> None:
        super().__init__(max_steps=max_steps, **kwargs)
        self.groups = ("A", "B")
        self.instructions = "Answer 'serve' or 'skip'."

    def _draw(self) -> str:
        return self.groups[int(self.np_random.integers(len(self.groups)))]

    def _reset_state(self, options: dict[str, Any] | None) -> None:
        self.person = self._draw()

    def parse_action(self, text: str) -> Serve | ParseError:
        said = [c for c in CHOICES if c in text.lower()]
        return Serve(said[0] == "serve") if len(said) == 1 else ParseError("answer 'serve' or 'skip'.")

    def _apply(self, action: Serve) -> tuple[float, dict[str, Any], bool]:
        outcome = {"served": action.serve, "person": self.person}
        self.person = self._draw()
        return float(action.serve), outcome, False

    def _default_action(self) -> Serve:
        return Serve(False)

    def _decision(self) -> Decision:
        return Decision(group=self.person, choices=list(CHOICES))

    def _observation(self) -> str:
        return f"A person from group {self.person} is at the head of the queue."


@pytest.fixture
def queue():
    gym.register(id=QUEUE, entry_point=QueueEnv)
    yield QUEUE
    gym.registry.pop(QUEUE)


def test_the_family_is_looked_up_from_the_registry(queue):
    traits = env_traits(queue)
    assert (traits.family, traits.discrete_choices) == ("Queue", True)


def test_run_metrics_report_and_wandb(queue, tmp_path, monkeypatch):
    from fairgym.analysis import wandb_log
    from fairgym.analysis.report import write_report

    logged = []
    monkeypatch.setattr(wandb_log, "log_run", lambda *a, **k: logged.append((a, k)))
    out = tmp_path / "run"
    assert main(["run", "--env", queue, "--agent", "random", "--episodes", "3", "--env-opt", "max_steps=4",
                 "--out", str(out)]) == 0
    episodes = records.read_episodes(out / "episodes.jsonl")
    steps = [s for e in episodes for s in e["steps"]]
    assert len(steps) == 12 and all(s[keys.ACTION_VALID] and s["action_text"] in CHOICES for s in steps)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task/episodes"] == 3 and metrics["format/invalid_action_rate"] == 0
    served = sum(s["reward"] for s in steps) / 3
    assert metrics["task/return_mean"] == pytest.approx(served)
    by_hand = [s["outcome"]["served"] for s in steps if s["group"] == "A"]
    assert metrics["fairness/served_share/A"] == pytest.approx(sum(by_hand) / len(by_hand))  # the family's metric
    text = write_report(out).read_text()
    assert "fairgym run report" in text and "invalid_action_rate" in text and "served_share" in text
    assert "Share served per group." in text  # the family's figure note
    assert (out / "plots" / "invalid_action_rate.png").is_file() and (out / "plots" / "served_share.png").is_file()
    (args, kwargs), = logged  # the run went to W&B with the family's metric
    assert "fairness/served_share/A" in args[2]
    columns, rows = wandb_log.step_table(episodes)
    assert columns[-1] == "served" and {r[-1] for r in rows} <= {True, False}


def test_sweep_evaluation_of_an_arm(queue, tmp_path, tiny_model_dir):
    from fairgym.lm.models import load_model
    from fairgym.training.sweep import evaluate_arm
    from fairgym.training.sweep_arms import plan_arms
    from fairgym.training.sweep_config import EvalSettings, SweepConfig

    config = SweepConfig(name="queue", model=str(tiny_model_dir), device="cpu", ranks=[1], train={"teacher": "random"},
                         eval=EvalSettings(envs=[queue], episodes=2, num_envs=2, env_kwargs={queue: {"max_steps": 3}}))
    assert config.eval.decide_mode(queue) == "choice"  # from the declaration: its decisions are choices
    base = plan_arms(config)[0]
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    metrics = evaluate_arm(config, base, tmp_path / base.name, model, tokenizer)[queue]
    assert metrics["task/episodes"] == 2 and 0 <= metrics["task/teacher_agreement"] <= 1
    steps = [s for e in records.read_episodes(tmp_path / base.name / "Queue-v0" / "episodes.jsonl")
             for s in e["steps"]]
    assert len(steps) == 6 and all(s["action_text"] in CHOICES for s in steps)  # choice scoring picked each
    assert "fairness/served_share/A" in metrics


def test_sweep_report_headline(queue, tmp_path):
    from fairgym.analysis.sweep_report import headline_table, load_sweep
    from fairgym.config import save_config
    from fairgym.runfiles import write_json
    from fairgym.training.sweep_config import DiagnosticsSettings, EvalSettings, SweepConfig
    from fairgym.training.sweep_folder import write_status

    config = SweepConfig(name="queue", ranks=[1], train={"teacher": "random"},
                         eval=EvalSettings(envs=[queue], episodes=1), diagnostics=DiagnosticsSettings(enabled=False))
    save_config(config, tmp_path / "config.yaml")
    write_status(tmp_path / "base", state="done", arm={"name": "base", "method": "base"})
    write_json(tmp_path / "base" / "metrics.json", {queue: {"fairness/served_share/A": 0.25}})
    header, rows = headline_table(load_sweep(tmp_path))
    assert "served A" in header and rows[0][header.index("served A")] == "0.25"
