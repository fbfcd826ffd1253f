"""The compact reference (``outputs/reference/h200/``) from a GPU run's returned files:

    python ci/gpu_reference.py <folder with outputs.tar.gz[.NN] and series.json> [--dest DIR]

Keeps what is small and useful for comparing runs (``python -m prototokens.harness.compare
outputs outputs/reference/h200``): metrics/*.json, tables/*.csv and *.md, figures/*.png up to
--max-png-kib (no PDFs), bench/*.json and runs.json (per notebook status, wall time, parameters,
device; the run's commit, profile, packages, Python, parallel slots). No notebooks, logs, caches.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FILE = 1 << 20  # no single reference file above 1 MiB


def _keep(name: str, size: int, max_png: int) -> bool:
    """Whether a member of the packed outputs belongs in the compact reference."""
    folder, _, leaf = name.partition("/")
    kept = {"metrics": ".json", "tables": (".csv", ".md"), "bench": ".json", "figures": ".png"}
    if folder not in kept or "/" in leaf or size > MAX_FILE or leaf.endswith(".manifest.json"):
        return False
    return leaf.endswith(kept[folder]) and (folder != "figures" or size <= max_png)


def run_summary(manifests: dict[str, dict], series: dict) -> dict:
    """``runs.json``: provenance and wall times, without absolute paths or log text."""
    first = next(iter(manifests.values()), {})
    git = first.get("git") or {}
    notebooks = {}
    for nb, m in sorted(manifests.items()):
        notebooks[nb] = {k: m.get(k) for k in ("status", "wall_time_s", "device", "started_at")}
        params = (m.get("parameters") or {}).items()
        notebooks[nb]["parameters"] = {k: v for k, v in params if k != "output_dir"}
    for rec in series.get("notebooks", []):  # notebooks that were skipped have no manifest
        notebooks.setdefault(rec["notebook"], {"status": rec.get("status"), "wall_time_s": None})
    device = next((n["device"] for n in notebooks.values() if n.get("device")), {})
    return {
        "profile": first.get("profile") or series.get("profile"),
        "device": device.get("gpu_name") or device.get("device"),
        "commit": git.get("commit") if isinstance(git, dict) else git,
        "git": git,
        "packages": first.get("packages"),
        "python": (first.get("python") or {}).get("version"),
        "platform": first.get("platform"),
        "parallel": series.get("parallel"),
        "series_total_s": series.get("total_s"),
        "notebooks": notebooks,
    }


def extract(folder: Path, dest: Path, max_png_kib: int = 400) -> list[Path]:
    """Write the compact reference from ``folder`` into ``dest`` (replaced); returns the files."""
    pieces = sorted(folder.glob("outputs.tar.gz*"))  # outputs.tar.gz, or .00, .01... joined
    if not pieces:
        raise SystemExit(f"no outputs.tar.gz (or outputs.tar.gz.NN pieces) in {folder}")
    tar = tarfile.open(fileobj=io.BytesIO(b"".join(map(Path.read_bytes, pieces))), mode="r:gz")
    shutil.rmtree(dest, ignore_errors=True)
    written, manifests, series = [], {}, {}
    for member in filter(tarfile.TarInfo.isfile, tar.getmembers()):
        data = tar.extractfile(member).read()
        if member.name.startswith("metrics/") and member.name.endswith(".manifest.json"):
            manifests[Path(member.name).name.removesuffix(".manifest.json")] = json.loads(data)
        elif member.name == "series.json":
            series = json.loads(data)
        elif _keep(member.name, member.size, max_png_kib * 1024):
            (target := dest / member.name).parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
    if not series and (folder / "series.json").exists():
        series = json.loads((folder / "series.json").read_text())
    summary = run_summary(manifests, series)
    if (bundle := folder / "manifest.json").exists():  # the bundle's (ci/gpu_bundle.sh), returned
        info = json.loads(bundle.read_text())
        summary["commit"] = summary["commit"] or info.get("commit")
        summary["bundle"] = {k: info.get(k) for k in ("commit", "dirty", "created", "wheels")}
    dest.mkdir(parents=True, exist_ok=True)
    (runs := dest / "runs.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return [*written, runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, help="folder with outputs.tar.gz[.NN] and series.json")
    parser.add_argument("--dest", type=Path, default=REPO / "outputs" / "reference" / "h200")
    parser.add_argument("--max-png-kib", type=int, default=400)
    args = parser.parse_args(argv)
    written = extract(args.files, args.dest, args.max_png_kib)
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} files, {total / 1024:.0f} KiB in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
