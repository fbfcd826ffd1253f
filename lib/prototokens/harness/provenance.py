"""What a notebook run leaves behind to be traced: its record, the git commit, the package
versions and the device, written as ``metrics/NN_name.manifest.json`` beside the notebook's own
``metrics/NN_name.json``. The report reads the same files (and :func:`git_info`)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prototokens.envcheck import device_report, package_versions
from prototokens.files import write_json
from prototokens.paths import repo_root


@dataclass
class RunRecord:
    """What one notebook run did; the same content is written as the run manifest."""

    notebook: str
    profile: str
    status: str  # ok | failed | cell_timeout | timeout | kernel_died
    parameters: dict
    input_path: str
    output_notebook: str
    params_file: str
    manifest: str
    log_file: str
    metrics: str | None = None
    wall_time_s: float = 0.0
    returncode: int | None = None
    message: str = ""
    device: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def git_info(root: str | os.PathLike | None = None) -> dict:
    """``{commit, dirty, note}`` of the checkout; ``commit`` is None outside git or before a
    commit."""
    try:
        root = Path(root) if root else repo_root()
    except RuntimeError:
        return {"commit": None, "dirty": None, "note": "not installed from a checkout"}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
        )

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "note": "git is not available"}
    if inside.returncode != 0:
        return {"commit": None, "dirty": None, "note": "not a git repository"}
    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {
        "commit": head.stdout.strip() if head.returncode == 0 else None,
        "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None,
        "note": "" if head.returncode == 0 else "no commits yet",
    }


def device_of_run(metrics_file: Path) -> dict:
    """The device the notebook says it used (its metrics JSON), else what torch sees here."""
    if metrics_file.exists():
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metrics = {}
        if isinstance(metrics, dict) and isinstance(metrics.get("device"), str):
            return {
                "device": metrics["device"],
                "gpu_name": metrics.get("gpu_name"),
                "source": "notebook metrics",
            }
    try:
        report = device_report()
    except ImportError:
        return {"device": "unknown", "source": "torch not importable"}
    return {**report, "source": "runner (torch)"}


def write_manifest(
    record: RunRecord,
    *,
    sources: dict,
    timeouts_s: dict,
    started_at: _dt.datetime,
    command: list[str],
) -> Path:
    """The run manifest at ``record.manifest``: the record plus where each parameter came from,
    the timeouts, start and end times, git commit, package versions, interpreter and platform."""
    return write_json(
        Path(record.manifest),
        {
            **asdict(record),
            "parameter_sources": sources,
            "timeouts_s": timeouts_s,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git": git_info(),
            "packages": package_versions(),
            "python": {"version": platform.python_version(), "executable": sys.executable},
            "platform": platform.platform(),
            "command": command,
        },
    )
