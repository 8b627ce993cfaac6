#!/usr/bin/env bash
# GPU measurements in one go: model forward / train-step clips/s per execution mode (memory format, precision,
# torch.compile), and `videoml infer` against PyTorchVideo's tutorial loop and the model alone.
#
#   scripts/gpu_bench.sh [OUT]        results under OUT (default runs/bench/gpu): model/, compile/, infer/
#
# Each part writes JSON (every sample, the environment) and a Markdown table; see docs/benchmarks.md.
set -euo pipefail
OUT=${1:-runs/bench/gpu}
PY=${PYTHON:-python3}
WORKERS=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))

# decode-bound (X3D-S is fast) and model-bound (SlowFast-R50 in fp32)
$PY -m videoml bench infer --device cuda --model x3d_s --views 10 --videos 96 --batch-size 40 \
    --num-workers "$WORKERS" --out "$OUT/infer-x3d_s"
$PY -m videoml bench infer --device cuda --model slowfast_r50 --views 10 --videos 96 --batch-size 40 \
    --num-workers "$WORKERS" --out "$OUT/infer-slowfast_r50"
$PY -m videoml bench model --device cuda --models x3d_s,slow_r50,slowfast_r50 --modes fp32,cl3d,bf16,cl3d+bf16 \
    --batch-size 16 --out "$OUT/model"
$PY -m videoml bench model --device cuda --models x3d_s --modes cl3d+bf16,cl3d+bf16+compile --batch-size 16 \
    --out "$OUT/compile"
