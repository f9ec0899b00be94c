#!/usr/bin/env bash
# GPU check, at most 8 minutes, no network: torch, transformers, peft and accelerate are preinstalled there;
# trl and fairgym's other dependencies come from benchmarks/wheels (built here by benchmarks/gpu_wheels.sh).
# Writes the JSON of benchmarks/gpu_check.py to ${OUT:-benchmarks/results}/gpu_check.json (gpu_check_rollouts.json
# with --rollouts: episode-GRPO rollouts generated with transformers and with vLLM colocated, vLLM skipped with its
# reason where it is not installed).
#   bash benchmarks/gpu_check.sh [--rollouts]            # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run [--rollouts]  # anywhere: skip the install, the same path on a tiny model
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
ARGS=()
NAME=gpu_check
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1; ARGS+=(--tiny) ;;
    --rollouts) ARGS+=(--rollouts); NAME=gpu_check_rollouts ;;
    *) echo "unknown argument $arg (use --dry-run, --rollouts)" >&2; exit 2 ;;
  esac
done
if [[ "$DRY" == 0 ]]; then
  if ! ls benchmarks/wheels/*.whl >/dev/null 2>&1; then
    echo "benchmarks/wheels holds no wheels; run 'bash benchmarks/gpu_wheels.sh' where PyPI is reachable" >&2
    exit 2
  fi
  "$PY" -m pip install --quiet --no-index --no-deps --find-links benchmarks/wheels benchmarks/wheels/*.whl
fi
# fairgym imports as a package from this tree (folders at the root map to fairgym.*)
PKG=$(mktemp -d); ln -s "$PWD" "$PKG/fairgym"
PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}" timeout 470 "$PY" benchmarks/gpu_check.py "${ARGS[@]}" \
  | tail -n 1 | tee "$DEST/$NAME.json"
