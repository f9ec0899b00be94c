"""MkDocs hooks for fairgym's site (mkdocs.yml: ``hooks``): the import path for the API reference and the nav.

- ``fairgym`` is the repository root (pyproject.toml maps ``"fairgym" = "."``), so no folder is named after the
  package; ``build/docs-import/fairgym`` is made a link to the root and mkdocstrings reads the source from there,
  whether or not fairgym is installed.
- The nav of mkdocs.yml names the hand-written pages; ``auto:<name>`` entries become the generated pages
  (``docgen.NAV``), pages of ``extra.pending_pages`` that do not exist yet are left out, and a page of ``docs/`` that
  the nav does not name goes under "More", so a page merged from another branch is never unreachable.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

try:
    from mkdocs.plugins import event_priority
except ImportError:  # the tests import this module without mkdocs installed

    def event_priority(priority: float) -> Any:
        return lambda f: f

log = logging.getLogger("mkdocs.hooks.fairgym")


def _import_docgen(docs_dir: Path) -> Any:
    if str(docs_dir) not in sys.path:
        sys.path.insert(0, str(docs_dir))
    import docgen

    return docgen


def link_package(root: Path) -> Path:
    """``build/docs-import/fairgym`` -> the repository root; returns the folder to put on griffe's path."""
    folder = root / "build" / "docs-import"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "fairgym"
    if link.is_symlink() and Path(os.readlink(link)) == Path("../.."):
        return folder
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path("../.."), target_is_directory=True)
    return folder


def _named_pages(nav: list[Any]) -> set[str]:
    named: set[str] = set()
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            named |= _named_pages(value)
        elif isinstance(value, str):
            named.add(value)
    return named


def _expand(nav: list[Any], docs_dir: Path, pending: set[str], auto: dict[str, list[Any]]) -> list[Any]:
    out: list[Any] = []
    for item in nav:
        title, value = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if isinstance(value, list):
            value = _expand(value, docs_dir, pending, auto)
            if not value:
                continue
        elif isinstance(value, str) and value.startswith("auto:"):
            out.extend(auto[value.removeprefix("auto:")])
            continue
        elif isinstance(value, str) and value in pending and not (docs_dir / value).exists():
            log.info("nav: %s is not in docs/ yet (extra.pending_pages); left out", value)
            continue
        out.append({title: value} if title is not None else value)
    return out


# Before every plugin: mkdocstrings drops a `paths` entry that does not exist yet when its own on_config runs, so
# on a fresh checkout (no build/ folder) griffe would not see the link made here.
@event_priority(100)
def on_config(config: Any) -> Any:
    """Link the package for griffe and fill the nav (see the module docstring)."""
    docs_dir = Path(config["docs_dir"])
    root = Path(config["config_file_path"]).resolve().parent
    link_package(root)
    docgen = _import_docgen(docs_dir)
    pending = set(config["extra"].get("pending_pages", []))
    nav = _expand(config["nav"], docs_dir, pending, docgen.nav_entries())
    named = _named_pages(nav)
    others = sorted(str(p.relative_to(docs_dir)) for p in docs_dir.rglob("*.md")
                    if p.relative_to(docs_dir).parts[0] not in ("snippets", "docgen")
                    and str(p.relative_to(docs_dir)) not in named)
    if others:
        log.info("nav: pages the nav does not name, listed under More: %s", ", ".join(others))
        nav.append({"More": others})
    config["nav"] = nav
    return config
