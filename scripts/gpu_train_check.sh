#!/usr/bin/env bash
# Training on one GPU, end to end through `videoml fit`, on synthetic data (no data set needed):
#   1. the CPU demo's recipe (configs/synth_x3d_tiny.yaml) on the GPU: does it learn as on CPU, and how fast;
#   2. the X3D-S and SlowFast-R50 Kinetics recipes for a fixed number of steps under DDP (strategy=ddp, one GPU),
#      on Kinetics-sized synthetic videos (320x256, 80 frames): clips/s and the data-wait fraction the training log
#      reports, i.e. whether the recipe's per-GPU batch and worker count keep the GPU busy; both on the data as
#      made (GOP 25, B-frames) and prepared by `videoml data prepare` (the "-prepared" runs);
#   3. the train step alone of each recipe's model (`videoml bench model`), to read the runs against.
#
#   scripts/gpu_train_check.sh [OUT]      run directories and summary.txt under OUT (default runs/gpu_train)
set -euo pipefail
OUT=${1:-runs/gpu_train}
PY=${PYTHON:-python3}
WORKERS=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
mkdir -p "$OUT"
csv_logger() {  # a --trainer.logger value: metrics.csv under $1/logs/version_N
    printf '{"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "%s", "name": "logs"}}' "$1"
}

$PY -m videoml data synth --out "$OUT/data/synth" --videos-per-class 100 --num-workers "$(nproc)"
$PY -m videoml data synth --out "$OUT/data/kinetics_like" --videos-per-class 24 --frames 80 --width 320 --height 256 \
    --fps 25 --gop 25 --num-workers "$(nproc)"

$PY -m videoml data prepare "$OUT/data/synth" "$OUT/data/synth-prepared" --short-side 88 --num-workers "$(nproc)"
$PY -m videoml data prepare "$OUT/data/kinetics_like" "$OUT/data/kinetics_like-prepared" --short-side 256 \
    --num-workers "$(nproc)"

d=$OUT/data/synth-prepared
$PY -m videoml fit --config configs/synth_x3d_tiny.yaml --trainer.accelerator gpu --data.num_workers "$WORKERS" \
    --data.train.path "$d/train.csv" --data.val.path "$d/val.csv" --data.test.path "$d/test.csv" \
    --trainer.default_root_dir "$OUT/demo" --trainer.logger "$(csv_logger "$OUT/demo")"

for data in kinetics_like kinetics_like-prepared; do
for recipe in x3d_s_kinetics400 slowfast_r50_kinetics400; do
    run=$recipe${data#kinetics_like}
    $PY -m videoml fit --config "configs/$recipe.yaml" --trainer.accelerator gpu --trainer.devices 1 \
        --trainer.strategy ddp --data.num_workers "$WORKERS" \
        --data.train "{\"kind\": \"labeled_paths\", \"path\": \"$OUT/data/$data/train.csv\"}" --data.val null \
        --trainer.max_epochs 3 --trainer.limit_train_batches 50 --trainer.log_every_n_steps 10 \
        --trainer.callbacks "[]" --trainer.enable_checkpointing false \
        --trainer.default_root_dir "$OUT/$run" --trainer.logger "$(csv_logger "$OUT/$run")" \
        2>&1 | tee "$OUT/$run.log"
done
done
$PY -m videoml bench model --device cuda --models x3d_s,slowfast_r50 --modes fp32,bf16 --batch-size 8 \
    --out "$OUT/step_alone" | tee "$OUT/step_alone.txt"
grep -h -i "warn" "$OUT"/*.log | sort | uniq -c || true

$PY - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import csv, glob, sys
for path in sorted(glob.glob(f"{sys.argv[1]}/*/logs/version_*/metrics.csv")):
    rows = list(csv.DictReader(open(path)))
    values = lambda key: [float(r[key]) for r in rows if r.get(key)]
    print(path)
    print("  clips/s per epoch:", " ".join(f"{v:.1f}" for v in values("throughput/clips_per_s")))
    print("  data wait per epoch:", " ".join(f"{v:.3f}" for v in values("throughput/data_wait")))
    for key in ("val/top1", "test/top1"):
        print(f"  {key}:", " ".join(f"{v:.3f}" for v in values(key)))
EOF
