"""Text sources of the paper (Section 6): PG-19, fan-fiction, random words, self-generated text.

One entry point, :func:`load_texts`, returns :class:`Text` records with exact token ids; the
quick :func:`source_status` table says which sources work here (notebooks print it). Offline,
PG-19 is replaced by Gutenberg Shakespeare and labelled so; fan-fiction is unavailable.
"""

from __future__ import annotations

from prototokens.identity import tokenizer_fingerprint

from .base import SOURCES, NotEnoughTexts, SourceUnavailable, Text, prefix
from .gutenberg import strip_gutenberg
from .sentences import split_halves, split_sentences
from .sources import load_texts, source_status

__all__ = [
    "SOURCES",
    "NotEnoughTexts",
    "SourceUnavailable",
    "Text",
    "load_texts",
    "prefix",
    "source_status",
    "split_halves",
    "split_sentences",
    "strip_gutenberg",
    "tokenizer_fingerprint",
]
