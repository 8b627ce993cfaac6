#!/usr/bin/env bash
# The PyTorch vs TensorFlow suite on this CPU machine (configs/bench/cpu.yaml), and, given a earlier results folder,
# the comparison with it.
#
#   scripts/bench_suite_cpu.sh [OUT] [PREVIOUS]     OUT default runs/bench/cpu-<date>
#
# Run it on a quiet machine: the suite refuses cells whose spread exceeds the config's max_spread.
set -euo pipefail
OUT=${1:-runs/bench/cpu-$(date +%Y%m%d-%H%M)}
PY=${PYTHON:-.venv/bin/python}
$PY -m videoml bench suite --config configs/bench/cpu.yaml --out "$OUT"
if [ -n "${2:-}" ]; then
    $PY -m videoml bench compare "$2" "$OUT"
fi
