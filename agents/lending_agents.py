"""Lending's baseline agents: the max-utility and equal-opportunity thresholds, and the fair oracle's policy.

The threshold agents (``max-utility``, ``eo-threshold``) take ``recalibrate``: ``"every-step"`` (the default)
recomputes the policy from the episode's current score distributions after each approval, as ml-fairness-gym's
oracle agents do in its delayed-impact experiment; ``"initial"`` keeps the policy computed from the env's initial
distributions. To follow an episode the agent replays the env's credit dynamics (``fairgym.envs.lending.
shift_mass``) on the outcomes it is shown, so it needs every decision of the episode in order: with keys (the runner
gives exactly that), or without them from a loop that passes each episode at the same batch position (a plain
``env.step`` loop: position 0), followed by the turn in its info; a decision out of order is an error naming the
fix, never a silent fall back to the initial policy. They also take ``burnin``: approve the first ``burnin``
decisions of every episode before the policy starts, as ml-fairness-gym's agents do (its delayed-impact experiment
uses ``burnin=1``: the first applicant is approved). The policies' maths is ``fairgym.agents.lending_policy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fairgym.agents import lending_policy as lp
from fairgym.agents.base import DecisionKey
from fairgym.agents.baselines import BaselineAgent
from fairgym.envs import keys
from fairgym.envs.lending import shift_mass

RECALIBRATE = ("every-step", "initial")


@dataclass
class _EpisodeView:
    """What a recalibrating threshold agent knows of one live episode."""

    distributions: np.ndarray  # (groups, bins): the episode's current score distributions
    policy: lp.ThresholdPolicy
    turn: int
    group: int  # index of the pending decision's group


class LendingThresholdAgent(BaselineAgent):
    """Shared by the Lending threshold agents: a ``ThresholdPolicy`` from the env's known parameters, kept per
    episode and recomputed after every approval (``recalibrate="every-step"``) or fixed (``"initial"``).

    Subclasses implement ``_policy(params) -> ThresholdPolicy``.
    """

    def __init__(self, recalibrate: str = "every-step", burnin: int = 0) -> None:
        super().__init__()
        if recalibrate not in RECALIBRATE:
            raise ValueError(f"{self.name}: recalibrate={recalibrate!r} must be one of {RECALIBRATE} "
                             "(every-step recomputes the thresholds after each approval, initial never does).")
        if isinstance(burnin, bool) or not isinstance(burnin, int) or burnin < 0:
            raise ValueError(f"{self.name}: burnin={burnin!r} must be a whole number >= 0 (decisions approved "
                             "at the start of each episode before the policy starts).")
        self.recalibrate = recalibrate
        self.burnin = burnin
        self.params: lp.LendingParams | None = None
        self.policy: lp.ThresholdPolicy | None = None
        self._episodes: dict[int, _EpisodeView] = {}

    def _policy(self, params: lp.LendingParams) -> lp.ThresholdPolicy:
        raise NotImplementedError

    def calibrate(self, env: Any) -> None:
        super().calibrate(env)
        self.params = lp.LendingParams.from_env(env)
        self.policy = self._policy(self.params)
        self._episodes.clear()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._episodes.clear()

    def current_policy(self, info: dict[str, Any], key: DecisionKey | None) -> lp.ThresholdPolicy:
        """The policy for this decision: the episode's, updated with the outcome of its previous decision."""
        if self.policy is None or self.params is None:
            raise RuntimeError(f"{self.name} needs calibrate(env) first (the runner calls it).")
        if self.recalibrate == "initial" or key is None:
            return self.policy
        view = self._follow(info, key, self.params, self.policy)
        view.group = self.params.groups.index(info[keys.GROUP])
        return view.policy

    def _follow(self, info: dict[str, Any], key: DecisionKey, params: lp.LendingParams,
                initial: lp.ThresholdPolicy) -> _EpisodeView:
        view = self._episodes.get(key.episode_seed)
        if key.turn == 0:
            view = _EpisodeView(params.distributions.copy(), initial, turn=0, group=-1)
            self._episodes[key.episode_seed] = view
            return view
        if view is None or key.turn != view.turn + 1:
            seen = "none" if view is None else f"turn {view.turn}"
            raise ValueError(f"{self.name} with recalibrate='every-step' follows each episode from its first decision "
                             f"in order; episode seed {key.episode_seed} came at turn {key.turn} after {seen}. "
                             "Pass every decision of the episode, or use recalibrate='initial'.")
        outcome = info.get(keys.OUTCOME) or {}
        if outcome.get("approved"):  # only an approval moves a group's scores (and so the policy)
            shift_mass(view.distributions[view.group], int(outcome["bin"]), up=bool(outcome["would_repay"]),
                       amount=params.score_shift)
            view.policy = self._policy(params.with_distributions(view.distributions))
            self.stats.extra["recalibrations"] = self.stats.extra.get("recalibrations", 0) + 1
        view.turn = key.turn
        return view

    def in_burnin(self, key: DecisionKey | None) -> bool:
        """Whether this decision falls in the episode's burn-in (approved whatever the policy says)."""
        if not self.burnin:
            return False
        if key is None:
            raise ValueError(f"{self.name} with burnin={self.burnin} needs each decision's DecisionKey (its turn); "
                             "pass decision_keys= as the runner does, or use burnin=0.")
        return key.turn < self.burnin


class MaxUtilityAgent(LendingThresholdAgent):
    """Lending: approve when the applicant's expected profit is positive; one rule for every group.

    With the env's parameters (``calibrate``) it approves the top score bins with the largest pooled expected
    profit (``lending_policy.max_utility_policy``: with repayment rising with the score, the bins above the
    break-even ``loan / (loan + interest)``); with ``threshold`` it approves scores ``>= threshold`` instead.

    Args:
        threshold: an explicit credit-score threshold; ``None`` reads the break-even from the env.
        recalibrate: ``"every-step"`` (default) or ``"initial"`` (see the module docstring).
        burnin: decisions approved at the start of each episode before the policy starts (default 0).
    """

    name = "max-utility"

    def __init__(self, threshold: float | None = None, recalibrate: str = "every-step", burnin: int = 0) -> None:
        super().__init__(recalibrate, burnin)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise TypeError(f"max-utility: threshold={threshold!r} must be a number (a credit score) or None.")
        self.threshold = threshold

    def _policy(self, params: lp.LendingParams) -> lp.ThresholdPolicy:
        return lp.max_utility_policy(params)

    @property
    def approve_bins(self) -> frozenset[int] | None:
        """The bins the calibration-time policy approves (``None`` before ``calibrate``)."""
        if self.policy is None:
            return None
        return frozenset(np.flatnonzero(next(iter(self.policy.approve.values())) > 0).tolist())

    def _decide_keyed(self, observation, info, key, rng):
        context = info[keys.CONTEXT]
        if self.threshold is not None:
            approve = context["score"] >= self.threshold
        elif self.policy is None:
            raise RuntimeError("max-utility needs calibrate(env) (the runner calls it) or an explicit threshold.")
        else:
            approve = self.current_policy(info, key).approve_probability(info[keys.GROUP], context["bin"]) > 0.5
        if self.in_burnin(key):
            return "approve", {"approve_probability": 1.0, "burnin": True}
        return ("approve" if approve else "deny"), {"approve_probability": float(approve)}

    def _decide(self, observation, info, rng):
        return self._decide_keyed(observation, info, None, rng)


class EqualOpportunityAgent(LendingThresholdAgent):
    """Lending: per-group (randomised) monotone score thresholds with equal true-positive rates, the most
    profitable such.

    ``calibrate(env)`` reads each group's score-bin distribution, the bins' repayment probabilities and the loan
    terms, and picks the common true-positive rate that maximises expected profit (``lending_policy.
    equal_opportunity_policy``), as ml-fairness-gym's equal-opportunity agent does. With ``recalibrate=
    "every-step"`` (default) the thresholds follow each episode's score drift, recomputed after every approval
    as in ml-fairness-gym's delayed-impact experiment; with ``"initial"`` they stay those of the initial
    distributions.

    Args:
        recalibrate: ``"every-step"`` (default) or ``"initial"``.
        burnin: decisions approved at the start of each episode before the policy starts (default 0).
    """

    name = "eo-threshold"

    def _policy(self, params: lp.LendingParams) -> lp.ThresholdPolicy:
        return lp.equal_opportunity_policy(params)

    def _decide_keyed(self, observation, info, key, rng):
        policy = self.current_policy(info, key)  # first: it follows the episode's outcomes, burn-in ones too
        if self.in_burnin(key):
            return "approve", {"approve_probability": 1.0, "target_tpr": policy.tpr, "burnin": True}
        p = policy.approve_probability(info[keys.GROUP], info[keys.CONTEXT]["bin"])
        approve = p >= 1.0 or (p > 0.0 and rng.random() < p)  # draw only at the randomised boundary bin
        return ("approve" if approve else "deny"), {"approve_probability": p, "target_tpr": policy.tpr}

    def _decide(self, observation, info, rng):
        return self._decide_keyed(observation, info, None, rng)


class LendingOracle(MaxUtilityAgent):
    """The fair oracle on Lending: the group-blind break-even threshold of the initial distributions (or
    ``threshold``), fixed over the episode."""

    name = "fair-oracle"

    def __init__(self, threshold: float | None = None) -> None:
        super().__init__(threshold, recalibrate="initial")
