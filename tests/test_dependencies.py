"""Every third-party module fairgym's code imports is a declared dependency (pyproject range + requirements pin);
a folder that needs an extra (``serve/``) may import what that extra declares and ``requirements-<extra>*.txt`` pins."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = [".", "envs", "serve", "agents", "analysis", "training"]
# folder or module file -> the optional extra it may also import from
EXTRA_OF = {"serve": "serve", "training/ray_executor.py": "ray"}
# platformdirs: imported inside `try: ... except ImportError` with a fallback; vllm: imported only by GRPO rollouts
# with use_vllm, which trl_config.check_vllm refuses where it is missing (a CUDA package: pip install 'trl[vllm]'
# on a GPU machine, never installed by make test)
OPTIONAL = {"platformdirs", "vllm"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    return normalize(re.split(r"[<>=!~ \[;]", line.strip(), maxsplit=1)[0])


def pinned_in(*files: Path) -> set[str]:
    return {requirement_name(line) for path in files for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


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
    pinned = pinned_in(ROOT / "requirements.txt")
    distributions = packages_distributions()
    missing = []
    for module, where in imported_modules().items():
        if module in sys.stdlib_module_names or module in ("fairgym", "__future__") or module in OPTIONAL:
            continue
        names = {normalize(d) for d in distributions.get(module, [module])}
        extra = EXTRA_OF.get(where) or (EXTRA_OF.get(Path(where).parts[0]) if len(Path(where).parts) > 1 else None)
        extra_declared = {requirement_name(d) for d in project["optional-dependencies"].get(extra, [])}
        extra_pinned = pinned_in(*ROOT.glob(f"requirements-{extra}*.txt")) if extra else set()
        if not names & (declared | extra_declared) or not names & (pinned | extra_pinned):
            missing.append(f"{module} ({where}; distribution {', '.join(sorted(names))})")
    assert not missing, "imported but not declared in pyproject.toml and requirements.txt: " + "; ".join(missing)
