"""``fairgym run``: run an agent on seeded episodes of an env; write episodes, metrics and the resolved config.

Values come from ``RunConfig`` defaults, then ``--config`` YAML, then command-line flags. The run folder gets
``config.yaml`` (resolved), ``episodes.jsonl`` (one line per finished episode; a rerun resumes),
``run_stats.json`` and ``metrics.json``; the per-group summary is printed and logged to W&B (offline unless
configured). Every argument is checked before anything is written, and a folder holding another run's episodes
is refused, so bad input loses nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairgym.agents.options import DECIDE_MODES, LLMOptions, default_decide
from fairgym.config import from_dict, load_yaml, merge, parse_overrides, save_config, to_dict
from fairgym.runfiles import CONFIG_FILE, METRICS_FILE

# Fields that must match for episodes already in the output folder to belong to this run.
IDENTITY_FIELDS = ("env", "agent", "seed", "env_kwargs", "agent_kwargs", "llm")


@dataclass
class RunConfig:
    """One ``fairgym run``.

    Attributes:
        env: registered env id (``fairgym envs list``).
        agent: registered agent name (``random``, ``constant``, ``max-utility``, ``eo-threshold``,
            ``fair-oracle``, ``polite``, ``llm``).
        episodes: number of episodes; episode ``i`` is seeded with ``seed + i``.
        seed: base seed of envs and agent.
        out: run folder; default ``runs/<env name>-<agent>-s<seed>``.
        num_envs: env copies stepped together per agent call.
        record_observations: keep each step's observation text in ``episodes.jsonl`` (training data and LLM
            replays read it); ``false`` writes null there, for long episodes only metrics will read.
        env_kwargs: keyword arguments of the env (``max_steps``, ``descriptors``, ...).
        agent_kwargs: keyword arguments of the agent (e.g. ``threshold`` for ``max-utility``).
        llm: options of the ``llm`` agent; ``llm.decide`` defaults to the env's declaration (choice scoring where
            decisions are discrete choices, generation elsewhere).
        wandb: log the run to W&B (offline unless ``WANDB_MODE``/login say otherwise).
        wandb_project: W&B project.
    """

    env: str = "fairgym/Lending-v0"
    agent: str = "random"
    episodes: int = 20
    seed: int = 0
    out: str | None = None
    num_envs: int = 8
    record_observations: bool = True
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    llm: LLMOptions = field(default_factory=LLMOptions)
    wandb: bool = True
    wandb_project: str = "fairgym"

    def __post_init__(self) -> None:
        for name, low in (("episodes", 1), ("seed", 0), ("num_envs", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"RunConfig.{name}={getattr(self, name)!r} must be >= {low}.")
        if self.agent != "llm" and self.llm != LLMOptions():
            raise ValueError(f"LLM options ({_changed_llm(self.llm)}) apply to --agent llm only, not "
                             f"{self.agent!r}; drop them or use --agent llm.")
        if self.agent == "llm" and self.llm.decide is None:
            self.llm.decide = default_decide(self.env)
        if self.out is None:
            self.out = f"runs/{self.env.split('/')[-1]}-{self.agent}-s{self.seed}"

    def agent_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``make_agent``: the LLM options too when the agent is ``llm``."""
        if self.agent == "llm":
            return {**dataclasses.asdict(self.llm), **self.agent_kwargs}
        return dict(self.agent_kwargs)


def _changed_llm(options: LLMOptions) -> str:
    default = LLMOptions()
    return ", ".join(f"{f.name}={getattr(options, f.name)!r}" for f in dataclasses.fields(options)
                     if getattr(options, f.name) != getattr(default, f.name))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``fairgym run``; every one defaults to ``None`` so YAML values survive unless overridden."""
    parser.add_argument("--config", help="a run YAML (configs/runs/*.yaml); flags override its values")
    parser.add_argument("--env", help="env id, e.g. fairgym/Lending-v0 (see `fairgym envs list`)")
    parser.add_argument("--agent", help="agent name, e.g. eo-threshold, fair-oracle, llm")
    parser.add_argument("--episodes", type=int, help="number of episodes (default 20)")
    parser.add_argument("--seed", type=int, help="base seed; episode i uses seed+i (default 0)")
    parser.add_argument("--out", help="run folder (default runs/<env>-<agent>-s<seed>); a rerun resumes")
    parser.add_argument("--num-envs", type=int, dest="num_envs", help="envs stepped per agent call (default 8)")
    parser.add_argument("--env-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="env argument, repeatable (e.g. max_steps=30, descriptors=religion)")
    parser.add_argument("--agent-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="agent argument, repeatable (e.g. threshold=600)")
    llm = parser.add_argument_group("llm agent options (only with --agent llm)")
    llm.add_argument("--model", help="hub id or local folder (default: the embedded SmolLM2-135M-Instruct)")
    llm.add_argument("--adapter", help="PEFT adapter folder")
    llm.add_argument("--decide", choices=DECIDE_MODES,
                     help="score the choices or generate text (default: choice where the env's decisions are "
                          "choices, else generate)")
    llm.add_argument("--temperature", type=float, help="sampling temperature for --decide generate")
    llm.add_argument("--top-p", type=float, dest="top_p", help="nucleus sampling mass for --decide generate")
    llm.add_argument("--max-new-tokens", type=int, dest="max_new_tokens", help="generation budget per decision")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to W&B")


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """Defaults < ``--config`` YAML < flags, validated into a ``RunConfig`` (unknown keys fail with a hint)."""
    data = load_yaml(args.config) if args.config else {}
    flags = {k: getattr(args, k) for k in ("env", "agent", "episodes", "seed", "out", "num_envs")}
    llm = {f.name: getattr(args, f.name) for f in dataclasses.fields(LLMOptions)}
    override: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if any(v is not None for v in llm.values()):
        override["llm"] = {k: v for k, v in llm.items() if v is not None}
    override["env_kwargs"] = parse_overrides(args.env_opt)
    override["agent_kwargs"] = parse_overrides(args.agent_opt)
    if args.no_wandb:
        override["wandb"] = False
    return from_dict(RunConfig, merge(data, override))


def check_run_folder(cfg: RunConfig) -> None:
    """Refuse a folder whose ``config.yaml`` describes a different run (its episodes would be mixed)."""
    path = Path(cfg.out) / CONFIG_FILE
    if not path.exists():
        return
    old, new = load_yaml(path), to_dict(cfg)
    for key in IDENTITY_FIELDS:
        if old.get(key) != new[key]:
            raise ValueError(f"{cfg.out} holds a run with {key}={old.get(key)!r}, not {new[key]!r}. "
                             "Pick another --out, or rerun with the recorded settings to resume it.")


def prepare(cfg: RunConfig) -> Any:
    """Build the agent and check it against the env before anything is written (errors name what exists)."""
    from fairgym.agents import make_agent
    from fairgym.agents.runner import calibrate
    from fairgym.envs import make_env

    agent = make_agent(cfg.agent, **cfg.agent_arguments())
    env = make_env(cfg.env, **cfg.env_kwargs)
    calibrate(agent, env, cfg.seed)
    env.close()
    return agent


def run(args: argparse.Namespace) -> int:
    """Resolve the config, run the episodes (resuming), write metrics, print the summary, log to W&B."""
    from fairgym.agents.runner import run_episodes
    from fairgym.analysis.metrics import compute_metrics, summary_table, write_metrics

    cfg = resolve_config(args)
    check_run_folder(cfg)
    agent = prepare(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / CONFIG_FILE)
    episodes = run_episodes(cfg.env, agent, episodes=cfg.episodes, seed=cfg.seed, out_dir=out,
                            env_kwargs=cfg.env_kwargs, num_envs=cfg.num_envs,
                            record_observations=cfg.record_observations)
    metrics = compute_metrics(episodes)
    write_metrics(out / METRICS_FILE, metrics)
    print(summary_table(metrics))
    print(f"\n{len(episodes)} episodes of {cfg.env} with {cfg.agent} -> {out}/ (episodes.jsonl, metrics.json)")
    if cfg.wandb:
        from fairgym.analysis.wandb_log import log_run

        log_run(out, to_dict(cfg), metrics, episodes, project=cfg.wandb_project, name=out.name)
    return 0
