"""Allocation's baseline policies: a random split of the budget, and the fair oracle's found-rate rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairgym.agents.baselines import BaselineAgent
from fairgym.envs import keys
from fairgym.envs.allocation import Allocation
from fairgym.envs.allocation import format_action as format_allocation_action


def format_allocation(sites: list[str], units: np.ndarray) -> str:
    """``["North", "South"], [2, 4]`` -> ``"North=2, South=4"`` (the Allocation grammar)."""
    return format_allocation_action(Allocation(units={s: int(n) for s, n in zip(sites, units, strict=True)}))


def split_budget(weights: np.ndarray, budget: int) -> np.ndarray:
    """Integer units proportional to ``weights`` summing to ``budget`` (largest remainders)."""
    exact = budget * weights / weights.sum()
    units = np.floor(exact).astype(int)
    order = np.argsort(-(exact - units), kind="stable")
    units[order[: budget - units.sum()]] += 1
    return units


def random_allocation(context: dict[str, Any], rng: np.random.Generator) -> str:
    """A uniformly random split of the budget over the sites."""
    sites = list(context["sites"])
    units = rng.multinomial(int(context["budget"]), np.full(len(sites), 1.0 / len(sites)))
    return format_allocation(sites, units)


class RandomAllocation(BaselineAgent):
    """Allocation's random policy: a uniformly random split of the budget over the sites."""

    name = "random"

    def _decide(self, observation, info, rng):
        return random_allocation(info[keys.CONTEXT], rng), None


class AllocationOracle(BaselineAgent):
    """The fair oracle on Allocation: units proportional to each site's smoothed found rate (found incidents per
    unit sent, with a prior of ``prior`` incidents over ``prior`` units), mixed with ``explore`` of an even split,
    and with ``explore > 0`` one unit per site first (when the budget allows) so no site starves; site groups and
    hidden rates are never read. The units sent come from ``context["allocated_totals"]`` when the env provides
    them; without them the rate's denominator is the prior alone, i.e. smoothed found counts.

    Args:
        explore: share of the budget spread evenly (0..1).
        prior: pseudo-counts smoothing the found rates.
    """

    name = "fair-oracle"

    def __init__(self, explore: float = 0.2, prior: float = 1.0) -> None:
        super().__init__()
        self.explore, self.prior = float(explore), float(prior)

    def _decide(self, observation, info, rng):
        context = info[keys.CONTEXT]
        sites = list(context["sites"])
        found = np.array([context["found_totals"].get(s, 0) for s in sites], dtype=float)
        sent = np.array([(context.get("allocated_totals") or {}).get(s, 0) for s in sites], dtype=float)
        rates = (found + self.prior) / (sent + self.prior)
        weights = (1 - self.explore) * rates / rates.sum() + self.explore / len(sites)
        budget = int(context["budget"])
        floor = np.ones(len(sites), dtype=int) if self.explore > 0 and budget >= len(sites) else 0
        units = floor + split_budget(weights, budget - int(np.sum(floor)))
        return format_allocation(sites, units), {"weights": [round(float(w), 6) for w in weights]}
