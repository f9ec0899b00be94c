"""The rank-sweep report: ``runs/<sweep>/report.md`` and ``plots/*.png``, answering "does LoRA at rank r remove
the bias as well as a full fine-tune?".

Reads what ``fairgym.training.sweep.run_sweep`` wrote (``config.yaml``, ``<arm>/status.json``, ``<arm>/<Env>/
episodes.jsonl``, ``<arm>/metrics.json``, ``diagnostics.json``) and needs no model. Numbers over seeds are shown as
mean ± the half-width of a 95% t-interval (one seed: the value alone). The same figures and table go to W&B as
one run in the sweep's group (offline unless ``WANDB_MODE`` says otherwise; never required).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fairgym.analysis.stats import seed_ci
from fairgym.analysis.trajectories import ALL
from fairgym.envs.records import read_episodes
from fairgym.runfiles import (
    CONFIG_FILE,
    DIAGNOSTICS_FILE,
    EPISODES_FILE,
    LEARNING_RATES_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    STATUS_FILE,
    arm_label,
    env_folder,
    read_json,
)

# env family -> (metric key, column title); the first ones are the residual-bias headline.
HEADLINE: dict[str, list[tuple[str, str]]] = {
    "Lending": [("fairness/demographic_parity_difference", "DP diff"),
                ("fairness/equal_opportunity_difference", "EO diff"), ("fairness/selection_rate", "approval rate"),
                ("task/teacher_agreement", "teacher agreement"), ("task/profit", "profit")],
    "Allocation": [("fairness/allocation_gap_max", "max share gap"), ("task/return_mean", "return")],
    "Dialogue": [("toxicity/mean", "toxicity"), ("toxicity/slope", "tox slope"),
                 ("toxicity/judge_mean", "judge toxicity"), ("bias/endorsement_rate", "endorsement rate")],
}
APPROVAL_KEY, AGREEMENT_KEY = "fairness/selection_rate", "task/teacher_agreement"
BIAS_KEYS = ("fairness/demographic_parity_difference", "fairness/equal_opportunity_difference",
             "fairness/allocation_gap_max", "toxicity/mean", "toxicity/judge_mean", "bias/endorsement_rate")
JUDGE_KEYS = ("toxicity/judge_mean", "bias/endorsement_rate")  # only where the env was judged (judge:<model>)


# ---- loading -------------------------------------------------------------------------------------------------
def load_sweep(sweep_dir: str | Path) -> dict[str, Any]:
    """Config, arms (status, metrics per env, label, rank, seed) and diagnostics of a sweep folder."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{str(sweep_dir)!r} is not a sweep folder (no {CONFIG_FILE}); run `fairgym sweep`.")
    config = yaml.safe_load((sweep_dir / CONFIG_FILE).read_text())
    arms = []
    for status_path in sorted(sweep_dir.glob(f"*/{STATUS_FILE}")):
        status = read_json(status_path)
        arm = dict(status.get("arm") or {"name": status_path.parent.name, "method": "base"})
        arm.update(state=status.get("state"), error=status.get("error"), seconds=status.get("seconds"),
                   dir=status_path.parent, metrics=read_json(status_path.parent / METRICS_FILE) or {})
        arm["label"] = arm_label(arm["name"], arm.get("seed"))
        arms.append(arm)
    arms.sort(key=_arm_order)
    return {"dir": sweep_dir, "config": config, "arms": arms,
            "diagnostics": read_json(sweep_dir / DIAGNOSTICS_FILE) or {},
            "learning_rates": read_json(sweep_dir / LEARNING_RATES_FILE) or {}}


def _arm_order(arm: dict[str, Any]) -> tuple:
    kind = {"teacher": -1, "base": 0, "full": 1}.get(arm.get("method"), 2)
    return kind, arm.get("variant") or "", arm.get("rank") or 0, arm.get("seed") or 0


def env_family(env_id: str) -> str:
    """``"fairgym/Lending-v0"`` -> ``"Lending"``."""
    return env_id.split("/")[-1].split("-v")[0]


def labels(sweep: dict[str, Any]) -> list[str]:
    """Arm labels (arms without their seed) in report order."""
    return list(dict.fromkeys(a["label"] for a in sweep["arms"]))


def by_label(sweep: dict[str, Any], label: str, done_only: bool = True) -> list[dict[str, Any]]:
    return [a for a in sweep["arms"] if a["label"] == label and (a["state"] == "done" or not done_only)]


def metric_values(sweep: dict[str, Any], label: str, env_id: str, key: str) -> list[float | None]:
    """One value per finished seed of ``label``."""
    return [a["metrics"].get(env_id, {}).get(key) for a in by_label(sweep, label)]


def diag_values(sweep: dict[str, Any], label: str, path: tuple[str, ...]) -> list[float | None]:
    """A diagnostic (``("kl_vs_base", "mean")``) per finished seed of ``label``."""
    out = []
    for arm in by_label(sweep, label):
        node: Any = sweep["diagnostics"].get("arms", {}).get(arm["name"], {})
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        out.append(node if isinstance(node, (int, float)) else None)
    return out


# ---- numbers -------------------------------------------------------------------------------------------------
def fmt_ci(values: list[float | None], digits: int = 3) -> str:
    """``mean ± half`` to ``digits`` significant digits (``mean`` alone for one seed; ``n/a`` with none)."""
    ci = seed_ci(values)
    if ci["n"] == 0:
        return "n/a"
    if ci["n"] == 1:
        return f"{ci['mean']:.{digits}g}"
    return f"{ci['mean']:.{digits}g} ± {ci['half_width']:.2g}"


def env_headline(sweep: dict[str, Any], env_id: str) -> list[tuple[str, str]]:
    """The env family's headline (key, title) pairs; the judge's only when some arm's metrics hold them."""
    return [(key, title) for key, title in HEADLINE.get(env_family(env_id), [])
            if key not in JUDGE_KEYS or any(key in a["metrics"].get(env_id, {}) for a in sweep["arms"])]


def headline_columns(sweep: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, key, title) per column: metrics per evaluated env, then the diagnostics."""
    cols = []
    envs = sweep["config"].get("eval", {}).get("envs", [])
    for env_id in envs:
        prefix = f"{env_family(env_id)} " if len(envs) > 1 else ""
        cols += [("metric:" + env_id, key, prefix + title) for key, title in env_headline(sweep, env_id)]
    cols += [("diag", "kl_vs_base.mean", "KL vs base"), ("diag", "kl_vs_full.mean", "KL vs full"),
             ("diag", "flip_rate.overall", "flip rate"), ("diag", "update.subspace_share", "full-update energy held"),
             ("diag", "intruders.total", "intruder dims")]
    return cols


def headline_table(sweep: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the arms × metrics table (mean ± 95% CI over seeds)."""
    cols = headline_columns(sweep)
    header = ["arm", "seeds done", "learning rate", *[c[2] for c in cols], "policy"]
    rows = []
    for label in labels(sweep):
        cells = [label, f"{len(by_label(sweep, label))}/{len(by_label(sweep, label, done_only=False))}",
                 learning_rate_cell(sweep, label)]
        for kind, key, _ in cols:
            values = (metric_values(sweep, label, kind.split(":", 1)[1], key) if kind.startswith("metric:")
                      else diag_values(sweep, label, tuple(key.split("."))))
            cells.append(fmt_ci(values))
        cells.append(label_verdict(sweep, label))
        rows.append(cells)
    return header, rows


def learning_rate_cell(sweep: dict[str, Any], label: str) -> str:
    """The arm's learning rate and how it was chosen (``grid`` or the rule), ``—`` for untrained rows."""
    entry = sweep.get("learning_rates", {}).get(label) or {}
    if "learning_rate" not in entry:
        return "failed" if "error" in entry else "—"
    return f"{entry['learning_rate']:.3g} ({'grid' if entry.get('rule') == 'grid' else 'rule'})"


def policy_verdict(approval_rate: float | None, agreement: float | None, collapse_margin: float = 0.05,
                   min_agreement: float = 0.8) -> str:
    """Whether a Lending policy imitates the fair teacher or closed its gap by collapsing.

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


def label_verdict(sweep: dict[str, Any], label: str) -> str:
    """``policy_verdict`` of each seed of ``label`` on the first Lending-like env (distinct verdicts joined)."""
    env_id = next((e for e in sweep["config"].get("eval", {}).get("envs", []) if env_family(e) == "Lending"), None)
    if env_id is None:
        return "—"
    settings = sweep["config"].get("eval", {})
    verdicts = [policy_verdict(_num(a["metrics"].get(env_id, {}).get(APPROVAL_KEY)),
                               _num(a["metrics"].get(env_id, {}).get(AGREEMENT_KEY)),
                               settings.get("collapse_margin", 0.05), settings.get("min_agreement", 0.8))
                for a in by_label(sweep, label)]
    return ", ".join(dict.fromkeys(verdicts)) or "n/a"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


# ---- plots ---------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lora_series(sweep: dict[str, Any]) -> dict[str, list[str]]:
    """Per series (``lora``, ``dora``, ...), its labels in rank order."""
    series: dict[str, list[str]] = defaultdict(list)
    for label in labels(sweep):
        arm = by_label(sweep, label, done_only=False)[0]
        if arm.get("method") == "lora":
            series[arm.get("variant") or "lora"].append(label)
    return series


def _rank_of(sweep: dict[str, Any], label: str) -> int:
    return by_label(sweep, label, done_only=False)[0]["rank"]


def _reference_lines(ax: Any, sweep: dict[str, Any], getter: Any) -> None:
    for label, style in (("full", "--"), ("base", ":")):
        mean = seed_ci(getter(label))["mean"]
        if not math.isnan(mean):
            ax.axhline(mean, linestyle=style, color="k" if label == "full" else "grey", label=label)


def _against_rank(ax: Any, sweep: dict[str, Any], getter: Any, title: str) -> bool:
    """Mean ± CI of ``getter(label)`` against rank per LoRA series, full and base as reference lines."""
    drawn = False
    for name, labels_ in lora_series(sweep).items():
        cis = [seed_ci(getter(lab)) for lab in labels_]
        ranks = [_rank_of(sweep, lab) for lab in labels_]
        means = [c["mean"] for c in cis]
        errs = [0.0 if math.isnan(c["half_width"]) else c["half_width"] for c in cis]
        if any(not math.isnan(m) for m in means):
            ax.errorbar(ranks, means, yerr=errs, marker="o", capsize=3, label=f"{name} (rank r)")
            drawn = True
    _reference_lines(ax, sweep, getter)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("LoRA rank r")
    ax.set_title(title)
    _legend(ax)
    return drawn


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot_bias_vs_rank(sweep: dict[str, Any], out: Path) -> Path | None:
    """Residual bias (each env's bias metrics) and flip rate against rank, full and base as reference lines."""
    panels = [(env, key, title) for env in sweep["config"].get("eval", {}).get("envs", [])
              for key, title in env_headline(sweep, env) if key in BIAS_KEYS]
    panels.append((None, "flip_rate.overall", "counterfactual flip rate"))
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (env, key, title) in zip(axes[0], panels, strict=True):
        getter = ((lambda lab, e=env, k=key: metric_values(sweep, lab, e, k)) if env else
                  (lambda lab, k=key: diag_values(sweep, lab, tuple(k.split(".")))))
        _against_rank(ax, sweep, getter, f"{title}" + (f" ({env_family(env)})" if env else ""))
    return _save(fig, out / "bias_vs_rank.png")


def plot_kl_vs_rank(sweep: dict[str, Any], out: Path) -> Path | None:
    """KL of each arm's decision-point next-token distribution against the base and against full."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
    for ax, key, title in ((axes[0], "kl_vs_base", "KL(base || arm)"), (axes[1], "kl_vs_full", "KL(full || arm)")):
        _against_rank(ax, sweep, lambda lab, k=key: diag_values(sweep, lab, (k, "mean")), title)
        ax.set_ylabel("nats")
    return _save(fig, out / "kl_vs_rank.png")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def arm_trajectories(sweep: dict[str, Any], label: str, env_id: str) -> dict[str, dict[str, list[float]]]:
    """Trajectories (metric -> group -> per turn) of ``label`` on ``env_id``, averaged over its seeds."""
    runs = seed_trajectories(sweep, label, env_id)
    if not runs:
        return {}
    out: dict[str, dict[str, list[float]]] = {}
    for metric, groups in runs[0].items():
        for group in groups:
            series = [r[metric][group] for r in runs if group in r.get(metric, {})]
            width = min(len(s) for s in series)
            with warnings.catch_warnings():  # a turn no seed defines stays nan
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(np.array([s[:width] for s in series], dtype=float), axis=0)
            out.setdefault(metric, {})[group] = mean.tolist()
    return out


def plot_per_arm(sweep: dict[str, Any], env_id: str, metric: str, by_group: bool, title: str,
                 path: Path) -> Path | None:
    """One line per arm (``by_group=False``: the between-group series) or one panel per arm with a line per
    group, of ``metric`` over the episode's turns."""
    traj = {lab: arm_trajectories(sweep, lab, env_id).get(metric, {}) for lab in labels(sweep)}
    traj = {lab: t for lab, t in traj.items() if t}
    if not traj:
        return None
    plt = _plt()
    n = len(traj) if by_group else 1
    fig, axes = plt.subplots(1, n, figsize=(max(4.5, 3.2 * n), 3.3), squeeze=False, sharey=True)
    for i, (lab, groups) in enumerate(traj.items()):
        ax = axes[0][i if by_group else 0]
        for group, values in groups.items():
            if by_group and group != ALL:
                ax.plot(range(len(values)), values, marker=".", label=group)
            elif not by_group and group == ALL:
                ax.plot(range(len(values)), values, marker=".", label=lab)
        ax.set_title(lab if by_group else title, fontsize=9)
        ax.set_xlabel("turn")
        _legend(ax)
    fig.suptitle(f"{title} ({env_family(env_id)})", fontsize=10)
    return _save(fig, path)


def seed_trajectories(sweep: dict[str, Any], label: str, env_id: str) -> list[dict[str, dict[str, list[float]]]]:
    """Trajectories (metric -> group -> per turn) of each finished seed of ``label`` on ``env_id``."""
    from fairgym.analysis.metrics import trajectories

    runs = []
    for arm in by_label(sweep, label):
        episodes = read_episodes(arm["dir"] / env_folder(env_id) / EPISODES_FILE)
        if episodes:
            runs.append(trajectories(episodes))
    return runs


def cumulative_gap(traj: dict[str, dict[str, list[float]]]) -> list[float]:
    """The cumulative demographic-parity difference over turns (decisions up to each turn)."""
    return list(traj.get("fairness/demographic_parity_difference_cumulative", {}).get(ALL, []))


def credit_gap_change(traj: dict[str, dict[str, list[float]]]) -> list[float]:
    """How the gap in mean credit score between the last and the first group moved over turns (positive: the
    groups drift apart), from the per-group credit drift."""
    drift = traj.get("fairness/credit_drift", {})
    groups = [g for g in drift if g != ALL]
    if len(groups) < 2:
        return []
    return (np.asarray(drift[groups[-1]], float) - np.asarray(drift[groups[0]], float)).tolist()


TRAJECTORY_SERIES = {"cumulative DP difference": cumulative_gap,
                     "credit-score gap change (last - first group)": credit_gap_change}


def trajectory_intervals(sweep: dict[str, Any], env_id: str) -> list[dict[str, Any]]:
    """Per arm label, series and turn: the mean over seeds with its 95% t-interval (one seed: no interval)."""
    rows = []
    for label in labels(sweep):
        runs = seed_trajectories(sweep, label, env_id)
        for name, fn in TRAJECTORY_SERIES.items():
            series = [fn(r) for r in runs if fn(r)]
            for turn in range(min((len(x) for x in series), default=0)):
                ci = seed_ci([x[turn] for x in series])
                rows.append({"arm": label, "series": name, "turn": turn, "mean": ci["mean"], "low": ci["low"],
                             "high": ci["high"], "seeds": ci["n"]})
    return rows


def plot_trajectory_intervals(rows: list[dict[str, Any]], env_id: str, path: Path) -> Path | None:
    """One panel per series: each arm's mean over seeds per turn with a shaded 95% interval."""
    if not rows:
        return None
    plt = _plt()
    names = list(TRAJECTORY_SERIES)
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for label in dict.fromkeys(r["arm"] for r in rows):
            part = [r for r in rows if r["arm"] == label and r["series"] == name]
            if not part:
                continue
            turns = [r["turn"] for r in part]
            line = ax.plot(turns, [r["mean"] for r in part], label=label, linewidth=1.2)[0]
            low, high = np.array([r["low"] for r in part], float), np.array([r["high"] for r in part], float)
            if not np.isnan(low).all():
                ax.fill_between(turns, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("turn")
        ax.axhline(0, color="grey", linewidth=0.5)
        _legend(ax)
    fig.suptitle(f"bias that compounds over the episode ({env_family(env_id)}; mean over seeds, 95% interval)",
                 fontsize=10)
    return _save(fig, path)


def plot_logit_lens(sweep: dict[str, Any], out: Path) -> Path | None:
    """Mean decision margin and between-group margin gap per layer, one line per arm (first seed)."""
    diag = sweep["diagnostics"].get("arms", {})
    rows = [(a["label"], diag[a["name"]]["logit_lens"]) for a in sweep["arms"]
            if a["name"] in diag and isinstance(diag[a["name"]].get("logit_lens"), dict)]
    rows = list({lab: lens for lab, lens in reversed(rows)}.items())[::-1]  # first seed per label
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    choices = sweep["diagnostics"].get("choices", ["A", "B"])
    groups = sweep["diagnostics"].get("groups", ["first", "last"])
    for lab, lens in rows:
        axes[0].plot(lens["mean"], marker=".", label=lab)
        if lens.get("group_gap"):
            axes[1].plot(lens["group_gap"], marker=".", label=lab)
    axes[0].set_title(f"logit lens: margin {choices[0]} - {choices[1]}", fontsize=9)
    axes[1].set_title(f"margin gap {groups[0]} - {groups[-1]}", fontsize=9)
    for ax in axes:
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("layer (0 = embeddings)")
        _legend(ax)
    return _save(fig, out / "logit_lens.png")


def plot_update_energy(sweep: dict[str, Any], out: Path) -> Path | None:
    """Energy share of the full update within the top r against r, with each LoRA arm's actual update."""
    spectrum = sweep["diagnostics"].get("spectrum", {})
    curves = {seed: s for seed, s in spectrum.items() if isinstance(s, dict) and "energy_share" in s}
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for seed, s in curves.items():
        ranks = [int(r) for r in s["energy_share"]]
        ax.plot(ranks, list(s["energy_share"].values()), color="k", alpha=0.7, label=f"full ΔW, top-r (seed {seed})")
    diag = sweep["diagnostics"].get("arms", {})
    updates = [(a["rank"], diag.get(a["name"], {}).get("update")) for a in sweep["arms"] if a.get("method") == "lora"]
    points = [(r, u) for r, u in updates if isinstance(u, dict) and u.get("subspace_share") is not None]
    if points:
        ax.scatter([p[0] for p in points], [p[1]["subspace_share"] for p in points], color="C1", zorder=3,
                   label="LoRA arm: full ΔW within its subspace")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank r")
    ax.set_ylabel("share of ||ΔW_full||²")
    ax.set_title("How much of the full update a rank-r update can hold", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, out / "update_energy.png")


def lending_envs(sweep: dict[str, Any]) -> list[str]:
    """The evaluated envs of the Lending family."""
    return [e for e in sweep["config"].get("eval", {}).get("envs", []) if env_family(e) == "Lending"]


def all_plots(sweep: dict[str, Any], intervals: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Path]:
    """Every figure of the report that has data, by name (``intervals``: ``trajectory_intervals`` per Lending env,
    when the caller already computed them)."""
    out = sweep["dir"] / PLOTS_DIR
    intervals = intervals if intervals is not None else {e: trajectory_intervals(sweep, e) for e in lending_envs(sweep)}
    figures = {"bias_vs_rank": plot_bias_vs_rank(sweep, out), "kl_vs_rank": plot_kl_vs_rank(sweep, out),
               "logit_lens": plot_logit_lens(sweep, out), "update_energy": plot_update_energy(sweep, out)}
    for env_id in sweep["config"].get("eval", {}).get("envs", []):
        family, slug = env_family(env_id), env_folder(env_id)
        if family == "Lending":
            figures[f"compounding_{slug}"] = plot_trajectory_intervals(
                intervals.get(env_id, []), env_id, out / f"compounding_{slug}.png")
            figures[f"gap_trajectory_{slug}"] = plot_per_arm(
                sweep, env_id, "fairness/demographic_parity_difference_cumulative", False,
                "cumulative DP difference over the episode", out / f"gap_trajectory_{slug}.png")
            figures[f"credit_drift_{slug}"] = plot_per_arm(
                sweep, env_id, "fairness/credit_drift", True, "group credit drift", out / f"credit_drift_{slug}.png")
        elif family == "Dialogue":
            figures[f"toxicity_{slug}"] = plot_per_arm(sweep, env_id, "toxicity/mean", True,
                                                       "toxicity per turn per group", out / f"toxicity_{slug}.png")
        else:
            figures[f"invalid_{slug}"] = plot_per_arm(sweep, env_id, "format/invalid_action_rate_cumulative", False,
                                                      "cumulative invalid-action rate", out / f"invalid_{slug}.png")
    return {k: v for k, v in figures.items() if v is not None}


# ---- the report ----------------------------------------------------------------------------------------------
def _arm_lines(sweep: dict[str, Any]) -> list[str]:
    lines = []
    for arm in sweep["arms"]:
        state = arm["state"] + (f" — {arm['error']}" if arm.get("error") else "")
        seconds = f", {arm['seconds']:.0f} s" if isinstance(arm.get("seconds"), (int, float)) else ""
        lines.append(f"- `{arm['name']}`: {state}{seconds}")
    return lines


def _spectrum_lines(sweep: dict[str, Any]) -> list[str]:
    spectrum = sweep["diagnostics"].get("spectrum", {})
    lines = []
    for seed, s in spectrum.items():
        if isinstance(s, dict) and "energy_share" in s:
            shares = ", ".join(f"r={r}: {v:.2f}" for r, v in s["energy_share"].items() if v is not None)
            lines.append(f"- seed {seed}: share of the full update's energy within the top r: {shares}")
    return lines


def _lr_lines(sweep: dict[str, Any]) -> list[str]:
    rates = sweep.get("learning_rates", {})
    lines = []
    for label, entry in rates.items():
        if "learning_rate" not in entry:
            lines.append(f"- `{label}`: selection failed — {entry.get('error')}")
        elif entry.get("rule") == "grid":
            losses = ", ".join(f"{lr}: {loss:.4f}" if isinstance(loss, (int, float)) else f"{lr}: n/a"
                               for lr, loss in entry.get("losses", {}).items())
            reused = "; the winning run is the first seed's arm" if entry.get("winner") else ""
            lines.append(f"- `{label}`: **{entry['learning_rate']:.3g}**, chosen from the grid by held-out teacher "
                         f"loss ({losses}) on seed {entry.get('selection_seed')}, {entry.get('heldout_rows')} "
                         f"held-out rows, {entry.get('seconds')} s of training and scoring{reused}")
        else:
            lines.append(f"- `{label}`: **{entry['learning_rate']:.3g}** by rule: {entry.get('rule')}")
    return lines


def group_table(sweep: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Per arm and group: teacher agreement and approval rate on the first Lending env (mean ± 95% CI)."""
    envs = lending_envs(sweep)
    groups = (sweep["diagnostics"].get("groups") or _groups_in_metrics(sweep, envs[0])) if envs else []
    if not envs or not groups:
        return None
    header = ["arm", *[f"agreement {g}" for g in groups], *[f"approval {g}" for g in groups]]
    rows = [[label, *[fmt_ci(metric_values(sweep, label, envs[0], f"{AGREEMENT_KEY}/{g}")) for g in groups],
             *[fmt_ci(metric_values(sweep, label, envs[0], f"{APPROVAL_KEY}/{g}")) for g in groups]]
            for label in labels(sweep)]
    return header, rows


def _groups_in_metrics(sweep: dict[str, Any], env_id: str) -> list[str]:
    prefix = f"{APPROVAL_KEY}/"
    return list(dict.fromkeys(k[len(prefix):] for a in sweep["arms"] for k in a["metrics"].get(env_id, {})
                              if k.startswith(prefix)))


def report_text(sweep: dict[str, Any], figures: dict[str, Path],
                table: tuple[list[str], list[list[str]]] | None = None) -> str:
    """The markdown of ``report.md`` (``table``: the ``headline_table`` when the caller already built it)."""
    config, diag = sweep["config"], sweep["diagnostics"]
    header, rows = table or headline_table(sweep)
    parts = [f"# Rank sweep `{config.get('name')}`", "",
             f"Model: `{config.get('model') or 'embedded SmolLM2-135M-Instruct'}`"
             + (" with an implanted bias" if config.get("implant") else "")
             + f"; recipe `{config.get('recipe')}`; ranks {config.get('ranks')}; seeds {config.get('seeds')}; "
             f"evaluation: {config.get('eval', {}).get('episodes')} episodes of {config.get('eval', {}).get('envs')}"
             f" (seed {config.get('eval', {}).get('seed')}).", "",
             "## Arms × metrics", "", "Mean over seeds ± half-width of a 95% t-interval (one seed: the value). "
             "Bias metrics are between-group differences (lower is fairer). KL is in nats on the "
             f"{diag.get('decisions', 0)} decision prompts of `{diag.get('env_id')}`. The flip rate is the share of "
             "decisions that change when only the group descriptor is swapped. 'full-update energy held' is the "
             "share of the full fine-tune's update inside the LoRA arm's rank-r subspace; 'intruder dims' counts "
             "the merged weights' leading singular directions unlike any of the base's (PEFT's "
             "`reduce_intruder_dimension`). 'teacher agreement' is the share of the arm's decisions equal to the "
             "fair teacher's at the same states; the `teacher` row is the teacher itself, the target every gap "
             "should reach. 'policy' says whether the arm imitates the teacher or closed its gap by collapsing to "
             "one decision (approval rate within "
             f"{config.get('eval', {}).get('collapse_margin', 0.05)} of 0 or 1) or agrees on fewer than "
             f"{config.get('eval', {}).get('min_agreement', 0.8)} of its decisions: only 'imitates teacher' counts "
             "as debiased.", "",
             markdown_table(header, rows), ""]
    groups = group_table(sweep)
    if groups:
        parts += ["### Per group", "", markdown_table(*groups), ""]
    lr_lines = _lr_lines(sweep)
    if lr_lines:
        parts += ["## Learning rates", "", "Chosen per arm by loss on held-out teacher demonstrations (never a "
                  "fairness metric), or by the rule when the method has no grid.", "", *lr_lines, ""]
    parts += ["## Arms", "", *_arm_lines(sweep), ""]
    spectrum = _spectrum_lines(sweep)
    if spectrum:
        parts += ["## Update spectrum", "", *spectrum, ""]
    parts += ["## Figures", ""] + [f"### {name.replace('_', ' ')}\n\n![{name}](plots/{path.name})\n"
                                   for name, path in figures.items()]
    return "\n".join(parts) + "\n"


def log_to_wandb(sweep: dict[str, Any], figures: dict[str, Path], table: tuple[list[str], list[list[str]]],
                 intervals: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """One W&B run in the sweep's group with every figure and the arms × metrics table; never raises."""
    from fairgym.analysis.wandb_log import log_figures, wandb_mode

    mode = wandb_mode()
    if mode == "disabled":
        return
    try:
        import wandb

        config = sweep["config"]
        run = wandb.init(project=config.get("wandb_project") or "fairgym", group=config.get("name"),
                         name=f"{config.get('name')}/report", job_type="sweep-report", dir=str(sweep["dir"]),
                         config=config, mode=mode)
        log_figures(run, {name: str(path) for name, path in figures.items()}, prefix="sweep")
        run.log({"sweep/arms_table": wandb.Table(columns=table[0], data=table[1])})
        for env_id, rows in (intervals or {}).items():
            columns = ["arm", "series", "turn", "mean", "low", "high", "seeds"]
            run.log({f"sweep/compounding/{env_family(env_id)}": wandb.Table(
                columns=columns, data=[[r[c] for c in columns] for r in rows])})
        run.finish()
    except Exception as exc:  # noqa: BLE001 - W&B trouble never loses a report
        print(f"[sweep report] W&B logging skipped: {type(exc).__name__}: {exc}")


def write_sweep_report(sweep_dir: str | Path) -> Path:
    """Write ``report.md`` and ``plots/*.png`` for a sweep folder (and log them to W&B); returns the report path.

    Raises:
        FileNotFoundError: ``sweep_dir`` holds no sweep (no ``config.yaml``).
    """
    sweep = load_sweep(sweep_dir)
    intervals = {env_id: trajectory_intervals(sweep, env_id) for env_id in lending_envs(sweep)}
    figures = all_plots(sweep, intervals)
    path = sweep["dir"] / REPORT_FILE
    table = headline_table(sweep)
    path.write_text(report_text(sweep, figures, table))
    log_to_wandb(sweep, figures, table, intervals)
    return path
