"""The committed reference runs inside an outputs folder: ``outputs/reference/<name>/``.

Each reference is a compact record of one run on one machine (``h200``: the series at the ``gpu``
profile on an NVIDIA H200; ``cpu``: notebooks 03, 05 and 07 at ``cpu_paper`` on the 2-core CPU
machine), written by ``ci/gpu_reference.py`` with a ``runs.json`` that says where and how it ran.
The report (:mod:`prototokens.harness.report`) shows every one beside the run's own artefacts
and verdicts, and :mod:`prototokens.harness.compare` prints a reference's provenance; both read
the folders through this module, so what counts as a reference is decided in one place: a folder
under ``reference/`` that holds a ``runs.json`` (a half-copied folder without one is left out).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from prototokens.harness.ledger import read_ledger

REFERENCES = "reference"  # the folder of references inside an outputs folder
RUNS = "runs.json"  # a reference's provenance: device, profile, commit, wall time per notebook


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object file (``runs.json``, a manifest, a metrics file) as a dict; empty when it is
    missing, unreadable or not an object, so a partial run or reference still gives a page."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_runs(folder: str | os.PathLike) -> dict:
    """A reference's ``runs.json`` (:func:`read_json`)."""
    return read_json(Path(folder, RUNS))


@dataclass(frozen=True)
class Reference:
    """One committed reference: its folder name (``h200``, ``cpu``), folder and ``runs.json``
    (equal and hashed by name and folder)."""

    name: str
    folder: Path
    runs: dict = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        """The device and profile it ran at, from ``runs.json`` (``NVIDIA H200, profile gpu``):
        what the report puts under the reference's name in each of its columns."""
        return f"{self.runs.get('device') or '?'}, profile {self.runs.get('profile') or '?'}"

    def verdicts(self) -> dict[str, str]:
        """``{claim id: verdict}`` from its claims ledger; empty for a reference written before
        the ledger existed (its claims are only in its metrics, in another shape)."""
        ledger = read_ledger(self.folder)
        return dict(zip(ledger.id, ledger.verdict))


def list_references(output_dir: str | os.PathLike) -> list[Reference]:
    """Every reference under ``<output_dir>/reference/*/`` that has a ``runs.json``, by name."""
    root = Path(output_dir, REFERENCES)
    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / RUNS).is_file())
    return [Reference(p.name, p, read_runs(p)) for p in folders]
