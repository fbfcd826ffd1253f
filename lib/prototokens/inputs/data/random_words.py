"""Random text: words drawn uniformly from the 100,000 most frequent English words.

The paper drew from GloVe's top 100k words (``glove.6B.50d``); GloVe is not reachable offline,
so the list is ``wordfreq.top_n_list("en", 100_000)`` (wordfreq 3.1.1 yields the full 100,000
distinct words). It is frozen into a ``datasets.Dataset`` in the data cache at first use, so an
upgrade of wordfreq does not silently change the texts. As in the predecessor, ``5 × num_tokens``
words are drawn, joined with spaces, tokenised, and cut to ``num_tokens`` tokens.
"""

from __future__ import annotations

import numpy as np

from prototokens.paths import cache_dir
from prototokens.records import Text

from .base import RANDOM_LABEL, encode, exact_text, load_dataset_dir, save_dataset

VOCAB_SIZE = 100_000
_VOCAB: dict[str, tuple[str, ...]] = {}


def vocabulary() -> tuple[str, ...]:
    """The 100k-word list, from the cache or from wordfreq (then cached)."""
    path = cache_dir("data") / "pools" / f"random-wordfreq-en-{VOCAB_SIZE}"
    key = str(path)
    if key not in _VOCAB or not path.exists():
        ds = load_dataset_dir(path)
        if ds is None:
            import datasets
            import wordfreq

            words = wordfreq.top_n_list("en", VOCAB_SIZE)
            if len(words) != VOCAB_SIZE:
                raise RuntimeError(f"wordfreq gave {len(words)} English words, not {VOCAB_SIZE}")
            ds = datasets.Dataset.from_dict({"word": words})
            save_dataset(ds, path)
        _VOCAB[key] = tuple(ds["word"])
    return _VOCAB[key]


def random_texts(n: int, num_tokens: int, tokenizer, seed: int) -> list[Text]:
    """``n`` random-word texts of exactly ``num_tokens`` tokens.

    Text ``i`` draws from its own stream seeded by ``(seed, i)``; the draws of a shorter length
    are a prefix of those of a longer one, so texts at different lengths are prefixes of each
    other (the byte-level pre-tokenisers split at the spaces between words).
    """
    vocab = vocabulary()
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        words = [vocab[j] for j in rng.integers(0, len(vocab), size=5 * num_tokens)]
        ids = encode(tokenizer, " ".join(words))[:num_tokens]  # every word gives >= 1 token
        out.append(
            exact_text(
                tokenizer,
                ids,
                text_id=f"random-s{seed}-{i:05d}",
                source="random",
                label=RANDOM_LABEL,
            )
        )
    return out
