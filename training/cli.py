"""``fairgym train sft|grpo|dpo --config configs/train/X.yaml [--method lora --rank 8] [key=value ...]``."""

from __future__ import annotations

import argparse

from fairgym.training.config import RECIPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` subcommand's arguments."""
    parser.add_argument("recipe", choices=RECIPES, help="TRL recipe: supervised, GRPO with env rewards, or DPO")
    parser.add_argument("--config", default=None, help="YAML training config (configs/train/*.yaml)")
    parser.add_argument("--method", choices=("lora", "full"), default=None, help="LoRA adapter or full update")
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank r")
    parser.add_argument("--model", default=None, help="base model folder or hub id (default: embedded SmolLM2)")
    parser.add_argument("--adapter", default=None, help="PEFT adapter to start from")
    parser.add_argument("--output-dir", default=None, help="run folder (checkpoints, adapter/model, dataset)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="any TrainConfig field, e.g. max_steps=50")


def run(args: argparse.Namespace) -> int:
    """Build the config (YAML < overrides < flags), train, and print where the result went."""
    from fairgym.training import load_train_config, train

    config = load_train_config(args.config, args.overrides, recipe=args.recipe, method=args.method, rank=args.rank,
                               model=args.model, adapter=args.adapter, output_dir=args.output_dir)
    result = train(config)
    saved = result.adapter_dir or result.model_dir
    flag = "--adapter" if result.adapter_dir else "--model"
    print(f"fairgym train {config.recipe} ({config.arm}): {result.global_step} steps; saved {saved}")
    base = f"--model {config.model} " if config.model and result.adapter_dir else ""
    print(f"evaluate with: fairgym run --agent llm {base}{flag} {saved} --env {config.env_id}")
    return 0
