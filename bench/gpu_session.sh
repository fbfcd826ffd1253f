#!/usr/bin/env bash
# One GPU session (run by the device tool from the repository root; $OUT comes back).
# Needs: the SmolLM2 GGUF reassembled at $GGUF (two carried halves), the gguf wheel in $WHEELS.
# 1. engine vs bare loop throughput, random-init Llama-3.2-1B at N=362, B=1 and 32 (bf16);
# 2. where the time goes for SmolLM2 at B=32, N=32: fp32, fp32+TF32, bf16; host sync every step vs 8;
# 3. recipes and arrangements on the real SmolLM2 (bf16) for notebook 02's verdict.
set -uo pipefail
R=/root/res; mkdir -p $R  # results, tarred into $OUT at the end (few files come back)
GGUF=${GGUF:-/root/gg/smol.gguf}
WHEELS=${WHEELS:-.devcarry/g2}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 
python3 -m pip install -q --no-deps $WHEELS/gguf-*.whl
python3 -m pip install -q --no-deps --no-build-isolation -e . || export PYTHONPATH=$PWD/lib
python3 -c "import torch, transformers, prototokens; print(torch.__version__, transformers.__version__)"
B="python3 bench/engine_throughput.py --device cuda --steps 20 --warmup 3"
$B --random-init llama-3.2-1b --n-tokens 362 --batch-sizes 1,32 --out $R/llama1b_bf16.json 2>&1 | tail -20
for v in "--dtype fp32" "--dtype fp32 --tf32" "--dtype bf16" "--dtype bf16 --sync-every 1"; do
  echo "== smollm2 arch $v"
  $B --random-init smollm2-135m --n-tokens 32 --batch-sizes 1,32 $v --out $R/smol_$(echo $v | tr -dc 'a-z0-9').json 2>&1 | tail -6
done
timeout ${RECIPES_TIMEOUT:-330} python3 bench/gpu_recipes.py --model $GGUF --texts $WHEELS/texts.json \
  --n-texts 32 --n-tokens 32 --seeds 0,1 --max-steps 2000 --batch-size 64 --time-budget-s 300 \
  --out $R/recipes 2>&1 | grep -v -E "Warning|it/s\]" | tail -30
cp $R/recipes/summary.csv $OUT/ 2>/dev/null; tar czf $OUT/results.tgz -C $R --exclude store .; ls -la $OUT
