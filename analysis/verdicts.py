"""What a number cannot say: the flags a run report, a printed summary and the sweep report put beside metrics.

- :func:`policy_verdict`: whether a policy imitates the fair teacher or closed its group gap by collapsing to one
  decision (approval rate within a margin of 0 or 1: every gap is then 0 whatever the bias). The sweep report's
  ``policy`` column and the run report's warning both come from it.
- :func:`thin_groups`: groups whose metrics rest on too few decisions to compare: a rate over ``n`` decisions has a
  95% interval up to about ``±1/sqrt(n)`` wide.
- :func:`run_flags`: both, as sentences, for one run's metrics and its family profile (the profile names the
  approval metric; no family is named here).
"""

from __future__ import annotations

import math
from typing import Any

from fairgym.envs.profiles import FamilyProfile

COLLAPSE_MARGIN = 0.05  # an approval rate within this of 0 or 1 is a collapsed policy (the sweep's default too)
MIN_AGREEMENT = 0.9  # fewer decisions equal to the teacher's than this share: "low agreement"
MIN_GROUP_DECISIONS = 30  # fewer decisions than this in a group: its rates are too uncertain to compare
DECISIONS = "task/decisions"  # per group: the decisions its metrics rest on (``task/decisions/<group>``)


def policy_verdict(approval_rate: float | None, agreement: float | None, collapse_margin: float = COLLAPSE_MARGIN,
                   min_agreement: float = MIN_AGREEMENT) -> str:
    """Whether a policy imitates the fair teacher or closed its gap by collapsing.

    ``"collapsed: approves all"`` / ``"collapsed: denies all"`` when the approval rate is within
    ``collapse_margin`` of 1 / 0 (the group gap is then 0 whatever the bias); ``"low agreement"`` when fewer than
    ``min_agreement`` of its decisions equal the teacher's; else ``"imitates teacher"``. Only the last counts as
    debiased. ``"n/a"`` without an approval rate.
    """
    if approval_rate is None or math.isnan(approval_rate):
        return "n/a"
    if approval_rate >= 1 - collapse_margin:
        return "collapsed: approves all"
    if approval_rate <= collapse_margin:
        return "collapsed: denies all"
    if agreement is not None and not math.isnan(agreement) and agreement < min_agreement:
        return "low agreement"
    return "imitates teacher"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def collapse_flag(metrics: dict[str, Any], profile: FamilyProfile,
                  collapse_margin: float = COLLAPSE_MARGIN) -> str | None:
    """A sentence when the run's policy collapsed to one decision (``policy_verdict`` on the profile's approval
    metric over all groups), else ``None`` (also for a family without an approval metric)."""
    if profile.approval_metric is None:
        return None
    rate = _number(metrics.get(profile.approval_metric))
    verdict = policy_verdict(rate, None, collapse_margin)
    if not verdict.startswith("collapsed") or rate is None:
        return None
    return (f"collapsed policy ({verdict.split(': ')[1]}): `{profile.approval_metric}` = {rate:.3g}, within "
            f"{collapse_margin} of {'1' if rate > 0.5 else '0'}. Every between-group gap is then 0 whatever the "
            "bias, so a parity difference of 0 here does not mean the policy is fair.")


def group_decisions(metrics: dict[str, Any]) -> dict[str, float]:
    """``{group: decisions}`` from the run's ``task/decisions/<group>`` counts."""
    prefix = DECISIONS + "/"
    return {k[len(prefix):]: float(v) for k, v in metrics.items()
            if k.startswith(prefix) and "/" not in k[len(prefix):] and _number(v) is not None}


def thin_groups(metrics: dict[str, Any], min_decisions: int = MIN_GROUP_DECISIONS) -> dict[str, int]:
    """The groups with fewer than ``min_decisions`` decisions, and how many they have."""
    return {g: int(n) for g, n in group_decisions(metrics).items() if n < min_decisions}


def thin_groups_flag(metrics: dict[str, Any], min_decisions: int = MIN_GROUP_DECISIONS) -> str | None:
    """A sentence naming the groups with too few decisions for their metrics, else ``None``."""
    thin = thin_groups(metrics, min_decisions)
    if not thin:
        return None
    listed = ", ".join(f"{g}: {n}" + (f" (95% interval of a rate up to ±{0.98 / math.sqrt(n):.2f})" if n else "")
                       for g, n in thin.items())
    return (f"too few decisions to compare groups ({listed}; fewer than {min_decisions}): their per-group rates "
            "and every gap between groups are noise at this size. Run more episodes (or --balance-groups).")


def run_flags(metrics: dict[str, Any], profile: FamilyProfile, collapse_margin: float = COLLAPSE_MARGIN,
              min_decisions: int = MIN_GROUP_DECISIONS) -> list[str]:
    """Every flag of one run's metrics: a collapsed policy, groups with too few decisions."""
    return [f for f in (collapse_flag(metrics, profile, collapse_margin), thin_groups_flag(metrics, min_decisions))
            if f]
