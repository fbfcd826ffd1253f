"""Result rows and trained vectors on disk: a content-keyed cache that survives interruption.

Layout under a store root (default ``<outputs>/cache/runs``)::

    rows/<key>.json            one finished row: inputs and metrics (written atomically)
    tensors/<key>.safetensors  its trained vectors (fp32) and loss/accuracy curves

A row exists only once its optimisation finished (converged, hit max_steps, or diverged), so an
interrupted run keeps every finished row and a rerun computes only the missing ones. The key is a
hash of everything that determines the result (:func:`cache_key`), including the engine's source
code (editing the engine invalidates old rows instead of silently reusing them) and the model's
identity (fingerprint, dtype, device type: ``experiments.model_identity``).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from prototokens import __version__
from prototokens.identity import hash_json
from prototokens.io import atomic_path, write_json
from prototokens.paths import output_dir


@lru_cache(maxsize=1)
def engine_version() -> str:
    """Library version plus a hash of every source file of the engine package (part of every
    cache key): any edit under ``prototokens/engine/`` invalidates old rows."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:10]}"


def cache_key(**inputs: Any) -> str:
    """A stable hash of the given inputs (JSON-serialisable) and :func:`engine_version`."""
    return hash_json({**inputs, "engine": engine_version()}, length=32)


class ResultStore:
    """Rows and tensors under ``root``; see the module docstring for the layout."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else output_dir() / "cache" / "runs"
        (self.root / "rows").mkdir(parents=True, exist_ok=True)
        (self.root / "tensors").mkdir(parents=True, exist_ok=True)

    def _row_path(self, key: str) -> Path:
        return self.root / "rows" / f"{key}.json"

    def _tensor_path(self, key: str) -> Path:
        return self.root / "tensors" / f"{key}.safetensors"

    def has(self, key: str) -> bool:
        return self._row_path(key).exists() and self._tensor_path(key).exists()

    def get(self, key: str) -> dict | None:
        """The stored row, or None if absent (a row without its tensors counts as absent)."""
        if not self.has(key):
            return None
        return json.loads(self._row_path(key).read_text())

    def put(self, key: str, row: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Write tensors first, then the row: a row on disk always has its tensors."""
        with atomic_path(self._tensor_path(key)) as tmp:
            save_file(
                {k: v.detach().float().contiguous().cpu() for k, v in tensors.items()}, str(tmp)
            )
        write_json(self._row_path(key), row)

    def tensors(self, key: str) -> dict[str, torch.Tensor]:
        """Vectors (``vec.e``, ``vec.m``, ...) and curves (``loss_curve``, ``accuracy_curve``)."""
        if not self._tensor_path(key).exists():
            raise KeyError(f"no tensors stored for key {key!r} under {self.root}")
        return load_file(str(self._tensor_path(key)))

    def vectors(self, key: str) -> dict[str, torch.Tensor]:
        return {k[4:]: v for k, v in self.tensors(key).items() if k.startswith("vec.")}

    def rows(self) -> pd.DataFrame:
        """Every stored row as a DataFrame (one row per file)."""
        records = [json.loads(p.read_text()) for p in sorted((self.root / "rows").glob("*.json"))]
        return pd.DataFrame.from_records(records)

    def export(self, path: str | Path) -> Path:
        """Write all rows to Parquet (``.parquet``) or JSON lines (``.jsonl``), atomically."""
        path = Path(path)
        df = self.rows()
        with atomic_path(path) as tmp:
            if path.suffix == ".parquet":
                df.to_parquet(tmp, index=False)
            elif path.suffix == ".jsonl":
                df.to_json(tmp, orient="records", lines=True)
            else:
                raise ValueError(f"export to .parquet or .jsonl, not {path.suffix!r}")
        return path
