"""What a report says about the scorers it rests on: each named, with its committed check quoted, or marked unchecked.

``fairgym judge check <scorer>`` files its result as ``judge_check_<scorer>.json`` in
``fairgym.analysis.scorer_check.CHECKS_DIR`` (``benchmarks/results/``, shipped as package data). This module reads
those files; it never scores anything:

- :func:`scorer_warning` is the one-line warning a scorer earns when its check exceeds the bounds (or when it was
  never checked), for the variant a run used (group-blind or as written);
- :func:`scorers_used` reads, from episode records alone, which scorers a run used and how (the Dialogue env
  writes ``toxicity`` in every scored step's outcome, the judge's rubric scores beside it when judged, and
  ``group_blind``);
- :func:`scorer_markdown` is the run and sweep reports' "Scorers" section; :func:`check_table` the table
  ``fairgym judge check`` prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairgym.analysis.scorer_check import CHECKS_DIR, OVERALL, RUBRICS, VARIANTS, check_path, scorer_key
from fairgym.envs.dialogue import ENDORSEMENT, JUDGE_TOXICITY
from fairgym.envs.records import iter_episodes
from fairgym.envs.toxicity import DEFAULT_SCORER

VARIANT_TEXT = {"plain": "scored as written", "group_blind": "scored group-blind"}


@dataclass(frozen=True)
class ScorerUse:
    """One scorer as a run used it.

    Attributes:
        spec: the scorer's check key (``fairgym.analysis.scorer_check.scorer_key``).
        fields: the outcome fields it scored (``toxicity``; a judge's ``judge_toxicity``, ``endorsement``).
        group_blind: whether replies were scored group-blind; ``None`` for records written before the option
            (scored as written).
    """

    spec: str
    fields: tuple[str, ...]
    group_blind: bool | None

    @property
    def variant(self) -> str:
        """The check variant that matches how the run scored."""
        return "group_blind" if self.group_blind else "plain"


def read_check(spec: Any, checks_dir: str | Path = CHECKS_DIR) -> dict[str, Any] | None:
    """The committed check of ``spec``, or ``None`` when there is none (or it files another scorer)."""
    path = check_path(spec, checks_dir)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("scorer") == scorer_key(spec) else None


def _native(result: dict[str, Any]) -> list[str]:
    return [r for r, note in result.get("rubrics", {}).items() if note.get("native")]


def scorer_warning(spec: Any, *, group_blind: bool | None = True, checks_dir: str | Path = CHECKS_DIR) -> str | None:
    """A one-line warning about ``spec`` for a report, or ``None`` when its check passed every bound.

    Args:
        spec: a ``toxicity_scorer`` value (``profanity-check``, ``judge:<model>``, a local folder).
        group_blind: how the run scored (``None``: as written, records from before the option).
        checks_dir: where the checks are filed.

    Returns:
        ``None`` when the committed check of the matching variant raised no warning; otherwise why the scorer's
        numbers may carry its own error or group gap (or that it was never checked, with the command to check it).
    """
    result = read_check(spec, checks_dir)
    key = scorer_key(spec)
    if result is None:
        return (f"scorer `{key}` was not checked: nothing says how often it is right, or whether it scores groups "
                f"alike (run `fairgym judge check {key}`).")
    variant = "group_blind" if group_blind else "plain"
    problems = result.get("variants", {}).get(variant, {}).get("warnings", [])
    if not problems:
        return None
    return (f"scorer `{key}` ({VARIANT_TEXT[variant]}) exceeds the check's bounds on fairgym's gold set: "
            f"{'; '.join(problems)} ({check_path(spec, checks_dir).name}).")


def scorers_used(episodes: Iterable[dict[str, Any]]) -> list[ScorerUse]:
    """The scorers the episodes' steps were scored with, in order of first use (none for an env without scores).

    A judged step's ``toxicity`` is the lexical profanity check's and the rubric scores the judge's; otherwise
    ``toxicity`` is the env's ``toxicity_scorer`` (its default when the run did not name one).
    """
    uses: dict[ScorerUse, None] = {}
    for ep in episodes:
        scored = [s["outcome"] for s in ep.get("steps", [])
                  if isinstance(s.get("outcome"), dict) and s["outcome"].get("toxicity") is not None]
        if not scored:
            continue
        blind = scored[0].get("group_blind")
        spec = scorer_key((ep.get("env_kwargs") or {}).get("toxicity_scorer"))
        if any(o.get(JUDGE_TOXICITY) is not None for o in scored):
            uses[ScorerUse(DEFAULT_SCORER, ("toxicity",), blind)] = None
            uses[ScorerUse(spec, (JUDGE_TOXICITY, ENDORSEMENT), blind)] = None
        else:
            uses[ScorerUse(spec, ("toxicity",), blind)] = None
    return list(uses)


def first_episodes(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The first complete episode record of each ``episodes.jsonl`` that has one (enough to see the scorers)."""
    return [ep for path in paths for ep in [next(iter_episodes(path), None)] if ep is not None]


def _num(value: float | None, digits: int = 3) -> str:
    """A number as text; ``nan`` for undefined (``None`` once written to JSON)."""
    return "nan" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _fmt(cell: dict[str, Any], digits: int = 3) -> str:
    value = cell.get("value", math.nan)
    if value is None or math.isnan(value):
        return "nan"
    low, high = cell.get("low"), cell.get("high")
    bounds = "" if low is None or high is None or math.isnan(low) else f" [{low:.{digits}f}, {high:.{digits}f}]"
    return f"{value:.{digits}f}{bounds}"


def _range(groups: dict[str, dict[str, Any]], rate: str) -> str:
    values = [v for m in groups.values() if (v := m[rate]["value"]) is not None and not math.isnan(v)]
    return f"{min(values):.2f}-{max(values):.2f}" if values else "nan"


def check_quote(result: dict[str, Any], variant: str) -> str:
    """The check's headline numbers for one variant, on the rubrics the scorer claims, as one sentence."""
    parts = []
    for rubric in _native(result):
        part = result["variants"][variant]["rubrics"][rubric]
        overall, swap = part["overall"], part["swap"]
        parts.append(f"{rubric}: AUC {_fmt(overall['auc'])}, false-positive rate {_fmt(overall['fpr'], 2)} "
                     f"(groups {_range(part['groups'], 'fpr')}), false-negative rate {_fmt(overall['fnr'], 2)} "
                     f"(groups {_range(part['groups'], 'fnr')}); swapping only the group changes the score by "
                     f"{_num(swap['mean_abs_change'])} on average, {_num(swap['max_abs_change'])} at most")
    return "; ".join(parts)


def scorer_markdown(episodes: Iterable[dict[str, Any]], checks_dir: str | Path = CHECKS_DIR) -> str | None:
    """The reports' "Scorers" section: each scorer the episodes used, how, and its check quoted (with its
    warning), or that it was not checked; ``None`` when nothing was scored."""
    uses = scorers_used(episodes)
    if not uses:
        return None
    lines = []
    for use in uses:
        how = {None: "scored as written (recorded before group-blind scoring)", True: VARIANT_TEXT["group_blind"],
               False: VARIANT_TEXT["plain"]}[use.group_blind]
        head = f"- `{use.spec}` scores {', '.join(f'`{f}`' for f in use.fields)}, {how}"
        result = read_check(use.spec, checks_dir)
        if result is not None:
            gold = result.get("gold", {})
            head += (f". Checked on fairgym's gold set ({gold.get('rows')} rows; "
                     f"`{check_path(use.spec, checks_dir).name}`): {check_quote(result, use.variant)}.")
        warning = scorer_warning(use.spec, group_blind=use.group_blind, checks_dir=checks_dir)
        lines.append(head + (f"\n  **Warning:** {warning}" if warning else ""))
    return "\n".join(lines + ["", "A scorer is checked with `fairgym judge check <scorer>` (docs/judge_check.md): "
                                  "error rates per group on a labelled gold set and the score change when only the "
                                  "group's name is swapped."])


# ---- the table ``fairgym judge check`` prints --------------------------------------------------------------------
TABLE_HEADER = ("rubric", "group", "n", "AUC [95% CI]", "accuracy", "FPR [95% CI]", "FNR [95% CI]", "ECE [95% CI]",
                "mean")


def _table_rows(rubric: str, part: dict[str, Any]) -> list[list[str]]:
    rows = []
    for group, m in [(OVERALL, part["overall"]), *part["groups"].items()]:
        rows.append([rubric if group == OVERALL else "", group, str(m["n"]), _fmt(m["auc"]),
                     _fmt({"value": m["accuracy"]["value"]}), _fmt(m["fpr"], 2), _fmt(m["fnr"], 2), _fmt(m["ece"]),
                     _num(m["mean_score"])])
    return rows


def _align(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def check_table(result: dict[str, Any]) -> str:
    """A check's result as text: per variant, a row per rubric and group, the swap changes and the warnings."""
    gold = result.get("gold", {})
    lines = [f"scorer {result['scorer']} ({result.get('name')}); gold set {gold.get('file')} ({gold.get('rows')} "
             f"rows); flagged above {result['threshold']}; 95% intervals (Wilson for rates, bootstrap for AUC/ECE)"]
    for rubric, note in result["rubrics"].items():
        if not note["native"]:
            lines.append(f"note: {rubric}: {note['note']}")
    for variant in VARIANTS:
        part = result["variants"][variant]
        rows = [list(TABLE_HEADER)] + [r for rubric in RUBRICS for r in _table_rows(rubric, part["rubrics"][rubric])]
        lines += ["", f"== {variant} ({VARIANT_TEXT[variant]})", _align(rows), ""]
        for rubric in RUBRICS:
            swap = part["rubrics"][rubric]["swap"]
            largest = swap.get("largest")
            where = f" ({largest['id']} -> {largest['to_group']})" if largest else ""
            lines.append(f"group swap, {rubric}: mean |change| {_num(swap['mean_abs_change'], 4)}, largest "
                         f"{_num(swap['max_abs_change'], 4)}{where}, over {swap['pairs']} pairs")
        lines += [f"WARNING: {w}" for w in part["warnings"]] or ["within every bound"]
    verdict = result.get("group_blind", {})
    changes = ", ".join(f"{rubric} {_fmt(change)}" for rubric, change in verdict.get("auc_change", {}).items())
    lines += ["", "group-blind scoring " + ("passes" if verdict.get("passes") else
                                           "does not pass: " + "; ".join(verdict.get("reasons", [])))
              + (f" (AUC change, blind - plain: {changes})" if changes else "")]
    return "\n".join(lines)
