#!/usr/bin/env bash
# Run the notebook series on the lent H200 from the offline bundle (ci/gpu_bundle.py build).
# Run by the device tool from the repository root; ci/README.md lists the exact calls.
#
#   bash ci/gpu_run.sh stash    calls 1..k-1: copy the carried .gpubundle/bundle.partNN out of
#                               the working tree (the next call replaces the tree) to $GPU_BUNDLE_DIR
#   bash ci/gpu_run.sh run      the last call: stash its part, reassemble + verify sha256, unpack,
#                               install the wheels (--no-index --no-deps --target), register the
#                               python3 kernel, put the text pools in PROTOTOKENS_HOME, dequantise
#                               SmolLM2, time the training step, run every notebook through the
#                               runner under a deadline, build the report, pack outputs into $OUT
#   bash ci/gpu_run.sh dry-run  the same as `run` on this CPU machine: the gpu profile's keys with
#                               device cpu and each notebook's smoke sizes (no timing step)
#
# Environment: PY (python3), GPU_PROFILE (gpu), GPU_PARALLEL (3: notebooks side by side after 01),
# GPU_BUDGET_S (530: seconds from the start of this script to the end of packing),
# GPU_BENCH (1: time engine steps of the SmolLM2 architecture at B=1 and 32), GPU_NOTEBOOKS
# ("": all; else prefixes such as "01 02"), GPU_BUNDLE_SRC (.gpubundle), GPU_BUNDLE_DIR
# (/tmp/bundle), GPU_WORK (/tmp/gpuwork), GPU_SITE (/tmp/site).
set -uo pipefail
MODE=${1:-run}
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
PY=${PY:-python3}
SRC=${GPU_BUNDLE_SRC:-$REPO/.gpubundle}
BUNDLE=${GPU_BUNDLE_DIR:-/tmp/bundle}
WORK=${GPU_WORK:-/tmp/gpuwork}
SITE=${GPU_SITE:-/tmp/site}
BUDGET=${GPU_BUDGET_S:-530}
PARALLEL=${GPU_PARALLEL:-3}
BENCH=${GPU_BENCH:-1}
PROFILE=${GPU_PROFILE:-gpu}
if [ "$MODE" = dry-run ]; then
  BENCH=${GPU_BENCH:-0}
fi
OUT=${OUT:-$WORK/out}
log() { echo "[gpu_run +$(( $(date +%s) - T0 ))s] $*"; }
die() { log "FAILED: $*"; [ -f "$WORK/gpu_run.log" ] && cp "$WORK/gpu_run.log" "$OUT/gpu_run_log.txt"; exit 1; }

stash() {
  mkdir -p "$BUNDLE"
  local found=0
  for part in "$SRC"/bundle.part*; do
    [ -f "$part" ] || continue
    found=1
    "$PY" ci/gpu_bundle.py verify-part --manifest "$SRC/manifest.json" "$part" || die "bad part $part"
    cp "$part" "$BUNDLE/" || die "cannot copy $part to $BUNDLE"
  done
  [ $found = 1 ] || die "no bundle part carried in $SRC (carry .gpubundle/bundle.partNN)"
  log "parts now in $BUNDLE: $(cd "$BUNDLE" && ls bundle.part* | tr '\n' ' ')"
}

case "$MODE" in
  stash) stash; exit 0 ;;
  run|dry-run) ;;
  *) echo "usage: bash ci/gpu_run.sh stash|run|dry-run" >&2; exit 2 ;;
esac

mkdir -p "$WORK" "$OUT"
exec > >(tee -a "$WORK/gpu_run.log") 2>&1
log "mode $MODE, profile $PROFILE, budget ${BUDGET}s, parallel $PARALLEL, python $PY ($("$PY" -V 2>&1))"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# 1. bundle: this call's part, reassembly, sha256, unpack
stash
rm -rf "$WORK/unpacked"
"$PY" ci/gpu_bundle.py join --manifest "$SRC/manifest.json" --parts "$BUNDLE" --dest "$WORK/unpacked" \
  || die "reassembly (see the message above)"
B="$WORK/unpacked/bundle"

# 2. wheels into a private site folder, nothing else installed; prototokens runs from lib/
rm -rf "$SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
  --target "$SITE" "$B"/wheels/*.whl || die "pip install of the wheelhouse"
"$PY" ci/gpu_bundle.py dist-info "$SITE" >/dev/null || die "prototokens dist-info"
export PYTHONPATH="$REPO/lib:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$SITE/bin:$PATH"
export JUPYTER_PATH="$WORK/jupyter/share/jupyter:$SITE/share/jupyter"
export JUPYTER_CONFIG_DIR="$WORK/jupyter/config" JUPYTER_RUNTIME_DIR="$WORK/jupyter/runtime"
export PROTOTOKENS_HOME="$WORK/home" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export MPLBACKEND=Agg PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10 PYDEVD_DISABLE_FILE_VALIDATION=1
log "wheels installed in $SITE: $(ls "$B"/wheels | wc -l) files"
"$PY" - <<'EOF' || die "a bundled package does not import"
import importlib
names = ["papermill", "nbclient", "nbconvert", "ipykernel", "ipywidgets", "jupyter_client",
         "nbformat", "datasets", "gguf", "torch", "transformers", "prototokens"]
print("versions:", ", ".join(f"{n} {getattr(importlib.import_module(n), '__version__', '?')}"
                             for n in names))
EOF

# 3. the python3 kernel papermill runs (-k python3), on this interpreter
"$PY" -m ipykernel install --prefix "$WORK/jupyter" --name python3 \
  --display-name "Python 3 (prototokens, bundle)" >/dev/null || die "ipykernel install"
"$PY" -c "
import sys
from prototokens.harness.envcheck import kernel_check
c = kernel_check('python3'); print('kernel check:', c.ok, c.message); sys.exit(0 if c.ok else 1)
" || die "the python3 kernel does not run this interpreter"

# 4. text pools and the model cache
mkdir -p "$PROTOTOKENS_HOME/data"
rm -rf "$PROTOTOKENS_HOME/data/pools"
cp -r "$B/home/data/pools" "$PROTOTOKENS_HOME/data/" || die "text pools"
log "text pools: $(ls "$PROTOTOKENS_HOME/data/pools" | tr '\n' ' ')"
"$PY" -c "
import time
from prototokens.inputs.models import load_model
t = time.time(); lm = load_model('smollm2-135m', device='cpu')
print(f'smollm2-135m ready ({lm.title}, d={lm.d_model}) in {time.time() - t:.1f} s')
" || die "the embedded model"

if [ "$MODE" = dry-run ]; then  # the gpu profile's keys at smoke sizes, on the CPU
  "$PY" ci/gpu_series.py dry-run-params params "$WORK/params-dry" --profile "$PROFILE" >/dev/null \
    || die "dry-run params"
  export PROTOTOKENS_PARAMS_DIR="$WORK/params-dry"
  log "dry run: $PROFILE profile with device cpu and smoke sizes ($PROTOTOKENS_PARAMS_DIR)"
fi
OUTPUTS="$WORK/outputs"
mkdir -p "$OUTPUTS/bench"
# 5. the training step's speed for the SmolLM2 architecture (texts*steps/s at B=1 and B=32)
if [ "$BENCH" = 1 ]; then
  timeout 120 "$PY" bench/engine_throughput.py --device cuda --random-init smollm2-135m \
    --n-tokens 32 --batch-sizes 1,32 --steps 24 --warmup 4 --out "$OUTPUTS/bench/smollm2_step.json" \
    2>&1 | grep -v -i warning | tail -8 || log "bench failed (the series runs anyway)"
fi

# 6. the series: 01 alone, then the rest side by side, each bounded by the deadline
DEADLINE=$(( T0 + BUDGET - 60 ))  # 60 s kept for the report and packing
NB_ARGS=()
for n in ${GPU_NOTEBOOKS:-}; do NB_ARGS+=(--notebook "$n"); done
log "series starts; deadline in $(( DEADLINE - $(date +%s) )) s"
"$PY" ci/gpu_series.py run --profile "$PROFILE" --output-dir "$OUTPUTS" --deadline "$DEADLINE" \
  --parallel "$PARALLEL" "${NB_ARGS[@]}"
SERIES_RC=$?
log "series exit $SERIES_RC"

# 7. what comes back: <= 8 files of <= 16 MiB
cp "$WORK/gpu_run.log" "$WORK/gpu_run_log.txt" 2>/dev/null
"$PY" ci/gpu_series.py pack --output-dir "$OUTPUTS" --dest "$OUT" --extra "$OUTPUTS/series.json" \
  "$WORK/gpu_run_log.txt" "$SRC/manifest.json" || die "packing"
log "done in $(( $(date +%s) - T0 )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $SERIES_RC
