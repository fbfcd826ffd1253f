"""Test-only helpers: tiny random-init models and tokenizers, and reference functions the library
does not need (each was a library function used by tests alone).

The tiny models exercise every mechanism of the engine (arrangements, batching, sharing, freezing,
caching) in milliseconds without any download. They say nothing about the phenomenon itself: for
that the tests use the embedded SmolLM2 (``prototokens.inputs.models.load_model("smollm2-135m")``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

_CORPUS = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness. The quick brown fox jumps over the lazy dog. To be, or not to be, that "
    "is the question: whether 'tis nobler in the mind to suffer the slings and arrows of "
    "outrageous fortune. Call me Ishmael. All happy families are alike; each unhappy family is "
    "unhappy in its own way. 0123456789 !?.,;:'\"()-"
)


# Special tokens of each family's tokenizer (first ids, in this order), which of them are BOS, EOS,
# unk and pad, and whether the tokenizer prepends BOS itself. The default mimics GPT-NeoX.
FAMILIES: dict[str, dict] = {
    "default": dict(specials=["<|endoftext|>"], bos="<|endoftext|>", eos="<|endoftext|>",
                    pad="<|endoftext|>", unk=None, adds_bos=False),
    # SmolLM2-Instruct: BOS opens a chat turn, the unk token *is* the document boundary
    "smollm2": dict(specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos="<|im_start|>",
                    eos="<|im_end|>", pad="<|im_end|>", unk="<|endoftext|>", adds_bos=False),
    # Gemma 3: <bos> prepended by the tokenizer
    "gemma3": dict(specials=["<pad>", "<eos>", "<bos>", "<unk>"], bos="<bos>", eos="<eos>",
                   pad="<pad>", unk="<unk>", adds_bos=True),
    # Pythia / GPT-NeoX: one token is BOS, EOS and unk; nothing prepended
    "pythia": dict(specials=["<|endoftext|>", "<|padding|>"], bos="<|endoftext|>",
                   eos="<|endoftext|>", pad="<|padding|>", unk="<|endoftext|>", adds_bos=False),
    # Llama 3: <|begin_of_text|> prepended by the tokenizer, no unk token
    "llama3": dict(specials=["<|begin_of_text|>", "<|end_of_text|>"], bos="<|begin_of_text|>",
                   eos="<|end_of_text|>", pad=None, unk=None, adds_bos=True),
}  # fmt: skip


@lru_cache(maxsize=8)
def tiny_tokenizer(vocab_size: int = 320, family: str = "default"):
    """A byte-level BPE tokenizer (``PreTrainedTokenizerFast``) trained on a fixed paragraph.

    Byte-level, so it encodes any string; deterministic, so token ids are stable across runs.
    The default has ``<|endoftext|>`` as BOS/EOS/pad (id 0), like GPT-NeoX. ``family`` (a key of
    :data:`FAMILIES`: ``smollm2``, ``gemma3``, ``pythia``, ``llama3``) gives the special tokens and
    the BOS behaviour of that family's tokenizer instead (for start-token tests).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if family not in FAMILIES:
        raise ValueError(f"unknown tokenizer family {family!r}; choose one of {sorted(FAMILIES)}")
    spec = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=spec["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    if spec["adds_bos"]:
        bos = (spec["bos"], tok.token_to_id(spec["bos"]))
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos[0]} $A", pair=f"{bos[0]} $A {bos[0]} $B", special_tokens=[bos]
        )
    names = {k: spec[k] for k in ("bos", "eos", "pad", "unk") if spec[k] is not None}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, **{f"{k}_token": v for k, v in names.items()}
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


def steps_to_threshold(accuracy_curve: Sequence[float], threshold: float) -> int | None:
    """First step whose accuracy reaches ``threshold`` (None if never): the reference for the
    engine's ``steps_to``."""
    hits = np.nonzero(np.asarray(accuracy_curve) >= threshold - 1e-9)[0]
    return int(hits[0]) if len(hits) else None


def expected_loss(lm, arrangement, token_ids, p1, p2, control, taus: int = 21) -> np.ndarray:
    """Eq. 5 on a uniform grid of ``taus`` points: (P,) mean CE sum along each Bezier path."""
    from prototokens.studies.bezier import path_metrics

    _, ce = path_metrics(lm, arrangement, token_ids, p1, p2, np.linspace(0, 1, taus), control)
    return ce.mean(axis=1)


def count_parameters(arch: str, **overrides) -> int:
    """Parameters of an architecture (tied embeddings counted once), built on the meta device."""
    from prototokens.inputs.architectures import build_config
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(build_config(arch, **overrides))
    return sum(p.numel() for p in model.parameters())


def read_metrics(notebook: str, output_dir) -> dict:
    """``metrics/<notebook>.json`` of an outputs folder, as written by ``write_metrics``."""
    from prototokens.harness.artifacts import metrics_path

    return json.loads(metrics_path(notebook, output_dir).read_text(encoding="utf-8"))


def reset_hub_reachability() -> None:
    """Forget the hub's remembered reachability (a test that changes the network changes it)."""
    from prototokens.inputs.data import hub

    hub._REACHABLE.clear()


def count_optimize(monkeypatch) -> list[int]:
    """Count the ``optimize`` calls ``reconstruct`` makes (rows per call), so a test can tell a
    cached row from a recomputed one."""
    from prototokens.engine import reconstruction

    calls: list[int] = []
    real = reconstruction.optimize

    def counting(lm, token_ids, **kw):
        calls.append(len(token_ids))
        return real(lm, token_ids, **kw)

    monkeypatch.setattr(reconstruction, "optimize", counting)
    return calls
