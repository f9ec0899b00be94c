"""Rewrite a wheel without the members the GPU check never loads, so ``benchmarks/wheels`` fits the 64 MiB that
may travel with the source tree (``benchmarks/gpu_wheels.sh`` calls it on pyarrow).

pyarrow 26.0.1's wheel is 52.5 MiB; datasets (and through it TRL) imports ``pyarrow``, ``pyarrow.parquet``,
``pyarrow.dataset``, ``pyarrow.compute`` and ``pyarrow.json``, none of which links Arrow Flight or the S3
filesystem (``readelf -d``: only ``_flight``/``libarrow_python_flight`` need ``libarrow_flight``, only ``_s3fs``
needs ``libarrow_s3``; ``pyarrow.fs`` treats a missing ``_s3fs`` as a build without S3). Dropping those, the C++
headers, the test suite and the two link-time copies of ``libarrow_python.so`` (the loader asks for
``libarrow_python.so.2600``) leaves ~33 MiB. ``RECORD`` is rewritten with the kept members' hashes.

    python benchmarks/slim_wheel.py WHEEL [--drop GLOB ...]
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import zipfile
from pathlib import Path

PYARROW_DROP = ("pyarrow/include/*", "pyarrow/tests/*", "pyarrow/src/*", "pyarrow/*flight*", "pyarrow/*s3*",
                "pyarrow/_pyarrow_cpp_tests*", "pyarrow/libarrow_python.so", "pyarrow/libarrow_python.so.*.*.*")


def dropped(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether wheel member ``name`` matches one of ``patterns`` (``fnmatch`` globs over the member path)."""
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def record_line(name: str, data: bytes) -> str:
    """A ``RECORD`` row: path, urlsafe-base64 sha256 without padding, size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def slim(wheel: Path, patterns: tuple[str, ...]) -> tuple[int, int]:
    """Rewrite ``wheel`` in place without the members matching ``patterns``; return (bytes before, after)."""
    before = wheel.stat().st_size
    tmp = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        record = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in src.infolist():
            if info.filename == record or dropped(info.filename, patterns):
                continue
            data = src.read(info)
            out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            rows.append(record_line(info.filename, data))
        out.writestr(record, "\n".join([*rows, f"{record},,"]) + "\n")
    tmp.replace(wheel)
    return before, wheel.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--drop", nargs="*", default=list(PYARROW_DROP), help="member globs to leave out")
    args = parser.parse_args()
    before, after = slim(args.wheel, tuple(args.drop))
    print(f"{args.wheel.name}: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
