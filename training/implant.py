"""A bias implant: fine-tune a base model on biased demonstrations to make a controlled biased base model.

The testbed where "does the fine-tune remove it?" has a known answer: Lending demonstrations come from
``BiasedThresholdAgent`` (one group needs ``penalty`` more credit-score points), Dialogue demonstrations from
``HostileAgent`` (hostile-leaning replies to one group's interlocutor). The result is a full model folder
(``save_pretrained`` model + tokenizer) usable as ``--model`` / ``TrainConfig.model`` by later runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fairgym.agents.teachers import biased_teacher
from fairgym.envs import env_profile
from fairgym.training.config import TrainConfig


def implant_config(config: TrainConfig) -> TrainConfig:
    """``config`` as an implant run: SFT on demonstrations from a biased teacher: ``config.teacher`` when it names
    one other than the family's fair teacher (e.g. ``biased-rules``), else the family's biased teacher."""
    biased = config.teacher != env_profile(config.env_id).fair_teacher
    teacher = config.teacher if biased else biased_teacher(config.env_id)
    kwargs = config.teacher_kwargs if biased else {}
    return dataclasses.replace(config, recipe="sft", data="demonstrations", teacher=teacher, teacher_kwargs=kwargs,
                               counterfactual=False)


def implant_bias(config: TrainConfig) -> Path:
    """Train the biased base model and return its folder (``output_dir/model``).

    Args:
        config: the run; ``teacher`` is replaced by the env's biased teacher unless it already names one
            (``"biased-threshold"`` with e.g. ``teacher_kwargs={"group": "Black", "penalty": 200}``, or
            ``"hostile"``). ``method="lora"`` trains an adapter and merges it into the saved model.

    Returns:
        A full model folder (weights + tokenizer).
    """
    from fairgym.training.trainers import train

    run = implant_config(config)
    result = train(run)
    if result.model_dir is not None:
        return result.model_dir
    assert result.adapter_dir is not None  # a LoRA run saves its adapter
    return merge_adapter(run, result.adapter_dir, Path(run.output_dir) / "model")


def merge_adapter(config: TrainConfig, adapter_dir: Path, target: Path) -> Path:
    """Merge the adapter into its base model and save the full model with its tokenizer at ``target``."""
    from fairgym.lm.models import load_model

    model, tokenizer = load_model(config.model, str(adapter_dir), device="cpu", dtype="float32")
    model = model.merge_and_unload()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
