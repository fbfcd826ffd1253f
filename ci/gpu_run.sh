#!/usr/bin/env bash
# Run the notebook series on a GPU machine that reaches no registry, from the bundle that
# ci/gpu_bundle.sh built (ci/README.md). From the repository root of a copy of this project:
#
#   bash ci/gpu_run.sh stash     check the part(s) in GPU_BUNDLE_SRC against SHA256SUMS and copy
#                                them to GPU_BUNDLE_DIR (for parts that arrive one at a time)
#   bash ci/gpu_run.sh run       stash, verify and unpack every part; install the wheels into
#                                GPU_SITE (pip --no-index --no-deps --target: nothing else
#                                changes); register the python3 kernel; place the text pools;
#                                dequantise SmolLM2; time the training step; run the series; pack
#   bash ci/gpu_run.sh dry-run   the same on a CPU: the profile's keys at smoke sizes, no timing
#   bash ci/gpu_run.sh unpack D | series OUTPUTS | pack OUTPUTS D | dry-run-params SRC D   one step
#
# The series: 01 alone (it checks the machine), then the rest GPU_PARALLEL side by side (SmolLM2
# is bound by kernel launches, so notebooks share the GPU well); each notebook is one
# `python -m prototokens.harness.runner` (run_all) whose timeout is what is left before the
# deadline (GPU_BUDGET_S from the start, 60 s kept for the report and packing), so a failure or
# timeout stops no other. series.json records status and wall time per notebook.
# Environment: PY (python3), GPU_PROFILE (gpu), GPU_PARALLEL (3), GPU_BUDGET_S (530), GPU_BENCH
# (1), GPU_NOTEBOOKS (prefixes such as "01 02"; all), GPU_BUNDLE_SRC (.gpubundle), GPU_BUNDLE_DIR
# (/tmp/bundle), GPU_WORK (/tmp/gpuwork), GPU_SITE (/tmp/site), GPU_PACK_KIB (15872), OUT
# (GPU_WORK/out: what to bring back, at most 8 files of GPU_PACK_KIB).
set -uo pipefail
MODE=${1:-run}
T0=$(date +%s)
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
export PY=${PY:-python3} PROFILE=${GPU_PROFILE:-gpu} OUTPUTS=${GPU_WORK:-/tmp/gpuwork}/outputs
SRC=${GPU_BUNDLE_SRC:-$REPO/.gpubundle}
BUNDLE=${GPU_BUNDLE_DIR:-/tmp/bundle}
WORK=${GPU_WORK:-/tmp/gpuwork}
SITE=${GPU_SITE:-/tmp/site}
PARALLEL=${GPU_PARALLEL:-3}
BENCH=${GPU_BENCH:-1}
[ "$MODE" = dry-run ] && BENCH=${GPU_BENCH:-0}
OUT=${OUT:-$WORK/out}
export DEADLINE=${GPU_DEADLINE:-$((T0 + ${GPU_BUDGET_S:-530} - 60))}
log() { echo "[gpu_run +$(($(date +%s) - T0))s] $*"; }
die() {
  log "FAILED: $*"
  [ -f "$WORK/gpu_run.log" ] && mkdir -p "$OUT" && cp "$WORK/gpu_run.log" "$OUT/gpu_run_log.txt"
  exit 1
}

stash() {
  local parts=("$SRC"/bundle.part*)
  [ -f "${parts[0]}" ] || die "no bundle.partNN in $SRC"
  (cd "$SRC" && sha256sum --quiet --strict -c --ignore-missing SHA256SUMS) \
    || die "bad part in $SRC: its sha256 differs from SHA256SUMS"
  mkdir -p "$BUNDLE"
  [ "$(cd "$SRC" && pwd)" = "$(cd "$BUNDLE" && pwd)" ] \
    || cp "${parts[@]}" "$SRC/SHA256SUMS" "$SRC/manifest.json" "$BUNDLE/" || die "copy to $BUNDLE"
  log "parts in $BUNDLE: $(cd "$BUNDLE" && echo bundle.part*)"
}

unpack() {  # every part SHA256SUMS lists, verified, joined and untarred into $1
  local name missing=""
  for name in $(cut -d' ' -f3 "$BUNDLE/SHA256SUMS"); do
    [ -f "$BUNDLE/$name" ] || missing+=" $name"
  done
  [ -z "$missing" ] || die "missing part(s)$missing in $BUNDLE: an earlier transfer did not reach \
this machine, or it was reset between transfers; redo every transfer in order"
  (cd "$BUNDLE" && sha256sum --quiet --strict -c SHA256SUMS) || die "a damaged part in $BUNDLE"
  rm -rf "$1" && mkdir -p "$1"
  cat "$BUNDLE"/bundle.part* | tar -xz -C "$1" || die "unpacking the bundle"
  log "bundle verified and unpacked in $1"
}

record() { # notebook, status, seconds: one line of series.json
  printf '{"notebook": "%s", "status": "%s", "wall_time_s": %s}\n' "$@" >>"$OUTPUTS/series.jsonl"
}

one() {  # one notebook through the runner, bounded by the deadline
  local stem left rc t=$(date +%s) status
  stem=$(basename notebooks/"$1"*.ipynb .ipynb) left=$((DEADLINE - t))
  if [ "$left" -lt 20 ]; then
    echo "--- $stem: skipped ($left s left before the deadline)"
    record "$stem" skipped 0 && return
  fi
  [ "$left" -gt "$CAP" ] && left=$CAP
  echo "--- $stem: start (timeout $left s)"
  timeout $((left + 60)) "$PY" -m prototokens.harness.runner --profile "$PROFILE" --notebook \
    "$stem" --no-report --quiet --output-dir "$OUTPUTS" --notebook-timeout "$left" \
    >"$OUTPUTS/notebooks/$stem.runner.log" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 124) status=timeout ;; 138) status=kernel_died ;; *) status=failed ;; esac
  echo "--- $stem: $status in $(($(date +%s) - t)) s"
  [ $rc = 0 ] || tail -8 "$OUTPUTS/notebooks/$stem.runner.log"
  record "$stem" "$status" $(($(date +%s) - t))
}

series() {  # $1: the outputs tree; every notebook (or GPU_NOTEBOOKS), then the report
  local all chosen=() nb left t=$(date +%s)
  export OUTPUTS=$1 CAP
  CAP=$("$PY" -c "from prototokens.harness.process import TIMEOUTS as T
print(T.get('$PROFILE', T['default'])[1])") || die "prototokens does not import"
  mkdir -p "$OUTPUTS/notebooks" && rm -f "$OUTPUTS/series.jsonl"
  all=$(cd notebooks && ls [0-9][0-9]_*.ipynb | cut -c1-2)
  for nb in $all; do
    [[ -z "${GPU_NOTEBOOKS:-}" || " $GPU_NOTEBOOKS " == *" $nb"* ]] && chosen+=("$nb")
  done
  [ ${#chosen[@]} -gt 0 ] || die "no notebook matches GPU_NOTEBOOKS='$GPU_NOTEBOOKS'"
  export -f one record
  [[ "${chosen[0]:-}" = 01 ]] && one 01
  printf '%s\n' "${chosen[@]}" | grep -vx 01 | xargs -r -P "$PARALLEL" -I{} bash -c 'one {}'
  left=$((DEADLINE + 45 - $(date +%s))) && [ $left -ge 20 ] || left=20
  timeout $left "$PY" -m prototokens.harness.report "$OUTPUTS" \
    | tail -2 || log "the report was not built"
  printf '{"profile": "%s", "parallel": %s, "deadline_left_s": %s, "total_s": %s, "notebooks": [%s]}\n' \
    "$PROFILE" "$PARALLEL" $((DEADLINE - t)) $(($(date +%s) - t)) \
    "$(paste -sd, "$OUTPUTS/series.jsonl" 2>/dev/null)" >"$OUTPUTS/series.json"
  cat "$OUTPUTS/series.jsonl" 2>/dev/null
  ! grep -qv '"ok"' "$OUTPUTS/series.jsonl" 2>/dev/null
}

pack() {  # $1 outputs tree, $2 dest: outputs without cache/ as outputs.tar.gz (cut into .00,
  # .01... above GPU_PACK_KIB), then report.tar.gz when it fits; at most 8 files in $2
  local have=() d limit=$((${GPU_PACK_KIB:-15872} * 1024))
  for d in notebooks metrics tables figures bench series.json; do [ -e "$1/$d" ] && have+=("$d"); done
  mkdir -p "$2" && tar -C "$1" -czf - "${have[@]}" | split -b $limit -d - "$2/outputs.tar.gz."
  [ -e "$2/outputs.tar.gz.01" ] || mv "$2/outputs.tar.gz.00" "$2/outputs.tar.gz"
  [ "$(ls "$2" | wc -l)" -le 8 ] || die "outputs need more than the 8 files that come back"
  if [ -d "$1/report" ] && [ "$(ls "$2" | wc -l)" -lt 8 ]; then
    tar -C "$1" -czf "$2/report.tar.gz" report
    [ "$(stat -c %s "$2/report.tar.gz")" -le $limit ] || { rm "$2/report.tar.gz"; log "report.tar.gz \
left out (too large): rebuild it with python -m prototokens.harness.report"; }
  fi
  ls -sh "$2"
}

dry_run_params() {  # $1 params folder -> $2: device cpu, each notebook's smoke sizes
  "$PY" - "$1" "$2" "$PROFILE" <<'EOF'
import pathlib, sys, yaml
src, dest, profile = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
dest.mkdir(parents=True, exist_ok=True)
for path in sorted(src.glob("*.yaml")):
    data = yaml.safe_load(path.read_text()) or {}
    if path.name == f"profile_{profile}.yaml":
        data["device"] = "cpu"
    elif not path.name.startswith("profile_"):  # the profile's keys, at smoke sizes
        data[profile] = {**(data.get(profile) or {}), **(data.get("smoke") or {})}
    (dest / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
EOF
}

case "$MODE" in
  stash) stash; exit 0 ;;
  unpack) unpack "$2"; exit 0 ;;
  series) series "$2"; exit ;;
  pack) pack "$2" "$3"; exit ;;
  dry-run-params) dry_run_params "$2" "$3"; exit ;;
  run | dry-run) ;;
  *) echo "usage: bash ci/gpu_run.sh stash|run|dry-run|unpack|series|pack|dry-run-params" >&2; exit 2 ;;
esac

mkdir -p "$WORK" "$OUT"
exec > >(tee -a "$WORK/gpu_run.log") 2>&1
log "mode $MODE, profile $PROFILE, parallel $PARALLEL, deadline in $((DEADLINE - T0)) s, $("$PY" -V)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
stash
unpack "$WORK/unpacked"
B=$WORK/unpacked/bundle
rm -rf "$SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
  "$B"/wheels/*.whl || die "pip install of the wheels"
export PYTHONPATH="$REPO/lib:$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
export JUPYTER_PATH="$WORK/jupyter/share/jupyter:$SITE/share/jupyter" HF_HUB_OFFLINE=1
export JUPYTER_CONFIG_DIR="$WORK/jupyter/config" JUPYTER_RUNTIME_DIR="$WORK/jupyter/runtime"
export PROTOTOKENS_HOME="$WORK/home"
export HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
export TQDM_MININTERVAL=10 PYDEVD_DISABLE_FILE_VALIDATION=1
log "$(ls "$B"/wheels | wc -l) wheels installed in $SITE"
"$PY" -c "
import importlib
names = ['papermill', 'nbclient', 'nbconvert', 'ipykernel', 'ipywidgets', 'jupyter_client',
         'nbformat', 'datasets', 'gguf', 'torch', 'transformers', 'prototokens']
print('versions:', ', '.join(f'{n} {getattr(importlib.import_module(n), \"__version__\", \"?\")}'
                             for n in names))" || die "a bundled package does not import"
"$PY" -m ipykernel install --prefix "$WORK/jupyter" --name python3 \
  --display-name "Python 3 (prototokens, bundle)" >/dev/null || die "ipykernel install"
"$PY" -c "
import sys
from prototokens.envcheck import kernel_check
c = kernel_check('python3'); print('kernel check:', c.ok, c.message); sys.exit(0 if c.ok else 1)
" || die "the python3 kernel does not run this interpreter"
mkdir -p "$PROTOTOKENS_HOME/data" && rm -rf "$PROTOTOKENS_HOME/data/pools"
cp -r "$B/home/data/pools" "$PROTOTOKENS_HOME/data/" || die "text pools"
"$PY" -c "
import time
from prototokens.inputs.models import load_model
t = time.time(); lm = load_model('smollm2-135m', device='cpu')
print(f'smollm2-135m ready ({lm.title}, d={lm.d_model}) in {time.time() - t:.1f} s')
" || die "the embedded model"
if [ "$MODE" = dry-run ]; then
  dry_run_params params "$WORK/params-dry" || die "dry-run params"
  export PROTOTOKENS_PARAMS_DIR="$WORK/params-dry"
fi
mkdir -p "$OUTPUTS/bench"
if [ "$BENCH" = 1 ]; then  # training-step speed, SmolLM2 architecture, B=1 and 32
  timeout 120 "$PY" bench/engine_throughput.py --device cuda --random-init smollm2-135m \
    --n-tokens 32 --batch-sizes 1,32 --steps 24 --warmup 4 \
    --out "$OUTPUTS/bench/smollm2_step.json" 2>&1 | grep -vi warning | tail -8
fi
series "$OUTPUTS"
SERIES_RC=$?
log "series exit $SERIES_RC"
cp "$WORK/gpu_run.log" "$OUT/gpu_run_log.txt"
cp "$OUTPUTS/series.json" "$SRC/manifest.json" "$OUT/" 2>/dev/null
pack "$OUTPUTS" "$OUT" || die "packing"
log "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $SERIES_RC
