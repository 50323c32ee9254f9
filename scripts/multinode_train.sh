#!/usr/bin/env bash
# Train one model on several machines with PyTorch DDP under torchrun (NCCL on GPUs, gloo on CPU).
#
# Run the same command on every node, each with its own NODE_RANK (0 .. NNODES-1); MASTER_ADDR
# is a host name or address of node 0 that every node can reach. Every node needs the bags at
# the same path (a shared file system or a copy) and a writable cache directory; only rank 0
# writes checkpoints, logs and the artifact, so OUT should be on storage node 0 can write.
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 ./scripts/multinode_train.sh /data/bags/*/ --out models/cell7
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 ./scripts/multinode_train.sh /data/bags/*/ --out models/cell7
#
# NPROC_PER_NODE defaults to the number of GPUs (1 on a CPU-only machine). Everything after the
# script name goes to `lipfault train` (--config, --quick, --resume, --cache ...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LIPFAULT_VENV:-$root/.venv}"
gpus="$("$venv/bin/python" -c 'import torch; print(torch.cuda.device_count())')"
nproc="${NPROC_PER_NODE:-$(( gpus > 0 ? gpus : 1 ))}"
exec "$venv/bin/torchrun" \
  --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$nproc" \
  --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
  -m lipfault_ros.cli train --cache "${LIPFAULT_CACHE:-$HOME/.cache/lipfault_ros/tuples}" "$@"
