#!/usr/bin/env bash
# The GPU checks of issue 5 / results/benchmark.md in one run, for a device machine with jax, flax and optax
# installed (the H200 image has them; no uv or Hydra needed):
#   bash experiments/gpu_check.sh [OUT_DIR]          # writes OUT_DIR/benchmark_gpu.{json,log}
# gpt2_small (124 M parameters, context 1024, bf16) training MFU, sampling bytes/s against the bandwidth
# bound at 256 rows, and 1 / 8 / 32 vmapped tiny replicates against one. SHAPES, REPLICATES and PY override.
set -euo pipefail
out=${1:-${OUT:-results}}
mkdir -p "$out"
PY=${PY:-python3}
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
  PYTHONPATH=. PYTHONUNBUFFERED=1 $PY -m collapse.bench --shapes "${SHAPES:-tiny,gpt2_small}" --dtype bfloat16 \
    --gen-batch 256 --replicates "${REPLICATES:-1,8,32}" --rounds 1 --no-reference --out "$out/benchmark_gpu.json"
} 2>&1 | tee "$out/benchmark_gpu.log"
