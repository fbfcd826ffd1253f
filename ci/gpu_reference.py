"""A compact reference (``outputs/reference/<machine>/``) from a GPU run's returned files, or from
a local outputs folder:

    python ci/gpu_reference.py <folder with outputs.tar.gz[.NN] and series.json> [--dest DIR]
    python ci/gpu_reference.py --from-outputs outputs/cpu_paper --dest outputs/reference/cpu

The first writes ``outputs/reference/h200/`` by default; the second takes an outputs tree that
``python -m prototokens.harness.runner --output-dir DIR`` left here (or a GPU run's unpacked
``outputs.tar.gz``) and needs ``--dest``. Both keep the same files, by one rule (:func:`_keep`):
what is small and useful for comparing runs (``python -m prototokens.harness.compare outputs
outputs/reference/h200``): metrics/*.json, tables/*.csv and *.md, figures/*.png up to
--max-png-kib (no PDFs), bench/*.json and runs.json (per notebook status, wall time, parameters,
device; the run's commit, profile, device, packages, Python, parallel slots). No notebooks, logs,
caches. A local run has no series record (the runner writes none): its runs.json has no
``parallel`` or ``series_total_s``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

REPO = Path(__file__).resolve().parent.parent
MAX_FILE = 1 << 20  # no single reference file above 1 MiB
KEPT = {"metrics": ".json", "tables": (".csv", ".md"), "bench": ".json", "figures": ".png"}
Member = tuple[str, int, Callable[[], bytes]]  # (path inside the outputs tree, size, its bytes)


def _keep(name: str, size: int, max_png: int) -> bool:
    """Whether a file of the outputs tree belongs in the compact reference (not a table with no
    columns: a CSV of at most one byte, what an empty frame without columns writes; its Markdown
    twin is dropped by :func:`_copy`)."""
    folder, _, leaf = name.partition("/")
    if folder not in KEPT or "/" in leaf or size > MAX_FILE or leaf.endswith(".manifest.json"):
        return False
    if folder == "tables" and leaf.endswith(".csv") and size <= 1:
        return False
    return leaf.endswith(KEPT[folder]) and (folder != "figures" or size <= max_png)


def _device(devices: list[dict]) -> str | None:
    """The run's device in words: a GPU's name where a manifest has one; else the most detailed
    device string a notebook recorded (07's ``cpu (2 threads), float32`` over ``cpu``), with the
    CPU count where the runner asked torch itself (a notebook that records no device string)."""
    gpu = next((d["gpu_name"] for d in devices if d.get("gpu_name")), None)
    names = [str(d["device"]) for d in devices if d.get("device")]
    if gpu or not names:
        return gpu
    name = max(names, key=len)
    cpus = next((d["cpu_count"] for d in devices if d.get("cpu_count")), None)
    return f"{name}; {cpus} CPUs" if cpus and name.startswith("cpu") else name


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
    profiles = sorted({m["profile"] for m in manifests.values() if m.get("profile")})
    return {
        "profile": ", ".join(profiles) or series.get("profile"),
        "device": _device([n["device"] for n in notebooks.values() if n.get("device")]),
        "commit": git.get("commit") if isinstance(git, dict) else git,
        "git": git,
        "packages": first.get("packages"),
        "python": (first.get("python") or {}).get("version"),
        "platform": first.get("platform"),
        "parallel": series.get("parallel"),
        "series_total_s": series.get("total_s"),
        "notebooks": notebooks,
    }


def _copy(members: Iterable[Member], dest: Path, max_png: int) -> tuple[list[Path], dict, dict]:
    """Write the kept members into ``dest`` (replaced); returns the files written, the manifests
    (``{notebook: manifest}``) and the series record (``series.json``, empty when none)."""
    shutil.rmtree(dest, ignore_errors=True)
    written, manifests, series, empty = [], {}, {}, set()
    for name, size, read in members:
        if name.startswith("metrics/") and name.endswith(".manifest.json"):
            manifests[Path(name).name.removesuffix(".manifest.json")] = json.loads(read())
        elif name == "series.json":
            series = json.loads(read())
        elif _keep(name, size, max_png):
            (target := dest / name).parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read())
            written.append(target)
        elif name.startswith("tables/") and name.endswith(".csv"):  # an empty table: no twin
            empty.add(name.removesuffix(".csv") + ".md")
    for path in [p for p in written if p.relative_to(dest).as_posix() in empty]:
        path.unlink()
        written.remove(path)
    return written, manifests, series


def _write_runs(dest: Path, summary: dict) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (runs := dest / "runs.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return runs


def _check_dest(source: Path, dest: Path) -> None:
    """Refuse a ``dest`` that would delete the source when it is replaced."""
    src, dst = source.resolve(), dest.resolve()
    if src == dst or dst in src.parents:
        raise SystemExit(f"--dest {dest} holds {source}: replacing it would delete the source")


def _tar_members(tar: tarfile.TarFile) -> Iterator[Member]:
    for member in filter(tarfile.TarInfo.isfile, tar.getmembers()):
        yield member.name, member.size, lambda m=member: tar.extractfile(m).read()


def _folder_members(outputs: Path) -> Iterator[Member]:
    """The files of an outputs tree that :func:`_copy` looks at: the kept folders' files (the
    manifests among them) and ``series.json``; never ``cache/`` or ``notebooks/``."""
    files = [outputs / "series.json"] + [
        p for sub in KEPT if (outputs / sub).is_dir() for p in sorted((outputs / sub).iterdir())
    ]
    for path in filter(Path.is_file, files):
        yield path.relative_to(outputs).as_posix(), path.stat().st_size, path.read_bytes


def extract(folder: Path, dest: Path, max_png_kib: int = 400) -> list[Path]:
    """Write the compact reference from a GPU run's returned ``folder`` into ``dest``
    (replaced); returns the files."""
    pieces = sorted(folder.glob("outputs.tar.gz*"))  # outputs.tar.gz, or .00, .01... joined
    if not pieces:
        raise SystemExit(f"no outputs.tar.gz (or outputs.tar.gz.NN pieces) in {folder}")
    _check_dest(folder, dest)
    tar = tarfile.open(fileobj=io.BytesIO(b"".join(map(Path.read_bytes, pieces))), mode="r:gz")
    written, manifests, series = _copy(_tar_members(tar), dest, max_png_kib * 1024)
    if not series and (folder / "series.json").exists():
        series = json.loads((folder / "series.json").read_text())
    summary = run_summary(manifests, series)
    if (bundle := folder / "manifest.json").exists():  # the bundle's (ci/gpu_bundle.sh), returned
        info = json.loads(bundle.read_text())
        summary["commit"] = summary["commit"] or info.get("commit")
        summary["bundle"] = {k: info.get(k) for k in ("commit", "dirty", "created", "wheels")}
    return [*written, _write_runs(dest, summary)]


def extract_outputs(outputs: Path, dest: Path, max_png_kib: int = 400) -> list[Path]:
    """Write the compact reference from a local outputs tree (``metrics/NN_name.manifest.json``
    beside each notebook's metrics, as the runner leaves them) into ``dest`` (replaced)."""
    if not list((outputs / "metrics").glob("*.manifest.json")):
        raise SystemExit(f"no metrics/*.manifest.json in {outputs}: not a runner's outputs folder")
    _check_dest(outputs, dest)
    written, manifests, series = _copy(_folder_members(outputs), dest, max_png_kib * 1024)
    return [*written, _write_runs(dest, run_summary(manifests, series))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "files", type=Path, nargs="?", help="folder with outputs.tar.gz[.NN] and series.json"
    )
    parser.add_argument(
        "--from-outputs",
        type=Path,
        metavar="DIR",
        help="a local outputs folder (the runner's --output-dir) instead of returned files",
    )
    parser.add_argument(
        "--dest", type=Path, help="default outputs/reference/h200; needed with --from-outputs"
    )
    parser.add_argument("--max-png-kib", type=int, default=400)
    args = parser.parse_args(argv)
    if (args.files is None) == (args.from_outputs is None):
        parser.error("give either the returned files' folder or --from-outputs DIR")
    if args.from_outputs is not None:
        if args.dest is None:
            parser.error("--from-outputs needs --dest (e.g. outputs/reference/cpu)")
        written = extract_outputs(args.from_outputs, args.dest, args.max_png_kib)
    else:
        args.dest = args.dest or REPO / "outputs" / "reference" / "h200"
        written = extract(args.files, args.dest, args.max_png_kib)
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} files, {total / 1024:.0f} KiB in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
