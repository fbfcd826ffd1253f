#!/usr/bin/env bash
# Issue 12 on a lent H200 (run by the device tool from the repository root; $OUT comes back).
# Needs only torch + transformers on the machine (no install, no network, no jupyter stack).
# Bounded: gpu_throughput.py stops starting new work after BUDGET seconds (default 230).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH=$PWD/lib
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
timeout $(( ${BUDGET:-230} + 60 )) python3 bench/gpu_throughput.py --out "$OUT/gpu_throughput.json" \
  --budget-s "${BUDGET:-230}" 2>&1 | grep -v -E "Warning|warn\(" | tee "$OUT/gpu_throughput.log" | tail -40
