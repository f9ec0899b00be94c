"""Reward components of the episode recipe: pure functions of one episode record, named, weighted and logged.

Each component reads one ``episodes.jsonl`` record (the same format as ``fairgym run``) and returns a float, or
``None`` where the episode does not define it (TRL then leaves that component out of that rollout's sum, and
its logged mean skips it). The fairness terms reuse ``fairgym.analysis.metrics`` on the one episode, so a
reward and the metric a report shows are the same number:

- ``task_return``: the episode's return as the env reports it (the summed step rewards; under ``"penalize"``
  and ``"end"`` an invalid action's ``invalid_penalty`` is part of it, as the env's policy says). With
  Lending's ``score_shift`` a decision changes later applicants, so this return carries the delayed impact.
- ``fairness``: minus the episode's ``fairness_metric`` over all its decisions (e.g. the demographic parity
  difference of its approvals); ``None`` when the episode leaves it undefined (one group never seen).
- ``fairness_per_turn``: minus the mean over turns of the cumulative-up-to-turn ``fairness_metric``, so a gap
  opened early costs more than one opened at the last decision.
- ``toxicity``: minus the mean toxicity of the episode's scored replies (Dialogue).
- ``invalid_actions``: minus the number of actions the env could not parse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fairgym.analysis.metrics import compute_metrics, trajectories
from fairgym.analysis.trajectories import ALL, CUMULATIVE
from fairgym.config import UnknownNameError
from fairgym.envs import env_profile, keys
from fairgym.training.config import EPISODE_REWARDS

Component = Callable[[dict[str, Any]], float | None]


def _defined(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def task_return(episode: dict[str, Any]) -> float:
    """The episode's return: its step rewards summed."""
    return float(sum(step["reward"] for step in episode["steps"]))


def invalid_actions(episode: dict[str, Any]) -> float:
    """Minus the number of steps whose action text the env could not parse."""
    return -float(sum(not step.get(keys.ACTION_VALID, True) for step in episode["steps"]))


def toxicity(episode: dict[str, Any]) -> float | None:
    """Minus the mean toxicity of the episode's scored replies; ``None`` when no reply was scored."""
    scores = [step[keys.OUTCOME]["toxicity"] for step in episode["steps"]
              if isinstance(step.get(keys.OUTCOME), dict) and step[keys.OUTCOME].get("toxicity") is not None]
    return -float(sum(scores) / len(scores)) if scores else None


def episode_fairness(episode: dict[str, Any], metric: str) -> float | None:
    """Minus ``metric`` of ``compute_metrics`` over the episode's decisions; ``None`` where it is undefined."""
    value = _defined(compute_metrics([episode]).get(metric))
    return None if value is None else -value


def per_turn_fairness(episode: dict[str, Any], metric: str) -> float | None:
    """Minus the mean over turns of the cumulative ``metric`` (turns where it is undefined skipped)."""
    series = trajectories([episode]).get(metric + CUMULATIVE, {}).get(ALL, [])
    defined = [v for v in series if not math.isnan(v)]
    return -float(sum(defined) / len(defined)) if defined else None


def fairness_metric_for(env_id: str, metric: str | None) -> str | None:
    """The fairness metric the env's fairness components use: ``metric`` when given, else the one its family's
    profile declares (``FamilyProfile.fairness_metric``; Dialogue declares none: an episode talks to one
    interlocutor, so no within-episode gap between groups exists)."""
    return metric if metric is not None else env_profile(env_id).fairness_metric


def applicable_components(env_id: str, metric: str | None) -> list[str]:
    """The components an episode of ``env_id`` defines (fairness needs a metric, toxicity a Dialogue env)."""
    names = ["task_return"]
    if fairness_metric_for(env_id, metric) is not None:
        names += ["fairness", "fairness_per_turn"]
    if env_profile(env_id).toxicity_reward:
        names.append("toxicity")
    return names + ["invalid_actions"]


def component(name: str, fairness_metric: str | None = None) -> Component:
    """The function computing component ``name`` from an episode record.

    Raises:
        UnknownNameError: ``name`` is not a component (with the closest names).
    """
    if name not in EPISODE_REWARDS:
        raise UnknownNameError("episode reward component", name, EPISODE_REWARDS)
    if name == "fairness":
        return lambda episode: episode_fairness(episode, str(fairness_metric))
    if name == "fairness_per_turn":
        return lambda episode: per_turn_fairness(episode, str(fairness_metric))
    return {"task_return": task_return, "toxicity": toxicity, "invalid_actions": invalid_actions}[name]


def check_weights(env_id: str, weights: dict[str, float], metric: str | None) -> None:
    """A non-zero weight on a component the env cannot define is an error before training, naming the fix."""
    usable = applicable_components(env_id, metric)
    for name, weight in weights.items():
        if weight and name not in usable:
            raise ValueError(f"TrainConfig.reward_weights.{name}={weight} but {env_id} episodes do not define "
                             f"{name!r} (usable here: {', '.join(usable)}); set its weight to 0"
                             + (" or name a fairness_metric." if name.startswith("fairness") else "."))
    if metric is not None and not metric.startswith("fairness/"):
        raise ValueError(f"TrainConfig.fairness_metric={metric!r} must be a 'fairness/...' key of compute_metrics, "
                         "e.g. 'fairness/equal_opportunity_difference'.")


def make_episode_reward_funcs(env_id: str, weights: dict[str, float],
                              fairness_metric: str | None = None) -> tuple[list[Callable], list[float]]:
    """TRL reward functions, one per component the env defines, named after it, and their weights.

    Each function reads the ``episode`` column the rollout function adds (one record per rollout), so TRL logs
    ``rewards/<component>/mean`` and sums them with ``GRPOConfig.reward_weights``.
    """
    metric = fairness_metric_for(env_id, fairness_metric)
    check_weights(env_id, weights, fairness_metric)
    funcs, out_weights = [], []
    for name in applicable_components(env_id, fairness_metric):
        funcs.append(_reward_func(name, component(name, metric)))
        out_weights.append(float(weights.get(name, EPISODE_REWARDS[name])))
    return funcs, out_weights


def _reward_func(name: str, compute: Component) -> Callable:
    def reward(prompts: list, completions: list, episode: list[dict[str, Any]], **kw: Any) -> list[float | None]:
        return [compute(record) for record in episode]

    reward.__name__ = name  # TRL logs each reward function under its __name__
    return reward
