"""Type-check the ``fairgym`` package with mypy (``make lint``).

The package's root is the repository itself (``"fairgym" = "."`` in pyproject.toml), which mypy cannot map from
the repository folder; this links the repository as ``fairgym`` in a temporary folder and checks it from there
with the settings of pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fairgym-mypy-") as tmp:
        (Path(tmp) / "fairgym").symlink_to(ROOT, target_is_directory=True)
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(ROOT / ".mypy_cache"), "-p", "fairgym"]
        return subprocess.run(cmd, cwd=tmp).returncode


if __name__ == "__main__":
    raise SystemExit(main())
