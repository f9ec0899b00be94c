"""Configs are data: a dataclass gives schema and defaults, YAML gives values, the CLI overrides.

Unknown keys are errors with a "did you mean" suggestion; values are type-checked when built.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def did_you_mean(name: str, options: typing.Iterable[str]) -> str:
    """A short hint naming the closest options, or listing all of them."""
    options = sorted(options)
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{hint} Known: {', '.join(options)}."


class UnknownNameError(ValueError):
    """An unknown env/agent/metric/model/config-key name, with what exists."""

    def __init__(self, kind: str, name: str, options: typing.Iterable[str]):
        super().__init__(f"Unknown {kind} {name!r}.{did_you_mean(name, options)}")


def parse_value(text: str) -> Any:
    """A CLI override value: YAML scalars/lists/dicts (``3``, ``0.5``, ``[1, 8]``, ``true``), else the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(pairs: typing.Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"Override {pair!r} must look like key=value (e.g. rank=8).")
        key, value = pair.split("=", 1)
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parse_value(value)
    return out


def _check_type(cls_name: str, name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    optional = origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    if hint is Any or (value is None and optional):
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _check_type(cls_name, name, value, arg)
            except TypeError:
                continue
        raise TypeError(f"{cls_name}.{name}={value!r} should be {hint}.")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return value if isinstance(value, hint) else from_dict(hint, value or {})
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{cls_name}.{name}={value!r} should be a list.")
        return list(value) if origin is list else tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{cls_name}.{name}={value!r} should be a mapping.")
        return dict(value)
    check = origin or hint
    if isinstance(check, type) and not isinstance(value, check) or (check is int and isinstance(value, bool)):
        raise TypeError(f"{cls_name}.{name}={value!r} should be of type {getattr(hint, '__name__', hint)}.")
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``: unknown keys fail with a suggestion, types are checked."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} expects a mapping, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # cls is a dataclass
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise UnknownNameError(f"{cls.__name__} key", unknown[0], fields)
    hints = typing.get_type_hints(cls)
    values = {k: _check_type(cls.__name__, k, v, hints[k]) for k, v in data.items()}
    return cls(**values)


# ---- what a field means for results, declared once on the field ---------------------------------------------------
ROLE = "role"  # ``dataclasses.field(metadata={ROLE: ...})``; a field without one changes results
LOGGING = "logging"  # how a run logs, checkpoints or evaluates along the way, never what it learns
BUDGET = "budget"  # how long a run goes: a resumed run may extend it, but it changes the results
ARMS = "arms"  # which arms of a comparison exist; each arm's numbers depend on its own settings only
STAGE = "stage"  # whether a stage runs at all (its results, when it runs, do not depend on it)
REPORT = "report"  # how a report labels results (verdict thresholds), never the numbers themselves


def role(kind: str, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field declaring what it means for results (``LOGGING``, ``BUDGET``, ``ARMS``, ``STAGE``,
    ``REPORT``); every list of fields that may differ between runs is derived from these declarations."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={ROLE: kind})


def fields_with_role(cls: type, roles: typing.Collection[str], prefix: str = "") -> frozenset[str]:
    """The dotted names of ``cls``'s fields whose declared role is in ``roles``, nested dataclass fields included
    (``eval.min_agreement``)."""
    hints = typing.get_type_hints(cls)
    names: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.metadata.get(ROLE) in roles:
            names.add(prefix + f.name)
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            names |= fields_with_role(hint, roles, f"{prefix}{f.name}.")
    return frozenset(names)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def yaml_syntax_error(path: str | Path, exc: yaml.YAMLError) -> ValueError:
    """A one-line error naming the file, the line and column (1-based) and PyYAML's description of the problem."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return ValueError(f"{path}{where}: YAML syntax error: {' '.join(detail.split())}. Fix the file there "
                      "(indentation with spaces only, `key: value` pairs, closed brackets and quotes).")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error naming the file when it is missing, not YAML or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise yaml_syntax_error(path, exc) from None
    if not isinstance(data, dict):
        raise ValueError(f"Config file {str(path)!r} must hold a mapping at the top level.")
    return data


def load_data(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> dict[str, Any]:
    """A config's values: the YAML file (optional) with ``key=value`` overrides merged on top."""
    return merge(load_yaml(path) if path else {}, parse_overrides(overrides))


def load_config(cls: type[T], path: str | Path | None = None, overrides: typing.Sequence[str] = (),
                **fields: Any) -> T:
    """YAML file (optional) + ``key=value`` overrides + keyword ``fields`` (``None`` ones left out) -> a validated
    ``cls``."""
    return from_dict(cls, merge(load_data(path, overrides), {k: v for k, v in fields.items() if v is not None}))


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain data (for ``config.yaml`` beside the results)."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config) if dataclasses.is_dataclass(config) else config,
                                         sort_keys=False))
