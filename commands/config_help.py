"""``--help`` that lists the config keys a command accepts, with their defaults and what they mean.

A config dataclass documents its fields in its docstring's ``Attributes:`` section (Google style); this module
reads that section and the fields' defaults, so the help cannot drift from the config. Nested config dataclasses
are listed with dotted names (``llm.decide``, ``eval.episodes``), as YAML blocks and ``key=value`` overrides
spell them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import textwrap
import typing
from pathlib import PurePath
from typing import Any

from fairgym.config import field_default

WIDTH = 100


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` section of ``cls``'s docstring (continuation lines
    joined)."""
    lines = (cls.__doc__ or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Attributes:"), None)
    if start is None:
        return {}
    docs: dict[str, str] = {}
    name, indent = None, None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break  # the next section
        match = re.match(r"(\w+)(?: \([^)]*\))?: ?(.*)", line.strip())
        if depth == indent and match:
            name = match.group(1)
            docs[name] = match.group(2)
        elif name is not None:
            docs[name] += " " + line.strip()
    return docs


def first_sentence(text: str) -> str:
    """The first sentence of a description, without reST's double backticks: it ends at a period followed by a
    capital letter or the end (so ``e.g. x``, ``et al. 2025`` and ``seed .. seed + n`` do not end it)."""
    text = text.replace("``", "")
    match = re.search(r"(?<!e\.g)(?<!i\.e)(?<!et al)\.(?=\s+[A-Z(]|\s*$)", text)
    return text[: match.start() + 1] if match else text


def default_text(f: dataclasses.Field) -> str:
    """A field's default as YAML writes it (``null``, ``true``, ``[1, 8]``), or ``required``."""
    value = field_default(f)
    if value is dataclasses.MISSING:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(block below)"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def config_keys(cls: type, prefix: str = "", skip: tuple[str, ...] = (), collapse: tuple[str, ...] = ()) -> list[str]:
    """One wrapped entry per field of ``cls`` (nested config dataclasses after it, with dotted names, unless
    named in ``collapse``; fields in ``skip`` left out)."""
    docs, hints = attribute_docs(cls), typing.get_type_hints(cls)
    lines: list[str] = []
    nested: list[tuple[str, type]] = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type) and f.name not in collapse:
            nested.append((f.name, hint))
        default = "(its block)" if f.name in collapse else default_text(f)
        entry = f"{prefix}{f.name} = {default}: {first_sentence(docs.get(f.name, ''))}".rstrip(": ")
        lines += textwrap.wrap(entry, WIDTH, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False)
    for name, hint in nested:
        lines += config_keys(hint, f"{prefix}{name}.")
    return lines


def add_config_help(parser: argparse.ArgumentParser, cls: type, how: str, *, collapse: tuple[str, ...] = (),
                    extra: list[str] | None = None) -> None:
    """Give ``parser`` an epilog listing ``cls``'s keys with their defaults (``how``: how the keys are given;
    ``collapse``: nested blocks listed as one key; ``extra``: paragraphs after the list)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n".join([f"config keys ({how}), with their defaults:", *config_keys(cls, collapse=collapse),
                               *["\n" + paragraph for paragraph in extra or []]])


def env_arguments_help() -> str:
    """Each registered env's keyword arguments with their defaults, for ``envs check`` and ``run --env-opt``."""
    import inspect

    from fairgym.envs import ENV_IDS, env_arguments, env_class
    from fairgym.envs.core import TextEnv

    lines = ["env arguments (key=value), by env, with their defaults:"]
    for env_id in ENV_IDS:
        params = {**inspect.signature(TextEnv).parameters, **inspect.signature(env_class(env_id)).parameters}
        cells = [f"{n}={_param_default(params[n])}" for n in env_arguments(env_id) if n in params]
        lines += textwrap.wrap(f"{env_id}: {', '.join(cells)}", WIDTH, initial_indent="  ",
                               subsequent_indent="      ", break_on_hyphens=False)
    return "\n".join(lines)


def _param_default(param: Any) -> str:
    value = param.default
    if value is param.empty:
        return "required"
    if isinstance(value, PurePath):  # a file shipped with fairgym: its name says enough
        return f"{value.name} (shipped)"
    return value if isinstance(value, str) else json.dumps(value, default=str)
