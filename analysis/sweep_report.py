"""The rank-sweep report: ``runs/<sweep>/report.md`` and ``plots/*.png``, answering "does LoRA at rank r remove
the bias as well as a full fine-tune?".

Reads what ``fairgym.training.sweep.run_sweep`` wrote (``config.yaml``, ``<arm>/status.json``, ``<arm>/<Env>/
episodes.jsonl``, ``<arm>/metrics.json``, ``diagnostics.json``) and needs no model. Numbers over seeds are shown as
mean ± the half-width of a 95% t-interval (one seed: the value alone). This module turns the folder into numbers
and figure data; the figures are drawn by ``fairgym.analysis.plots`` and logged by ``fairgym.analysis.wandb_log``
(one run in the sweep's group, offline unless ``WANDB_MODE`` says otherwise; never required). Each arm's
episodes are read once per report (``load_trajectories``). No torch is imported.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fairgym.analysis.plots import (
    RankPanel,
    against_rank_figure,
    intervals_figure,
    logit_lens_figure,
    per_arm_figure,
    save_figures,
    update_energy_figure,
)
from fairgym.analysis.report import markdown_table
from fairgym.analysis.residue_report import residue_figures, residue_markdown, with_alignment
from fairgym.analysis.scorer_report import first_episodes, scorer_markdown
from fairgym.analysis.stats import k_of_n, seed_ci
from fairgym.analysis.trajectories import Trajectories, env_family, env_profile_or_generic
from fairgym.analysis.verdicts import policy_verdict
from fairgym.analysis.wandb_log import log_sweep_report
from fairgym.config import load_yaml
from fairgym.envs.profiles import FamilyProfile, resolve
from fairgym.envs.records import read_episodes
from fairgym.runfiles import (
    CONFIG_FILE,
    DIAGNOSTICS_FILE,
    EPISODES_FILE,
    LEARNING_RATES_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    RESIDUE_FILE,
    STATUS_FILE,
    arm_label,
    env_folder,
    read_json,
)


# ---- loading -------------------------------------------------------------------------------------------------
def load_sweep(sweep_dir: str | Path) -> dict[str, Any]:
    """Config, arms (status, metrics per env, label, rank, seed) and diagnostics of a sweep folder."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{str(sweep_dir)!r} is not a sweep folder (no {CONFIG_FILE}); run `fairgym sweep`.")
    config = load_yaml(sweep_dir / CONFIG_FILE)
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
            "learning_rates": read_json(sweep_dir / LEARNING_RATES_FILE) or {},
            "residue": with_alignment(read_json(sweep_dir / RESIDUE_FILE) or {})}


def _arm_order(arm: dict[str, Any]) -> tuple:
    kind = {"teacher": -1, "base": 0, "full": 1}.get(str(arm.get("method")), 2)
    return kind, arm.get("variant") or "", arm.get("rank") or 0, arm.get("seed") or 0


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
BOUNDED = ("fairness/selection_rate", "fairness/true_positive_rate", "fairness/demographic_parity_difference",
           "fairness/equal_opportunity_difference", "fairness/equalized_odds_difference", "task/teacher_agreement",
           "toxicity/", "format/", "bias/", "fairness/allocation_gap_max")


def bounds_of(key: str) -> tuple[float, float] | None:
    """``(0, 1)`` for a metric that is a rate, share or difference of rates, so no interval leaves its range."""
    return (0.0, 1.0) if any(key == b or (b.endswith("/") and key.startswith(b)) for b in BOUNDED) else None


def fmt_ci(values: list[float | None], digits: int = 3, bounds: tuple[float, float] | None = None) -> str:
    """The mean over seeds with its 95% t-interval, ``mean [low, high]`` to ``digits`` significant digits, clipped
    to ``bounds``; ``all 3: x`` when the seeds agree (never "±0"), the value alone for one seed, ``n/a`` with none."""
    ci = seed_ci(values)
    if ci["n"] == 0:
        return "n/a"
    if ci["n"] == 1:
        return f"{ci['mean']:.{digits}g}"
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if max(kept) - min(kept) <= 1e-12 * max(1.0, max(abs(v) for v in kept)):
        return f"all {ci['n']}: {kept[0]:.{digits}g}"
    low, high = ci["low"], ci["high"]
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return f"{ci['mean']:.{digits}g} [{low:.2g}, {high:.2g}]"


def eval_envs(sweep: dict[str, Any]) -> list[str]:
    """The sweep's evaluated env ids."""
    return list(sweep["config"].get("eval", {}).get("envs", []))


def profile_of(env_id: str) -> FamilyProfile:
    """The family profile of an evaluated env (a generic one when the id is not registered here)."""
    return env_profile_or_generic(env_id)


def env_headline(sweep: dict[str, Any], env_id: str) -> list[tuple[str, str]]:
    """The env family's headline (key, title) pairs; its optional ones (e.g. a judge's) only when some arm's
    metrics hold them."""
    profile = profile_of(env_id)
    return [(key, title) for key, title in profile.headline
            if key not in profile.optional_metrics or any(key in a["metrics"].get(env_id, {}) for a in sweep["arms"])]


def headline_columns(sweep: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, key, title) per column: metrics per evaluated env, then the diagnostics."""
    cols = []
    envs = sweep["config"].get("eval", {}).get("envs", [])
    for env_id in envs:
        prefix = f"{env_family(env_id)} " if len(envs) > 1 else ""
        cols += [("metric:" + env_id, key, prefix + title) for key, title in env_headline(sweep, env_id)]
    if sweep.get("diagnostics", {}).get("arms"):  # none when the stage is off (e.g. Dialogue: no closed choices)
        cols += [("diag", "kl_vs_base.mean", "KL vs base"), ("diag", "kl_vs_full.mean", "KL vs full"),
                 ("diag", "flip_rate.overall", "flip rate"),
                 ("diag", "update.subspace_share", "full-update energy held"),
                 ("diag", "intruders.total", "intruder dims")]
    return cols


def headline_table(sweep: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the arms × metrics table (mean ± 95% CI over seeds)."""
    cols = headline_columns(sweep)
    verdicts = bool(verdict_envs(sweep))  # the collapse verdict reads approval rates
    header = ["arm", "seeds done", "learning rate", *[c[2] for c in cols],
              *(["policy", "seeds = teacher"] if verdicts else [])]
    rows = []
    for label in labels(sweep):
        cells = [label, f"{len(by_label(sweep, label))}/{len(by_label(sweep, label, done_only=False))}",
                 learning_rate_cell(sweep, label)]
        for kind, key, _ in cols:
            values = (metric_values(sweep, label, kind.split(":", 1)[1], key) if kind.startswith("metric:")
                      else diag_values(sweep, label, tuple(key.split("."))))
            cells.append(fmt_ci(values, bounds=bounds_of(key)) + _partial(values, len(by_label(sweep, label))))
        if verdicts:
            cells += [label_verdict(sweep, label), seeds_equal_to_teacher(sweep, label)]
        rows.append(cells)
    return header, rows


def seeds_equal_to_teacher(sweep: dict[str, Any], label: str) -> str:
    """``k of n``: the label's finished seeds whose decisions all equal the fair teacher's (agreement 1), counted
    from the metrics."""
    env_id = verdict_envs(sweep)[0]
    agreement = profile_of(env_id).agreement_metric or ""
    counted = k_of_n(metric_values(sweep, label, env_id, agreement), 1.0)
    return f"{counted['k']} of {counted['n']}" if counted["n"] else "—"


def _partial(values: list[float | None], seeds_done: int) -> str:
    """`` (1 of 3 seeds)`` when only some finished seeds have the value (e.g. diagnostics stopped early)."""
    n = sum(v is not None for v in values)
    return f" ({n} of {seeds_done} seeds)" if 0 < n < seeds_done else ""


def learning_rate_cell(sweep: dict[str, Any], label: str) -> str:
    """The arm's learning rate and how it was chosen (``grid`` or the rule), ``—`` for untrained rows."""
    entry = sweep.get("learning_rates", {}).get(label) or {}
    if "learning_rate" not in entry:
        return "failed" if "error" in entry else "—"
    return f"{entry['learning_rate']:.3g} ({'grid' if entry.get('rule') == 'grid' else 'rule'})"


def label_verdict(sweep: dict[str, Any], label: str) -> str:
    """``policy_verdict`` of each seed of ``label`` on the first env whose family has an approval rate (distinct
    verdicts joined)."""
    envs = verdict_envs(sweep)
    if not envs:
        return "—"
    env_id, profile = envs[0], profile_of(envs[0])
    settings = sweep["config"].get("eval", {})
    agreement = profile.agreement_metric or ""
    verdicts = [policy_verdict(_num(a["metrics"].get(env_id, {}).get(profile.approval_metric)),
                               _num(a["metrics"].get(env_id, {}).get(agreement)),
                               settings.get("collapse_margin", 0.05), settings.get("min_agreement", 0.9))
                for a in by_label(sweep, label)]
    return ", ".join(dict.fromkeys(verdicts)) or "n/a"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


# ---- figure data (the figures themselves are in ``fairgym.analysis.plots``) -------------------------------------
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


def rank_panel(sweep: dict[str, Any], getter: Callable[[str], list[float | None]], title: str,
               ylabel: str = "") -> RankPanel:
    """Mean ± 95% half-width of ``getter(label)`` against rank per LoRA series (series without any value left
    out), with the full and base arms' means as reference lines."""
    series = {}
    for name, labels_ in lora_series(sweep).items():
        cis = [seed_ci(getter(lab)) for lab in labels_]
        means = [c["mean"] for c in cis]
        if any(not math.isnan(m) for m in means):
            series[f"{name} (rank r)"] = ([_rank_of(sweep, lab) for lab in labels_], means,
                                          [0.0 if math.isnan(c["half_width"]) else c["half_width"] for c in cis])
    references = {label: seed_ci(getter(label))["mean"] for label in ("full", "base")}
    return RankPanel(title, series, {k: v for k, v in references.items() if not math.isnan(v)}, ylabel)


def _metric_of(sweep: dict[str, Any], env_id: str, key: str, label: str) -> list[float | None]:
    return metric_values(sweep, label, env_id, key)


def _diag_of(sweep: dict[str, Any], path: tuple[str, ...], label: str) -> list[float | None]:
    return diag_values(sweep, label, path)


def bias_panels(sweep: dict[str, Any]) -> list[RankPanel]:
    """Residual bias (each env's bias metrics) and the flip rate against rank."""
    panels = [rank_panel(sweep, functools.partial(_metric_of, sweep, env, key), f"{title} ({env_family(env)})")
              for env in eval_envs(sweep)
              for key, title in env_headline(sweep, env) if key in profile_of(env).bias_metrics]
    flip = rank_panel(sweep, functools.partial(_diag_of, sweep, ("flip_rate", "overall")), "counterfactual flip rate")
    return [*panels, flip]


def kl_panels(sweep: dict[str, Any]) -> list[RankPanel]:
    """KL of each arm's decision-point next-token distribution against the base and against full."""
    return [rank_panel(sweep, functools.partial(_diag_of, sweep, (key, "mean")), title, "nats")
            for key, title in (("kl_vs_base", "KL(base || arm)"), ("kl_vs_full", "KL(full || arm)"))]


def load_trajectories(sweep: dict[str, Any]) -> dict[tuple[str, str], Trajectories]:
    """Trajectories (metric -> group -> per turn) of every finished arm on every evaluated env, keyed by (arm
    name, env id): each arm's ``episodes.jsonl`` is read once per report."""
    from fairgym.analysis.metrics import trajectories

    out = {}
    for arm in sweep["arms"]:
        if arm["state"] != "done":
            continue
        for env_id in sweep["config"].get("eval", {}).get("envs", []):
            episodes = read_episodes(arm["dir"] / env_folder(env_id) / EPISODES_FILE)
            if episodes:
                out[arm["name"], env_id] = trajectories(episodes)
    return out


def seed_trajectories(sweep: dict[str, Any], label: str, env_id: str) -> list[Trajectories]:
    """Trajectories of each finished seed of ``label`` on ``env_id`` (loaded once: ``load_trajectories``)."""
    if "trajectories" not in sweep:
        sweep["trajectories"] = load_trajectories(sweep)
    found = (sweep["trajectories"].get((arm["name"], env_id)) for arm in by_label(sweep, label))
    return [t for t in found if t]


def arm_trajectories(sweep: dict[str, Any], label: str, env_id: str) -> Trajectories:
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


def per_arm_series(sweep: dict[str, Any], env_id: str, metric: str) -> dict[str, dict[str, list[float]]]:
    """Arm label -> group -> ``metric`` per turn (seed mean), for the arms that have the series."""
    series = {lab: arm_trajectories(sweep, lab, env_id).get(metric, {}) for lab in labels(sweep)}
    return {lab: s for lab, s in series.items() if s}


INTERVAL_COLUMNS = ["arm", "series", "turn", "mean", "low", "high", "seeds"]


def compounding_series(env_id: str) -> dict[str, Callable[[Trajectories], list[float]]]:
    """The env family's series of a bias that compounds over the episode (``FamilyProfile.compounding``)."""
    return dict(resolve(profile_of(env_id).compounding) or {})


def trajectory_intervals(sweep: dict[str, Any], env_id: str) -> list[dict[str, Any]]:
    """Per arm label, compounding series and turn: the mean over seeds with its 95% t-interval (one seed: no
    interval)."""
    rows = []
    for label in labels(sweep):
        runs = seed_trajectories(sweep, label, env_id)
        for name, fn in compounding_series(env_id).items():
            series = [fn(r) for r in runs if fn(r)]
            for turn in range(min((len(x) for x in series), default=0)):
                ci = seed_ci([x[turn] for x in series])
                rows.append({"arm": label, "series": name, "turn": turn, "mean": ci["mean"], "low": ci["low"],
                             "high": ci["high"], "seeds": ci["n"]})
    return rows


def logit_lenses(sweep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Label -> the logit-lens summary of its first diagnosed seed."""
    diag = sweep["diagnostics"].get("arms", {})
    rows = [(a["label"], diag[a["name"]]["logit_lens"]) for a in sweep["arms"]
            if a["name"] in diag and isinstance(diag[a["name"]].get("logit_lens"), dict)]
    return dict(reversed(list({lab: lens for lab, lens in reversed(rows)}.items())))


def energy_curves(sweep: dict[str, Any]) -> dict[str, dict[int, float]]:
    """Seed -> rank -> energy share of the full update within the top r."""
    spectrum = sweep["diagnostics"].get("spectrum", {})
    return {seed: {int(r): v for r, v in s["energy_share"].items()} for seed, s in spectrum.items()
            if isinstance(s, dict) and "energy_share" in s}


def lora_update_points(sweep: dict[str, Any]) -> list[tuple[int, float]]:
    """(rank, share of the full update inside the arm's subspace) per diagnosed LoRA arm."""
    diag = sweep["diagnostics"].get("arms", {})
    updates = [(a["rank"], diag.get(a["name"], {}).get("update")) for a in sweep["arms"] if a.get("method") == "lora"]
    return [(r, u["subspace_share"]) for r, u in updates if isinstance(u, dict) and u.get("subspace_share") is not None]


def verdict_envs(sweep: dict[str, Any]) -> list[str]:
    """The evaluated envs whose family has an approval rate (the collapse verdict and per-group table read it)."""
    return [e for e in eval_envs(sweep) if profile_of(e).approval_metric]


def compounding_envs(sweep: dict[str, Any]) -> list[str]:
    """The evaluated envs whose family names compounding series."""
    return [e for e in eval_envs(sweep) if compounding_series(e)]


def _per_arm(sweep: dict[str, Any], env_id: str, metric: str, by_group: bool, title: str) -> Figure | None:
    series = per_arm_series(sweep, env_id, metric)
    return per_arm_figure(series, by_group=by_group, title=title,
                          suptitle=f"{title} ({env_family(env_id)})") if series else None


def env_figures(sweep: dict[str, Any], env_id: str, intervals: list[dict[str, Any]]) -> dict[str, Figure | None]:
    """The trajectory figures of one evaluated env: its family's compounding series with intervals over seeds,
    then the per-arm series its profile names (``FamilyProfile.sweep_series``)."""
    family, slug = env_family(env_id), env_folder(env_id)
    figures: dict[str, Figure | None] = {}
    series = compounding_series(env_id)
    if series:
        figures[f"compounding_{slug}"] = intervals_figure(intervals, list(series), suptitle=(
            f"bias that compounds over the episode ({family}; mean over seeds, 95% interval)")) if intervals else None
    for name, metric, by_group, title in profile_of(env_id).sweep_series:
        figures[f"{name}_{slug}"] = _per_arm(sweep, env_id, metric, by_group, title)
    return figures


def _rank_figure(panels: list[RankPanel]) -> Figure | None:
    """The panels that hold data (e.g. no KL or flip rate when the diagnostics stage is off); ``None`` if none."""
    kept = [p for p in panels if p.series or p.references]
    return against_rank_figure(kept) if kept else None


def sweep_figures(sweep: dict[str, Any], intervals: dict[str, list[dict[str, Any]]]) -> dict[str, Figure]:
    """Every figure of the report that has data, by name (``intervals``: ``trajectory_intervals`` per Lending env)."""
    lenses, curves = logit_lenses(sweep), energy_curves(sweep)
    diag = sweep["diagnostics"]
    figures: dict[str, Figure | None] = {
        "bias_vs_rank": _rank_figure(bias_panels(sweep)),
        "kl_vs_rank": _rank_figure(kl_panels(sweep)),
        "logit_lens": logit_lens_figure(lenses, choices=diag.get("choices", ["A", "B"]),
                                        groups=diag.get("groups", ["first", "last"])) if lenses else None,
        "update_energy": update_energy_figure(curves, lora_update_points(sweep)) if curves else None}
    lora = {lab: s for s, labs in lora_series(sweep).items() for lab in labs}
    figures.update(residue_figures(sweep, {lab: _rank_of(sweep, lab) for lab in lora}, lora))
    for env_id in sweep["config"].get("eval", {}).get("envs", []):
        figures.update(env_figures(sweep, env_id, intervals.get(env_id, [])))
    return {k: v for k, v in figures.items() if v is not None}


def all_plots(sweep: dict[str, Any], intervals: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Path]:
    """Write every figure of the report that has data as ``plots/<name>.png``; returns name -> path."""
    intervals = intervals if intervals is not None else {e: trajectory_intervals(sweep, e)
                                                         for e in compounding_envs(sweep)}
    return save_figures(sweep_figures(sweep, intervals), sweep["dir"] / PLOTS_DIR)


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
            if entry.get("selected_at") and entry["selected_at"] != label:  # one grid run serves every rank
                lines.append(f"- `{label}`: **{entry['learning_rate']:.3g}**, the grid choice made at "
                             f"`{entry['selected_at']}` ({losses})")
                continue
            reused = "; the winning run is the first seed's arm" if entry.get("winner") else ""
            lines.append(f"- `{label}`: **{entry['learning_rate']:.3g}**, chosen from the grid by held-out teacher "
                         f"loss ({losses}) on seed {entry.get('selection_seed')}, {entry.get('heldout_rows')} "
                         f"held-out rows, {entry.get('seconds')} s of training and scoring{reused}")
        else:
            lines.append(f"- `{label}`: **{entry['learning_rate']:.3g}** by rule: {entry.get('rule')}")
    return lines


def group_table(sweep: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Per arm and group: teacher agreement and approval rate on the first env whose family has an approval rate
    (mean ± 95% CI)."""
    envs = verdict_envs(sweep)
    groups = (sweep["diagnostics"].get("groups") or _groups_in_metrics(sweep, envs[0])) if envs else []
    if not envs or not groups:
        return None
    profile = profile_of(envs[0])
    header = ["arm", *[f"agreement {g}" for g in groups], *[f"approval {g}" for g in groups]]
    rows = [[label, *[fmt_ci(metric_values(sweep, label, envs[0], f"{profile.agreement_metric}/{g}"), bounds=(0, 1))
                      for g in groups],
             *[fmt_ci(metric_values(sweep, label, envs[0], f"{profile.approval_metric}/{g}"), bounds=(0, 1))
               for g in groups]]
            for label in labels(sweep)]
    return header, rows


def _groups_in_metrics(sweep: dict[str, Any], env_id: str) -> list[str]:
    prefix = f"{profile_of(env_id).approval_metric}/"
    return list(dict.fromkeys(k[len(prefix):] for a in sweep["arms"] for k in a["metrics"].get(env_id, {})
                              if k.startswith(prefix)))


def legend(sweep: dict[str, Any]) -> list[str]:
    """The sentences explaining the headline table's columns, for the columns it has."""
    config, diag = sweep["config"], sweep["diagnostics"]
    out = ["Mean over seeds [95% t-interval, clipped to the range of a rate]; 'all 3: x' when every seed gives the "
           "same value (an interval would read as certainty); one seed: the value."]
    out += [s for s in dict.fromkeys(profile_of(e).legend for e in eval_envs(sweep)) if s]
    if diag.get("arms"):
        out += [f"KL is in nats on the {diag.get('decisions', 0)} decision prompts of `{diag.get('env_id')}`. The "
                "flip rate is the share of decisions that change when only the group descriptor is swapped. "
                "'full-update energy held' is the share of the full fine-tune's update inside the LoRA arm's rank-r "
                "subspace; 'intruder dims' counts the merged weights' leading singular directions unlike any of the "
                "base's (PEFT's `reduce_intruder_dimension`)."]
    if verdict_envs(sweep):
        ev = config.get("eval", {})
        out.append("'teacher agreement' is the share of the arm's decisions equal to the fair teacher's at the same "
                   "states; the `teacher` row is the teacher itself, the target every gap should reach. 'policy' "
                   "says whether the arm imitates the teacher or closed its gap by collapsing to one decision "
                   f"(approval rate within {ev.get('collapse_margin', 0.05)} of 0 or 1) or agrees on fewer than "
                   f"{ev.get('min_agreement', 0.9)} of its decisions: only 'imitates teacher' counts as debiased.")
    return out


def report_text(sweep: dict[str, Any], figures: dict[str, Path],
                table: tuple[list[str], list[list[str]]] | None = None) -> str:
    """The markdown of ``report.md`` (``table``: the ``headline_table`` when the caller already built it)."""
    config = sweep["config"]
    header, rows = table or headline_table(sweep)
    parts = [f"# Rank sweep `{config.get('name')}`", "",
             f"Model: `{config.get('model') or 'embedded SmolLM2-135M-Instruct'}`"
             + (" with an implanted bias" if config.get("implant") else "")
             + f"; recipe `{config.get('recipe')}`; ranks {config.get('ranks')}; seeds {config.get('seeds')}; "
             f"evaluation: {config.get('eval', {}).get('episodes')} episodes of {config.get('eval', {}).get('envs')}"
             f" (seed {config.get('eval', {}).get('seed')}).", "",
             "## Arms × metrics", "", " ".join(legend(sweep)), "",
             markdown_table(header, rows), ""]
    groups = group_table(sweep)
    if groups:
        parts += ["### Per group", "", markdown_table(*groups), ""]
    parts += residue_markdown(sweep, markdown_table)
    lr_lines = _lr_lines(sweep)
    if lr_lines:
        parts += ["## Learning rates", "", "Chosen per arm by loss on held-out teacher demonstrations (never a "
                  "fairness metric), or by the rule when the method has no grid.", "", *lr_lines, ""]
    parts += ["## Arms", "", *_arm_lines(sweep), ""]
    scorers = scorer_markdown(first_episodes(arm["dir"] / env_folder(env_id) / EPISODES_FILE for arm in sweep["arms"]
                                             for env_id in config.get("eval", {}).get("envs", [])))
    if scorers:
        parts += ["## Scorers", "", scorers, ""]
    spectrum = _spectrum_lines(sweep)
    if spectrum:
        parts += ["## Update spectrum", "", *spectrum, ""]
    parts += ["## Figures", ""] + [f"### {name.replace('_', ' ')}\n\n![{name}](plots/{path.name})\n"
                                   for name, path in figures.items()]
    return "\n".join(parts) + "\n"


def wandb_tables(table: tuple[list[str], list[list[str]]],
                 intervals: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The report's tables for W&B: the arms × metrics table and each Lending env's compounding intervals."""
    tables = {"sweep/arms_table": table}
    for env_id, rows in intervals.items():
        tables[f"sweep/compounding/{env_family(env_id)}"] = (INTERVAL_COLUMNS,
                                                             [[r[c] for c in INTERVAL_COLUMNS] for r in rows])
    return tables


def write_sweep_report(sweep_dir: str | Path, *, wandb: bool = True) -> Path:
    """Write ``report.md`` and ``plots/*.png`` for a sweep folder (and with ``wandb`` log them to W&B, as a sweep
    does; ``fairgym report`` passes its ``--wandb``); returns the report path.

    Raises:
        FileNotFoundError: ``sweep_dir`` holds no sweep (no ``config.yaml``).
    """
    sweep = load_sweep(sweep_dir)
    intervals = {env_id: trajectory_intervals(sweep, env_id) for env_id in compounding_envs(sweep)}
    figures = all_plots(sweep, intervals)
    path = sweep["dir"] / REPORT_FILE
    table = headline_table(sweep)
    path.write_text(report_text(sweep, figures, table))
    if wandb:
        log_sweep_report(sweep["dir"], sweep["config"], figures, wandb_tables(table, intervals))
    return path
