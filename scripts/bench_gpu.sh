#!/usr/bin/env bash
# The CUDA benchmarks, for a machine with an NVIDIA GPU: fits in 10 minutes, needs no network.
#
#   scripts/bench_gpu.sh [OUT_DIR]     (default: $OUT if set, else ./bench_gpu)
#
# Model benchmark (no ROS needed): batch-1 forward at 64/128/256 px, clean and faulty paths,
# eager vs CUDA graphs (static shapes, pinned host buffers, one device-to-host copy per tuple),
# fp32 vs fp16 with the largest score difference. When rclpy is importable it then runs the live
# pipeline over DDS on CUDA for 60 s. Writes OUT_DIR/bench_gpu.json (figures, GPU name, driver)
# and OUT_DIR/bench_gpu.txt (the tables), plus nvidia-smi's view of the GPU.
#
# Python: the first of $PYTHON, .venv/bin/python, python3 whose torch sees CUDA.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:-$root/bench_gpu}}"
mkdir -p "$out"
cd "$root"

py=''
for candidate in "${PYTHON:-}" "$root/.venv/bin/python" python3; do
  [ -n "$candidate" ] || continue
  command -v "$candidate" >/dev/null 2>&1 || continue
  if "$candidate" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
      2>/dev/null; then
    py="$candidate"
    break
  fi
done
if [ -z "$py" ]; then
  echo "bench_gpu: no Python with a CUDA-enabled torch found (set PYTHON=...)" >&2
  exit 2
fi
# the package from this tree, installed or not
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

{
  date -u +'%Y-%m-%dT%H:%M:%SZ'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0))'
} | tee "$out/gpu.txt"

missing=$("$py" - <<'EOF'
import importlib
need = ['numpy', 'cv2', 'safetensors']
print(' '.join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "bench_gpu: missing Python packages: $missing (pip install -r requirements.txt)" >&2
  exit 2
fi

only=model
if "$py" -c 'import rclpy' 2>/dev/null; then
  only=model,pipeline
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
fi

# model: ~1-2 min on a current GPU; pipeline: 60 s + start-up
timeout 540 "$py" -m lipfault_ros.cli bench --only "$only" --device cuda --duration 60 \
  --json "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.txt"
