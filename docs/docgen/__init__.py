"""Generators of fairgym's documentation pages (run at build time by ``docs/gen_pages.py`` through mkdocs-gen-files).

Each generated page is a pure function of the code (docstrings, signatures, family profiles, metric functions run
on seeded episodes) or of the committed files under ``benchmarks/results/``, so the code and the result files stay
the one home of the facts the pages show. Hand-written pages take generated parts through ``<!-- generated: NAME
-->`` markers (``FILLS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docgen import api, benchmarks, catalog, envs, metrics, results
from docgen.common import DOCS, fill_markers

# marker name -> the markdown that replaces it
FILLS: dict[str, Callable[[], str]] = {
    "env-table": envs.env_table,
    "info-keys": envs.info_keys_table,
    "descriptor-sets": envs.descriptor_sets_table,
    "metric-keys": metrics.keys_section,
    "results-table": results.index_table,
    "layout-floors": api.layout_table,
    "agent-table": catalog.agent_table,
    "run-configs": lambda: catalog.config_table("runs"),
    "train-configs": lambda: catalog.config_table("train"),
    "sweep-configs": lambda: catalog.config_table("sweeps"),
    "accelerate-configs": lambda: catalog.config_table("accelerate"),
}


def nav_entries() -> dict[str, list[Any]]:
    """``auto:<name>`` entries of mkdocs.yml's nav -> the generated pages they stand for."""
    return {"envs": envs.nav(), "results": results.nav(), "api": api.nav()}


def generated_pages() -> dict[str, str | bytes]:
    """Every generated page (path under docs/ -> markdown, or bytes for a copied figure)."""
    return {**envs.pages(), **results.pages(), **benchmarks.pages(), **api.pages()}


def filled_pages() -> dict[str, str]:
    """The hand-written pages that hold markers, with the markers filled."""
    out = {}
    for path in sorted(DOCS.rglob("*.md")):
        rel = str(path.relative_to(DOCS))
        if rel.startswith(("snippets/", "docgen/")):
            continue
        text = path.read_text()
        if "<!-- generated: " in text:
            out[rel] = fill_markers(text, FILLS, rel)
    return out
