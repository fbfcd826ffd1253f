"""Run the notebook series inside one time-limited device call, and pack what comes back.

A device call lasts at most 10 minutes and brings back at most 8 files of 16 MiB. ``run`` runs
every notebook through the project's runner (``python -m prototokens.harness.runner --notebook
NN --no-report``), one process per notebook so a failure or a timeout in one does not stop the
others: ``01_setup`` first and alone (it checks the machine), then the rest in ``--parallel``
slots (SmolLM2 on an H200 is bound by kernel launches, so notebooks side by side share the GPU
well). Each notebook's whole-notebook timeout is the smaller of the profile's and what is left
before ``--deadline`` (epoch seconds), so the call always ends with time to pack. It prints the
wall time of each notebook and writes ``series.json`` (statuses, wall times, slots, budget).
Then the HTML report is built.

``pack`` tars the outputs tree without ``cache/`` (vectors, rows) into files of at most
``--max-mib`` MiB: ``outputs.tar.gz`` (split into ``.00``, ``.01``... if larger), then
``report.tar.gz`` when files are left. ``ci/gpu_reference.py`` reads them back.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

MIB = 1 << 20
MAX_FILES = 8  # files a device call brings back
CORE_DIRS = ("notebooks", "metrics", "tables", "figures", "bench")
MIN_NOTEBOOK_S = 20  # a notebook with less time than this left is skipped, not started


def _runner_cmd(nb: str, profile: str, out: Path, timeout_s: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prototokens.harness.runner",
        "--profile",
        profile,
        "--notebook",
        nb,
        "--no-report",
        "--quiet",
        "--output-dir",
        str(out),
        "--notebook-timeout",
        str(int(timeout_s)),
    ]


def profile_timeout(profile: str) -> float:
    from prototokens.harness.process import TIMEOUTS

    return float(TIMEOUTS.get(profile, TIMEOUTS["default"])[1])


def run_one(nb: str, profile: str, out: Path, deadline: float, cap_s: float, t0: float) -> dict:
    """Run one notebook in its own runner process; the record of what happened."""
    left = deadline - time.time()
    record = {"notebook": nb, "started_s": round(time.time() - t0, 1)}
    if left < MIN_NOTEBOOK_S:
        print(f"--- {nb}: skipped ({left:.0f} s left before the deadline)", flush=True)
        return {**record, "status": "skipped", "wall_time_s": 0.0, "returncode": None}
    timeout_s = min(cap_s, left)
    _manifest_path(out, nb).unlink(missing_ok=True)  # never read an earlier run's status
    log = out / "notebooks" / f"{nb}.runner.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"--- {nb}: start (timeout {timeout_s:.0f} s)", flush=True)
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as fh:
        try:
            rc = subprocess.run(
                _runner_cmd(nb, profile, out, timeout_s),
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout_s + 60,  # the runner stops papermill itself; this is a backstop
            ).returncode
        except subprocess.TimeoutExpired:
            rc = None
    wall = time.monotonic() - start
    manifest = _manifest(out, nb)
    status = manifest.get("status") or ("failed" if rc else "unknown")
    record.update(
        status=status,
        returncode=rc,
        wall_time_s=round(wall, 1),
        notebook_wall_time_s=manifest.get("wall_time_s"),
        message=(manifest.get("message") or "")[:500],
    )
    if status != "ok":  # the runner's own last lines say why
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:]
        record["log_tail"] = tail
    print(f"--- {nb}: {status} in {wall:.0f} s", flush=True)
    return record


def _manifest_path(out: Path, nb: str) -> Path:
    from prototokens.harness.runner import find_notebook

    return out / "metrics" / f"{find_notebook(nb).stem}.manifest.json"


def _manifest(out: Path, nb: str) -> dict:
    try:
        return json.loads(_manifest_path(out, nb).read_text())
    except (OSError, ValueError):
        return {}


def run_series(
    profile: str,
    out: Path,
    deadline: float,
    parallel: int = 1,
    notebooks: list[str] | None = None,
    report: bool = True,
) -> dict:
    """Run the notebooks (all by default) under ``deadline``; writes and returns ``series.json``."""
    from prototokens.harness.runner import list_notebooks

    out.mkdir(parents=True, exist_ok=True)
    stems = [p.stem for p in list_notebooks()]
    chosen = [s for s in stems if not notebooks or any(s.startswith(n) for n in notebooks)]
    if not chosen:
        raise SystemExit(f"no notebook matches {notebooks}; known: {stems}")
    first = [s for s in chosen if s.startswith("01")]
    rest = [s for s in chosen if s not in first]
    cap = profile_timeout(profile)
    t0 = time.time()
    records = [run_one(nb, profile, out, deadline, cap, t0) for nb in first]
    with cf.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [pool.submit(run_one, nb, profile, out, deadline, cap, t0) for nb in rest]
        records += [f.result() for f in futures]
    series = {
        "profile": profile,
        "parallel": parallel,
        "deadline_left_s": round(deadline - t0, 1),
        "total_s": round(time.time() - t0, 1),
        "notebooks": records,
    }
    if report:
        series["report"] = _report(out, deadline)
    (out / "series.json").write_text(json.dumps(series, indent=1) + "\n")
    print("\nwall time per notebook" + (f" ({parallel} side by side)" if parallel > 1 else ""))
    for r in records:
        print(f"  {r['notebook']:<24} {r['status']:<12} {r['wall_time_s']:>7.1f} s")
    print(f"  {'series':<24} {'':<12} {series['total_s']:>7.1f} s", flush=True)
    return series


def _report(out: Path, deadline: float) -> str:
    left = max(20.0, deadline - time.time() + 45)  # the caller keeps 60 s after the deadline
    cmd = [sys.executable, "-m", "prototokens.harness.report", str(out)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired:
        return "timeout"
    print(done.stdout.strip()[-300:], done.stderr.strip()[-500:], flush=True)
    return "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"


def dry_run_params(src: Path, dest: Path, profile: str = "gpu") -> Path:
    """A params folder for a CPU dry run of ``profile``: its profile file with ``device: cpu``
    and each notebook's ``profile`` section overlaid with its ``smoke`` section (the keys of the
    GPU run, at smoke sizes). Point ``PROTOTOKENS_PARAMS_DIR`` at the result."""
    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if path.name == f"profile_{profile}.yaml":
            data["device"] = "cpu"
        elif not path.name.startswith("profile_"):
            data[profile] = {**(data.get(profile) or {}), **(data.get("smoke") or {})}
        (dest / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


# --------------------------------------------------------------------------- packing


def _tar_bytes(root: Path, names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for name in names:
            if (root / name).exists():
                tar.add(root / name, arcname=name)
    return buf.getvalue()


def pack(out: Path, dest: Path, max_mib: float = 15.5, extra: list[Path] | None = None) -> list:
    """Write ``outputs.tar.gz`` (cut into pieces of ``max_mib`` if larger) and, when a file is
    still free, ``report.tar.gz``, plus ``extra`` small files, into ``dest``; returns the paths.
    """
    dest.mkdir(parents=True, exist_ok=True)
    limit = int(max_mib * MIB)
    files: list[Path] = []
    for path in extra or []:
        if path.is_file() and path.stat().st_size <= limit:
            target = dest / path.name
            target.write_bytes(path.read_bytes())
            files.append(target)
    core = _tar_bytes(out, [*CORE_DIRS, "series.json"])
    pieces = [core[i : i + limit] for i in range(0, len(core), limit)] or [b""]
    if len(files) + len(pieces) > MAX_FILES:
        raise SystemExit(f"outputs.tar.gz needs {len(pieces)} files; only {MAX_FILES} come back")
    if len(pieces) == 1:
        names = ["outputs.tar.gz"]
    else:
        names = [f"outputs.tar.gz.{i:02d}" for i in range(len(pieces))]
    for name, piece in zip(names, pieces):
        (dest / name).write_bytes(piece)
        files.append(dest / name)
    report = _tar_bytes(out, ["report"])
    if len(files) < MAX_FILES and len(report) <= limit and (out / "report").exists():
        (dest / "report.tar.gz").write_bytes(report)
        files.append(dest / "report.tar.gz")
    elif (out / "report").exists():
        print(
            f"report.tar.gz ({len(report) / MIB:.1f} MiB) left out: rebuild it from the "
            "executed notebooks with `python -m prototokens.harness.report`",
            flush=True,
        )
    for f in files:
        print(f"packed {f.name}: {f.stat().st_size / MIB:.2f} MiB", flush=True)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python ci/gpu_series.py", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the notebooks under a deadline")
    r.add_argument("--profile", default="gpu")
    r.add_argument("--output-dir", required=True)
    r.add_argument("--deadline", type=float, required=True, help="epoch seconds")
    r.add_argument("--parallel", type=int, default=1)
    r.add_argument("--notebook", action="append", default=None)
    r.add_argument("--no-report", action="store_true")
    d = sub.add_parser("dry-run-params", help="params for a CPU dry run of a GPU profile")
    d.add_argument("src")
    d.add_argument("dest")
    d.add_argument("--profile", default="gpu")
    p = sub.add_parser("pack", help="tar the outputs (no cache) into <= 8 files")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--max-mib", type=float, default=15.5)
    p.add_argument("--extra", nargs="*", default=[])
    args = parser.parse_args(argv)
    if args.cmd == "run":
        series = run_series(
            args.profile,
            Path(args.output_dir).resolve(),
            args.deadline,
            args.parallel,
            args.notebook,
            report=not args.no_report,
        )
        return 0 if all(r["status"] == "ok" for r in series["notebooks"]) else 1
    if args.cmd == "dry-run-params":
        print(dry_run_params(Path(args.src), Path(args.dest), args.profile))
        return 0
    pack(Path(args.output_dir), Path(args.dest), args.max_mib, [Path(e) for e in args.extra])
    return 0


if __name__ == "__main__":
    sys.exit(main())
