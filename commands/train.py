"""``fairgym train sft|grpo|dpo --config configs/train/X.yaml [--method lora --rank 8] [key=value ...]``.

Flags and ``key=value`` overrides may come in any order after the recipe (argparse alone would reject
overrides that follow a flag), so everything after the recipe is parsed here.
"""

from __future__ import annotations

import argparse

from fairgym.commands.config_help import add_config_help
from fairgym.training.config import RECIPES, TrainConfig

FLAGS = ("config", "method", "rank", "model", "adapter", "output_dir")


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML training config (configs/train/*.yaml)")
    parser.add_argument("--method", choices=("lora", "full"), default=None, help="LoRA adapter or full update")
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank r")
    parser.add_argument("--model", default=None, help="base model folder or hub id (default: embedded SmolLM2)")
    parser.add_argument("--adapter", default=None, help="PEFT adapter to start from")
    parser.add_argument("--output-dir", default=None, help="run folder (checkpoints, adapter/model, dataset)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` subcommand's arguments."""
    parser.add_argument("recipe", choices=RECIPES, help="TRL recipe: supervised, GRPO with env rewards, or DPO")
    _add_flags(parser)
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="key=value",
                        help="any TrainConfig field, e.g. max_steps=50 env_kwargs.max_steps=10")
    add_config_help(parser, TrainConfig, "key=value after the recipe, or in a --config YAML; flags win")
    parser.set_defaults(_parser=parser)


def split_rest(args: argparse.Namespace) -> tuple[dict[str, object], list[str]]:
    """The flags (given before or after the recipe) and the ``key=value`` overrides."""
    if any(a in ("-h", "--help") for a in args.rest):  # `fairgym train sft --help`: the recipe came first
        args._parser.print_help()
        raise SystemExit(0)
    late = argparse.ArgumentParser(prog="fairgym train", add_help=False)
    _add_flags(late)
    parsed, overrides = late.parse_known_args(args.rest)
    unknown = [o for o in overrides if "=" not in o]
    if unknown:
        names = ", ".join("--" + f.replace("_", "-") for f in FLAGS)
        raise ValueError(f"fairgym train: {unknown[0]!r} is neither a flag ({names}) nor a key=value override.")
    flags = {f: getattr(args, f) if getattr(args, f) is not None else getattr(parsed, f) for f in FLAGS}
    return flags, overrides


def run(args: argparse.Namespace) -> int:
    """Build the config (YAML < overrides < flags), train, and print where the result went."""
    from fairgym.training import load_train_config, train
    from fairgym.training.trainers import is_main_process

    flags, overrides = split_rest(args)
    path = flags.pop("config")
    assert path is None or isinstance(path, str)
    config = load_train_config(path, overrides, recipe=args.recipe, **flags)
    result = train(config)
    if not is_main_process():
        return 0
    saved = result.adapter_dir or result.model_dir
    flag = "--adapter" if result.adapter_dir else "--model"
    print(f"fairgym train {config.recipe} ({config.arm}): {result.global_step} steps; saved {saved}")
    base = f"--model {config.model} " if config.model and result.adapter_dir else ""
    print(f"evaluate with: fairgym run --agent llm {base}{flag} {saved} --env {config.env_id}")
    return 0
