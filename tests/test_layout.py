"""The layout rule of the README, enforced: which folder may import which (commands on the top floor, the model
layer ``lm`` between envs and the rest), and no import cycle among fairgym's modules (imports read from the source
with ``ast``, top level and in functions)."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = ("envs", "serve", "lm", "analysis", "agents", "training", "commands")
# floor -> the floors its modules may import (their own included), lowest first
MAY_IMPORT = {
    "root": {"root"},  # fairgym.config, fairgym.runfiles, fairgym.threads: import no other fairgym module
    "envs": {"root", "envs"},
    "serve": {"root", "envs", "serve"},  # fairgym.serve: the env server and its client, just above the envs
    "lm": {"root", "envs", "serve", "lm"},
    "analysis": {"root", "envs", "serve", "lm", "analysis"},
    "agents": {"root", "envs", "serve", "lm", "analysis", "agents"},
    "training": {"root", "envs", "serve", "lm", "analysis", "agents", "training"},
    "commands": {"root", "envs", "serve", "lm", "analysis", "agents", "training", "commands"},
}


def modules() -> dict[str, pathlib.Path]:
    """Module name -> file, for the package's root files and its folders (``__init__`` as the package)."""
    found = {}
    for folder in ("", *FOLDERS):
        package = "fairgym" + (f".{folder}" if folder else "")
        for path in (ROOT / folder).glob("*.py"):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The fairgym modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a module, else ``a``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
    return out & known


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def floor(module: str) -> str:
    if module == "fairgym.__main__":
        return "commands"
    if module == "fairgym":
        return "envs"  # the package itself only imports fairgym.envs, to register the envs with Gymnasium
    folder = module.split(".")[1]
    return folder if folder in FOLDERS else "root"


def layering_violations(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, d) for m, deps in edges.items() for d in deps if floor(d) not in MAY_IMPORT[floor(m)]}


def cycles(edges: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Every import cycle, as the sorted tuple of its modules (strongly connected components of size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = set()

    def visit(u: str) -> None:  # Tarjan's algorithm
        index[u] = low[u] = len(index)
        stack.append(u)
        for v in sorted(edges[u]):
            if v not in index:
                visit(v)
                low[u] = min(low[u], low[v])
            elif v in stack:
                low[u] = min(low[u], index[v])
        if low[u] == index[u]:
            component = []
            while not component or component[-1] != u:
                component.append(stack.pop())
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_every_module_is_on_a_floor():
    assert {floor(m) for m in modules()} <= set(MAY_IMPORT)
    assert floor("fairgym.runfiles") == "root" and floor("fairgym.envs.keys") == "envs"
    assert floor("fairgym.commands.sweep") == "commands" and floor("fairgym.agents") == "agents"
    assert floor("fairgym.lm.scoring") == "lm" and floor("fairgym.serve.remote") == "serve"


def test_the_walk_sees_function_level_imports():
    assert "fairgym.training.trainers" in graph()["fairgym.training.implant"]  # imported inside implant_bias


def test_no_import_breaks_the_layering():
    unexpected = layering_violations(graph())
    assert not unexpected, "imports against the layout rule (README, Layout): " + "; ".join(
        f"{m} ({floor(m)}) imports {d} ({floor(d)})" for m, d in sorted(unexpected))


def test_no_argument_parsing_outside_the_commands():
    parsers = [name for name, path in modules().items() if floor(name) != "commands" and "argparse" in
               {alias.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import)
                for alias in node.names}]
    assert not parsers, f"argparse imported outside fairgym.commands: {parsers}"


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in sorted(found))


@pytest.mark.parametrize("edges,bad", [
    ({"fairgym.envs.core": {"fairgym.agents.base"}, "fairgym.agents.base": set()}, "fairgym.envs.core"),
    ({"fairgym.analysis.metrics": {"fairgym.training.config"}, "fairgym.training.config": set()},
     "fairgym.analysis.metrics"),
    ({"fairgym.training.sweep": {"fairgym.commands.sweep"}, "fairgym.commands.sweep": set()},
     "fairgym.training.sweep"),
    ({"fairgym.envs.toxicity": {"fairgym.lm.judge"}, "fairgym.lm.judge": set()}, "fairgym.envs.toxicity"),
    ({"fairgym.lm.scoring": {"fairgym.agents.base"}, "fairgym.agents.base": set()}, "fairgym.lm.scoring"),
    ({"fairgym.runfiles": {"fairgym.envs.keys"}, "fairgym.envs.keys": set()}, "fairgym.runfiles"),
    ({"fairgym.envs.core": {"fairgym.serve.remote"}, "fairgym.serve.remote": set()}, "fairgym.envs.core"),
    ({"fairgym.serve.app": {"fairgym.agents.runner"}, "fairgym.agents.runner": set()}, "fairgym.serve.app"),
])
def test_the_checks_catch_what_they_should(edges, bad):
    assert {m for m, _ in layering_violations(edges)} == {bad}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b", "c")}
