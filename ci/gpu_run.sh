#!/usr/bin/env bash
# The notebook series on a GPU machine that reaches no registry, from the bundle of ci/gpu_bundle.sh
# (ci/README.md). From the repository root: bash ci/gpu_run.sh stash | run | dry-run | STEP ARGS
set -uo pipefail
MODE=${1:-run} T0=$(date +%s) REPO=$(cd "$(dirname "$0")/.." && pwd) && cd "$REPO" || exit 2
WORK=${GPU_WORK:-/tmp/gpuwork} SITE=${GPU_SITE:-/tmp/site} PARALLEL=${GPU_PARALLEL:-3}
SRC=${GPU_BUNDLE_SRC:-$REPO/.gpubundle} BUNDLE=${GPU_BUNDLE_DIR:-/tmp/bundle} OUT=${OUT:-$WORK/out}
export PY=${PY:-python3} PROFILE=${GPU_PROFILE:-gpu} OUTPUTS=$WORK/outputs
export DEADLINE=${GPU_DEADLINE:-$((T0 + ${GPU_BUDGET_S:-530} - 60))}  # 60 s for report and pack
log() { echo "[gpu_run +$(($(date +%s) - T0))s] $*"; }
die() { log "FAILED: $*"; cp "$WORK/gpu_run.log" "$OUT/gpu_run_log.txt" 2>/dev/null; exit 1; }

stash() {  # the parts carried into $SRC, checked against SHA256SUMS, copied aside to $BUNDLE
  ls "$SRC"/bundle.part* >/dev/null 2>&1 || die "no bundle.partNN in $SRC"
  (cd "$SRC" && sha256sum --quiet --strict -c --ignore-missing SHA256SUMS) || die "bad part in $SRC"
  mkdir -p "$BUNDLE" && { [ "$SRC" -ef "$BUNDLE" ] \
    || cp "$SRC"/{bundle.part*,SHA256SUMS,manifest.json} "$BUNDLE"/; } || die "copy to $BUNDLE"
  log "parts in $BUNDLE: $(cd "$BUNDLE" && echo bundle.part*)"
}

unpack() {  # every part SHA256SUMS lists, verified, joined and untarred into $1
  local n missing=""
  for n in $(cut -d' ' -f3 "$BUNDLE/SHA256SUMS"); do [ -f "$BUNDLE/$n" ] || missing+=" $n"; done
  [ -z "$missing" ] || die "missing part(s)$missing in $BUNDLE: an earlier transfer did not reach \
this machine, or it was reset between transfers; redo every transfer in order"
  (cd "$BUNDLE" && sha256sum --quiet --strict -c SHA256SUMS) || die "a damaged part in $BUNDLE"
  rm -rf "$1" && mkdir -p "$1" && cat "$BUNDLE"/bundle.part* | tar -xz -C "$1" || die "unpacking"
  log "bundle verified and unpacked in $1"
}

one() {  # $1 NN: one runner call, its timeout what is left before the deadline (at most CAP)
  local stem=$(basename notebooks/"$1"*.ipynb .ipynb) t=$(date +%s) s=0 status=skipped left out
  left=$((DEADLINE - t)) out=$OUTPUTS/notebooks/$stem.runner.log
  if [ "$left" -lt 20 ]; then
    echo "--- $stem: skipped ($left s left before the deadline)"
  else
    left=$((left < CAP ? left : CAP)) && echo "--- $stem: start (timeout $left s)"
    timeout $((left + 60)) "$PY" -m prototokens.harness.runner --profile "$PROFILE" --notebook \
      "$stem" --no-report --quiet --output-dir "$OUTPUTS" --notebook-timeout "$left" >"$out" 2>&1
    case $? in 0) status=ok ;; 124) status=timeout ;; 138) status=kernel_died ;; *) status=failed ;;
    esac
    s=$(($(date +%s) - t)) && echo "--- $stem: $status in $s s"
    [ $status = ok ] || tail -8 "$out"
  fi
  printf '{"notebook": "%s", "status": "%s", "wall_time_s": %s}\n' "$stem" $status $s \
    >>"$OUTPUTS/series.jsonl"
}

series() {  # $1 outputs tree: 01 alone (it checks the machine), then the rest GPU_PARALLEL side by
  # side (SmolLM2 is bound by kernel launches: notebooks share the GPU well), then the report
  local chosen left t=$(date +%s) && export OUTPUTS=$1 CAP
  CAP=$("$PY" -c "from prototokens.harness.process import TIMEOUTS as T
print(T.get('$PROFILE', T['default'])[1])") || die "prototokens does not import"
  mkdir -p "$OUTPUTS/notebooks" && rm -f "$OUTPUTS/series.jsonl"
  chosen=$(cd notebooks && ls [0-9][0-9]_*.ipynb | cut -c1-2)  # every NN, or those named:
  chosen=$(printf '%s\n' ${GPU_NOTEBOOKS:-$chosen} | cut -c1-2 | grep -xF "$chosen")
  [ -n "$chosen" ] || die "no notebook matches GPU_NOTEBOOKS='${GPU_NOTEBOOKS:-}'"
  export -f one && grep -qx 01 <<<"$chosen" && one 01
  sort -u <<<"$chosen" | grep -vx 01 | xargs -r -P "$PARALLEL" -I{} bash -c 'one {}'
  left=$((DEADLINE + 45 - $(date +%s))) && [ $left -ge 20 ] || left=20
  timeout $left "$PY" -m prototokens.harness.report "$OUTPUTS" | tail -2 || log "no report built"
  { printf '{"profile": "%s", "parallel": %s, "deadline_left_s": %s, "total_s": %s, ' \
      "$PROFILE" "$PARALLEL" $((DEADLINE - t)) $(($(date +%s) - t))
    printf '"notebooks": [%s]}\n' "$(paste -sd, "$OUTPUTS/series.jsonl")"; } >"$OUTPUTS/series.json"
  ! grep -qv '"ok"' "$OUTPUTS/series.jsonl"  # a skipped, failed or timed-out notebook fails it
}

pack() {  # $1 outputs tree -> $2: outputs.tar.gz[.NN] without cache/, report.tar.gz if it fits
  local limit=$((${GPU_PACK_KIB:-15872} * 1024)) have
  have=$(cd "$1" && ls -d notebooks metrics tables figures bench series.json 2>/dev/null)
  mkdir -p "$2" && tar -C "$1" -czf - $have | split -b $limit -d - "$2/outputs.tar.gz."
  [ -e "$2/outputs.tar.gz.01" ] || mv "$2/outputs.tar.gz.00" "$2/outputs.tar.gz"
  [ "$(ls "$2" | wc -l)" -le 8 ] || die "outputs need more than the 8 files that come back"
  [ -d "$1/report" ] && [ "$(ls "$2" | wc -l)" -lt 8 ] && tar -C "$1" -czf "$2/report.tar.gz" report
  [ -z "$(find "$2" -name report.tar.gz -size +"$limit"c -delete -print)" ] \
    || log "report.tar.gz left out (too large): python -m prototokens.harness.report rebuilds it"
  ls -sh "$2"
}

dry-run-params() {  # $1 params folder -> $2: device cpu, each notebook's smoke sizes
  mkdir -p "$2" && "$PY" - "$1" "$2" "$PROFILE" <<'EOF'
import pathlib, sys, yaml
src, dest, profile = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
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
  stash | unpack | series | pack | dry-run-params) "$MODE" "${@:2}"; exit ;;
  run | dry-run) ;;
  *) echo "usage: ci/gpu_run.sh run|dry-run|stash|unpack|series|pack|dry-run-params" >&2; exit 2 ;;
esac
mkdir -p "$WORK" "$OUT" && exec > >(tee -a "$WORK/gpu_run.log") 2>&1
log "$MODE: profile $PROFILE, $PARALLEL side by side, deadline in $((DEADLINE - T0)) s, $("$PY" -V)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
stash && unpack "$WORK/unpacked" && B=$WORK/unpacked/bundle
rm -rf "$SITE" && "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target "$SITE" "$B"/wheels/*.whl || die "pip install of the wheels"
export PYTHONPATH="$REPO/lib:$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
export JUPYTER_PATH="$WORK/jupyter/share/jupyter:$SITE/share/jupyter" HF_HUB_OFFLINE=1
export JUPYTER_CONFIG_DIR="$WORK/jupyter/config" JUPYTER_RUNTIME_DIR="$WORK/jupyter/runtime"
export PROTOTOKENS_HOME="$WORK/home" HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10 PYDEVD_DISABLE_FILE_VALIDATION=1
log "$(ls "$B"/wheels | wc -l) wheels installed in $SITE"
"$PY" -m ipykernel install --prefix "$WORK/jupyter" --name python3 \
  --display-name "Python 3 (prototokens, bundle)" >/dev/null || die "ipykernel install"
mkdir -p "$PROTOTOKENS_HOME/data" "$OUTPUTS/bench" && rm -rf "$PROTOTOKENS_HOME/data/pools" \
  && cp -r "$B/home/data/pools" "$PROTOTOKENS_HOME/data/" || die "text pools"
"$PY" -c "  # what the series needs, each failure named: imports, the kernel, the embedded model
import importlib, time
for n in 'papermill nbclient nbconvert ipykernel ipywidgets jupyter_client nbformat datasets gguf \
torch transformers prototokens'.split():
    print(n, getattr(importlib.import_module(n), '__version__', '?'), end='; ')
from prototokens.envcheck import kernel_check
c = kernel_check('python3'); print('\\nkernel check:', c.ok, c.message)
if not c.ok: raise SystemExit('the python3 kernel does not run this interpreter')
from prototokens.inputs.models import load_model
t = time.time(); lm = load_model('smollm2-135m', device='cpu')
print(f'smollm2-135m ready ({lm.title}, d={lm.d_model}) in {time.time() - t:.1f} s')
" || die "the bundle's packages, the python3 kernel or the embedded model (above)"
[ "$MODE" = run ] || { dry-run-params params "$WORK/params-dry" || die "dry-run params"; }
[ "$MODE" = run ] || export PROTOTOKENS_PARAMS_DIR="$WORK/params-dry"
if [ "${GPU_BENCH:-$([ "$MODE" = run ] && echo 1)}" = 1 ]; then  # training step, B=1 and 32
  timeout 120 "$PY" bench/engine_throughput.py --device cuda --random-init smollm2-135m \
    --n-tokens 32 --batch-sizes 1,32 --steps 24 --warmup 4 \
    --out "$OUTPUTS/bench/smollm2_step.json" 2>&1 | grep -vi warning | tail -8
fi
series "$OUTPUTS"; SERIES_RC=$? && log "series exit $SERIES_RC"
cp "$WORK/gpu_run.log" "$OUT/gpu_run_log.txt"
cp "$OUTPUTS/series.json" "$BUNDLE/manifest.json" "$OUT/" 2>/dev/null
pack "$OUTPUTS" "$OUT" || die "packing"
log "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $SERIES_RC
