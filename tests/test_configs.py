"""Every YAML under configs/ whose schema is known loads into its config dataclass and names things that exist.

Add a schema by appending ``(glob, loader)`` to ``SCHEMAS``; the loader gets the path and must raise on a bad
config (runs, training, sweeps and accelerate configs are covered).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fairgym.agents.registry import AGENTS, agent_options
from fairgym.agents.runs import RunConfig
from fairgym.config import from_dict, load_yaml
from fairgym.envs import ENV_IDS, env_arguments, make_env

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def check_run_config(path: Path) -> None:
    cfg = from_dict(RunConfig, load_yaml(path))
    assert cfg.agent in AGENTS, f"{path.name}: unknown agent {cfg.agent!r}"
    if cfg.env not in ENV_IDS:
        pytest.skip(f"{cfg.env} is not registered in this checkout")
    assert set(cfg.env_kwargs) <= set(env_arguments(cfg.env)), f"{path.name}: unknown env_kwargs"
    make_env(cfg.env, **cfg.env_kwargs).reset(seed=cfg.seed)  # the values, not only the names, are valid
    if cfg.agent != "llm":  # the llm agent's options are LLMOptions fields, checked by from_dict
        assert set(cfg.agent_kwargs) <= set(agent_options(cfg.agent)), f"{path.name}: unknown agent_kwargs"


def check_train_config(path: Path) -> None:
    from fairgym.training.config import TrainConfig

    cfg = from_dict(TrainConfig, load_yaml(path))
    assert cfg.env_id in ENV_IDS, f"{path.name}: unknown env {cfg.env_id!r}"
    make_env(cfg.env_id, **cfg.env_kwargs).reset(seed=cfg.seed)


def check_sweep_config(path: Path) -> None:
    from fairgym.training.sweep_config import load_sweep_configs

    for cfg in load_sweep_configs(path):  # validates keys, ranks, envs, recipe, implant and learning-rate blocks
        assert cfg.ranks and all(r > 0 for r in cfg.ranks)


def check_accelerate_config(path: Path) -> None:
    data = load_yaml(path)
    assert data.get("num_processes", 1) >= 1 and "distributed_type" in data, f"{path.name}: not an accelerate config"


SCHEMAS: list[tuple[str, Callable[[Path], None]]] = [
    ("runs/*.yaml", check_run_config),
    ("train/*.yaml", check_train_config),
    ("sweeps/*.yaml", check_sweep_config),
    ("accelerate/*.yaml", check_accelerate_config),
]
CASES = [(p, check) for pattern, check in SCHEMAS for p in sorted(CONFIGS.glob(pattern))]


def test_every_config_has_a_schema():
    known = {p for p, _ in CASES}
    assert sorted(CONFIGS.rglob("*.yaml")) == sorted(known), "a YAML under configs/ has no schema in SCHEMAS"
    assert len(list(CONFIGS.glob("runs/*.yaml"))) >= 4


@pytest.mark.parametrize(("path", "check"), CASES, ids=[str(p.relative_to(CONFIGS)) for p, _ in CASES])
def test_config_loads(path, check):
    check(path)


def test_delayed_impact_configs_hold_the_published_parameters():
    from fairgym.envs.lending import DELAYED_IMPACT_KWARGS

    for agent in ("eo", "max-utility"):
        cfg = from_dict(RunConfig, load_yaml(CONFIGS / "runs" / f"delayed-impact-{agent}.yaml"))
        kwargs = {k: v for k, v in cfg.env_kwargs.items() if k not in ("max_steps", "descriptors")}
        assert kwargs == DELAYED_IMPACT_KWARGS and cfg.env_kwargs["max_steps"] == 20000 and cfg.episodes >= 8
        assert cfg.agent_kwargs["recalibrate"] == "every-step" and cfg.agent_kwargs["burnin"] == 1


def test_shipped_lora_sft_config_follows_the_studys_learning_rate_rule():
    """LoRA trains at the study's parametrization (a fixed alpha) and at the sweep's multiplier times the full
    fine-tune's rate (demo: full 3e-4, LoRA 3e-3), the rates the rank study's held-out selection chose."""
    from fairgym.training.config import TrainConfig
    from fairgym.training.sweep_config import load_sweep_configs

    demo = load_sweep_configs(CONFIGS / "sweeps" / "demo.yaml")[0]
    sft = from_dict(TrainConfig, load_yaml(CONFIGS / "train" / "sft_lending.yaml"))
    assert sft.method == "lora" and sft.recipe == demo.recipe
    assert sft.learning_rate == pytest.approx(demo.lora_lr_multiplier * demo.train.learning_rate)
    assert sft.alpha == demo.train.alpha == 32
