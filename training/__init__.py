"""fairgym training: datasets from envs, TRL trainers (SFT, GRPO, DPO), LoRA at rank r or full updates.

Importing this package stays light (no torch); ``train`` and ``build_dataset`` import TRL when called.

Example:
    >>> from fairgym.training import TrainConfig, train
    >>> result = train(TrainConfig(recipe="sft", method="lora", rank=8, max_steps=10, output_dir="runs/sft-r8"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairgym.training.config import TrainConfig, load_train_config

if TYPE_CHECKING:
    from datasets import Dataset

    from fairgym.training.trainers import TrainResult

__all__ = ["TrainConfig", "TrainResult", "build_dataset", "implant_bias", "load_train_config", "train"]


def train(config: TrainConfig) -> TrainResult:
    """Run one training job; see ``fairgym.training.trainers.train``."""
    from fairgym.training.trainers import train as _train

    return _train(config)


def build_dataset(config: TrainConfig) -> Dataset:
    """The dataset a run with ``config`` trains on; see ``fairgym.training.datasets.build_dataset``."""
    from fairgym.training.datasets import build_dataset as _build

    return _build(config)


def implant_bias(config: Any) -> Any:
    """Train a controlled biased base model; see ``fairgym.training.implant.implant_bias``."""
    from fairgym.training.implant import implant_bias as _implant

    return _implant(config)


def __getattr__(name: str) -> Any:
    if name == "TrainResult":
        from fairgym.training.trainers import TrainResult

        return TrainResult
    raise AttributeError(f"module 'fairgym.training' has no attribute {name!r}")
