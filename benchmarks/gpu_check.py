"""GPU check: SFT step time LoRA r=8 vs full (bf16 autocast), batched choice decisions per second at 32 and 256
envs, and one episode-GRPO step, on a SmolLM2-135M-sized Llama (random weights, in-memory tokenizer: the
machine has no network and the embedded GGUF is too large to travel). Prints one JSON object.

With ``--rollouts`` it measures episode-GRPO rollouts instead: the same short grpo-episode run generating with
transformers (``model.generate``) and with vLLM colocated in the training process (``use_vllm=True``,
``vllm_mode="colocate"``): rollout episodes per second of rollout time and seconds per step. Where vLLM is not
installed (or there is no GPU) the vLLM run is recorded as skipped, with the reason.

    python benchmarks/gpu_check.py [--tiny] [--rollouts]   # --tiny: a 2-layer model, a CPU dry run of the same path
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the in-memory tokenizer of the tests
SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                    tie_word_embeddings=True)
TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False)


def save_model(folder: Path, tiny: bool) -> Path:
    """A randomly initialised Llama of the chosen size with the tests' tokenizer, saved to ``folder``."""
    import torch
    from conftest import build_tiny_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(**(TINY if tiny else SMOLLM2_135M), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sft_step_seconds(model_dir: Path, method: str, out: Path, device: str, steps: int = 4) -> float:
    """Median seconds per SFT step (after one warm-up step) through fairgym's trainer."""
    from transformers import TrainerCallback

    from fairgym.training import TrainConfig
    from fairgym.training.datasets import build_dataset
    from fairgym.training.trainers import build_trainer, load_policy

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    config = TrainConfig(recipe="sft", model=str(model_dir), method=method, rank=8, max_steps=steps + 1, batch_size=8,
                         episodes=4, env_kwargs={"max_steps": 5}, save_steps=10_000, logging_steps=10_000,
                         output_dir=str(out), device=device)
    model, tokenizer = load_policy(config)
    build_trainer(config, model, tokenizer, build_dataset(config), [Timer()]).train()
    return statistics.median(times[1:])


def decisions_per_second(model_dir: Path, envs: int, device: str) -> float:
    """Choice decisions per second: ``envs`` Lending envs stepped together, one batched forward per step."""
    from fairgym.agents.llm import LLMAgent
    from fairgym.agents.runner import run_episodes
    from fairgym.lm.models import load_model

    model, tokenizer = load_model(str(model_dir), device=device)
    agent = LLMAgent.from_model(model, tokenizer, decide="choice", batch_size=envs)
    run_episodes("fairgym/Lending-v0", agent, episodes=envs, env_kwargs={"max_steps": 1}, num_envs=envs,
                 progress=False)  # warm-up
    started = time.perf_counter()
    run_episodes("fairgym/Lending-v0", agent, episodes=envs, env_kwargs={"max_steps": 4}, num_envs=envs,
                 progress=False)
    return envs * 4 / (time.perf_counter() - started)


def episode_grpo_step(model_dir: Path, out: Path, device: str) -> dict:
    """One grpo-episode step (8 rollouts of 3 Lending decisions, G=4, LoRA r=8): seconds and rollout rate."""
    from fairgym.runfiles import STEP_METRICS_FILE
    from fairgym.training import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(recipe="grpo-episode", model=str(model_dir), output_dir=str(out), device=device,
                               env_kwargs={"max_steps": 3}, episodes=2, max_steps=1, batch_size=8,
                               num_generations=4, max_completion_length=4, save_steps=10_000, beta=0.0))
    lines = (out / "rollouts" / STEP_METRICS_FILE).read_text().splitlines()
    return {"seconds": round(time.perf_counter() - started, 2), "global_step": result.global_step,
            "rollout_episodes_per_second": json.loads(lines[-1]).get("rollout/episodes_per_second")}


def episode_grpo_rollouts(model_dir: Path, out: Path, device: str, use_vllm: bool, steps: int = 3) -> dict:
    """``steps`` grpo-episode steps (LoRA r=8; per step 16 rollouts of 5 Lending decisions, G=4, 4 tokens a turn),
    generating with transformers or with colocated vLLM: rollout episodes per second of rollout time (from the
    rollout log, so vLLM's start-up and weight syncs are left out), and the run's seconds per step."""
    from fairgym.runfiles import STEP_METRICS_FILE
    from fairgym.training import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(recipe="grpo-episode", model=str(model_dir), output_dir=str(out), device=device,
                               env_kwargs={"max_steps": 5}, episodes=4 * steps, max_steps=steps, batch_size=16,
                               num_generations=4, max_completion_length=4, save_steps=10_000, beta=0.0,
                               use_vllm=use_vllm))
    seconds = time.perf_counter() - started
    last = json.loads((out / "rollouts" / STEP_METRICS_FILE).read_text().splitlines()[-1])
    return {"global_step": result.global_step, "seconds_per_step_with_setup": round(seconds / steps, 3),
            "rollout_episodes": last.get("rollout/episodes"),
            "rollout_episodes_per_second": round(last.get("rollout/episodes_per_second", float("nan")), 2)}


def rollout_comparison(model_dir: Path, tmp: Path, device: str) -> dict:
    """Episode-GRPO rollouts with transformers and with vLLM (or why vLLM was skipped) and the ratio of rates."""
    import importlib.util

    out: dict = {"transformers": episode_grpo_rollouts(model_dir, tmp / "rollouts-hf", device, use_vllm=False)}
    if device != "cuda" or importlib.util.find_spec("vllm") is None:
        out["vllm"] = {"skipped": "no CUDA device" if device != "cuda" else "vllm is not installed on this machine "
                       "(pip install 'trl[vllm]'; its wheels are larger than benchmarks/wheels may carry)"}
        return out
    from importlib.metadata import version

    try:
        out["vllm"] = {"version": version("vllm"),
                       **episode_grpo_rollouts(model_dir, tmp / "rollouts-vllm", device, use_vllm=True)}
    except Exception as exc:  # noqa: BLE001 - unattended: record the failure, keep the transformers numbers
        out["vllm"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        return out
    out["vllm_over_transformers_rollout_rate"] = round(out["vllm"]["rollout_episodes_per_second"]
                                                       / out["transformers"]["rollout_episodes_per_second"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="2-layer model (a CPU dry run of the same path)")
    parser.add_argument("--rollouts", action="store_true",
                        help="only episode-GRPO rollouts, with transformers and with vLLM (colocate)")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "model": "tiny" if args.tiny
                 else "SmolLM2-135M-sized (random weights)", "bf16_autocast": device == "cuda"}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model(Path(tmp) / "model", args.tiny)
        if args.rollouts:
            print(json.dumps({**out, "episode_grpo_rollouts": rollout_comparison(model_dir, Path(tmp), device)}))
            return
        for method in ("lora", "full"):
            out[f"sft_seconds_per_step_{'lora_r8' if method == 'lora' else 'full'}"] = round(
                sft_step_seconds(model_dir, method, Path(tmp) / f"sft-{method}", device), 4)
        out["sft_full_over_lora_r8"] = round(out["sft_seconds_per_step_full"] / out["sft_seconds_per_step_lora_r8"], 3)
        for envs in (32, 256):
            out[f"choice_decisions_per_second_{envs}_envs"] = round(decisions_per_second(model_dir, envs, device), 1)
        out["episode_grpo_step"] = episode_grpo_step(model_dir, Path(tmp) / "episode", device)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
