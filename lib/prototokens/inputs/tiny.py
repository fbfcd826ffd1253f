"""Tiny random-init models and a tiny tokenizer, built in-process, for tests and smoke runs.

They exercise every mechanism of the engine (arrangements, batching, sharing, freezing, caching)
in milliseconds without any download. They say nothing about the phenomenon itself: for that the
tests use the embedded SmolLM2 (``prototokens.inputs.models.load_model("smollm2-135m")``).
"""

from __future__ import annotations

from functools import lru_cache

import torch

_CORPUS = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness. The quick brown fox jumps over the lazy dog. To be, or not to be, that "
    "is the question: whether 'tis nobler in the mind to suffer the slings and arrows of "
    "outrageous fortune. Call me Ishmael. All happy families are alike; each unhappy family is "
    "unhappy in its own way. 0123456789 !?.,;:'\"()-"
)


@lru_cache(maxsize=4)
def tiny_tokenizer(vocab_size: int = 320):
    """A byte-level BPE tokenizer (``PreTrainedTokenizerFast``) trained on a fixed paragraph.

    Byte-level, so it encodes any string; deterministic, so token ids are stable across runs.
    Has ``<|endoftext|>`` as BOS/EOS/pad (id 0), like GPT-NeoX and SmolLM2 tokenizers.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def tiny_model(
    arch: str = "llama",
    *,
    vocab_size: int = 320,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 256,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
):
    """A random-init causal LM of the given family (``llama``, ``gpt_neox``), frozen, in eval mode.

    Same code paths as the real families (rotary attention, tied/untied heads); hidden 32 and two
    layers keep a forward+backward under a millisecond. Built by the one factory,
    :func:`prototokens.inputs.architectures.random_model` (architecture ``tiny-<arch>``).
    """
    from prototokens.inputs.architectures import random_model, tiny_config

    fields = tiny_config(
        arch,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        max_positions=max_positions,
    )
    return random_model(f"tiny-{arch}", seed=seed, dtype=dtype, **fields)
