"""The API reference: one page per module of the packages pyproject.toml installs, rendered by mkdocstrings."""

from __future__ import annotations

from pathlib import Path

import tomllib

from docgen.common import ROOT

SKIP = {"__main__"}


def packages() -> dict[str, Path]:
    """Import name -> folder, as pyproject.toml's ``[tool.setuptools]`` declares them (the one list)."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / setup["package-dir"].get(name, name) for name in setup["packages"]}


def modules() -> dict[str, list[str]]:
    """Package -> its modules' import names (sorted; ``__init__`` is the package's own page)."""
    out: dict[str, list[str]] = {}
    for package, folder in packages().items():
        names = sorted(p.stem for p in folder.glob("*.py") if p.stem not in SKIP and p.stem != "__init__")
        out[package] = [package, *(f"{package}.{n}" for n in names)]
    return out


def nav() -> list[dict[str, list[dict[str, str]]]]:
    return [{package: [{module: f"api/{module}.md"} for module in mods]} for package, mods in modules().items()]


def pages() -> dict[str, str]:
    out = {}
    for mods in modules().values():
        for module in mods:
            out[f"api/{module}.md"] = f"# `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"
    return out


def layout_table() -> str:
    """The import floors, read from ``tests/test_layout.py`` (``FOLDERS`` and ``MAY_IMPORT``), which enforces them."""
    import ast

    from docgen.common import md_table

    tree = ast.parse((ROOT / "tests" / "test_layout.py").read_text())
    rules: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MAY_IMPORT":
            rules = ast.literal_eval(node.value)
    order = list(rules)
    rows = []
    for floor in order:
        below = [f for f in order if f in rules[floor] and f != floor]
        name = "root modules (`config.py`, `runfiles.py`, `threads.py`, ...)" if floor == "root" else f"`{floor}/`"
        allowed = ", ".join(f"`{f}`" if f != "root" else "root modules" for f in below)
        rows.append([name, allowed or "no other fairgym module"])
    return md_table(["floor (lowest first)", "may import (besides its own floor)"], rows)
