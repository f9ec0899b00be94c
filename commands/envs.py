"""``fairgym envs list`` and ``fairgym envs check ID``: the registered envs, and Gymnasium's contract on one."""

from __future__ import annotations

import argparse

from fairgym.commands.config_help import env_arguments_help
from fairgym.config import parse_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands ``list`` and ``check``."""
    sub = parser.add_subparsers(dest="envs_command", metavar="ACTION")
    sub.required = True
    sub.add_parser("list", help="list the registered env ids with their groups and a one-line description")
    check = sub.add_parser("check", help="run gymnasium's check_env and a short rollout on one env")
    check.add_argument("env_id", help="e.g. fairgym/Lending-v0")
    check.add_argument("overrides", nargs="*", help="env arguments as key=value (e.g. max_steps=5)")
    check.add_argument("--seed", type=int, default=0, help="seed of the rollout (default 0)")
    check.add_argument("--steps", type=int, default=10,
                       help="steps of the rollout, across episodes: the env is reset whenever one ends (default 10)")
    check.formatter_class = argparse.RawDescriptionHelpFormatter
    check.epilog = env_arguments_help()


def run(args: argparse.Namespace) -> int:
    """Dispatch to ``list`` or ``check``; return the exit code."""
    if args.envs_command == "list":
        return list_envs()
    return check(args.env_id, parse_overrides(args.overrides), seed=args.seed, steps=args.steps)


def list_envs() -> int:
    """Print one line per registered env: id, groups, first line of the class docstring."""
    from fairgym.envs import ENV_IDS, env_class

    for env_id in ENV_IDS:
        cls = env_class(env_id)
        groups = ", ".join(cls().groups)
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{env_id:<24} groups: {groups:<20} {summary}")
    return 0


def check(env_id: str, kwargs: dict, *, seed: int = 0, steps: int = 10) -> int:
    """``fairgym.envs.checks.check_contract`` on one env.

    Returns:
        0 and prints ``OK`` when it passes; 1 and prints the failure otherwise.
    """
    import traceback

    from fairgym.envs import make_env
    from fairgym.envs.checks import check_contract

    env = make_env(env_id, **kwargs)  # unknown ids/arguments raise, and the CLI prints them (exit 2)
    try:
        rollout = check_contract(env, seed=seed, steps=steps)
    except Exception as exc:  # report any failure of the contract, with where it happened
        print(f"FAIL {env_id}: {type(exc).__name__}: {exc}")
        print(traceback.format_exc(limit=-3))
        return 1
    spans = (f"across {rollout.episodes} episodes (reset when one ended; max_steps="
             f"{getattr(env.unwrapped, 'max_steps', '?')})" if rollout.episodes > 1 else "in one episode")
    print(f"OK {env_id}: check_env passed; {rollout.steps} rollout steps {spans}, return {sum(rollout.rewards):.3f} "
          "summed over them")
    return 0
