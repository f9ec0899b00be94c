"""The ``fairgym`` command line: one module per command in this package, and the library below it.

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int``: it parses arguments and calls
the library (which never parses arguments), and keeps heavy imports (torch, transformers) inside ``run``, so
``fairgym envs list`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator

from fairgym import threads
from fairgym.locks import FolderBusyError
from fairgym.serve.errors import EnvServerError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "envs": ("fairgym.commands.envs", "list the registered environments, or check one against Gymnasium's contract"),
    "run": ("fairgym.commands.run", "run an agent on seeded episodes of an env and write episodes and metrics"),
    "report": ("fairgym.commands.report", "write report.md and plots for a run or sweep folder"),
    "train": ("fairgym.commands.train", "fine-tune an LLM agent with TRL (sft | grpo | dpo), LoRA rank r or full"),
    "sweep": ("fairgym.commands.sweep", "train and evaluate base / LoRA ranks / full arms and report"),
    "judge": ("fairgym.commands.judge", "check a toxicity scorer on the gold set: per-group errors, swap invariance"),
    "serve": ("fairgym.commands.serve", "serve the envs as an OpenEnv environment (HTTP and WebSocket sessions)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairgym", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


PROGRESS_BAR_SWITCHES = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def progress_bars_on_terminal_only() -> None:
    """Library progress bars (weights loading, dataset maps) only when stderr is a terminal: in a log file each
    redraw is another line. The user's own setting of either switch wins."""
    if sys.stderr.isatty():
        return
    for name in PROGRESS_BAR_SWITCHES:
        os.environ.setdefault(name, "1")
    # Both libraries read their switch when imported; one imported already (fairgym used from Python) is told.
    if os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1" and "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


@contextlib.contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """Print fairgym's own warnings (e.g. a torn record line) as ``fairgym <command>: warning: ...`` while the
    command runs; the warnings of other libraries keep Python's format."""
    python_format = warnings.formatwarning

    def formatwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
        if category.__module__.startswith("fairgym."):
            return f"fairgym {command}: warning: {message}\n"
        return python_format(message, category, filename, lineno, line)

    warnings.formatwarning = formatwarning
    try:
        yield
    finally:
        warnings.formatwarning = python_format


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The command line, with KEY=VALUE overrides allowed after the options too (``fairgym sweep CONFIG --out runs
    seeds=[0]``): argparse alone takes a command's positionals in one run only."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in item and not item.startswith("-") for item in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    threads.configure_threads()  # before any subcommand imports torch: OpenMP reads its settings once
    progress_bars_on_terminal_only()
    # The per-group table is the CLI's output; W&B's own run summary would bury it (set WANDB_QUIET=false for it).
    os.environ.setdefault("WANDB_QUIET", "true")
    parser = build_parser()
    args = parse(parser, argv)
    try:
        with one_line_warnings(args.command):
            return int(args._module.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FolderBusyError, EnvServerError) as exc:
        print(f"fairgym {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
