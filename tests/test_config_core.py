"""fairgym.config: configs are data, validated when built, with "did you mean" for unknown keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fairgym.config import (
    UnknownNameError,
    from_dict,
    load_config,
    load_yaml,
    merge,
    parse_overrides,
    save_config,
    with_defaults,
)


@dataclass
class Inner:
    rate: float = 0.5


@dataclass
class Example:
    name: str = "x"
    steps: int = 3
    ranks: list[int] = field(default_factory=lambda: [1, 8])
    model: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_overrides_parse_yaml_scalars_and_nested_keys():
    assert parse_overrides(["steps=5", "ranks=[1, 4]", "inner.rate=0.1", "model=null", "name=a=b"]) == {
        "steps": 5, "ranks": [1, 4], "inner": {"rate": 0.1}, "model": None, "name": "a=b"}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["steps"])


def test_unknown_key_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'steps'"):
        from_dict(Example, {"stepz": 2})


@pytest.mark.parametrize(("data", "field_name"), [({"steps": "3"}, "steps"), ({"steps": True}, "steps"),
                                                   ({"ranks": 4}, "ranks"), ({"name": 1}, "name")])
def test_wrong_types_name_the_field(data, field_name):
    with pytest.raises(TypeError, match=f"Example.{field_name}="):
        from_dict(Example, data)


def test_ints_widen_to_floats_and_nested_dataclasses_build():
    cfg = from_dict(Example, {"inner": {"rate": 1}, "model": None})
    assert cfg.inner == Inner(rate=1.0) and isinstance(cfg.inner.rate, float) and cfg.model is None


def test_yaml_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\ninner: {rate: 0.2}\n")
    cfg = load_config(Example, path, ["inner.rate=0.9"])
    assert cfg.steps == 7 and cfg.inner.rate == 0.9
    save_config(cfg, tmp_path / "saved.yaml")
    assert from_dict(Example, load_yaml(tmp_path / "saved.yaml")) == cfg


def test_missing_or_non_mapping_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_merge_is_recursive_and_override_wins():
    assert merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}, "d": 1}


@pytest.mark.parametrize(("text", "line", "column"), [
    ("steps: 7\ninner: {rate: 0.2\n", 3, 1),  # an unclosed flow mapping: the error is at the end of the file
    ("steps: 7\n  inner: x\n", 2, 8),  # a mapping value where none may start
    ("steps: [1, 2\nmodel: x\n", 2, 6),
    ("steps: 7\n\tinner: 1\n", 2, 1),  # a tab in indentation
])
def test_yaml_syntax_error_names_file_line_and_column(tmp_path, text, line, column):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_yaml(path)
    message = str(info.value)
    assert f"{path}, line {line}, column {column}:" in message and "\n" not in message


def test_with_defaults_fills_only_the_fields_a_saved_config_predates():
    saved = {"name": "old", "steps": 9}
    filled = with_defaults(Example, saved)
    assert filled["name"] == "old" and filled["steps"] == 9  # saved values win
    assert filled["ranks"] == [1, 8] and filled["model"] is None  # default_factory and plain defaults
    assert saved == {"name": "old", "steps": 9}  # the saved data is not changed
