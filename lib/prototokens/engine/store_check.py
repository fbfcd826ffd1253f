"""What a damaged row-store entry looks like: the checks behind :class:`ResultStore`'s reads.

An entry is a row (``rows/<key>.json``) and its tensors (``tensors/<key>.safetensors``). It is
damaged when a file cannot be read, does not parse, is cut short, or records another key than
its file name, and when one of the two files is there without the other. These checks read the
row and only the safetensors *header* (a few hundred bytes), so a lookup stays cheap; a cut-short
tensors file is caught by comparing the size the header promises with the file's size.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from safetensors.torch import load

# bytes per element of every dtype safetensors writes
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


@dataclass(frozen=True)
class Damage:
    """One damaged file of an entry and why it cannot be trusted."""

    path: Path
    reason: str


def read_row(path: Path, key: str) -> tuple[dict | None, str | None]:
    """(row, None) for a readable row that records ``key``; (None, reason) otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if not raw:
        return None, "is empty (0 bytes)"
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc})"
    if not isinstance(row, dict):
        return None, f"holds a JSON {type(row).__name__}, not a row object"
    recorded = row.get("cache_key")
    if recorded is None:
        return None, "records no cache_key"
    if recorded != key:
        return None, f"records the key {recorded!r}, not its file name's"
    return row, None


def tensors_problem(path: Path, key: str) -> str | None:
    """Why the safetensors file at ``path`` cannot be the tensors of ``key``, or None.

    Reads the 8-byte header length and the JSON header only: a zero-byte, cut-short or padded
    file, a header that does not parse, and a recorded ``cache_key`` (in the header's metadata)
    other than ``key`` are problems.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            return _header_problem(fh, size, key)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"


def _header_problem(fh: BinaryIO, size: int, key: str) -> str | None:
    """:func:`tensors_problem` for an open file (or bytes buffer) of ``size`` bytes."""
    head = fh.read(8)
    n = int.from_bytes(head, "little") if len(head) == 8 else 0
    if len(head) < 8 or n > size - 8:
        return f"is cut short ({size} bytes, no complete safetensors header)"
    try:
        header = json.loads(fh.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"has an unreadable safetensors header ({exc})"
    try:
        end = 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            numel = 1
            for dim in info["shape"]:
                numel *= int(dim)
            start, stop = (int(x) for x in info["data_offsets"])
            if stop - start != numel * _DTYPE_BYTES[info["dtype"]]:
                return f"has a malformed safetensors header (tensor {name!r} has the wrong size)"
            end = max(end, stop)
        metadata = header.get("__metadata__") or {}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"has a malformed safetensors header ({type(exc).__name__}: {exc})"
    if 8 + n + end != size:
        return f"is {size} bytes where its header promises {8 + n + end} (cut short or padded)"
    recorded = metadata.get("cache_key")
    if recorded is not None and recorded != key:  # files written before keys were recorded pass
        return f"records the key {recorded!r}, not its file name's"
    return None


def inspect_entry(row_path: Path, tensor_path: Path, key: str) -> tuple[dict | None, Damage | None]:
    """(row, None) for an intact entry, (None, None) for an absent one, (None, damage) else."""
    has_row, has_tensors = row_path.exists(), tensor_path.exists()
    if not has_row and not has_tensors:
        return None, None
    if not has_row:
        return None, Damage(tensor_path, f"has no row ({row_path.name} is missing)")
    row, reason = read_row(row_path, key)
    if reason is not None:
        return None, Damage(row_path, reason)
    if not has_tensors:
        return None, Damage(row_path, f"has no tensors ({tensor_path.name} is missing)")
    reason = tensors_problem(tensor_path, key)
    if reason is not None:
        return None, Damage(tensor_path, reason)
    return row, None


def load_tensors(path: Path, key: str) -> dict:
    """Every tensor of the safetensors file of ``key`` (CPU, in memory: never backed by a mapping
    of a file that could later be cut short). Raises ValueError naming what is wrong with it."""
    data = path.read_bytes()
    problem = _header_problem(io.BytesIO(data), len(data), key)
    if problem is not None:
        raise ValueError(problem)
    return load(data)
