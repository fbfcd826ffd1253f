"""Atomic file writes: a finished file is either the old one or the whole new one.

Interrupted runs (Ctrl-C, a dead kernel) and failed writes (a full disk) must never leave a
half-written row, table or tensor file that a later run would trust, nor a temporary file behind.
Every writer in the library goes through these helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping


def _temp_beside(path: Path) -> Path:
    """A new empty temporary file next to ``path`` (same filesystem, so a rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it: the one place bytes reach the disk (tests patch it
    to simulate a full disk)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto ``path``.

    The caller may replace the temporary file by a directory (e.g. ``save_pretrained(tmp)`` after
    ``tmp.unlink()``); it is renamed the same way. On an exception the temporary file or directory
    is removed and ``path`` is left untouched.
    """
    path = Path(path)
    tmp_path = _temp_beside(path)
    try:
        yield tmp_path
        if tmp_path.is_file():
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        _remove(tmp_path)
        raise


def write_files(contents: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write several files as one step: every file is written and fsynced to a temporary file
    first, then all are renamed into place in the given order.

    A failure while writing (no space left, an interrupt) removes every temporary file and leaves
    every target untouched, so a reader never sees one new file without the others.
    """
    targets = [Path(p) for p in contents]
    temps: list[Path] = []
    try:
        for path, data in zip(targets, contents.values()):
            temps.append(_temp_beside(path))
            write_synced(temps[-1], data)
        for tmp, path in zip(temps, targets):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            _remove(tmp)
        raise
    return targets


def json_text(obj: Any) -> str:
    """``obj`` as indented, key-sorted JSON (NaN/inf are rejected: they are not JSON)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return write_files({path: text.encode("utf-8")})[0]


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (see :func:`json_text`)."""
    return write_text(path, json_text(obj))
