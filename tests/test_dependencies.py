"""Every third-party module fairgym's code imports is a declared dependency (pyproject range + requirements pin)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = [".", "envs", "agents", "analysis", "training"]
OPTIONAL = {"platformdirs"}  # imported inside `try: ... except ImportError` with a fallback


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalize(re.split(r"[<>=!~ \[;]", line.strip(), maxsplit=1)[0])


def imported_modules() -> dict[str, str]:
    """Top-level module -> one file importing it, over the package's own code (tests and benchmarks aside)."""
    found: dict[str, str] = {}
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_third_party_module_is_declared_and_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(d) for d in project["dependencies"]}
    pinned = {requirement_name(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    distributions = packages_distributions()
    missing = []
    for module, where in imported_modules().items():
        if module in sys.stdlib_module_names or module in ("fairgym", "__future__") or module in OPTIONAL:
            continue
        names = {normalize(d) for d in distributions.get(module, [module])}
        if not names & declared or not names & pinned:
            missing.append(f"{module} ({where}; distribution {', '.join(sorted(names))})")
    assert not missing, "imported but not declared in pyproject.toml and requirements.txt: " + "; ".join(missing)
