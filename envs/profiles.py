"""What an env family means to the rest of fairgym, declared once on the env class as its ``profile``.

A profile is the one home of a family's meaning: its metric functions and headline metrics, its figures, the
outcome fields its W&B step table shows, the fairness metric its episode rewards penalise by default, its teachers
and the baseline policies that play it. Metrics, reports, W&B, rewards and agents ask the profile
(``fairgym.envs.env_profile``); none of them branches on a family's name. A new family declares its own profile
on its class and needs no edit anywhere else (``tests/test_new_env_family.py``).

Functions are named by reference: a callable, or a ``"module:attr"`` string imported on first use (as Gymnasium
names env classes), so this layer never imports the analysis or agent code a profile points to.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Ref = Any  # an object (a function, a class, a mapping), or "module:attr" naming one; None for none


def resolve(ref: Ref) -> Any:
    """The object a reference names: ``ref`` itself, the ``attr`` of ``"module:attr"`` (imported now), or None."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"profile reference {ref!r} must be an object or 'module:attr'.")
    return getattr(importlib.import_module(module), attr)


class ArmSeries(NamedTuple):
    """A metric over the episode's turns, drawn per arm in the sweep report as ``<name>_<Env-vN>.png``: one line
    per arm (its all-groups series), or with ``by_group`` one panel per arm with a line per group."""

    name: str
    metric: str
    by_group: bool
    title: str


INVALID_SERIES = ArmSeries("invalid", "format/invalid_action_rate_cumulative", False, "cumulative invalid-action rate")


@dataclass(frozen=True)
class FamilyProfile:
    """One env family's meaning.

    Attributes:
        family: the family's name (``"Lending"``); it survives a version bump of the env id.
        metrics: ``(episodes, frame, groups) -> {key: float}``: the family's cumulative metrics (beside the
            generic ones every env gets); ``frame`` is ``fairgym.analysis.trajectories.step_frame(episodes)``.
        trajectories: ``(episodes, frame, groups) -> {metric: {group: [per turn]}}``.
        bands: ``(episodes, frame, groups) -> {metric + BAND_LOW / BAND_HIGH: {group: [per turn]}}``: the
            interval over episodes drawn around the family's per-turn curves (``fairgym.analysis.bands``).
        figures: ``(metrics, trajectories) -> {name: matplotlib Figure}``, the run report's family plots.
        figure_notes: plot name -> "how to read it", printed under each figure of the run report (a mapping or
            its reference).
        headline: ``(metric key, column title)`` of the sweep table, residual-bias metrics first.
        bias_metrics: the headline keys that measure a residual bias (plotted against rank).
        optional_metrics: headline keys shown only when some arm's metrics hold them (e.g. an LLM judge's).
        approval_metric: the per-group approval-rate key, for the collapse verdict and the per-group sweep table
            (``None``: the family has no single decision to collapse to).
        agreement_metric: the key of agreement with the fair teacher, beside the approval rate.
        legend: sentences explaining the family's sweep-table columns.
        compounding: ``{series name: (trajectories) -> [per turn]}`` (or its reference): the series of a bias that
            compounds over the episode, drawn in the sweep report with intervals over seeds.
        sweep_series: the per-arm trajectory figures of the sweep report (``ArmSeries``).
        wandb_columns: outcome fields shown in the W&B step table.
        optional_wandb_columns: outcome fields shown only when some step holds them.
        fairness_metric: the ``fairness/`` metric the episode rewards' fairness terms penalise by default.
        toxicity_reward: whether episodes are scored for toxicity (the episode reward's toxicity term applies).
        training_data: the dataset kind SFT and GRPO build by default (``"demonstrations"``, ``"detox"``).
        fair_teacher: the agent that demonstrates the fair policy (SFT data, the report's reference row).
        biased_teacher: the agent that demonstrates the bias an implant trains in (and DPO's rejected side).
        tools: the class exposing the family's decisions as tools to TRL's ``environment_factory`` (or its
            reference; ``fairgym.training.tool_env``).
        policies: agent name -> ``"module:Class"`` of the policy that plays this family for that agent (e.g. the
            fair oracle's allocation rule); an agent applies to the family when it is named here (agents that
            play any closed set of choices apply wherever decisions are choices).
    """

    family: str
    metrics: Ref = None
    trajectories: Ref = None
    bands: Ref = None
    figures: Ref = None
    figure_notes: Ref = field(default_factory=dict)
    headline: tuple[tuple[str, str], ...] = ()
    bias_metrics: tuple[str, ...] = ()
    optional_metrics: tuple[str, ...] = ()
    approval_metric: str | None = None
    agreement_metric: str | None = None
    legend: str = ""
    compounding: Ref = None
    sweep_series: tuple[ArmSeries, ...] = (INVALID_SERIES,)
    wandb_columns: tuple[str, ...] = ()
    optional_wandb_columns: tuple[str, ...] = ()
    fairness_metric: str | None = None
    toxicity_reward: bool = False
    training_data: str = "demonstrations"
    fair_teacher: str = "fair-oracle"
    biased_teacher: str | None = None
    tools: Ref = None
    policies: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise ValueError(f"FamilyProfile.family={self.family!r} must be a non-empty name, e.g. 'Lending'.")


def generic_profile(family: str) -> FamilyProfile:
    """The profile of a family that declares none: generic metrics only, no family figures or headline."""
    return FamilyProfile(family=family)
