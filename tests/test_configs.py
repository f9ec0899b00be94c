"""Every YAML under configs/ whose schema is known loads into its config dataclass and names things that exist.

Add a schema by appending ``(glob, loader)`` to ``SCHEMAS``; the loader gets the path and must raise on a bad
config (training and sweep configs join here when their dataclasses exist).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fairgym.agents.cli import RunConfig
from fairgym.agents.registry import AGENTS, agent_options
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


SCHEMAS: list[tuple[str, Callable[[Path], None]]] = [
    ("runs/*.yaml", check_run_config),
]
CASES = [(p, check) for pattern, check in SCHEMAS for p in sorted(CONFIGS.glob(pattern))]


def test_there_are_run_configs():
    assert len(list(CONFIGS.glob("runs/*.yaml"))) >= 4


@pytest.mark.parametrize(("path", "check"), CASES, ids=[str(p.relative_to(CONFIGS)) for p, _ in CASES])
def test_config_loads(path, check):
    check(path)
