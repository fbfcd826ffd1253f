"""Chunk pools of the natural-text sources, cached on disk as ``datasets.Dataset``.

A pool is tokenizer-independent: one row per chunk with its ``chunk_id``, ``origin``,
``context`` (first half of the chunk's sentences) and ``target`` (second half, the text that is
compressed). Pools live under ``cache_dir("data")/pools/<name>``:

- ``pg19-hub``: the predecessor's ``yurakuratov/pg19_valid_1k_chunks`` (1000 chunks of 12k-25k
  words from the PG-19 validation set), once the hub has been reached;
- ``pg19-offline-w<words>``: the Gutenberg Shakespeare stand-in (:mod:`.gutenberg`);
- ``fanfics-hub``: ``yurakuratov/fanfics_1k_chunks``.

A hub pool cached on disk is used even when the hub is not reachable later on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from prototokens.identity import tokenizer_fingerprint
from prototokens.paths import cache_dir

from . import gutenberg, hub
from .base import (
    FANFICS_HUB_ID,
    FANFICS_LABEL,
    PG19_HUB_ID,
    PG19_LABEL,
    PG19_OFFLINE_LABEL,
    NotEnoughTexts,
    SourceUnavailable,
    encode,
    load_dataset_dir,
    save_dataset,
)
from .sentences import split_halves


@dataclass(frozen=True)
class Pool:
    """The rows of one pool, as plain lists (a few hundred to a thousand chunks)."""

    name: str
    label: str
    chunk_ids: tuple[str, ...]
    contexts: tuple[str, ...]
    targets: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.chunk_ids)


_LOADED: dict[str, Pool] = {}
_TOKENS: dict[tuple[str, str], dict[int, np.ndarray]] = {}  # (pool, tokenizer) -> idx -> ids


def pool_dir(name: str):
    return cache_dir("data") / "pools" / name


def _build(name: str, label: str, prefix: str, rows: list[tuple[str, str]]) -> Pool:
    """Split each ``(origin, chunk)`` in halves, save the pool, and return it."""
    import datasets

    halves = [split_halves(chunk) for _, chunk in rows]
    ds = datasets.Dataset.from_dict(
        {
            "chunk_id": [f"{prefix}-{i:05d}" for i in range(len(rows))],
            "origin": [origin for origin, _ in rows],
            "context": [c for c, _ in halves],
            "target": [t for _, t in halves],
        }
    )
    save_dataset(ds, pool_dir(name))
    return _from_dataset(name, label, ds)


def _from_dataset(name: str, label: str, ds) -> Pool:
    pool = Pool(name, label, tuple(ds["chunk_id"]), tuple(ds["context"]), tuple(ds["target"]))
    _LOADED[name] = pool
    return pool


def _cached(name: str, label: str) -> Pool | None:
    if name in _LOADED and pool_dir(name).exists():
        return _LOADED[name]
    ds = load_dataset_dir(pool_dir(name))
    return None if ds is None else _from_dataset(name, label, ds)


def _hub_pool(
    name: str, label: str, prefix: str, dataset_id: str, allow_hub: bool | None
) -> Pool | None:
    """The hub pool from the disk cache, else from the hub when allowed and reachable, else None."""
    if allow_hub is False:
        return None
    pool = _cached(name, label)
    if pool is not None:
        return pool
    if allow_hub is None and not hub.hub_reachable():
        return None
    texts = hub.load_hub_texts(dataset_id)
    return _build(name, label, prefix, [(f"{dataset_id}#{i}", t) for i, t in enumerate(texts)])


def pg19_pool(allow_hub: bool | None = None) -> Pool:
    """The predecessor's PG-19 chunks when the hub allows, else the offline Gutenberg stand-in."""
    try:
        pool = _hub_pool("pg19-hub", PG19_LABEL, "pg19", PG19_HUB_ID, allow_hub)
    except Exception as exc:  # the hub answered but the download failed
        if allow_hub:
            raise SourceUnavailable(
                f"pg19: could not load {PG19_HUB_ID} from the hub: {exc}"
            ) from exc
        warnings.warn(f"pg19: loading {PG19_HUB_ID} failed ({exc}); using {PG19_OFFLINE_LABEL}")
        pool = None
    if pool is not None:
        return pool
    name = f"pg19-offline-w{gutenberg.CHUNK_WORDS}"
    return _cached(name, PG19_OFFLINE_LABEL) or _build(
        name, PG19_OFFLINE_LABEL, "pg19-offline", gutenberg.offline_chunks()
    )


def fanfics_unavailable_message() -> str:
    return (
        f"fanfics unavailable offline: the Hugging Face hub is not reachable (dataset "
        f"{FANFICS_HUB_ID}); the other sources still work"
    )


def fanfics_pool(allow_hub: bool | None = None) -> Pool:
    """The predecessor's fan-fiction chunks; raises :class:`SourceUnavailable` without the hub."""
    try:
        pool = _hub_pool("fanfics-hub", FANFICS_LABEL, "fanfics", FANFICS_HUB_ID, allow_hub)
    except Exception as exc:
        raise SourceUnavailable(
            f"fanfics unavailable: loading {FANFICS_HUB_ID} from the Hugging Face hub failed: {exc}"
        ) from exc
    if pool is None:
        raise SourceUnavailable(fanfics_unavailable_message())
    return pool


def target_ids(pool: Pool, tokenizer, idx: int) -> np.ndarray:
    """Token ids of chunk ``idx``'s target (no special tokens), memoised per process."""
    memo = _TOKENS.setdefault((pool.name, tokenizer_fingerprint(tokenizer)), {})
    if idx not in memo:
        memo[idx] = np.asarray(encode(tokenizer, pool.targets[idx]), dtype=np.int64)
    return memo[idx]


def select(pool: Pool, source: str, n: int, num_tokens: int, tokenizer, seed: int) -> list[int]:
    """Indices of ``n`` chunks whose target has at least ``num_tokens`` tokens.

    Chunks are visited in a seeded permutation that does not depend on ``num_tokens`` or ``n``,
    so a shorter length picks the same chunks (and hence prefixes of the same texts) whenever
    they are long enough, and a larger ``n`` extends a smaller one.
    """
    order = np.random.default_rng(seed).permutation(len(pool))
    chosen: list[int] = []
    for idx in order:
        if len(target_ids(pool, tokenizer, int(idx))) >= num_tokens:
            chosen.append(int(idx))
            if len(chosen) == n:
                return chosen
    raise NotEnoughTexts(source, pool.label, n, len(chosen), num_tokens)
