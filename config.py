"""Configs are data: a dataclass gives schema and defaults, YAML gives values, the CLI overrides.

Unknown keys are errors with a "did you mean" suggestion; values are type-checked when built.

A config class saved beside results declares its schema history, ``SCHEMA_CHANGES`` (version -> the change that
version brought); ``save_config`` writes the newest version as ``schema_version`` at the top of ``config.yaml``,
and a command about to write into a folder reads the saved file with ``load_saved_config``, which refuses one
saved at another version (no version counts as 0), naming the change it predates. ``from_dict`` accepts the key,
so a saved ``config.yaml`` can be given back as ``--config``.
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
SCHEMA_KEY = "schema_version"


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
    if SCHEMA_KEY in data and schema_version(cls):  # the saved file's marker, not a field (see load_saved_config)
        data = {k: v for k, v in data.items() if k != SCHEMA_KEY}
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
EXECUTION = "execution"  # where a stage runs and with what (executor, CPUs, GPUs, retries), never what it computes
RECHECKED = "rechecked"  # a stage's own setting that the stage compares with what it wrote, redoing its part on change


def role(kind: str, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field declaring what it means for results (``LOGGING``, ``BUDGET``, ``ARMS``, ``STAGE``,
    ``REPORT``, ``EXECUTION``); every list of fields that may differ between runs is derived from these declarations."""
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


def schema_version(cls: type) -> int:
    """The schema version ``cls`` is saved with: the newest of its ``SCHEMA_CHANGES`` (0 for a class without)."""
    changes = getattr(cls, "SCHEMA_CHANGES", None)
    return max(changes) if changes else 0


def save_config(config: Any, path: str | Path) -> None:
    """Write ``config`` as YAML; a versioned config class gets ``schema_version`` first."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    version = schema_version(type(config))
    Path(path).write_text(yaml.safe_dump({SCHEMA_KEY: version, **data} if version else data, sort_keys=False))


class SchemaError(ValueError):
    """A saved config from another schema version than this fairgym writes."""


def check_schema(cls: type, saved: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``saved`` (a ``config.yaml`` of ``cls``) without its version, when the version is the one fairgym writes.

    Raises:
        SchemaError: an older version (or none), naming the first change the file predates and how to proceed,
            or a newer one.
    """
    current, found = schema_version(cls), saved.get(SCHEMA_KEY, 0)
    if not isinstance(found, int) or isinstance(found, bool):
        raise SchemaError(f"{path}: {SCHEMA_KEY}={found!r} must be an integer (this fairgym writes {current}).")
    if found > current:
        raise SchemaError(f"{path} was written by a newer fairgym ({cls.__name__} schema {found}; this one knows "
                          f"up to {current}); upgrade fairgym, or write to another folder.")
    if found < current:
        changes: dict[int, str] = getattr(cls, "SCHEMA_CHANGES")  # noqa: B009  # declared by every versioned config
        first = min(v for v in changes if v > found)
        have = "has no schema version" if found == 0 else f"has schema version {found}"
        raise SchemaError(f"{path} {have}: it predates {cls.__name__} schema {first} ({changes[first]}), "
                          f"so resuming it could mix results of two fairgym versions. Write to a new folder; or, if "
                          f"you know this one is unaffected, set `{SCHEMA_KEY}: {current}` at the top of {path}.")
    return {k: v for k, v in saved.items() if k != SCHEMA_KEY}


def field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default (its ``default_factory`` called), or ``dataclasses.MISSING`` for a required one."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def with_defaults(cls: type, saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config's data with every field of ``cls`` it predates at its default: a new field's default keeps
    the old behaviour (a field whose default would not bumps the schema version instead)."""
    defaults = {f.name: field_default(f) for f in dataclasses.fields(cls)}
    return {**{k: v for k, v in defaults.items() if v is not dataclasses.MISSING}, **saved}


def load_saved_config(cls: type, path: str | Path) -> dict[str, Any]:
    """The ``config.yaml`` of ``cls`` at ``path`` as plain data, checked by ``check_schema``."""
    return check_schema(cls, load_yaml(path), path)
