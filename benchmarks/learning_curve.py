"""Does an SFT debias run learn the fair teacher's score rule, or only its approval rate? Lending learning curves.

The rank study (``configs/sweeps/cpu-study.yaml``) is credible only when the full fine-tune imitates the fair
teacher on held-out states. This measures, every ``--every`` steps of one SFT run from the study's implanted base,
on held-out teacher states (the study's ``lr_selection`` seeds, which no training or evaluation episode uses):

- teacher agreement and approval rate, overall and per group (the choice the LLM agent's choice scoring makes);
- the mean margin ``log P(approve) - log P(deny)`` per credit score (for one-token answers, the logit margin).
  A run that learns the teacher's rule makes the margin
  rise with the score and cross 0 at the break-even (575 in the default Lending); a run that learns only the prior
  makes the margins flat: one answer for everyone, whatever the score.

Each arm is one ``key=value,...`` spec of ``method``, ``rank``, ``lr``, ``steps``, ``batch``, ``warmup``,
``scheduler``, ``every`` and ``base`` (``implant``: the study's implanted base; ``raw``: the embedded model without
the implant). The implant is built once and cached under ``--out``. Writes ``benchmarks/results/learning_curve.json``
(one entry per arm, appended to what the file already holds for other arms).

    python benchmarks/learning_curve.py --arm method=full,lr=3e-5,steps=32 --arm method=lora,rank=8,lr=3e-4,steps=32
    python benchmarks/learning_curve.py --set sweeps.lending.train.env_kwargs.score_labels=false --arm method=full
"""

from __future__ import annotations

from fairgym.threads import configure_threads

configure_threads()  # before torch loads

import argparse
import dataclasses
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from fairgym.envs.lending import CHOICES
from fairgym.lm.prompting import render_prompt
from fairgym.lm.scoring import score_choices
from fairgym.training import trainers
from fairgym.training.implant import implant_bias
from fairgym.training.lr_selection import heldout_rows
from fairgym.training.sweep_config import load_sweep_configs
from fairgym.training.sweep_folder import implant_dir

RESULTS = Path(__file__).resolve().parent / "results" / "learning_curve.json"
STUDY = Path(__file__).resolve().parents[1] / "configs" / "sweeps" / "cpu-study.yaml"
DEFAULTS = {"method": "full", "rank": 8, "lr": 3e-5, "steps": 32, "batch": 4, "warmup": 0.1, "scheduler": "linear",
            "every": 8, "base": "implant"}


def parse_arm(spec: str) -> dict[str, Any]:
    """``method=full,lr=3e-5`` -> the arm's settings over ``DEFAULTS``; an unknown key is an error naming them."""
    arm = dict(DEFAULTS)
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in DEFAULTS:
            raise SystemExit(f"--arm {spec!r}: unknown key {key!r}; use {', '.join(DEFAULTS)}")
        arm[key] = type(DEFAULTS[key])(value)
    return arm


def decision_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Held-out prompts with the teacher's decision, the group and the credit score read from the prompt."""
    out = []
    for row in rows:
        text = row["prompt"][-1]["content"]
        out.append({"prompt": row["prompt"], "teacher": row["completion"][0]["content"].strip(),
                    "group": re.search(r"an? (\w+) applicant", text).group(1),
                    "score": int(re.search(r"credit score of (\d+)", text).group(1))})
    return out


def score(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch: int = 16) -> dict[str, Any]:
    """Agreement, approval and per-score mean margin of the model's decisions on ``rows``, scored as the LLM agent
    scores choices (``fairgym.lm.scoring.score_choices``: summed log-likelihood of each choice's tokens)."""
    was_training = model.training
    model.eval()
    margins = []
    for i in range(0, len(rows), batch):
        texts = [render_prompt(tokenizer, r["prompt"], None)[0] for r in rows[i:i + batch]]
        scores = score_choices(model, tokenizer, texts, [list(CHOICES)] * len(texts))
        margins += [approve - deny for approve, deny in scores]
    model.train(was_training)
    decided = [("approve" if m > 0 else "deny", r) for m, r in zip(margins, rows, strict=True)]
    result: dict[str, Any] = {"agreement": _share(d == r["teacher"] for d, r in decided),
                              "approval": _share(d == "approve" for d, _ in decided)}
    for group in sorted({r["group"] for r in rows}):
        mine = [(d, r) for d, r in decided if r["group"] == group]
        result[f"approval/{group}"] = _share(d == "approve" for d, _ in mine)
        result[f"agreement/{group}"] = _share(d == r["teacher"] for d, r in mine)
    by_score: dict[int, list[float]] = {}
    for m, r in zip(margins, rows, strict=True):
        by_score.setdefault(r["score"], []).append(m)
    result["margin_by_score"] = {str(s): round(sum(v) / len(v), 2) for s, v in sorted(by_score.items())}
    return result


def _share(flags: Any) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 3)


class Curve(TrainerCallback):
    """Scores the live model every ``every`` steps (and before the first)."""

    def __init__(self, rows: list[dict[str, Any]], every: int) -> None:
        self.rows, self.every, self.points, self.start = rows, every, [], time.perf_counter()

    def record(self, step: int, model: Any, tokenizer: Any) -> None:
        seconds = round(time.perf_counter() - self.start, 1)
        point = {"step": step, "seconds": seconds, **score(model, tokenizer, self.rows)}
        self.points.append(point)
        print(json.dumps(point), flush=True)

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.record(0, model, processing_class)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step % self.every == 0:
            self.record(state.global_step, model, processing_class)


def run_arm(arm: dict[str, Any], sweep: Any, base_model: Path, rows: list[dict[str, Any]], out: Path) -> dict:
    name = ",".join(f"{k}={v}" for k, v in arm.items())
    folder = out / re.sub(r"\W", "_", name)
    shutil.rmtree(folder, ignore_errors=True)  # scratch: a rerun of the arm starts over
    config = sweep.arm_config(method=arm["method"], rank=arm["rank"], seed=0, output_dir=folder,
                              learning_rate=sweep.template.learning_rate)
    config = dataclasses.replace(config, model=None if arm["base"] == "raw" else str(base_model),
                                 learning_rate=arm["lr"], max_steps=arm["steps"], batch_size=arm["batch"],
                                 warmup=arm["warmup"], lr_scheduler=arm["scheduler"], report_to="none",
                                 save_steps=10_000, resume=False)
    curve = Curve(rows, arm["every"])
    stock = trainers.build_trainer

    def with_curve(config, model, tokenizer, dataset, callbacks=None):
        return stock(config, model, tokenizer, dataset, [*(callbacks or []), curve])

    trainers.build_trainer = with_curve
    try:
        trainers.train(config)
    finally:
        trainers.build_trainer = stock
    return {"arm": arm, "heldout_decisions": len(rows), "points": curve.points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", action="append", required=True, help="key=value,... (see the module docstring)")
    parser.add_argument("--heldout-episodes", type=int, default=2)
    parser.add_argument("--out", default="runs/learning-curve", help="run folders and the cached implant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the study config, e.g. sweeps.lending.train.env_kwargs.score_labels=false "
                             "(digits only; the implant and held-out states follow it)")
    args = parser.parse_args()
    arms = [parse_arm(spec) for spec in args.arm]
    sweep = next(c for c in load_sweep_configs(STUDY, args.set) if c.name.endswith("-lending"))
    out = Path(args.out)
    cache = implant_dir(sweep, out)
    if not (cache / "model" / "config.json").exists():
        implant_bias(sweep.implant_config(cache))
    selection = dataclasses.replace(sweep.lr_selection, episodes=args.heldout_episodes)
    rows = decision_rows(heldout_rows(dataclasses.replace(sweep, lr_selection=selection)))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for arm in arms:
        entry = {**run_arm(arm, sweep, cache / "model", rows, out), "config_overrides": args.set}
        results = [r for r in results if (r["arm"], r.get("config_overrides", [])) != (arm, args.set)] + [entry]
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
