"""Records every layer passes around, kept at the bottom so that any layer may import them.

:class:`Text` is built by the text sources (:mod:`prototokens.inputs.data`) and consumed by the
engine (:func:`prototokens.engine.reconstruction.reconstruct`), the studies and the harness; were
it defined in ``inputs``, the engine would import upward.

Token ids are the ground truth of every text. ``Text.text`` is ``tokenizer.decode(token_ids)``;
re-encoding that string usually gives the same ids back, but not always: a byte-level BPE can
merge differently across a cut (e.g. a prefix that ends inside a word). Experiments therefore
train on ``token_ids``, never on a re-encoding of ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """One text to reconstruct, with its exact token ids.

    ``token_ids`` holds exactly the requested number of ids, without special tokens (no BOS);
    ``text`` is their decoding. ``context`` is the text that preceded it (the first half of a
    PG-19 chunk, or the prompt a continuation was sampled from); ``context_id`` is shared by all
    texts that have the same context (the locality study groups on it).
    """

    text_id: str
    source: str
    label: str
    text: str
    token_ids: tuple[int, ...]
    context: str | None = None
    context_id: str | None = None
    tokenizer_key: str | None = None  # tokenizer_fingerprint() of the tokenizer of token_ids

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)
