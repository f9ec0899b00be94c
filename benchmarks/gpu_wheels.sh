#!/usr/bin/env bash
# Build benchmarks/wheels for benchmarks/gpu_check.sh: the pinned trl and the fairgym dependencies the check
# imports that a GPU image with torch, transformers, peft and accelerate lacks, for CPython ${PY_VERSION:-3.12} (the
# lent GPU machines' python3 is 3.12; wheels for another version do not install there) on x86-64 Linux,
# without their own dependencies (--no-deps: the image's are used). pyarrow's wheel (52.5 MiB, 78 MiB in all) is
# rewritten without Arrow Flight, S3, headers and tests, which datasets and TRL never load (benchmarks/slim_wheel.py:
# 32.3 MiB, ~58 MiB in all); no pyarrow release datasets 5.2 accepts (>=24.0.0) fits whole: 24.0.0 is 46.6 MiB.
# Fails when the folder passes 64 MiB, naming the largest wheels.
#   [EXCLUDE="pyarrow"] [SLIM=0] bash benchmarks/gpu_wheels.sh [extra pinned requirement ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=benchmarks/wheels
mkdir -p "$DEST"
# what the check imports beyond the image, pinned to this venv's versions (trl, datasets and their data stack,
# gymnasium, fairlearn and scikit-learn); numpy, scipy, pyyaml, tqdm, jinja2, psutil are expected in a torch image
PACKAGES=(trl datasets pyarrow pandas dill xxhash multiprocess fsspec gymnasium cloudpickle farama-notifications
          fairlearn scikit-learn narwhals joblib threadpoolctl python-dateutil)
# EXCLUDE="pyarrow pandas": leave out what the GPU image is known to have (pyarrow alone is ~53 MiB)
for skip in ${EXCLUDE:-}; do PACKAGES=("${PACKAGES[@]/$skip}"); done
mapfile -t PINS < <("$PY" -c 'import sys; from importlib.metadata import version
for p in filter(None, sys.argv[1:]): print(f"{p}=={version(p)}")' "${PACKAGES[@]}")
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "${PY_VERSION:-3.12}" \
  --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --implementation cp \
  -d "$DEST" "${PINS[@]}" "$@"
if [[ "${SLIM:-1}" == 1 ]]; then
  for wheel in "$DEST"/pyarrow-*.whl; do [[ -e "$wheel" ]] && "$PY" benchmarks/slim_wheel.py "$wheel"; done
fi
SIZE=$(du -sm "$DEST" | cut -f1)
echo "benchmarks/wheels: ${SIZE} MiB"
if (( SIZE > 64 )); then
  echo "over the 64 MiB limit; largest wheels:" >&2
  ls -S -s --block-size=M "$DEST" | head -6 >&2
  exit 1
fi
