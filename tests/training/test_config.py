"""TrainConfig validation, loading with overrides, and resume comparison."""

from __future__ import annotations

import dataclasses

import pytest

from fairgym.config import UnknownNameError
from fairgym.training.config import TrainConfig, config_differences, load_train_config


@pytest.mark.parametrize("rank", [0, -4])
def test_rank_must_be_positive(rank):
    with pytest.raises(ValueError, match="rank"):
        TrainConfig(method="lora", rank=rank)


def test_full_ignores_rank():
    assert TrainConfig(method="full", rank=0).arm == "full"


def test_unknown_method_and_recipe_suggest():
    with pytest.raises(UnknownNameError, match="Did you mean 'lora'"):
        TrainConfig(method="lroa")
    with pytest.raises(UnknownNameError, match="grpo"):
        TrainConfig(recipe="gpro")


def test_grpo_batch_must_hold_whole_groups():
    with pytest.raises(ValueError, match="num_generations"):
        TrainConfig(recipe="grpo", batch_size=3, num_generations=2)
    assert TrainConfig(recipe="grpo", batch_size=4, num_generations=2).recipe == "grpo"


def test_alpha_defaults_to_twice_rank():
    assert TrainConfig(rank=8).lora_alpha == 16.0
    assert TrainConfig(rank=8, alpha=4).lora_alpha == 4.0


@pytest.mark.parametrize(("alpha", "rslora", "scales"), [
    ("2r", False, [2.0, 2.0, 2.0]),  # the same scale at every rank
    (32, False, [32.0, 8.0, 0.5]),  # fixed alpha: alpha / r
    (16, True, [16.0, 8.0, 2.0]),  # rsLoRA: alpha / sqrt(r)
    (None, False, [2.0, 2.0, 2.0]),  # older configs' null is the default
])
def test_the_parametrization_sets_the_scale_per_rank(alpha, rslora, scales):
    assert [TrainConfig(rank=r, alpha=alpha, use_rslora=rslora).lora_scale for r in (1, 4, 64)] == scales
    assert TrainConfig(alpha=alpha).alpha == ("2r" if alpha in ("2r", None) else float(alpha))


def test_rslora_needs_a_fixed_alpha_and_bad_alphas_say_what_to_write():
    with pytest.raises(ValueError, match="grows like r\\^1.5.*fixed alpha"):
        TrainConfig(use_rslora=True)
    with pytest.raises(ValueError, match="must be '2r'.*or a number > 0"):
        TrainConfig(alpha="r")
    with pytest.raises(ValueError, match="must be '2r'"):
        TrainConfig(alpha=0)


def test_load_with_yaml_overrides_and_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recipe: sft\nrank: 4\nmax_steps: 3\n")
    config = load_train_config(path, ["max_steps=7", "env_kwargs.max_steps=2"], rank=16, method=None)
    assert (config.rank, config.max_steps, config.env_kwargs) == (16, 7, {"max_steps": 2})
    with pytest.raises(UnknownNameError, match="Did you mean 'rank'"):
        load_train_config(path, ["rnak=3"])


def test_config_differences_ignores_budget_fields():
    saved = dataclasses.asdict(TrainConfig(rank=8, max_steps=2))
    assert config_differences(saved, TrainConfig(rank=8, max_steps=10)) == {}
    assert config_differences(saved, TrainConfig(rank=4, max_steps=10)) == {"rank": (8, 4)}
