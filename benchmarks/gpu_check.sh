#!/usr/bin/env bash
# GPU check, at most 8 minutes, no network: torch, transformers, peft and accelerate are preinstalled there;
# trl and fairgym's other dependencies come from benchmarks/wheels (built here by benchmarks/gpu_wheels.sh).
# Writes the JSON of benchmarks/gpu_check.py to ${OUT:-benchmarks/results}/gpu_check.json.
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run  # anywhere: skip the install, run the same path on a tiny model (CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
ARGS=()
if [[ "${1:-}" == "--dry-run" ]]; then
  ARGS=(--tiny)
else
  if ! ls benchmarks/wheels/*.whl >/dev/null 2>&1; then
    echo "benchmarks/wheels holds no wheels; run 'bash benchmarks/gpu_wheels.sh' where PyPI is reachable" >&2
    exit 2
  fi
  "$PY" -m pip install --quiet --no-index --no-deps --find-links benchmarks/wheels benchmarks/wheels/*.whl
fi
# fairgym imports as a package from this tree (folders at the root map to fairgym.*)
PKG=$(mktemp -d); ln -s "$PWD" "$PKG/fairgym"
PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}" timeout 470 "$PY" benchmarks/gpu_check.py "${ARGS[@]}" \
  | tail -n 1 | tee "$DEST/gpu_check.json"
