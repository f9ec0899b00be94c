"""Training cost on the embedded SmolLM2-135M: seconds per SFT step and peak memory, LoRA r = 1, 8, 64 and full.

Batch 4, sequences of 128 tokens, CPU float32 (or CUDA when present). Each arm runs in a fresh subprocess (so its
peak memory is its own, not the running maximum of the arms before it): 1 warm-up step, then the median of the
measured steps. Also the ratio of fairgym's SFT step time (``fairgym.training.trainers.build_trainer``) to
a bare TRL ``SFTTrainer`` on the same data (target <= 1.05). Writes ``benchmarks/results/training.json``.

    python benchmarks/training.py [--steps 4]
"""

from __future__ import annotations

import argparse
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

os.environ.setdefault("WANDB_MODE", "disabled")
RESULTS = Path(__file__).parent / "results" / "training.json"
BATCH, LENGTH = 4, 128


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


def bench_data(tokenizer, rows: int) -> Dataset:
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
    from fairgym.training.config import TrainConfig
    from fairgym.training.trainers import build_trainer, load_policy

    method, rank = ("full", 8) if arm == "full" else ("lora", int(arm[1:]))
    config = TrainConfig(recipe="sft", method=method, rank=rank, max_steps=steps + 1, batch_size=BATCH,
                         max_length=LENGTH, save_steps=10_000, output_dir=out, device=device, logging_steps=10_000)
    model, tokenizer = load_policy(config)
    return timed(build_trainer(config, model, tokenizer, data, None), device)


def run_bare_trl(data: Dataset, steps: int, out: str, device: str) -> dict:
    """The same LoRA r=8 step through TRL directly: what a user's own script would do."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from fairgym.agents.models import embedded_model_path

    path = str(embedded_model_path())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    args = SFTConfig(output_dir=out, max_steps=steps + 1, per_device_train_batch_size=BATCH, max_length=LENGTH,
                     bf16=False, gradient_checkpointing=False, use_cpu=not device.startswith("cuda"),
                     report_to="none", save_strategy="no", logging_steps=10_000, dataloader_num_workers=0,
                     learning_rate=1e-4, disable_tqdm=True)
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    tokenizer = AutoTokenizer.from_pretrained(path)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft)
    return timed(trainer, device)


def timed(trainer, device: str) -> dict:
    timer = StepTimer()
    trainer.add_callback(timer)
    before = peak_mb(device)
    trainer.train()
    measured = timer.times[1:]  # the first step warms up
    return {"seconds_per_step": round(statistics.median(measured), 4), "steps_measured": len(measured),
            "peak_memory_mb": round(peak_mb(device), 1),
            "training_memory_mb": round(peak_mb(device) - before, 1)}  # peak growth while training


def measure(arm: str, steps: int, device: str) -> dict:
    """One arm in this process: ``"bare"`` (TRL directly, LoRA r=8), ``"full"`` or ``"r<rank>"``."""
    from fairgym.agents.models import load_model

    _, tokenizer = load_model(None, device="cpu")
    data = bench_data(tokenizer, BATCH * (steps + 1))
    with tempfile.TemporaryDirectory() as tmp:
        if arm == "bare":
            return run_bare_trl(data, steps, f"{tmp}/bare", device)
        return run_fairgym(arm, data, steps, f"{tmp}/{arm}", device)


def measure_in_subprocess(arm: str, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--only", arm, "--steps", str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per arm (after one warm-up step)")
    parser.add_argument("--arms", nargs="+", default=["r8", "r1", "r64", "full"])
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: measure one arm, print its JSON
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.only:
        print(json.dumps(measure(args.only, args.steps, device)))
        return
    results: dict = {"device": device, "torch_threads": torch.get_num_threads(), "batch": BATCH, "length": LENGTH,
                     "arms": {}}
    results["bare_trl_lora_r8"] = measure_in_subprocess("bare", args.steps)
    for arm in args.arms:  # results are written after every arm, so an interrupted run keeps what it measured
        results["arms"][arm] = measure_in_subprocess(arm, args.steps)
        if arm == "r8":
            results["ratio_fairgym_to_bare_trl"] = round(results["arms"]["r8"]["seconds_per_step"]
                                                         / results["bare_trl_lora_r8"]["seconds_per_step"], 3)
        save(results)
    print(json.dumps(results, indent=2))


def save(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
