"""``fairgym run``: run an agent on seeded episodes of an env; write episodes, metrics and the resolved config.

Values come from ``RunConfig`` defaults, then ``--config`` YAML, then command-line flags; the run itself is
``fairgym.agents.runs.execute`` (the folder it writes is described there). The per-group summary is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from fairgym.agents.options import DECIDE_MODES, LLMOptions
from fairgym.agents.runs import RunConfig
from fairgym.commands.config_help import add_config_help, env_arguments_help
from fairgym.config import from_dict, load_yaml, merge, parse_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``fairgym run``; every one defaults to ``None`` so YAML values survive unless overridden."""
    parser.add_argument("--config", help="a run YAML (configs/runs/*.yaml); flags override its values")
    parser.add_argument("--env", help="env id, e.g. fairgym/Lending-v0 (see `fairgym envs list`)")
    parser.add_argument("--agent", help="agent name, e.g. eo-threshold, fair-oracle, llm")
    parser.add_argument("--episodes", type=int, help="number of episodes (default 20)")
    parser.add_argument("--seed", type=int, help="base seed; episode i uses seed+i (default 0)")
    parser.add_argument("--out", help="run folder (default runs/<env>-<agent>-s<seed>); a rerun resumes")
    parser.add_argument("--num-envs", type=int, dest="num_envs", help="envs stepped per agent call (default 8)")
    parser.add_argument("--env-url", dest="env_url", metavar="URL",
                        help="play on the env served at URL (`fairgym serve`, e.g. http://127.0.0.1:8000) instead of "
                             "in this process; same records and metrics")
    parser.add_argument("--env-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="env argument, repeatable (e.g. max_steps=30, descriptors=religion)")
    parser.add_argument("--agent-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="agent argument, repeatable (e.g. threshold=600)")
    parser.add_argument("--balance-groups", action="store_true", default=None, dest="balance_groups",
                        help="play every seed once per group of the env (Dialogue: the interlocutor's group; "
                             "Lending: every applicant from that group, the same random numbers), so groups are "
                             "compared on paired episodes: --episodes seeds x groups episodes")
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
    add_config_help(parser, RunConfig, "in a --config YAML; the flags above override them",
                    extra=[env_arguments_help()])


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """Defaults < ``--config`` YAML < flags, validated into a ``RunConfig`` (unknown keys fail with a hint)."""
    data = load_yaml(args.config) if args.config else {}
    flags = {k: getattr(args, k) for k in ("env", "agent", "episodes", "seed", "out", "num_envs", "env_url",
                                     "balance_groups")}
    llm = {f.name: getattr(args, f.name) for f in dataclasses.fields(LLMOptions)}
    override: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if any(v is not None for v in llm.values()):
        override["llm"] = {k: v for k, v in llm.items() if v is not None}
    override["env_kwargs"] = parse_overrides(args.env_opt)
    override["agent_kwargs"] = parse_overrides(args.agent_opt)
    if args.no_wandb:
        override["wandb"] = False
    return from_dict(RunConfig, merge(data, override))


def run(args: argparse.Namespace) -> int:
    """Resolve the config, run it (``fairgym.agents.runs.execute``), print the summary."""
    from fairgym.agents.runs import execute
    from fairgym.analysis.metrics import summary_table
    from fairgym.analysis.trajectories import run_profile

    cfg = resolve_config(args)
    result = execute(cfg)
    print(summary_table(result.metrics, run_profile(result.episodes)))
    paired = f" ({cfg.episodes} seeds x each group)" if cfg.balance_groups else ""
    print(f"\n{len(result.episodes)} episodes{paired} of {cfg.env} with {cfg.agent} -> {result.folder}/ "
          "(episodes.jsonl, metrics.json)")
    return 0
