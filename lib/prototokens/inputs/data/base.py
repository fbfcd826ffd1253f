"""Shared parts of the text sources: the errors, exact encoding and decoding, dataset files.

The :class:`~prototokens.records.Text` record itself lives in :mod:`prototokens.records`, where
every layer may import it; here are the helpers that build texts with exact token ids.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from prototokens.identity import tokenizer_fingerprint
from prototokens.records import Text

SOURCES: tuple[str, ...] = ("pg19", "fanfics", "random", "pg19_gen")

PG19_HUB_ID = "yurakuratov/pg19_valid_1k_chunks"
FANFICS_HUB_ID = "yurakuratov/fanfics_1k_chunks"
PG19_LABEL = "pg19"
PG19_OFFLINE_LABEL = "pg19 (offline: Gutenberg Shakespeare)"
FANFICS_LABEL = "fanfics"
RANDOM_LABEL = "random (wordfreq top-100k)"


class SourceUnavailable(RuntimeError):
    """A source that cannot be loaded here (fanfics without the Hugging Face hub).

    Notebooks catch it, print the message, and carry on with the other sources.
    """


class NotEnoughTexts(ValueError):
    """A source has fewer than ``n`` texts of at least ``num_tokens`` tokens.

    Raised instead of silently returning fewer texts; ``available`` says how many it has.
    """

    def __init__(self, source: str, label: str, requested: int, available: int, num_tokens: int):
        self.source, self.label = source, label
        self.requested, self.available, self.num_tokens = requested, available, num_tokens
        super().__init__(
            f"source {source!r} ({label}) has {available} texts of at least {num_tokens} tokens "
            f"for this tokenizer, but {requested} were requested; ask for at most {available} "
            f"texts or a shorter length"
        )


_TOKENIZERS: dict[str, object] = {}  # fingerprint -> tokenizer, filled by exact_text


def prefix(text: Text, num_tokens: int, tokenizer=None) -> Text:
    """The first ``num_tokens`` tokens of ``text`` (for a length sweep over one text).

    ``text_id`` is kept: the length is carried by ``token_ids``. The ``text`` field is the exact
    decoding of the kept ids, with ``tokenizer`` or else the tokenizer that built ``text`` in this
    process (looked up by ``text.tokenizer_key``). Raises ``ValueError`` when the text is shorter
    than asked, ``num_tokens < 1``, or no tokenizer is known.
    """
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
    if num_tokens > len(text.token_ids):
        raise ValueError(
            f"text {text.text_id} has {len(text.token_ids)} tokens; cannot take a "
            f"prefix of {num_tokens}"
        )
    if num_tokens == len(text.token_ids):
        return text
    tok = tokenizer if tokenizer is not None else _TOKENIZERS.get(text.tokenizer_key or "")
    if tok is None:
        raise ValueError(
            f"no tokenizer known for text {text.text_id}; pass prefix(text, k, tokenizer)"
        )
    ids = text.token_ids[:num_tokens]
    return replace(text, token_ids=ids, text=decode(tok, ids))


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens (the predecessor's BOS is left to callers)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def decode(tokenizer, ids: Sequence[int]) -> str:
    """The exact decoding of ``ids`` (no whitespace clean-up, specials kept as they are)."""
    return tokenizer.decode(
        list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
    )


def exact_text(tokenizer, ids: Sequence[int], **fields) -> Text:
    """Build a :class:`Text` whose ``text`` is the decoding of ``ids``."""
    key = tokenizer_fingerprint(tokenizer)
    _TOKENIZERS.setdefault(key, tokenizer)
    return Text(
        text=decode(tokenizer, ids),
        token_ids=tuple(int(i) for i in ids),
        tokenizer_key=key,
        **fields,
    )


def save_dataset(ds, path: Path) -> Path:
    """Save a ``datasets.Dataset`` to ``path`` atomically: written beside it, then renamed.

    An interrupted save never leaves a half-written dataset that a later run would load.
    """
    import datasets

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        ds.save_to_disk(str(tmp))
    finally:
        if bars:
            datasets.enable_progress_bars()
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:  # another process saved the same dataset in between: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_dataset_dir(path: Path):
    """Load a dataset saved by :func:`save_dataset`, or ``None`` when there is none.

    Without the ``datasets`` package (a machine that only received the cached pools), the Arrow
    files are read with pyarrow into a :class:`ArrowColumns` (``ds["column"]`` gives a list).
    """
    path = Path(path)
    if not (path / "dataset_info.json").exists():
        return None
    try:
        import datasets
    except ImportError:
        return ArrowColumns.read(path)
    return datasets.load_from_disk(str(path))


class ArrowColumns:
    """Read-only columns of a dataset saved by ``datasets.Dataset.save_to_disk``."""

    def __init__(self, table):
        self.table = table  # pyarrow.Table

    @classmethod
    def read(cls, path: Path) -> "ArrowColumns":
        import pyarrow as pa

        files = sorted(Path(path).glob("data-*.arrow"))
        if not files:
            raise FileNotFoundError(f"no data-*.arrow file in {path}")
        tables = []
        for f in files:
            with pa.memory_map(str(f)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
        return cls(pa.concat_tables(tables))

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, column: str) -> list:
        return self.table.column(column).to_pylist()
