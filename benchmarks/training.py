"""Training cost on the embedded SmolLM2-135M: seconds per SFT step and peak memory, LoRA r = 1, 8, 64 and full.

Batch 4, CPU float32 (or CUDA when present). ``--data lending`` (default): real Lending SFT rows (the teacher's
demonstrations, ~157 tokens with a ~2-token completion, ~105 leading tokens shared by every row); ``--data
synthetic``: 128-token rows whose shared prefix is only the chat template's ~24 tokens. Each arm runs in a fresh
subprocess (so its peak memory is its own, not the running maximum of the arms before it): 1 warm-up step, then
the median of the measured steps, and the loss of every step.

- ``r8-stock`` / ``full-stock``: fairgym's trainer on TRL's stock path (off CUDA, every prompt position through the
  49k-word LM head; every row's prefix through the backbone); ``r8-compact`` / ``full-compact``: the compact head
  only (``CompactHeadSFTTrainer`` with ``min_shared_prefix=0``); ``r8`` / ``full``: fairgym's trainer as users get
  it, the compact head and the batch's shared prompt prefix run once. Same data, seed and weights, so the losses
  match step for step; target <= 0.7x the stock step time.
- ``bare``: a bare TRL ``SFTTrainer`` (LoRA r=8) on the same data: what a user's own script would do.
- ``r8-busy``: the r8 arm's steps idle, then with a busy neighbour (another process spinning on one core, started
  and stopped by the benchmark): busy / idle steps per second, target >= 0.4. ``--compare-spin`` repeats it under
  libgomp's default spin-wait (the thread settings before ``fairgym.threads``), for reference.

Writes ``benchmarks/results/training.json`` (or ``--out``).

    python benchmarks/training.py [--steps 4] [--data lending|synthetic] [--arms r8-stock r8 ...] [--compare-spin]
"""

from __future__ import annotations

from fairgym.threads import configure_threads

THREADS = configure_threads()  # before torch loads: OpenMP reads its wait policy once

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import TrainerCallback

sys.path.insert(0, str(Path(__file__).parent))
from busy import SPIN_ENV, busy_neighbour, ratio  # noqa: I001  (the sibling module, found through sys.path)

os.environ.setdefault("WANDB_MODE", "disabled")
RESULTS = Path(__file__).parent / "results" / "training.json"
BATCH, LENGTH, MAX_LENGTH = 4, 128, 256  # LENGTH: the synthetic rows; MAX_LENGTH: no Lending row is cut
DEFAULT_ARMS = ["r8-stock", "r8-compact", "r8", "full-stock", "full-compact", "full", "r1", "r64", "r8-busy"]


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


class BusyAfter(TrainerCallback):
    """Starts a busy neighbour after ``step`` optimizer steps and stops it when training ends."""

    def __init__(self, step: int) -> None:
        self.step, self.block = step, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.block = busy_neighbour()
            self.block.__enter__()

    def on_train_end(self, args, state, control, **kwargs):
        if self.block is not None:
            self.block.__exit__(None, None, None)


def bench_data(kind: str, tokenizer, rows: int) -> Dataset:
    """``rows`` prompt-completion rows: Lending demonstrations (``"lending"``) or synthetic ones."""
    return lending_data(rows) if kind == "lending" else synthetic_data(tokenizer, rows)


def lending_data(rows: int) -> Dataset:
    """The first ``rows`` Lending SFT rows fairgym trains on (the teacher's demonstrations)."""
    from fairgym.training.config import TrainConfig
    from fairgym.training.datasets import build_dataset

    data = build_dataset(TrainConfig(recipe="sft", episodes=1, env_kwargs={"max_steps": rows}))
    return data.select(range(rows)).select_columns(["prompt", "completion"])


def synthetic_data(tokenizer, rows: int) -> Dataset:
    """Prompt-completion rows of about ``LENGTH`` tokens with the chat template applied."""
    from fairgym.training.trainers import chat_tokens

    words = "The applicant has a steady income and a credit score of 640 in a town with few banks . " * 20
    out = []
    for i in range(rows):
        prompt = [{"role": "user", "content": f"Case {i}. " + words}]
        base = chat_tokens(tokenizer, prompt + [{"role": "assistant", "content": "approve"}])
        ids = tokenizer(prompt[0]["content"], add_special_tokens=False)["input_ids"]
        prompt[0]["content"] = tokenizer.decode(ids[: max(1, len(ids) - (base - LENGTH))])
        out.append({"prompt": prompt, "completion": [{"role": "assistant", "content": "approve"}]})
    return Dataset.from_list(out)


def peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_fairgym(arm: str, data: Dataset, steps: int, out: str, device: str) -> dict:
    """``r<rank>`` or ``full``, optionally ``-stock`` (TRL's path), ``-compact`` (compact head, every row whole) or
    ``-busy`` (idle, then busy steps)."""
    from fairgym.training.config import TrainConfig
    from fairgym.training.trainers import build_trainer, load_policy

    name, _, variant = arm.partition("-")
    method, rank = ("full", 8) if name == "full" else ("lora", int(name[1:]))
    total = steps + 1 + (steps if variant == "busy" else 0)
    config = TrainConfig(recipe="sft", method=method, rank=rank, max_steps=total, batch_size=BATCH,
                         max_length=MAX_LENGTH, save_steps=10_000, output_dir=out, device=device, logging_steps=1)
    model, tokenizer = load_policy(config)
    trainer = build_trainer(config, model, tokenizer, data, None)
    trainer.compact_lm_head = variant != "stock"
    if variant in ("stock", "compact"):
        trainer.min_shared_prefix = 0
    if variant != "busy":
        return {**timed(trainer, device), "shared_prefix_tokens": trainer.last_shared_prefix}
    trainer.add_callback(BusyAfter(steps + 1))
    result = timed(trainer, device, measured=steps)
    busy = result.pop("rest")
    result.update(busy_seconds_per_step=round(statistics.median(busy), 4),
                  busy_to_idle=ratio(1 / statistics.median(busy), 1 / result["seconds_per_step"]),
                  threads=dataclasses.asdict(THREADS), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
                  gomp_spincount=os.environ.get("GOMP_SPINCOUNT"))
    return result


def run_bare_trl(data: Dataset, steps: int, out: str, device: str) -> dict:
    """The same LoRA r=8 step through TRL directly: what a user's own script would do."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from fairgym.lm.models import embedded_model_path

    path = str(embedded_model_path())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    args = SFTConfig(output_dir=out, max_steps=steps + 1, per_device_train_batch_size=BATCH, max_length=MAX_LENGTH,
                     bf16=False, gradient_checkpointing=False, use_cpu=not device.startswith("cuda"),
                     report_to="none", save_strategy="no", logging_steps=1, dataloader_num_workers=0,
                     learning_rate=1e-4, disable_tqdm=True)
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    tokenizer = AutoTokenizer.from_pretrained(path)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft)
    return timed(trainer, device)


def timed(trainer, device: str, measured: int | None = None) -> dict:
    """Train; the median step after the warm-up (over ``measured`` steps, the rest returned as ``rest``)."""
    timer = StepTimer()
    trainer.add_callback(timer)
    before = peak_mb(device)
    trainer.train()
    steps = timer.times[1:]  # the first step warms up
    measured = len(steps) if measured is None else measured
    losses = [round(h["loss"], 5) for h in trainer.state.log_history if "loss" in h]
    return {"seconds_per_step": round(statistics.median(steps[:measured]), 4), "steps_measured": measured,
            "losses": losses, "peak_memory_mb": round(peak_mb(device), 1),
            "training_memory_mb": round(peak_mb(device) - before, 1),  # peak growth while training
            **({"rest": steps[measured:]} if measured < len(steps) else {})}


def measure(arm: str, steps: int, device: str, data_kind: str) -> dict:
    """One arm in this process: ``"bare"`` (TRL directly, LoRA r=8) or a fairgym arm (see ``run_fairgym``)."""
    from fairgym.lm.models import load_model

    _, tokenizer = load_model(None, device="cpu")
    data = bench_data(data_kind, tokenizer, BATCH * (2 * steps + 1))
    with tempfile.TemporaryDirectory() as tmp:
        if arm == "bare":
            return run_bare_trl(data, steps, f"{tmp}/bare", device)
        return run_fairgym(arm, data, steps, f"{tmp}/{arm}", device)


def measure_in_subprocess(arm: str, steps: int, data_kind: str, env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--only", arm, "--steps", str(steps), "--data", data_kind]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout
    return json.loads(out.strip().splitlines()[-1])


def summarise(results: dict) -> None:
    """Compact-only and compact + shared-prefix vs stock step-time ratios (at the same losses), fairgym vs bare TRL."""
    arms = results["arms"]
    for name in ("r8", "full"):
        stock = arms.get(f"{name}-stock")
        for label, arm in (("compact", f"{name}-compact"), ("prefix", name)):
            if stock is None or arm not in arms:
                continue
            results[f"{name}_{label}_to_stock_step_time"] = ratio(arms[arm]["seconds_per_step"],
                                                                  stock["seconds_per_step"])
            results[f"{name}_{label}_same_losses"] = all(abs(a - b) < 1e-3 for a, b in zip(
                arms[arm]["losses"], stock["losses"], strict=True))
    if "r8" in arms:
        results["ratio_fairgym_to_bare_trl"] = ratio(arms["r8"]["seconds_per_step"],
                                                     results["bare_trl_lora_r8"]["seconds_per_step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per arm (after one warm-up step)")
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS)
    parser.add_argument("--data", choices=["lending", "synthetic"], default="lending",
                        help="real Lending SFT rows (a ~105-token shared prefix) or 128-token synthetic rows")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file")
    parser.add_argument("--compare-spin", action="store_true",
                        help="also run r8-busy under libgomp's default spin-wait (slow when busy)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: measure one arm, print its JSON
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.only:
        print(json.dumps(measure(args.only, args.steps, device, args.data)))
        return
    results: dict = {"device": device, "torch_threads": torch.get_num_threads(), "batch": BATCH, "data": args.data,
                     "max_length": MAX_LENGTH, "threads": dataclasses.asdict(THREADS), "arms": {}}
    results["bare_trl_lora_r8"] = measure_in_subprocess("bare", args.steps, args.data)
    for arm in args.arms:  # results are written after every arm, so an interrupted run keeps what it measured
        results["arms"][arm] = measure_in_subprocess(arm, args.steps, args.data)
        summarise(results)
        save(results, args.out)
    if args.compare_spin:
        results["arms"]["r8-busy-spin-wait"] = measure_in_subprocess("r8-busy", args.steps, args.data, SPIN_ENV)
        save(results, args.out)
    print(json.dumps(results, indent=2))


def save(results: dict, path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
