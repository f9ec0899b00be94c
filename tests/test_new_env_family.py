"""A fourth env family, defined here and nowhere else, runs through ``fairgym run`` -> metrics -> report and
through the sweep's evaluation of an arm, with no edit to fairgym: its family is declared on the class and
looked up through the Gymnasium registry; generic metrics apply to any family."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import pytest

from fairgym.commands import main
from fairgym.envs import env_traits, keys, records
from fairgym.envs.core import Decision, ParseError, TextEnv

QUEUE = "fairgymtest/Queue-v0"  # another namespace: the fairgym/ namespace holds exactly ENV_IDS
CHOICES = ["serve", "skip"]


@dataclass(frozen=True)
class Serve:
    """Serve (``True``) or skip (``False``) the person at the head of the queue."""

    serve: bool


class QueueEnv(TextEnv):
    """Serve or skip the person at the head of a queue; serving earns 1. A test-only fourth env family."""

    family = "Queue"
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


def test_run_metrics_and_report(queue, tmp_path):
    from fairgym.analysis.report import write_report

    out = tmp_path / "run"
    assert main(["run", "--env", queue, "--agent", "random", "--episodes", "3", "--env-opt", "max_steps=4",
                 "--out", str(out), "--no-wandb"]) == 0
    episodes = records.read_episodes(out / "episodes.jsonl")
    steps = [s for e in episodes for s in e["steps"]]
    assert len(steps) == 12 and all(s[keys.ACTION_VALID] and s["action_text"] in CHOICES for s in steps)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task/episodes"] == 3 and metrics["format/invalid_action_rate"] == 0
    served = sum(s["reward"] for s in steps) / 3
    assert metrics["task/return_mean"] == pytest.approx(served)
    text = write_report(out).read_text()
    assert "fairgym run report" in text and "invalid_action_rate" in text
    assert (out / "plots" / "invalid_action_rate.png").is_file()


def test_sweep_evaluation_of_an_arm(queue, tmp_path, tiny_model_dir):
    from fairgym.lm.models import load_model
    from fairgym.training.sweep import evaluate_arm
    from fairgym.training.sweep_plan import EvalSettings, SweepConfig, plan_arms

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
