"""A learning rate per arm, chosen by loss on held-out teacher demonstrations, never by a fairness metric.

LoRA needs a larger learning rate than full fine-tuning (by how much, and why it matters: the docstring of
``SweepConfig.lora_lr_multiplier``). Two ways, per method (``full``, ``lora``):

- **grid** (``SweepConfig.learning_rates[method]``): each arm (label, e.g. ``lora-r8``) trains once per grid
  point on the first training seed; the rate whose model has the lowest mean token loss on held-out teacher
  demonstrations (episodes seeded from ``lr_selection.seed``, which no training, evaluation or diagnostics episode
  uses) is that arm's rate for every seed. When a grid point trains for the arm's own step budget, the winner's
  run *is* the first seed's arm, so selection costs ``grid size - 1`` extra runs per arm.
- **rule** (no grid): full = ``train.learning_rate``; LoRA = ``lora_lr_multiplier`` x the full rate.

Each label's choice is a ``RateChoice``, written to ``runs/<sweep>/learning_rates.json`` (label -> rate, how it
was chosen, the losses per grid point and the seconds it cost); grid runs live under
``runs/<sweep>/lr-select/<label>/lr-<rate>/``. An arm trains at ``RateChoice.learning_rate`` through
``SweepConfig.arm_config``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairgym.config import from_dict
from fairgym.locks import folder_lock
from fairgym.runfiles import HELDOUT_FILE, LEARNING_RATES_FILE, json_safe, read_json, write_json
from fairgym.training.sweep_arms import Arm, load_arm_model, lora_arm
from fairgym.training.sweep_config import SweepConfig


@dataclass
class RateChoice:
    """One arm label's learning rate and how it was chosen (an entry of ``learning_rates.json``).

    Attributes:
        learning_rate: the rate every seed of the label trains at; ``None`` when selection failed.
        rule: ``"grid"`` (chosen by held-out loss), or the rule that set it.
        losses: grid rate (``f"{lr:g}"``) -> held-out loss (``None`` for a diverged run).
        selection_seed: the training seed the grid ran on.
        heldout_rows: held-out demonstration rows the loss averaged over.
        seconds: training and scoring time of the grid.
        selected_at: the label whose grid chose it, when another rank's grid serves this one.
        extended: rates added beyond the configured grid because the best was at its edge.
        at_edge: the winner is the smallest or largest rate tried (the best may lie beyond it).
        winner: the winning grid run (its weights), reused as the first seed's arm when budgets match.
        error, traceback: why selection failed.
    """

    learning_rate: float | None = None
    rule: str | None = None
    losses: dict[str, float | None] | None = None
    selection_seed: int | None = None
    heldout_rows: int | None = None
    seconds: float | None = None
    selected_at: str | None = None
    extended: list[float] | None = None
    at_edge: bool | None = None
    winner: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON entry (fields left unset are left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def read_choices(sweep_dir: Path) -> dict[str, RateChoice]:
    """The choices recorded in ``learning_rates.json`` by label (none when the file is absent)."""
    return {label: from_dict(RateChoice, entry) for label, entry in read_json(Path(sweep_dir) / LEARNING_RATES_FILE,
                                                                                {}).items()}


def write_choices(sweep_dir: Path, chosen: dict[str, RateChoice]) -> None:
    """Write ``learning_rates.json`` atomically."""
    write_json(Path(sweep_dir) / LEARNING_RATES_FILE, {label: c.record() for label, c in chosen.items()})


# ---- held-out loss -------------------------------------------------------------------------------------------
def heldout_rows(config: SweepConfig) -> list[dict[str, Any]]:
    """Teacher demonstrations from the held-out seeds, as prompt/completion chats (no counterfactual copies: the
    teacher is group-blind, so they would repeat the same decisions)."""
    from fairgym.training.datasets import build_dataset

    train = dataclasses.replace(config.template, seed=config.lr_selection.seed, episodes=config.lr_selection.episodes,
                                counterfactual=False)
    return [{"prompt": r["prompt"], "completion": r["completion"]} for r in build_dataset(train)]


def heldout_loss(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 8,
                 max_length: int = 512) -> float:
    """Mean token negative log-likelihood of the completions given their prompts (SFT's completion-only loss),
    over all completion tokens of ``rows``; ``nan`` when no completion token fits in ``max_length``."""
    from fairgym.lm.likelihood import completion_nll_totals

    totals = completion_nll_totals(model, tokenizer, rows, batch_size, max_length)
    count = sum(n for _, n in totals)
    return sum(total for total, _ in totals) / count if count else float("nan")


def choose_rate(losses: dict[float, float]) -> float:
    """The rate with the lowest held-out loss (a ``nan`` loss, e.g. a diverged run, never wins; ties: the smaller
    rate)."""
    finite = {lr: loss for lr, loss in losses.items() if loss is not None and math.isfinite(loss)}
    if not finite:
        raise ValueError(f"every grid point's held-out loss is undefined ({losses}); widen the grid or check the "
                         "held-out data (lr_selection.episodes).")
    return min(sorted(finite), key=lambda lr: finite[lr])


# ---- selection -----------------------------------------------------------------------------------------------
def selected_labels(config: SweepConfig, arms: list[Arm]) -> list[Arm]:
    """One trained arm per label on the first seed, in selection order: full first (the LoRA rule may build on
    full's rate), then the arms that run their own grid, then those sharing a rate selected at
    ``lr_selection.lora_rank`` (with that rank's arm added when the sweep does not train it)."""
    first = [a for a in arms if a.method != "base" and a.seed == config.seeds[0]]
    sources = [selection_arm(config, a) for a in first]
    ordered = list(dict.fromkeys([*sources, *first]))
    return sorted(ordered, key=lambda a: (a.method != "full", selection_arm(config, a) != a))


def select_learning_rates(config: SweepConfig, sweep_dir: Path, base_model: str | None,
                          arms: list[Arm]) -> dict[str, RateChoice]:
    """Each trained arm's learning rate by label; cached in ``learning_rates.json`` (a rerun selects nothing it
    already chose). A label whose selection fails is recorded with its error; its arms then fail, the others go on."""
    chosen = read_choices(sweep_dir)
    rows: list[dict[str, Any]] | None = None
    for arm in selected_labels(config, arms):
        if arm.label in chosen and chosen[arm.label].learning_rate is not None:
            continue
        grid = config.learning_rates.get(arm.lr_method)
        if not grid:
            chosen[arm.label] = rule_rate(config, arm, chosen)
            continue
        try:
            rows = rows if rows is not None else heldout_rows(config)
            chosen[arm.label] = shared_rate(config, arm, chosen) or grid_rate(config, arm, Path(sweep_dir),
                                                                               base_model, grid, rows)
        except Exception as exc:  # noqa: BLE001 - one arm's failed selection must not stop the sweep
            chosen[arm.label] = RateChoice(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            print(f"[sweep] learning-rate selection for {arm.label} failed: {chosen[arm.label].error}", flush=True)
        write_choices(sweep_dir, chosen)
    write_choices(sweep_dir, chosen)
    return chosen


def selection_arm(config: SweepConfig, arm: Arm) -> Arm:
    """The arm whose grid decides ``arm``'s rate: itself, or with ``lr_selection.lora_rank`` the LoRA arm of the
    same variant at that rank (one grid per method)."""
    rank = config.lr_selection.lora_rank
    if arm.method != "lora" or rank is None or arm.rank == rank:
        return arm
    return lora_arm(rank, arm.seed, arm.variant)


def shared_rate(config: SweepConfig, arm: Arm, chosen: dict[str, RateChoice]) -> RateChoice | None:
    """With ``lr_selection.lora_rank``, a LoRA arm of another rank takes the rate selected at that rank (whose
    grid runs here when no arm at that rank has run it yet); ``None`` for an arm that selects its own."""
    source = selection_arm(config, arm)
    if source == arm:
        return None
    entry = chosen.get(source.label)
    if entry is None or entry.learning_rate is None:
        raise ValueError(f"the learning rate shared from {source.label} is not selected yet")
    return RateChoice(learning_rate=entry.learning_rate, rule="grid", selected_at=source.label, losses=entry.losses,
                      selection_seed=entry.selection_seed, heldout_rows=entry.heldout_rows, seconds=0.0)


def rule_rate(config: SweepConfig, arm: Arm, chosen: dict[str, RateChoice]) -> RateChoice:
    """The rate without a grid: full = ``train.learning_rate``; LoRA = ``lora_lr_multiplier`` x the full rate
    (full's chosen rate when full had a grid)."""
    own = config.template.learning_rate
    if arm.lr_method == "full":
        return RateChoice(learning_rate=own, rule="train.learning_rate")
    full = chosen.get("full")
    full_rate = full.learning_rate if full is not None and full.rule == "grid" and full.learning_rate else own
    return RateChoice(learning_rate=config.lora_lr_multiplier * full_rate,
                      rule=f"lora_lr_multiplier ({config.lora_lr_multiplier:g}) x full rate ({full_rate:g})")


def grid_rate(config: SweepConfig, arm: Arm, sweep_dir: Path, base_model: str | None, grid: list[float],
              rows: list[dict[str, Any]]) -> RateChoice:
    """Train ``arm`` once per grid point on the first seed and keep the rate with the lowest held-out loss; while
    the best is at an edge of the rates tried, add the next rate beyond it (``lr_selection.extend`` at most)."""
    runs = {float(lr): grid_point(config, arm, sweep_dir, base_model, float(lr), rows) for lr in grid}
    ladder = sorted(runs)
    ratio = (ladder[-1] / ladder[0]) ** (1 / (len(ladder) - 1)) if len(ladder) > 1 else None
    added: list[float] = []
    while True:
        best = choose_rate({lr: run["loss"] for lr, run in runs.items()})
        beyond = next_rate(sorted(runs), best, ratio)
        if beyond is None or len(added) >= config.lr_selection.extend:
            break
        runs[beyond] = grid_point(config, arm, sweep_dir, base_model, beyond, rows)
        added.append(beyond)
    reusable = config.lr_selection.max_steps in (None, config.template.max_steps)
    return RateChoice(learning_rate=best, rule="grid",
                      losses={f"{lr:g}": runs[lr]["loss"] for lr in sorted(runs)},
                      selection_seed=config.seeds[0], heldout_rows=len(rows),
                      seconds=round(sum(run["seconds"] for run in runs.values()), 1),
                      extended=added or None, at_edge=next_rate(sorted(runs), best, ratio) is not None,
                      winner=runs[best] if reusable else None)


def next_rate(rates: list[float], best: float, ratio: float | None = None) -> float | None:
    """The rate beyond ``best`` when it is the smallest or largest of ``rates`` (sorted), one step of ``ratio`` (by
    default the rates' geometric step; x sqrt(10) for one rate) further; a half-decade ladder stays on 1-3-10.
    ``None`` when ``best`` lies inside."""
    if len(rates) > 1 and rates[0] < best < rates[-1]:
        return None
    if ratio is None:
        ratio = (rates[-1] / rates[0]) ** (1 / (len(rates) - 1)) if len(rates) > 1 else 10 ** 0.5
    up = best == rates[-1]
    if abs(ratio / 10 ** 0.5 - 1) < 0.05:  # the 1-3-10 ladder: half-decade steps, snapped to it
        step = round(2 * math.log10(best)) + (1 if up else -1)
        return float(f"{(3 if step % 2 else 1) * 10 ** (step // 2):.1g}")
    return float(f"{best * ratio if up else best / ratio:.3g}")


def grid_point(config: SweepConfig, arm: Arm, sweep_dir: Path, base_model: str | None, lr: float,
               rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One grid point: train, then the held-out loss of the trained model (cached in ``heldout.json``)."""
    from fairgym.training import trainers

    folder = grid_folder(sweep_dir, arm, lr)
    record_path = folder / HELDOUT_FILE
    if record_path.exists():
        return read_json(record_path)
    started = time.time()
    train = config.arm_config(method=arm.method, rank=arm.rank or 1, seed=config.seeds[0], output_dir=folder / "train",
                              variant=arm.variant, model=base_model, learning_rate=lr)
    if config.lr_selection.max_steps:
        train = dataclasses.replace(train, max_steps=config.lr_selection.max_steps)
    result = trainers.train(train)
    weights = {"model": str(result.model_dir) if result.model_dir else base_model,
               "adapter": str(result.adapter_dir) if result.adapter_dir else None,
               "global_step": result.global_step, "train_metrics": json_safe(result.metrics)}
    model, tokenizer = load_arm_model(config, weights)
    loss = heldout_loss(model, tokenizer, rows, config.lr_selection.batch_size, train.max_length)
    record = {"learning_rate": lr, "loss": loss, "weights": weights, "seconds": round(time.time() - started, 1)}
    write_json(record_path, record)
    print(f"[sweep] {arm.label} lr={lr:g}: held-out loss {loss:.4f}", flush=True)
    return record


def grid_folder(sweep_dir: Path, arm: Arm, lr: float) -> Path:
    """``sweep_dir/lr-select/<label>/lr-<rate>``: one grid point's training run and its ``heldout.json``."""
    return Path(sweep_dir) / "lr-select" / arm.label / f"lr-{lr:g}"


# ---- grid points as stages of their own (run in parallel by the Ray executor) ---------------------------------
def planned_grid_points(config: SweepConfig, sweep_dir: Path, arms: list[Arm]) -> list[tuple[Arm, float]]:
    """The configured grid points the selection still needs: those of each label that selects its own rate, is not
    chosen yet and has no ``heldout.json`` yet. Each trains as a stage of its own before the selection (which then
    reads them); rates added beyond a grid's edge depend on these losses and train in the selection itself."""
    chosen = read_choices(sweep_dir)
    points = []
    for arm in selected_labels(config, arms):
        grid = config.learning_rates.get(arm.lr_method) or []
        if (arm.label in chosen and chosen[arm.label].learning_rate is not None) or selection_arm(config, arm) != arm:
            continue
        points += [(arm, float(lr)) for lr in grid
                   if not (grid_folder(sweep_dir, arm, float(lr)) / HELDOUT_FILE).exists()]
    return points


def grid_stage(config: SweepConfig, sweep_dir: Path, arm: Arm, lr: float, base_model: str | None) -> float:
    """One grid point as a stage: trained and scored into its ``heldout.json`` under its folder's lock (held by the
    process that runs it); returns the held-out loss."""
    with folder_lock(grid_folder(sweep_dir, arm, lr)):
        return grid_point(config, arm, sweep_dir, base_model, lr, heldout_rows(config))["loss"]


def lost_grid_point(label: str, lr: float, error: str, trace: str) -> None:
    """A grid point whose stage failed: left to the selection, which trains it again and records its error."""
    print(f"[sweep] {label} lr={lr:g} failed ({error}); the learning-rate selection tries it once more", flush=True)


def arm_learning_rate(chosen: dict[str, RateChoice], arm: Arm) -> float:
    """The chosen rate of ``arm``'s label; a failed selection raises with its recorded error."""
    entry = chosen.get(arm.label)
    if entry is None or entry.learning_rate is None:
        raise ValueError(f"no learning rate for {arm.label}: {entry.error if entry else 'selection did not run'}")
    return entry.learning_rate
