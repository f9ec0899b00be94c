"""Threshold policies for Lending computed from the env's known parameters (max-utility and equal opportunity).

Every policy here is a *monotone threshold* per group: every bin above the group's threshold bin is approved,
the threshold (boundary) bin with a probability, the bins below denied. Bins that hold no mass when the policy
is computed are treated the same way (above the threshold: approved), so applicants whose scores drift into an
empty top bin are approved, not denied.

For a group with score-bin distribution ``d`` and repayment probabilities ``p``, approving bins from the top
down traces the group's ROC curve: the true-positive rate (share of would-repay applicants approved) and the
expected profit both move bin by bin, linearly within the boundary bin. The equal-opportunity policy picks one
true-positive rate ``t`` shared by every group and, per group, the top bins that reach it, choosing the ``t``
that maximises expected profit weighted by group proportions (ml-fairness-gym's equal-opportunity agent, with
exact randomised thresholds); the optimum of these piecewise-linear profits lies on a breakpoint of some
group's curve, so only those are tried. The max-utility policy is one group-blind threshold: the top bins whose
pooled expected profit is largest (with the repayment probabilities rising with the score, exactly the bins
above break-even, ``p > loan / (loan + interest)``).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

EMPTY_BIN_MASS = 1e-6  # the weight an empty bin gets when choosing the max-utility threshold (breaks ties by p)


@dataclass(frozen=True)
class LendingParams:
    """What the threshold agents know about a Lending env."""

    groups: tuple[str, ...]
    proportions: np.ndarray  # (groups,)
    distributions: np.ndarray  # (groups, bins)
    repay: np.ndarray  # (bins,)
    loan: float
    interest_rate: float
    score_shift: float = 0.0

    @classmethod
    def from_env(cls, env: Any) -> LendingParams:
        """Read the parameters of a ``LendingEnv`` (its initial score distributions)."""
        env = getattr(env, "unwrapped", env)
        return cls(groups=tuple(env.groups), proportions=np.asarray(env.group_proportions, dtype=float),
                   distributions=np.asarray(env.initial_distributions, dtype=float),
                   repay=np.asarray(env.repay_probabilities, dtype=float), loan=float(env.loan_amount),
                   interest_rate=float(env.interest_rate), score_shift=float(env.score_shift))

    def with_distributions(self, distributions: np.ndarray) -> LendingParams:
        """The same env with other (e.g. the current) score distributions."""
        return dataclasses.replace(self, distributions=np.asarray(distributions, dtype=float))


def expected_profit(params: LendingParams) -> np.ndarray:
    """Expected profit of approving one applicant of each bin: ``p * interest * loan - (1 - p) * loan``."""
    return params.repay * params.interest_rate * params.loan - (1 - params.repay) * params.loan


@dataclass(frozen=True)
class ThresholdPolicy:
    """Per-group approval probabilities by bin (1 above the threshold, a fraction at it, 0 below).

    ``tpr`` is the common true-positive rate of an equal-opportunity policy (``None`` for max-utility).
    """

    approve: dict[str, np.ndarray]
    tpr: float | None = None

    def approve_probability(self, group: str, bin_: int) -> float:
        if group not in self.approve:
            raise ValueError(f"group {group!r} is not one of the calibrated groups {sorted(self.approve)}.")
        return float(self.approve[group][bin_])


class _Curve:
    """One group's ROC curve from the top bin down: positives and expected profit per bin (top bin first) and
    their sums over the top ``k`` bins (``k = 0 .. bins``). Plain floats: with a handful of bins, recomputed
    after every approval, Python arithmetic is faster than numpy's per-call overhead."""

    def __init__(self, dist: list[float], repay: list[float], profit: list[float]) -> None:
        self.positives = [d * r for d, r in zip(dist, repay, strict=True)][::-1]
        self.profit = [d * p for d, p in zip(dist, profit, strict=True)][::-1]
        self.cum_positives = list(itertools.accumulate(self.positives, initial=0.0))
        self.cum_profit = list(itertools.accumulate(self.profit, initial=0.0))
        self.total = self.cum_positives[-1]

    def breakpoints(self) -> list[float]:
        return [c / self.total for c in self.cum_positives] if self.total > 0 else []

    def profits_at(self, tprs: list[float]) -> list[float]:
        """Expected profit of the monotone threshold reaching each rate of ``tprs`` (ascending): the top
        ``full`` bins approved (``cum[full] < need <= cum[full + 1]``), the next one in part."""
        out, full, last = [], 0, len(self.positives) - 1
        for tpr in tprs:
            need = tpr * self.total
            if need <= 1e-12:
                out.append(0.0)
                continue
            while full < last and self.cum_positives[full + 1] < need:
                full += 1
            at = self.positives[full]
            share = min((need - self.cum_positives[full]) / at, 1.0) if at else 0.0
            out.append(self.cum_profit[full] + share * self.profit[full])
        return out

    def approve_at(self, tpr: float) -> np.ndarray:
        """Approval probability per bin (bottom bin first) of the monotone threshold reaching ``tpr``: bins are
        approved from the top down (empty ones too, at no cost) until the rate is reached."""
        approve = np.zeros(len(self.positives))
        need = tpr * self.total
        for b, positives in enumerate(self.positives):
            if need <= 1e-12:
                break
            approve[b] = 1.0 if positives < need else need / positives
            need -= positives
        return approve[::-1].copy()


def equal_opportunity_policy(params: LendingParams) -> ThresholdPolicy:
    """The most profitable per-group monotone randomised thresholds whose true-positive rates are all equal.

    A group with no would-repay mass at all has no true-positive rate to equalise; it is denied.
    """
    repay, profit = params.repay.tolist(), expected_profit(params).tolist()
    curves = [_Curve(dist, repay, profit) for dist in params.distributions.tolist()]
    weighted = [(w, c) for w, c in zip(params.proportions.tolist(), curves, strict=True) if c.total > 0]
    candidates = sorted({0.0, 1.0, *(min(t, 1.0) for c in curves for t in c.breakpoints())})
    totals = [sum(column) for column in zip(*([w * p for p in c.profits_at(candidates)] for w, c in weighted),
                                            strict=True)] or [0.0] * len(candidates)
    best = candidates[totals.index(max(totals))]  # the first best: ties go to the lowest rate
    return ThresholdPolicy(approve={g: c.approve_at(best) for g, c in zip(params.groups, curves, strict=True)},
                           tpr=best)


def max_utility_policy(params: LendingParams) -> ThresholdPolicy:
    """One group-blind monotone threshold: the top bins with the largest pooled expected profit.

    Empty bins count with a tiny mass (:data:`EMPTY_BIN_MASS`), so their own expected profit decides ties: an
    empty top bin worth lending to is approved.
    """
    pooled = params.proportions @ params.distributions + EMPTY_BIN_MASS
    gains = np.concatenate([[0.0], np.cumsum((pooled * expected_profit(params))[::-1])])  # top k bins approved
    top = int(np.argmax(gains))
    approve = np.zeros(len(params.repay))
    approve[len(approve) - top:] = 1.0
    return ThresholdPolicy(approve={g: approve for g in params.groups})
