"""Threshold policies for Lending computed from the env's known parameters (max-utility and equal opportunity).

For a group with score-bin distribution ``d`` and repayment probabilities ``p``, approving bins from the top
down traces the group's ROC curve: the true-positive rate (share of would-repay applicants approved) and the
expected profit both grow bin by bin. The equal-opportunity policy picks one true-positive rate ``t`` shared by
every group and, per group, the top bins that reach it (the boundary bin approved with a probability), choosing
the ``t`` that maximises expected profit weighted by group proportions (ml-fairness-gym's equal-opportunity
agent, with exact randomised thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LendingParams:
    """What the threshold agents know about a Lending env."""

    groups: tuple[str, ...]
    proportions: np.ndarray  # (groups,)
    distributions: np.ndarray  # (groups, bins)
    repay: np.ndarray  # (bins,)
    loan: float
    interest_rate: float

    @classmethod
    def from_env(cls, env: Any) -> LendingParams:
        """Read the parameters of a ``LendingEnv`` (its initial score distributions)."""
        env = getattr(env, "unwrapped", env)
        return cls(groups=tuple(env.groups), proportions=np.asarray(env.group_proportions, dtype=float),
                   distributions=np.asarray(env.initial_distributions, dtype=float),
                   repay=np.asarray(env.repay_probabilities, dtype=float), loan=float(env.loan_amount),
                   interest_rate=float(env.interest_rate))


def expected_profit(params: LendingParams) -> np.ndarray:
    """Expected profit of approving one applicant of each bin: ``p * interest * loan - (1 - p) * loan``."""
    return params.repay * params.interest_rate * params.loan - (1 - params.repay) * params.loan


@dataclass(frozen=True)
class ThresholdPolicy:
    """Per-group approval probabilities by bin (1 above the threshold, a fraction at it, 0 below)."""

    approve: dict[str, np.ndarray]
    tpr: float

    def approve_probability(self, group: str, bin_: int) -> float:
        if group not in self.approve:
            raise ValueError(f"group {group!r} is not one of the calibrated groups {sorted(self.approve)}.")
        return float(self.approve[group][bin_])


def _fill_to_tpr(dist: np.ndarray, repay: np.ndarray, tpr: float) -> np.ndarray:
    """Approval probability per bin, approving from the top bin down until the true-positive rate is ``tpr``."""
    positives = dist * repay
    need = tpr * positives.sum()
    approve = np.zeros_like(dist)
    for b in range(len(dist) - 1, -1, -1):
        if need <= 1e-12:
            break
        if positives[b] <= 0:  # approving never-repaying applicants adds loss and no true positive
            continue
        approve[b] = min(1.0, need / positives[b])
        need -= approve[b] * positives[b]
    return approve


def _candidate_tprs(params: LendingParams) -> np.ndarray:
    """Every group's ROC breakpoints: the optimum of a piecewise-linear concave profit lies on one of them."""
    points = [0.0, 1.0]
    for dist in params.distributions:
        positives = dist * params.repay
        if positives.sum() > 0:
            points += list(np.cumsum(positives[::-1]) / positives.sum())
    return np.unique(np.clip(points, 0.0, 1.0))


def equal_opportunity_policy(params: LendingParams) -> ThresholdPolicy:
    """The most profitable per-group randomised thresholds whose true-positive rates are all equal."""
    profit = expected_profit(params)

    def policy_at(tpr: float) -> dict[str, np.ndarray]:
        return {g: _fill_to_tpr(d, params.repay, tpr) for g, d in zip(params.groups, params.distributions,
                                                                      strict=True)}

    def total(approve: dict[str, np.ndarray]) -> float:
        return float(sum(w * (d * approve[g] * profit).sum() for g, w, d in
                         zip(params.groups, params.proportions, params.distributions, strict=True)))

    best = max(_candidate_tprs(params), key=lambda t: total(policy_at(float(t))))
    return ThresholdPolicy(approve=policy_at(float(best)), tpr=float(best))
