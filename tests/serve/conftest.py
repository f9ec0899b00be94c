"""Fixtures of the serve tests: a real ``fairgym serve`` process. Without the serve extra (``pip install
'fairgym[serve]'``; ``make test`` installs it) these tests are not collected."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

if importlib.util.find_spec("openenv") is None:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """One server for a test module (every registered env, a 64 KiB body limit); yields its base URL."""
    from served_env import server_process

    with server_process("--max-body-bytes", "65536") as (url, _):
        yield url
