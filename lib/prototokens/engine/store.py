"""Result rows and trained vectors on disk: a content-keyed cache that survives interruption,
damage and sharing.

Layout under a store root (default ``<outputs>/cache/runs``)::

    rows/<key>.json            one finished row: inputs and metrics
    tensors/<key>.safetensors  its trained vectors (fp32) and loss/accuracy curves
    quarantine/                damaged files set aside, with log.tsv (when, what, why)
    .lock                      serialises writes and repairs between processes

A row exists only once its optimisation finished (converged, hit max_steps, or diverged), so an
interrupted run keeps every finished row and a rerun computes only the missing ones. The key is a
hash of everything that determines the result (:func:`cache_key`), including the engine's source
code (editing the engine invalidates old rows instead of silently reusing them) and the model's
identity (fingerprint, dtype, device type: ``reconstruction.model_identity``).

Trust: both files of a row are written in one step (all or nothing, :func:`~prototokens.files.
write_files`) under the store's lock; a failed write raises :class:`StoreWriteError` and leaves
nothing behind. A damaged entry (:mod:`prototokens.engine.store_check`) is never a crash: reads
move it to ``quarantine/``, log one warning line and treat the row as missing, so ``reconstruct``
recomputes it. ``python -m prototokens.engine.store verify <root>`` checks a whole store.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch
from safetensors.torch import save

from prototokens import __version__
from prototokens.engine.store_check import Damage, inspect_entry, load_tensors
from prototokens.files import atomic_path, json_text, write_files
from prototokens.identity import hash_json
from prototokens.paths import output_dir

try:  # POSIX; elsewhere processes sharing a store are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

log = logging.getLogger("prototokens.store")

STALE_TEMP_S = 3600  # a temporary file this old belongs to a write that died (writes take ms)


class StoreWriteError(OSError):
    """A row could not be written; its message names the store and the cause (``errno`` kept)."""


class DamagedEntry(LookupError):
    """A row's tensors could not be read; the entry was moved to quarantine."""


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
        self.quarantine = self.root / "quarantine"

    def _row_path(self, key: str) -> Path:
        return self.root / "rows" / f"{key}.json"

    def _tensor_path(self, key: str) -> Path:
        return self.root / "tensors" / f"{key}.safetensors"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Exclusive across processes: held while a row is written and while damage is acted on,
        so that no process sets aside an entry another one is half-way through writing."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        with open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> dict | None:
        """The stored row, or None when absent or damaged (a damaged entry is set aside first)."""
        row, damage = inspect_entry(self._row_path(key), self._tensor_path(key), key)
        if damage is None:
            return row
        with self._lock():  # look again: another process may have been writing this entry
            row, damage = inspect_entry(self._row_path(key), self._tensor_path(key), key)
            if damage is not None:
                self._set_aside(key, damage)
        return row

    def put(self, key: str, row: dict, tensors: dict[str, torch.Tensor]) -> dict:
        """Store a row and its tensors in one step; returns the row as :meth:`get` reads it.

        The row records ``key`` (``cache_key``) and so does the tensors file's metadata, so a file
        found under another name is recognised as damaged. Raises ValueError for a row that is
        not JSON (NaN) or records another key, :class:`StoreWriteError` when the disk refuses.
        """
        if row.get("cache_key", key) != key:
            raise ValueError(f"row records cache_key {row['cache_key']!r}, stored under {key!r}")
        text = json_text({**row, "cache_key": key})
        blob = save(
            {k: v.detach().float().contiguous().cpu() for k, v in tensors.items()},
            metadata={"cache_key": key},
        )
        try:
            with self._lock():
                write_files({self._tensor_path(key): blob, self._row_path(key): text.encode()})
        except OSError as exc:
            raise StoreWriteError(
                exc.errno, f"could not write row {key} to the row store {self.root}: {exc}"
            ) from exc
        return json.loads(text)

    def tensors(self, key: str) -> dict[str, torch.Tensor]:
        """Vectors (``vec.e``, ``vec.m``, ...) and curves (``loss_curve``, ``accuracy_curve``).

        Raises KeyError when the key has no tensors and :class:`DamagedEntry` (after moving the
        entry to quarantine) when its file cannot be read."""
        path = self._tensor_path(key)
        if not path.exists():
            raise KeyError(
                f"no tensors stored for key {key!r} under {self.root} (never computed, or set "
                f"aside to {self.quarantine}): call reconstruct again to compute the row"
            )
        try:
            return load_tensors(path, key)
        except Exception as exc:  # SafetensorError, OSError, ValueError: all mean "unreadable"
            reason = f"cannot be read ({exc})"
            with self._lock():  # read again: another process may have just replaced the file
                try:
                    return load_tensors(path, key)
                except Exception:
                    if path.exists():
                        self._set_aside(key, Damage(path, reason))
            raise DamagedEntry(
                f"{path} {reason}; it and its row were moved to {self.quarantine}: call "
                "reconstruct again to recompute the row"
            ) from exc

    def vectors(self, key: str) -> dict[str, torch.Tensor]:
        return {k[4:]: v for k, v in self.tensors(key).items() if k.startswith("vec.")}

    def keys(self) -> list[str]:
        """Every key with a row or a tensors file (intact or not)."""
        stems = {p.stem for p in (self.root / "rows").glob("*.json")}
        stems |= {p.stem for p in (self.root / "tensors").glob("*.safetensors")}
        return sorted(stems)

    def rows(self) -> pd.DataFrame:
        """Every intact stored row as a DataFrame (damaged entries are set aside)."""
        records = [r for r in map(self.get, self.keys()) if r is not None]
        return pd.DataFrame.from_records(records)

    def export(self, path: str | Path) -> Path:
        """Write all rows to Parquet (``.parquet``) or JSON lines (``.jsonl``), atomically."""
        path = Path(path)
        if path.suffix not in (".parquet", ".jsonl"):
            raise ValueError(f"export to .parquet or .jsonl, not {path.suffix!r}")
        df = self.rows()
        with atomic_path(path) as tmp:
            if path.suffix == ".parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_json(tmp, orient="records", lines=True)
        return path

    def verify(self, dry_run: bool = False) -> tuple[int, list[Damage]]:
        """Check every entry, reading every tensor, and set aside what is damaged (only list it
        with ``dry_run``); also leftover temporary files of writes that died. Returns (number of
        intact rows, damage found)."""
        found: list[Damage] = []
        intact = 0
        for key in self.keys():
            row, damage = inspect_entry(self._row_path(key), self._tensor_path(key), key)
            if damage is None and row is not None:
                try:
                    load_tensors(self._tensor_path(key), key)
                except Exception as exc:
                    damage = Damage(self._tensor_path(key), f"cannot be read ({exc})")
            if damage is None:
                intact += row is not None
                continue
            found.append(damage)
            if not dry_run:
                with self._lock():
                    if self._tensor_path(key).exists() or self._row_path(key).exists():
                        self._set_aside(key, damage)
        now = time.time()
        for tmp in sorted(self.root.glob("*/.*.tmp")):
            if tmp.parent != self.quarantine and now - tmp.stat().st_mtime > STALE_TEMP_S:
                found.append(Damage(tmp, "is a temporary file left by a write that died"))
                if not dry_run:
                    with self._lock():
                        self._move_aside(tmp, found[-1].reason)
        return intact, found

    def _set_aside(self, key: str, damage: Damage) -> None:
        """Move both files of ``key`` (whichever exist) to quarantine and log one warning line
        naming the damaged file and the reason. Called with the lock held."""
        for path in (self._row_path(key), self._tensor_path(key)):
            if path.exists():
                self._move_aside(path, damage.reason if path == damage.path else "its pair")
        log.warning(
            "row store: %s %s; moved to %s, the row counts as missing and will be recomputed",
            damage.path,
            damage.reason,
            self.quarantine,
        )

    def _move_aside(self, path: Path, reason: str) -> Path:
        """Rename ``path`` into ``quarantine/<folder>/`` (never overwriting) and log why."""
        folder = self.quarantine / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        target, n = folder / path.name, 0
        while target.exists():
            n += 1
            target = folder / f"{path.name}.{n}"
        try:
            os.replace(path, target)
        except OSError as exc:
            raise StoreWriteError(
                exc.errno, f"could not move damaged {path} to {folder}: {exc}"
            ) from exc
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.quarantine / "log.tsv", "a", encoding="utf-8") as fh:
            rel = target.relative_to(self.quarantine)
            fh.write(f"{stamp}\t{path.relative_to(self.root)}\t{rel}\t{reason}\n")
        return target


def main(argv: list[str] | None = None) -> int:
    """``python -m prototokens.engine.store verify [ROOT] [--dry-run]``: exit 1 when damage was
    found (and set aside), 0 for an intact store."""
    parser = argparse.ArgumentParser(prog="python -m prototokens.engine.store")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check every row and set damaged ones aside")
    check.add_argument("root", nargs="?", help="store root (default <outputs>/cache/runs)")
    check.add_argument("--dry-run", action="store_true", help="list damage, move nothing")
    args = parser.parse_args(argv)
    root = Path(args.root) if args.root else output_dir() / "cache" / "runs"
    if not (root / "rows").is_dir():
        parser.error(f"{root} is not a row store (no rows/ folder)")
    store = ResultStore(root)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    intact, found = store.verify(dry_run=args.dry_run)
    if args.dry_run:
        for d in found:
            print(f"damaged: {d.path} {d.reason}")
    verb = "would be set aside" if args.dry_run else f"set aside in {store.quarantine}"
    print(f"{root}: {intact} intact rows, {len(found)} damaged entries {verb}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
