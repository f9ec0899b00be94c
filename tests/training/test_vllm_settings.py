"""vLLM rollouts for the GRPO recipes, as far as CPU can check them: the settings reach TRL's ``GRPOConfig`` through
``trl_config`` (and no other recipe's config), they are refused on CPU and without vLLM before any model loads, a
sweep's driver without a GPU accepts them, and the episode recipe's vLLM path (here against a stand-in engine with
vLLM's interface) keeps replies, loss mask and sampling log-probabilities aligned."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from test_sweep import tiny_sweep  # tests/training is on pytest's path

from fairgym.config import UnknownNameError
from fairgym.training import TrainConfig, train
from fairgym.training import episode_grpo as eg
from fairgym.training.trl_config import trl_config

LENDING = "fairgym/Lending-v0"


def grpo(**fields) -> TrainConfig:
    return TrainConfig(**{"recipe": "grpo", "batch_size": 4, "num_generations": 4, "use_vllm": True, **fields})


@pytest.mark.parametrize(("fields", "error", "match"), [
    ({"device": "cpu"}, ValueError, "needs a CUDA GPU"),
    ({"vllm_mode": "server"}, UnknownNameError, "vllm_mode 'server'"),
    ({"vllm_gpu_memory_utilization": 1.5}, ValueError, "in \\(0, 1\\)"),
])
def test_bad_vllm_settings_are_refused_when_built(fields, error, match):
    with pytest.raises(error, match=match):
        grpo(**fields)


def test_trl_config_passes_the_vllm_settings_to_grpo_only(tmp_path, monkeypatch):
    from trl import GRPOConfig, SFTConfig

    from fairgym.training import trl_config as module

    checked = []  # the GPU and vLLM checks (tested below) pass, as on a GPU machine with vLLM
    monkeypatch.setattr(module, "check_vllm", checked.append)
    config = grpo(device="cuda", dtype="float32", output_dir=str(tmp_path), vllm_gpu_memory_utilization=0.25)
    args = trl_config(config, GRPOConfig, num_generations=4)
    assert (args.use_vllm, args.vllm_mode, args.vllm_gpu_memory_utilization) == (True, "colocate", 0.25)
    assert checked == [config]
    episode = trl_config(grpo(recipe="grpo-episode", device="cuda", dtype="float32", output_dir=str(tmp_path)),
                         GRPOConfig, num_generations=4)
    assert episode.use_vllm and episode.vllm_mode == "colocate"
    plain = trl_config(grpo(use_vllm=False, device="cuda", dtype="float32", output_dir=str(tmp_path)), GRPOConfig,
                       num_generations=4)
    assert plain.use_vllm is False and len(checked) == 2  # TRL generates with transformers, nothing to check
    sft = trl_config(TrainConfig(device="cuda", dtype="float32", output_dir=str(tmp_path)), SFTConfig)
    assert not getattr(sft, "use_vllm", False)


def test_use_vllm_is_refused_on_cpu_without_vllm_or_for_sft_before_the_model_loads(tiny_config, monkeypatch):
    from fairgym.training import trainers

    monkeypatch.setattr(trainers, "load_policy", lambda config: pytest.fail("loaded a model"))
    with pytest.raises(ValueError, match="generates GRPO rollouts; recipe='sft' generates nothing"):
        train(tiny_config(recipe="sft", use_vllm=True, device=None))
    config = tiny_config(recipe="grpo", batch_size=2, num_generations=2, use_vllm=True, device=None)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA GPU .* and this process sees none"):
            train(config)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError, match=r"needs vLLM, which is not installed: pip install 'trl\[vllm\]'"):
        train(config)


def test_a_sweep_on_a_driver_without_gpu_keeps_use_vllm_for_its_gpu_workers(tiny_model_dir):
    train_block = {"max_steps": 2, "episodes": 1, "batch_size": 2, "num_generations": 2, "use_vllm": True}
    config = tiny_sweep(tiny_model_dir, recipe="grpo", device=None, train=train_block)
    assert config.template.use_vllm and config.arm_config(method="lora", rank=2, seed=0, output_dir="x",
                                                          learning_rate=1e-3).use_vllm
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        tiny_sweep(tiny_model_dir, recipe="grpo", device="cpu", train=train_block)
    with pytest.raises(ValueError, match="recipe='sft' generates nothing"):  # refused when the sweep is loaded
        tiny_sweep(tiny_model_dir, recipe="sft", device=None, train={**train_block, "num_generations": 4})


class StandInEngine:
    """vLLM's ``LLM.generate`` interface: replies "approve" then an end of turn, each token with a logprob."""

    def __init__(self, tokenizer):
        self.reply = tokenizer("approve", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        self.calls: list[tuple[int, dict]] = []

    def generate(self, prompts, sampling_params, use_tqdm=True):
        self.calls.append((len(prompts), sampling_params))
        assert all(isinstance(p["prompt_token_ids"][0], int) for p in prompts)
        sample = types.SimpleNamespace(token_ids=self.reply + [7, 7],  # past the stop: cut off
                                       logprobs=[{t: types.SimpleNamespace(logprob=-0.1 * (i + 1))}
                                                 for i, t in enumerate(self.reply + [7, 7])])
        return [types.SimpleNamespace(outputs=[sample]) for _ in prompts]


def test_episode_rollouts_through_a_vllm_engine_align_tokens_mask_and_logprobs(tiny_config, tok, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kw: kw))
    config = tiny_config(recipe="grpo-episode", batch_size=2, num_generations=2, max_completion_length=4,
                         env_kwargs={"max_steps": 3})
    engine = StandInEngine(tok)
    spec = eg.EpisodeSpec(turn_tokens=4, temperature=0.7, context_window=1024)
    rollouts = eg.play_episodes(None, tok, [eg.make_env(config), eg.make_env(config)], [0, 1], spec, engine)
    assert [n for n, _ in engine.calls] == [2, 2, 2]  # one call per turn, both episodes batched
    params = engine.calls[0][1]
    assert (params["max_tokens"], params["temperature"], params["logprobs"]) == (4, 0.7, 0)
    assert params["stop_token_ids"] == spec.stop_ids(tok)
    for rollout in rollouts:
        assert [s["action"] for s in rollout.steps] == [{"approve": True}] * 3  # the env parsed every reply
        assert len(rollout.logprobs) == len(rollout.env_mask) == len(rollout.completion_ids)
        model_logprobs = [lp for lp, m in zip(rollout.logprobs, rollout.env_mask, strict=True) if m]
        assert model_logprobs == pytest.approx([-0.1 * (i + 1) for i in range(len(engine.reply))] * 3)
        assert all(lp is None for lp, m in zip(rollout.logprobs, rollout.env_mask, strict=True) if not m)


def test_the_rollout_function_hands_trl_the_logprobs_only_with_vllm(tiny_config, tok, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kw: kw))
    config = tiny_config(recipe="grpo-episode", batch_size=2, num_generations=2, max_completion_length=4,
                         env_kwargs={"max_steps": 2})
    rollouts = eg.EpisodeRollouts(config, tok, eg.EpisodeSpec(4, 1.0, 1024), log=None)
    trainer = types.SimpleNamespace(use_vllm=True, vllm_generation=types.SimpleNamespace(llm=StandInEngine(tok)),
                                    state=types.SimpleNamespace(global_step=0),
                                    accelerator=types.SimpleNamespace(is_main_process=True))
    prompts = [eg.first_prompt(eg.make_env(config), 5)] * 2
    out = rollouts(prompts, trainer)
    assert [len(lp) for lp in out["logprobs"]] == [len(ids) for ids in out["completion_ids"]]
    assert [e["seed"] for e in out["episode"]] == [5, 5]
