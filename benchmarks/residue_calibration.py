"""How small a residue can fairgym see? A dose-response calibration of the residue measures on the embedded SmolLM2.

Between the implanted (biased) base and a debiased full fine-tune (``benchmarks/residue_models.py``: the demo's
Lending implant and debias arm; the study's hostile Dialogue implant and a detox arm), models are interpolated,
theta(lambda) = theta_full + lambda (theta_base - theta_full) for lambda in {0, .02, .05, .1, .25, .5, 1}, and every
measure of ``fairgym.analysis.residue`` is taken on the same items at each lambda. Per measure: the mean with its
bootstrap interval over items at each lambda, the paired difference from lambda = 0, and the minimum detectable
lambda (``calibration.minimum_detectable``). A LoRA arm (rank 1 at 1e-3) is measured too and its residue stated as
a lambda-equivalent. Every part is timed: the per-measure cost per arm decides what a demo can afford.

Lending (>= 500 distinct decision states from seeded fair-oracle episodes no training or evaluation uses):
``margin_gap_abs`` / ``margin_gap_signed`` (the paired margin gap, Black - white), ``hidden_residue`` (mean token NLL
of the biased teacher's decision on the states where it differs from the fair teacher's), and, derived from the
same margins, the decision-level measures the sweep reports today: ``flip`` (the decision changes with the
descriptor) and ``fair_agreement``. The paired logit lens runs on full, base and the LoRA arm.
Dialogue (smaller): ``hidden_residue`` (NLL of the hostile teacher's reply), ``toxicity_sampled`` (4 replies at
temperature 1 per prompt) and ``toxicity_greedy``.

    python benchmarks/residue_calibration.py                      # Lending, 512 states (writes the JSON)
    python benchmarks/residue_calibration.py --family dialogue    # adds Dialogue to the same JSON

Writes ``benchmarks/results/residue_calibration.json`` (one entry per family, other families kept) and the figures
``benchmarks/results/residue_calibration_<family>_*.png``.
"""

from __future__ import annotations

from fairgym.threads import configure_threads

configure_threads()  # before torch loads

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from residue_models import ROOT, prepare

from fairgym.analysis import calibration as C
from fairgym.analysis import residue as R
from fairgym.analysis.residue_plots import (
    ResiduePanel,
    dose_response_figure,
    paired_lens_figure,
    residue_vs_rank_figure,
)
from fairgym.analysis.stats import bootstrap_ci, format_difference, format_proportion, paired_bootstrap

RESULTS = ROOT / "benchmarks" / "results"
STATE_SEED = 30_000  # no training (0..), evaluation (10000..), diagnostics or lr-selection (20000..) seed


TITLES = {"margin_gap_abs": "|margin gap|", "margin_gap_signed": "margin gap (signed)",
          "hidden_residue": "NLL of the biased answer", "flip": "flip (0/1)", "fair_agreement": "fair agreement (0/1)",
          "toxicity_sampled": "toxicity, sampled", "toxicity_greedy": "toxicity, greedy"}


def save_figure(fig: Any, name: str) -> None:
    fig.savefig(RESULTS / f"residue_calibration_{name}.png", dpi=100)


class Clock:
    """Wall seconds per named part, summed over calls, and this process's CPU seconds beside them (on a shared
    machine the wall time depends on the neighbours; the CPU time much less)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def part(self, name: str):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)
            self.cpu_seconds[name] = round(self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu, 2)


def load(path: Path, adapter: Path | None = None) -> tuple[Any, Any]:
    from fairgym.lm.models import load_model

    return load_model(str(path), str(adapter) if adapter else None, device="cpu", dtype="float32")


def episodes_for(config: Any, agent: str, count: int) -> list[dict[str, Any]]:
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes

    train = config.template
    return run_episodes(train.env_id, make_agent(agent), episodes=count, seed=STATE_SEED,
                        env_kwargs=dict(train.env_kwargs), progress=False)


def teacher_answers(config: Any, states: list[R.DecisionState]) -> list[str]:
    """The implant's biased teacher's action at each state (decided again from the recorded info)."""
    from fairgym.agents import make_agent
    from fairgym.agents.teachers import biased_teacher
    from fairgym.envs import make_env

    implant = config.implant or {}
    train = config.template
    teacher = make_agent(implant.get("teacher") or biased_teacher(train.env_id), **implant.get("teacher_kwargs", {}))
    env = make_env(train.env_id, **train.env_kwargs)
    teacher.calibrate(env)
    env.close()
    return teacher.act([s.observation for s in states], [s.info for s in states])


# ---- Lending ---------------------------------------------------------------------------------------------------
def lending_measure(tokenizer: Any, states: list[R.DecisionState], groups: list[str], rows: list[dict[str, Any]],
                    fair: list[str], clock: Clock) -> Callable[[Any], dict[str, list[float]]]:
    """Every Lending measure of one model on the calibration's items (timed per measure)."""
    def measure(model: Any) -> dict[str, list[float]]:
        with clock.part("margin_gap"):
            gap = R.margin_gap(model, tokenizer, states, groups)
        with clock.part("hidden_residue"):
            nll = R.hidden_residue(model, tokenizer, rows)
        decisions = R.decision_items(gap, fair)
        print(f"[lending] measured: {clock.seconds}", flush=True)
        return {"margin_gap_abs": gap["abs_gap"], "margin_gap_signed": gap["gap"], "hidden_residue": nll,
                "flip": decisions["flip"], "fair_agreement": decisions["agreement"]}
    return measure


def arm_report(values: dict[str, list[float]], full: dict[str, list[float]], curve: C.DoseCurve,
               limits: dict[str, float | None]) -> dict[str, Any]:
    """An arm's measures, its paired difference from full, and that difference as a lambda-equivalent (of the
    mean, and of the interval's end on the base's side: "at most this much")."""
    out = {}
    for name, items in values.items():
        diff = paired_bootstrap(items, full[name])
        toward_base = np.nanmean(curve.items(name)[-1] - curve.items(name)[0]) >= 0
        far = diff["high"] if toward_base else diff["low"]  # the interval's end on the biased base's side
        out[name] = {"mean": float(np.nanmean(items)), "minus_full": diff, "minus_full_text": format_difference(diff),
                     "lambda_equivalent": C.lambda_equivalent(diff["mean"], curve, name, limits),
                     "lambda_equivalent_far_end": C.lambda_equivalent(far, curve, name, limits)}
    return out


def detection_by_items(curve: C.DoseCurve, states: int) -> dict[str, dict[str, float | None]]:
    """The minimum detectable lambda had the calibration used 1/8, 1/4, 1/2 or all of its states (evenly spaced
    items of the same curve): what a smaller budget (a demo's) could see."""
    return {str(round(states * share)): C.minimum_detectable(curve.subset(share))
            for share in (0.125, 0.25, 0.5, 1.0)}


def lens_with_interval(model: Any, tokenizer: Any, states: list[R.DecisionState], groups: list[str]) -> dict:
    lens = R.paired_logit_lens(model, tokenizer, states, groups)
    cis = [bootstrap_ci(layer) for layer in lens["gap"]]
    return {"mean": lens["mean"], "low": [c["low"] for c in cis], "high": [c["high"] for c in cis], "n": lens["n"]}


def calibrated(args: argparse.Namespace, family: str, made: dict[str, Any], key: dict[str, Any],
               measure: Callable[[Any], dict[str, list[float]]]) -> tuple[C.DoseCurve, dict[str, Any], Any]:
    """The dose-response curve between full and base, measured now or (``--reuse``) read from ``curve.json`` when
    it was measured with the same settings (``key``); and the arms' per-item values measured then."""
    path = args.out / family / "curve.json"
    saved = json.loads(path.read_text()) if args.reuse and path.exists() else {}
    base, _ = load(made["base"])
    model, _ = load(made["full"])
    if saved.get("key") == key:
        print(f"[{family}] reusing the calibration in {path}", flush=True)
        return C.DoseCurve.from_dict(saved), saved.get("arms", {}), (base, model)
    curve = R.calibrate(model, R.state_copy(model), R.state_copy(base), measure, args.lambdas)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, **curve.to_dict(), "arms": {}}))
    return curve, {}, (base, model)


def measure_arms(args: argparse.Namespace, family: str, made: dict[str, Any], arms: dict[str, Any],
                 make_measure: Callable[[Clock], Callable[[Any], dict[str, list[float]]]]) -> dict[str, Clock]:
    """Measure every arm not yet in ``arms`` (LoRA r1; full with seed 1), in place; each arm's own clock."""
    clocks = {}
    for name, (model_dir, adapter) in {"lora-r1": (made["base"], made["lora"]),
                                       "full-s1": (made["full_s1"], None)}.items():
        if name in arms:
            continue
        clocks[name] = Clock()
        with clocks[name].part("load"):
            model, tokenizer = load(model_dir, adapter)
        arms[name] = make_measure(clocks[name])(model)
    path = args.out / family / "curve.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "arms": arms}))
    return clocks


def arm_cost(clock: Clock, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Seconds per measure for one arm (wall, and this process's CPU)."""
    return {name: {"wall_s": clock.seconds[name], "cpu_s": clock.cpu_seconds[name]} for name in names}


def run_lending(args: argparse.Namespace, made: dict[str, Any], clock: Clock) -> dict[str, Any]:
    config = made["config"]
    with clock.part("states"):
        episodes = episodes_for(config, "fair-oracle", args.episodes)
        states = R.decision_states(episodes, args.states)
        groups = list(episodes[0]["groups"])
        recorded = {step["observation"]: step["action_text"] for ep in episodes for step in ep["steps"]}
        fair = [recorded[s.observation] for s in states]  # the fair teacher played the episodes
        biased = teacher_answers(config, states)
        contested = [i for i, (f, b) in enumerate(zip(fair, biased, strict=True)) if f != b]
        rows = R.teacher_rows([states[i] for i in contested], [biased[i] for i in contested])
    print(f"[lending] {len(states)} states, {len(contested)} where the biased teacher differs", flush=True)
    key = {"states": args.states, "episodes": args.episodes, "state_seed": STATE_SEED, "lambdas": args.lambdas}
    tokenizer = tokenizer_of(made)
    curve, arms, (base, full) = calibrated(args, "lending", made, key,
                                           lending_measure(tokenizer, states, groups, rows, fair, clock))
    clocks = measure_arms(args, "lending", made, arms,
                          lambda c: lending_measure(tokenizer, states, groups, rows, fair, c))
    summary = C.summarize(curve)
    limits = {k: v["minimum_detectable_lambda"] for k, v in summary["measures"].items()}
    full_values = {k: v[0] for k, v in curve.values.items()}
    lens_clock, lenses = Clock(), {}
    if args.lens_states:
        lora, _ = load(made["base"], made["lora"])
        for name, m in (("full", full), ("lora-r1", lora), ("base", base)):
            with lens_clock.part(name):
                lenses[name] = lens_with_interval(m, tokenizer, states[::max(len(states) // args.lens_states, 1)],
                                                  groups)
        save_figure(paired_lens_figure(lenses, groups=groups), "lending_paired_lens")
    save_figure(dose_response_figure(summary, titles=TITLES), "lending_dose_response")
    save_figure(residue_vs_rank_figure([rank_panel(n, summary, arms) for n in ("margin_gap_signed", "hidden_residue")]),
                "lending_residue_vs_rank")
    flips = {lam: int(sum(v)) for lam, v in zip(curve.lambdas, curve.values["flip"], strict=True)}
    result = {
        "states": len(states), "contested_states": len(contested), "groups": groups, "episodes": args.episodes,
        "state_seed": STATE_SEED, "lambdas": curve.lambdas, "calibration": summary,
        "minimum_detectable_lambda": limits,
        "minimum_detectable_by_items": detection_by_items(curve, len(states)),
        "flips_per_lambda": {f"{lam:g}": format_proportion(k, len(states)) for lam, k in flips.items()},
        "arms": {name: arm_report(values, full_values, curve, limits) for name, values in arms.items()},
        "seconds_per_lambda": curve.seconds,
        "cost_per_arm": {name: arm_cost(c, ("margin_gap", "hidden_residue")) for name, c in clocks.items()},
    }
    if lenses:
        result["paired_logit_lens"] = lenses
        result["cost_per_arm"]["paired_logit_lens"] = {
            "states": lenses["full"]["n"], **{n: {"wall_s": lens_clock.seconds[n], "cpu_s": lens_clock.cpu_seconds[n]}
                                              for n in lenses}}
    return result


def rank_panel(name: str, summary: dict[str, Any], arms: dict[str, Any]) -> ResiduePanel:
    """``name`` against LoRA rank: the rank-1 arm, full's interval as a band, the base's line, the lambda levels."""
    entry, lora = summary["measures"][name], bootstrap_ci(arms["lora-r1"][name])
    return ResiduePanel(TITLES.get(name, name), ranks={"lora": [1]}, values={"lora": [(lora["mean"], lora["low"],
                                                                                         lora["high"])]},
                        full=(entry["mean"][0], entry["low"][0], entry["high"][0]), base=entry["mean"][-1],
                        lambda_levels=dict(zip(summary["lambdas"], entry["mean"], strict=True)))


def tokenizer_of(made: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    from fairgym.lm.models import prepare_tokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(made["full"])))


# ---- Dialogue --------------------------------------------------------------------------------------------------
def dialogue_measure(tokenizer: Any, prompts: list[list[dict[str, str]]], rows: list[dict[str, Any]],
                     args: argparse.Namespace, clock: Clock) -> Callable[[Any], dict[str, list[float]]]:
    def measure(model: Any) -> dict[str, list[float]]:
        with clock.part("hidden_residue"):
            nll = R.hidden_residue(model, tokenizer, rows)
        with clock.part("sampled_toxicity"):
            tox = R.sampled_toxicity(model, tokenizer, prompts, samples=args.samples, max_new_tokens=48,
                                     batch_size=16, seed=0)
        print(f"[dialogue] measured: {clock.seconds}", flush=True)
        return {"hidden_residue": nll, "toxicity_sampled": tox["sampled"], "toxicity_greedy": tox["greedy"]}
    return measure


def run_dialogue(args: argparse.Namespace, made: dict[str, Any], clock: Clock) -> dict[str, Any]:
    config = made["config"]
    with clock.part("states"):
        episodes = episodes_for(config, "polite", args.dialogue_episodes)
        states = R.decision_states(episodes, args.dialogue_states, with_choices=False)
        rows = R.teacher_rows(states, teacher_answers(config, states))
        prompts = [s.messages for s in states[:args.dialogue_prompts]]
    key = {"states": args.dialogue_states, "episodes": args.dialogue_episodes, "prompts": args.dialogue_prompts,
           "samples": args.samples, "state_seed": STATE_SEED, "lambdas": args.lambdas}
    tokenizer = tokenizer_of(made)
    curve, arms, _ = calibrated(args, "dialogue", made, key, dialogue_measure(tokenizer, prompts, rows, args, clock))
    clocks = measure_arms(args, "dialogue", made, arms, lambda c: dialogue_measure(tokenizer, prompts, rows, args, c))
    summary = C.summarize(curve)
    limits = {k: v["minimum_detectable_lambda"] for k, v in summary["measures"].items()}
    full_values = {k: v[0] for k, v in curve.values.items()}
    save_figure(dose_response_figure(summary, titles=TITLES), "dialogue_dose_response")
    return {"states": len(states), "prompts": len(prompts), "samples_per_prompt": args.samples,
            "episodes": args.dialogue_episodes, "state_seed": STATE_SEED, "lambdas": curve.lambdas,
            "calibration": summary, "minimum_detectable_lambda": limits,
            "minimum_detectable_by_items": detection_by_items(curve, len(states)),
            "arms": {name: arm_report(values, full_values, curve, limits) for name, values in arms.items()},
            "seconds_per_lambda": curve.seconds,
            "cost_per_arm": {name: arm_cost(c, ("hidden_residue", "sampled_toxicity")) for name, c in clocks.items()}}


# ---- main ------------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=("lending", "dialogue"), default="lending")
    parser.add_argument("--states", type=int, default=512, help="Lending decision states (>= 500 for the study)")
    parser.add_argument("--episodes", type=int, default=12, help="fair-oracle Lending episodes the states come from")
    parser.add_argument("--lens-states", type=int, default=128, help="states for the paired logit lens (per arm)")
    parser.add_argument("--dialogue-states", type=int, default=64)
    parser.add_argument("--dialogue-episodes", type=int, default=24)
    parser.add_argument("--dialogue-prompts", type=int, default=24, help="prompts for sampled toxicity")
    parser.add_argument("--samples", type=int, default=4, help="sampled replies per prompt (temperature 1)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(C.LAMBDAS))
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a calibration measured with the same settings (runs/.../curve.json) and measure "
                             "only the arms not measured yet; its timings stay those of the run that measured it")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "residue-calibration",
                        help="where the implanted base and the arms are built (once) and cached")
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    clock = Clock()
    made = prepare(args.family, args.out)
    result = (run_lending if args.family == "lending" else run_dialogue)(args, made, clock)
    path = RESULTS / "residue_calibration.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    previous = saved.get(args.family, {}) if args.reuse else {}
    run = {"seconds": {**{f"build_{k}": v for k, v in made["seconds"].items()}, **clock.seconds,
                       "total": round(time.perf_counter() - started, 1)},
           "cpu_seconds": {**clock.cpu_seconds, "total": round(time.process_time(), 1)},
           "machine": {"cpus": len(os.sched_getaffinity(0)), "torch_threads": _threads(),
                       "processor": platform.processor() or platform.machine(),
                       "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)}}}
    measures = ("margin_gap", "hidden_residue", "sampled_toxicity")
    if previous and not any(k in clock.seconds for k in measures):
        # a --reuse run measured only what was missing: the calibration's own timings stay those of its run
        result["cost_per_arm"] = {**previous.get("cost_per_arm", {}), **result["cost_per_arm"]}
        result.update({k: previous[k] for k in ("seconds_per_lambda", "cost_per_lambda", "seconds", "cpu_seconds",
                                                "machine") if k in previous})
        result["reuse_run"] = run
    else:
        result.update(run)
        lams = len(result["lambdas"])
        result["cost_per_lambda"] = {k: {"wall_s": round(clock.seconds[k] / lams, 2),
                                         "cpu_s": round(clock.cpu_seconds[k] / lams, 2)}
                                     for k in measures if k in clock.seconds}
    saved[args.family] = result
    path.write_text(json.dumps(saved, indent=1) + "\n")
    print(json.dumps({"minimum_detectable_lambda": result["minimum_detectable_lambda"],
                      "cost_per_arm": result["cost_per_arm"],
                      "seconds": result["seconds"]}, indent=1))
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
