"""TRL training on the tiny model: what changes under LoRA and full updates, GRPO, DPO, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fairgym.training import train


def _base_weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_lora_trains_the_adapter_not_the_base(tiny_config, tiny_model_dir):
    result = train(tiny_config(method="lora", rank=4))
    assert result.global_step == 2 and result.model_dir is None
    adapter = load_file(str(result.adapter_dir / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: nonzero means it trained
    assert json.loads((result.adapter_dir / "adapter_config.json").read_text())["r"] == 4
    from fairgym.lm.models import load_model

    model, _ = load_model(str(tiny_model_dir), str(result.adapter_dir), device="cpu")
    base = _base_weights(tiny_model_dir)
    merged_free = {k.replace("base_model.model.", "").replace("base_layer.", ""): v
                   for k, v in model.state_dict().items() if "lora_" not in k}
    for name, tensor in base.items():
        assert torch.equal(merged_free[name], tensor), name
    assert (result.output_dir / "config.yaml").is_file() and (result.output_dir / "dataset").is_dir()


def test_full_update_changes_the_base(tiny_config, tiny_model_dir):
    result = train(tiny_config(method="full"))
    assert result.adapter_dir is None
    before, after = _base_weights(tiny_model_dir), _base_weights(result.model_dir)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    assert (result.model_dir / "tokenizer.json").is_file()


def test_resume_continues_from_the_saved_step(tiny_config):
    first = train(tiny_config(max_steps=2))
    resumed = train(tiny_config(max_steps=3))
    assert (first.global_step, resumed.global_step) == (2, 3)
    state = json.loads((resumed.output_dir / "checkpoint-3" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]


def test_resume_with_a_different_config_fails_before_training(tiny_config):
    train(tiny_config(max_steps=1))
    with pytest.raises(ValueError, match=r"learning_rate: saved 0.01, now 0.001; rank: saved 8, now 4"):
        train(tiny_config(max_steps=2, rank=4, learning_rate=1e-3))


def test_empty_dataset_fails_before_training(tiny_config, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="dataset is empty"):
        train(tiny_config(dataset_path=str(empty)))
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_adapter_for_another_base_fails(tiny_config, tmp_path):
    result = train(tiny_config(method="lora", rank=2, output_dir=str(tmp_path / "a")))
    config_file = result.adapter_dir / "adapter_config.json"
    data = json.loads(config_file.read_text())
    data["base_model_name_or_path"] = "/models/some-other-base"
    config_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="adapter="):
        train(tiny_config(adapter=str(result.adapter_dir), output_dir=str(tmp_path / "b")))


def test_grpo_steps_with_env_rewards(tiny_config):
    result = train(tiny_config(recipe="grpo", max_steps=1, batch_size=4, num_generations=2,
                               max_completion_length=4, beta=0.0))
    assert result.global_step == 1 and result.adapter_dir.is_dir()
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    logged = {k for h in state["log_history"] for k in h}
    assert {"rewards/env_reward/mean", "rewards/format_reward/mean"} <= logged


def test_dpo_runs_and_warns_nothing_deprecated(tiny_config):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(tiny_config(recipe="dpo", max_steps=1, method="full"))
    assert result.global_step == 1 and result.model_dir.is_dir()
    assert not [str(w.message) for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_eval_callback_logs_fairness_against_the_step(tiny_config):
    result = train(tiny_config(max_steps=2, eval_every=2, eval_episodes=1))
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    evals = [h for h in state["log_history"] if any(k.startswith("eval/") for k in h)]
    assert [h["step"] for h in evals] == [2]
    assert any(k.startswith("eval/fairness/") for k in evals[0])


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gpu_full_sweep_trains_float32_master_weights_under_bf16_autocast(tiny_model_dir, tmp_path, method):
    """configs/sweeps/gpu-full.yaml sets dtype: bfloat16; every arm's trainable weights must stay float32."""
    from datasets import Dataset

    from fairgym.training.sweep_config import load_sweep_config
    from fairgym.training.trainers import build_trainer, load_policy

    path = Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "gpu-full.yaml"
    sweep = load_sweep_config(path, [f"model={tiny_model_dir}", "device=cpu"])
    config = sweep.arm_config(method=method, rank=2, seed=0, output_dir=tmp_path / method, learning_rate=1e-4)
    assert config.dtype == "bfloat16"
    model, tokenizer = load_policy(config)
    rows = [{"prompt": [{"role": "user", "content": "A loan applicant."}],
             "completion": [{"role": "assistant", "content": "approve"}]}] * 4
    trainer = build_trainer(config, model, tokenizer, Dataset.from_list(rows))
    trainable = {n: p.dtype for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and set(trainable.values()) == {torch.float32}, trainable
    assert trainer.args.bf16 and not trainer.args.fp16  # bf16 is the autocast precision, not the weights'


@pytest.mark.parametrize("failing", ["init", "log"])
def test_a_wandb_failure_is_a_warning_and_loses_nothing(tiny_config, monkeypatch, failing):
    import wandb

    def fail(*args, **kwargs):
        raise RuntimeError(f"wandb.{failing} cannot reach the server")

    monkeypatch.setenv("WANDB_MODE", "offline")
    # wandb.init rebinds wandb.log to the new run's log, so a failing log is patched on the run class
    monkeypatch.setattr(wandb if failing == "init" else wandb.sdk.wandb_run.Run, failing, fail)
    with pytest.warns(RuntimeWarning, match=f"W&B logging failed .*wandb.{failing} cannot reach"):
        result = train(tiny_config(report_to="wandb", max_steps=2, eval_every=2, eval_episodes=1))
    wandb.finish()
    assert result.global_step == 2 and (result.adapter_dir / "adapter_model.safetensors").is_file()
    assert {"trainer_state.json", "train_metrics.json", "config.yaml", "checkpoint-2"} <= {
        p.name for p in result.output_dir.iterdir()}
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    assert any("eval/fairness/selection_rate" in "".join(h) for h in state["log_history"])


def test_eval_callback_generates_on_an_env_without_choices(tiny_config, tiny_model_dir):
    from fairgym.lm.models import load_model
    from fairgym.training.trainers import EvalEpisodesCallback

    config = tiny_config(env_id="fairgym/Dialogue-v1", env_kwargs={"max_steps": 2}, eval_every=1, eval_episodes=2)
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    metrics = EvalEpisodesCallback(config).evaluate(model, tokenizer, step=1)
    assert metrics["task/episodes"] == 2 and "toxicity/mean" in metrics


def test_warmup_ramps_the_learning_rate_from_zero(tiny_config):
    """warmup=0.5 of 4 steps: the rate rises from 0 over two steps to the peak, then decays (transformers' linear
    warm-up: the logged rate of step k is the one step k used)."""
    result = train(tiny_config(max_steps=4, warmup=0.5, learning_rate=1e-3))
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    rates = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert len(rates) == 4 and rates[0] < rates[1] < rates[2] == pytest.approx(1e-3) and rates[3] < rates[2], rates


@pytest.mark.parametrize("field,value", [("warmup", 1.0), ("warmup", -0.1), ("lr_scheduler", "cosine_typo")])
def test_warmup_and_scheduler_are_checked(field, value):
    from fairgym.training.config import TrainConfig

    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})
