#!/usr/bin/env bash
# Train with torchrun (no SLURM): run this on every node.
#   GPUS=8 NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 scripts/torchrun_train.sh configs/x3d_s_kinetics400.yaml [overrides]
# ACCELERATOR=cpu (with GPUS=1, the processes per node) runs the same launch on CPUs over gloo: how CI proves a
# 2-node launch on 127.0.0.1 (tests/train/test_ddp.py).
set -euo pipefail
config=${1:?usage: scripts/torchrun_train.sh CONFIG [overrides...]}
shift
accelerator=${ACCELERATOR:-gpu}
gpus=${GPUS:-$(nvidia-smi -L | wc -l)}
nnodes=${NNODES:-1}
exec "${VENV:-.venv}/bin/torchrun" --nnodes="$nnodes" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$gpus" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    -m videoml fit --config "$config" --trainer.accelerator "$accelerator" --trainer.strategy ddp \
    --trainer.devices "$gpus" --trainer.num_nodes "$nnodes" "$@"
