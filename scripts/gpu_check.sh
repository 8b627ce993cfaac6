#!/usr/bin/env bash
# Every GPU figure the docs quote, refreshed in one go on one GPU machine (planned for under 10 minutes on one H100
# with 16 cores), into one results folder:
#
#   scripts/gpu_check.sh [OUT]        (default runs/gpu_check)
#
#   model/     videoml bench model: X3D-S, Slow-R50, SlowFast-R50 per mode (fp32, cl3d, bf16, cl3d+bf16), forward and
#              train step, batch 16 (docs/benchmarks.md "Execution modes"; bench plan's GPU_RATES)
#   infer/     videoml bench infer, X3D-S: videoml infer against the model alone and PyTorchVideo's tutorial loop
#   decode/    the loader's CPU ms per training clip of X3D-S on the suite's Kinetics-like prepared videos (half at
#              340x256, half at 640x360), 1 and 2 clips per video (bench plan's decoding stage; the fit runs read
#              320x256 videos, so where decoding bounds, the plan errs on the slow side), and X3D-S's fit_step at
#              batch 16 (the step inside fit's Lightning loop: bench plan's model stage)
#   train-kN/  videoml fit of the X3D-S recipe on those videos, prepared, clips_per_video N: clips/s, data wait
#   plan-kN.md videoml bench plan's prediction for train-kN from model/ and decode/, to hold against it
#   summary.txt  measured against predicted, per run
set -euo pipefail
OUT=${1:-runs/gpu_check}
PY=${PYTHON:-python3}
CORES=$(nproc)
WORKERS=$(( CORES > 2 ? CORES - 2 : 1 ))
mkdir -p "$OUT"

$PY -m videoml bench model --device cuda --models x3d_s,slow_r50,slowfast_r50 --modes fp32,cl3d,bf16,cl3d+bf16 \
    --batch-size 16 --warmup 3 --steps 5 --repeats 3 --out "$OUT/model"
$PY -m videoml bench infer --device cuda --model x3d_s --views 10 --videos 48 --batch-size 40 \
    --num-workers "$WORKERS" --out "$OUT/infer"

# Kinetics-sized synthetic videos (320x256, 80 frames at 25 fps), prepared as videoml data prepare does by default
data=$OUT/data
$PY -m videoml data synth --out "$data/kinetics_like" --videos-per-class 40 --frames 80 --width 320 --height 256 \
    --fps 25 --gop 25 --num-workers "$CORES"
$PY -m videoml data prepare "$data/kinetics_like" "$data/prepared" --short-side 256 --num-workers "$CORES"
cat > "$OUT/decode.yaml" <<EOF
name: decode
device: cuda
models: [x3d_s]
frameworks: {torch: [fp32]}
batch_sizes: [16]
stages: [decode, fit_step]
video_sets: [kinetics_like]
encodings: [prepared]
clips_per_video: [1, 2]
data: $data/bench
timing: {warmup: 3, steps: 5, repeats: 3, max_spread: null}
data_timing: {warmup: 0, steps: 1, repeats: 3, max_spread: null}
EOF
$PY -m videoml bench suite --config "$OUT/decode.yaml" --out "$OUT/decode"

videos=$(wc -l < "$data/prepared/train.csv")
for k in 1 2; do
    run=$OUT/train-k$k
    $PY -m videoml fit --config configs/x3d_s_kinetics400.yaml --trainer.accelerator gpu --trainer.devices 1 \
        --data.num_workers "$WORKERS" --data.batch_size 16 --data.clips_per_video "$k" \
        --data.train "{\"kind\": \"labeled_paths\", \"path\": \"$data/prepared/train.csv\"}" --data.val null \
        --data.test null --trainer.max_epochs 4 --trainer.callbacks "[]" --trainer.enable_checkpointing false \
        --trainer.default_root_dir "$run" \
        --trainer.logger "{\"class_path\": \"lightning.pytorch.loggers.CSVLogger\", \"init_args\": {\"save_dir\": \"$run\", \"name\": \"logs\"}}"
    $PY -m videoml bench plan "$OUT/model" "$OUT/decode" --gpu measured --model x3d_s --encoding prepared \
        --videos "$videos" --clips-per-video "$k" --gpus 1 --gpus-per-node 1 --cpu-cores-per-gpu "$CORES" \
        -o "$OUT/plan-k$k.md"
done

$PY - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import csv, glob, re, sys
out = sys.argv[1]
for k in (1, 2):
    [path] = glob.glob(f"{out}/train-k{k}/logs/version_*/metrics.csv")
    rows = list(csv.DictReader(open(path)))
    rates = [float(r["throughput/clips_per_s"]) for r in rows if r.get("throughput/clips_per_s")]
    waits = [float(r["throughput/data_wait"]) for r in rows if r.get("throughput/data_wait")]
    plan = open(f"{out}/plan-k{k}.md").read()
    predicted = float(re.search(r"\(([0-9.]+) clips/s per GPU", plan).group(1))
    measured = rates[-1]  # the last epoch: workers started, caches warm
    print(f"clips_per_video {k}: measured {measured:.1f} clips/s (data wait {waits[-1]:.2f}), bench plan predicted "
          f"{predicted:.1f} ({predicted / measured:.2f}x)")
EOF
