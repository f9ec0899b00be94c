"""Cross-check for ``benchmarks/delayed_impact.py``: the delayed-impact experiment as ml-fairness-gym computes it.

An independent re-implementation (not fairgym's code paths) of what ml-fairness-gym's acm_fat_2020 lending run
does: the oracle threshold agent rebuilds its training corpus from the env's current score distributions
before every decision and re-fits after every approval; each (bin, label) example weighs ``mass * P + 1e-6``;
each group's ROC curve is ``sklearn.metrics.roc_curve`` on those weights (``drop_intermediate`` included:
checked against sklearn with ``--check``); equal opportunity picks the common TPR with scipy's bounded
``minimize_scalar`` and randomises between the two adjacent ROC thresholds; max-reward is one group-blind
threshold (the same search on the pooled corpus, "smoothed" to one value); burn-in 1 (the first applicant is
approved); equal group proportions, score shift 0.01, 20,000 steps. Its random streams are its own, so single
seeds do not match fairgym's; the distributions over seeds are what to compare.

Usage:
    python benchmarks/delayed_impact_reference.py [--seeds 8] [--steps 20000] [--check]
"""

from __future__ import annotations

import argparse
import bisect
import json
from pathlib import Path

import numpy as np
import scipy.optimize

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
REPAY = (0.1, 0.2, 0.45, 0.6, 0.65, 0.7, 0.7)
DISADVANTAGED, ADVANTAGED = (0.1, 0.1, 0.2, 0.3, 0.3, 0.0, 0.0), (0.0, 0.1, 0.1, 0.2, 0.3, 0.3, 0.0)
SHIFT, EXAMPLE_WEIGHT = 0.01, 1e-6


def roc(dist: list[float], copies: int = 1) -> tuple[list[float], list[float], list[float]]:
    """(TPR, threshold, profit) per ROC point, from approving no bin (threshold inf) down to every bin."""
    pos = np.array([p * w + copies * EXAMPLE_WEIGHT for w, p in zip(dist, REPAY, strict=True)])[::-1]
    neg = np.array([(1 - p) * w + copies * EXAMPLE_WEIGHT for w, p in zip(dist, REPAY, strict=True)])[::-1]
    tps, fps, thr = np.cumsum(pos), np.cumsum(neg), np.arange(len(dist) - 1, -1, -1, dtype=float)
    keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])  # sklearn's drop
    tps, fps, thr = np.r_[0, tps[keep]], np.r_[0, fps[keep]], np.r_[np.inf, thr[keep]]
    return (tps / tps[-1]).tolist(), thr.tolist(), (tps - fps).tolist()  # profit: +1 per repaid, -1 per default


def randomized(curve: tuple, target: float) -> tuple[list[float], list[float]]:
    """The thresholds (and their probabilities) reaching ``target`` TPR: the adjacent ROC points, interpolated."""
    tprs, thrs, _ = curve
    idx = bisect.bisect_left(tprs, target)
    if idx == len(tprs):
        return [thrs[-1]], [1.0]
    if tprs[idx] == target:
        return [thrs[idx]], [1.0]
    alpha = 1 - (target - tprs[idx - 1]) / (tprs[idx] - tprs[idx - 1])
    return [thrs[idx - 1], thrs[idx]], [alpha, 1 - alpha]


def profit(curve: tuple, target: float) -> float:
    values, weights = randomized(curve, target)
    return sum(w * curve[2][curve[1].index(v)] for v, w in zip(values, weights, strict=True))


def best_rate(curves: list[tuple]) -> float:
    return scipy.optimize.minimize_scalar(lambda t: -sum(profit(c, t) for c in curves), bounds=[0, 1],
                                          method="bounded", options={"maxiter": 100}).x


def equal_opportunity(dists: list[list[float]]) -> list[tuple[list[float], list[float]]]:
    curves = [roc(d) for d in dists]
    rate = best_rate(curves)
    return [randomized(c, rate) for c in curves]


def max_reward(dists: list[list[float]]) -> float:
    curve = roc([a + b for a, b in zip(*dists, strict=True)], copies=len(dists))
    values, weights = randomized(curve, best_rate([curve]))
    if len(weights) == 2 and min(weights) < 1e-4:  # "smoothed": snap an optimiser artefact to one threshold
        return values[int(np.argmax(weights))]
    return float(np.dot(weights, values))


def run(agent: str, seed: int, steps: int, burnin: int = 1) -> dict:
    """One episode; groups in fairgym's order (0 disadvantaged, 1 advantaged)."""
    env, rng = np.random.RandomState(seed), np.random.RandomState(seed + 1000)
    dists = [list(DISADVANTAGED), list(ADVANTAGED)]
    marks = {0, steps // 2, steps}
    gaps, loans, positives, approved_positives = {}, [0, 0], [0, 0], [0, 0]
    policy, last_approved = None, True

    def applicant() -> tuple[int, int, bool]:
        group = int(env.random_sample() >= 0.5)
        cdf = np.cumsum(dists[group])
        bin_ = min(int(np.searchsorted(cdf / cdf[-1], env.random_sample(), side="right")), len(REPAY) - 1)
        return group, bin_, bool(env.random_sample() < REPAY[bin_])

    group, bin_, repays = applicant()
    for t in range(steps + 1):
        if t in marks:
            means = [float(np.dot(d, REPAY)) for d in dists]
            gaps[t] = means[1] - means[0]
        if t == steps:
            break
        if t < burnin:
            approve = True
        else:
            if last_approved:  # ml-fairness-gym skips re-fitting after a denial (nothing moved)
                policy = equal_opportunity(dists) if agent == "eo-threshold" else max_reward(dists)
            if agent == "eo-threshold":
                values, weights = policy[group]
                threshold = values[rng.choice(len(values), p=weights)]
            else:
                threshold = policy
            approve = bin_ >= threshold
        loans[group] += approve
        positives[group] += repays
        approved_positives[group] += approve and repays
        if approve:
            target = min(max(bin_ + (1 if repays else -1), 0), len(REPAY) - 1)
            moved = min(SHIFT, dists[group][bin_])
            dists[group][bin_] -= moved
            dists[group][target] += moved
        last_approved = approve
        group, bin_, repays = applicant()
    tpr = [approved_positives[g] / positives[g] for g in range(2)]
    return {"seed": seed, "loans": loans, "tpr": tpr, "tpr_gap": abs(tpr[1] - tpr[0]), "gap/reset": gaps[0],
            "gap/half": gaps[steps // 2], "gap/end": gaps[steps]}


def check_against_sklearn(trials: int = 200) -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    for _ in range(trials):
        dist = rng.dirichlet(np.full(7, 0.5))
        dist[rng.random(7) < 0.3] = 0
        dist = (dist / dist.sum()).tolist()
        labels = np.tile([0, 1], 7)
        scores = np.repeat(np.arange(7), 2)
        weights = np.ravel([[(1 - p) * w + EXAMPLE_WEIGHT, p * w + EXAMPLE_WEIGHT]
                            for w, p in zip(dist, REPAY, strict=True)])
        _, tpr, thr = roc_curve(labels, scores, sample_weight=weights)
        ours = roc(dist)
        assert np.allclose(tpr, ours[0]) and list(thr) == ours[1], (tpr, thr, ours)
    print(f"roc points equal sklearn.metrics.roc_curve on {trials} random distributions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--check", action="store_true", help="check the ROC points against sklearn first")
    args = parser.parse_args()
    if args.check:
        check_against_sklearn()
    results = {"steps": args.steps, "agents": {}}
    for agent in ("max-utility", "eo-threshold"):
        seeds = [run(agent, seed, args.steps) for seed in range(args.seeds)]
        summary = {k: float(np.mean([s[k] for s in seeds])) for k in ("tpr_gap", "gap/reset", "gap/half", "gap/end")}
        summary["widened/half"] = sum(s["gap/half"] > s["gap/reset"] for s in seeds)
        summary["widened/end"] = sum(s["gap/end"] > s["gap/reset"] for s in seeds)
        results["agents"][agent] = {"summary": summary, "seeds": seeds}
        print(agent, json.dumps({k: round(v, 4) for k, v in summary.items()}))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "delayed_impact_reference.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
