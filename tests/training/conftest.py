"""Fixtures for training tests: tiny configs that train in a few seconds on CPU."""

from __future__ import annotations

import pytest

from fairgym.training import TrainConfig

LENDING = "fairgym/Lending-v0"


@pytest.fixture
def tiny_config(tiny_model_dir, tmp_path):
    """A factory of ``TrainConfig`` for the tiny model: 2 short Lending episodes, 2 steps, batch 2."""

    def make(**overrides) -> TrainConfig:
        fields = dict(model=str(tiny_model_dir), output_dir=str(tmp_path / "run"), env_id=LENDING,
                      env_kwargs={"max_steps": 3}, episodes=2, max_steps=2, batch_size=2, max_length=512,
                      learning_rate=1e-2, save_steps=1, device="cpu", seed=0)
        fields.update(overrides)
        return TrainConfig(**fields)

    return make
