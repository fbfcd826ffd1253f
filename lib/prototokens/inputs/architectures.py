"""The one factory for random-init models of known architectures (the paper's and the test ones).

Speed does not depend on weight values, so timings of the paper's six models (and of SmolLM2) can
be taken on random-init copies of their architectures where the weights are unavailable (no hub
access, no licence). Every such model is labelled as random-init (``LoadedModel.source ==
"random-init"``, name ``random:<arch>``) so that no table can pass it off as the real model; it
says nothing about reconstruction, only about time and memory.

The tiny architectures (``tiny-llama``, ``tiny-gpt_neox``) are the millisecond models of the tests
(``tests/support.py`` builds them with a tiny tokenizer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

_LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


@dataclass(frozen=True)
class Architecture:
    """A transformers config of a known model: family (``llama`` / ``gpt_neox``) and its fields."""

    name: str
    family: str
    title: str
    config: dict = field(repr=False)
    tiny: bool = False  # built in fp32 on the CPU then cast (bit-stable across devices)


def _llama(
    name, title, hidden, inter, layers, heads, kv, head_dim, vocab, max_pos, tie, rope, **kw
):
    cfg = dict(
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tie,
        hidden_act="silu",
        rope_parameters=rope,
        **kw,
    )
    return Architecture(name, "llama", title, cfg)


def _pythia(name, title, hidden, layers, heads):
    cfg = dict(
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        vocab_size=50304,
        max_position_embeddings=2048,
        layer_norm_eps=1e-5,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,
        },
        bos_token_id=0,
        eos_token_id=0,
    )
    return Architecture(name, "gpt_neox", title, cfg)


_L3 = dict(bos_token_id=128000, eos_token_id=128001)
ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        _pythia("pythia-160m", "Pythia-160M", 768, 12, 12),
        _pythia("pythia-410m", "Pythia-410M", 1024, 24, 16),
        _pythia("pythia-1.4b", "Pythia-1.4B", 2048, 24, 16),
        _llama(
            "llama-3.2-1b",
            "Llama-3.2-1B",
            2048,
            8192,
            16,
            32,
            8,
            64,
            128256,
            131072,
            True,
            {**_LLAMA3_ROPE, "factor": 32.0},
            **_L3,
        ),  # fmt: skip
        _llama(
            "llama-3.2-3b",
            "Llama-3.2-3B",
            3072,
            8192,
            28,
            24,
            8,
            128,
            128256,
            131072,
            True,
            {**_LLAMA3_ROPE, "factor": 32.0},
            **_L3,
        ),  # fmt: skip
        _llama(
            "llama-3.1-8b",
            "Llama-3.1-8B",
            4096,
            14336,
            32,
            32,
            8,
            128,
            128256,
            131072,
            False,
            {**_LLAMA3_ROPE, "factor": 8.0},
            **_L3,
        ),  # fmt: skip
        _llama(
            "smollm2-135m",
            "SmolLM2-135M",
            576,
            1536,
            30,
            9,
            3,
            64,
            49152,
            8192,
            True,
            {"rope_type": "default", "rope_theta": 100000.0},
            bos_token_id=0,
            eos_token_id=0,
        ),  # fmt: skip
        Architecture("tiny-llama", "llama", "tiny Llama (tests)", {}, tiny=True),
        Architecture("tiny-gpt_neox", "gpt_neox", "tiny GPT-NeoX (tests)", {}, tiny=True),
    ]
}
PAPER_ARCHITECTURES = (
    "pythia-160m",
    "pythia-410m",
    "pythia-1.4b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "llama-3.1-8b",
)
# hub ids of the real weights (used to label a random-init copy next to the real model's rows)
HUB_IDS = {
    "pythia-160m": "EleutherAI/pythia-160m",
    "pythia-410m": "EleutherAI/pythia-410m",
    "pythia-1.4b": "EleutherAI/pythia-1.4b",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M",
}


def tiny_config(
    family: str,
    *,
    vocab_size: int = 320,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 256,
) -> dict:
    """Config fields of a tiny test model of ``family`` (``llama`` or ``gpt_neox``)."""
    common = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    if family == "llama":
        return {
            **common,
            "num_key_value_heads": max(1, num_heads // 2),
            "tie_word_embeddings": True,
        }
    if family == "gpt_neox":
        return common
    raise ValueError(f"unknown tiny architecture {family!r}; choose 'llama' or 'gpt_neox'")


def get_architecture(arch: str) -> Architecture:
    key = arch.removeprefix("random:")
    if key not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[key]


def build_config(arch: str, **overrides):
    """The transformers config object of ``arch`` (``overrides`` replace fields)."""
    from transformers import GPTNeoXConfig, LlamaConfig

    a = get_architecture(arch)
    fields = {**(tiny_config(a.family) if a.tiny else a.config), **overrides}
    return (LlamaConfig if a.family == "llama" else GPTNeoXConfig)(**fields)


def random_model(
    arch: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    attn: str | None = None,
    **overrides,
):
    """A random-init causal LM of ``arch``, frozen, in eval mode, on ``device`` in ``dtype``.

    Large architectures are born on the device in the target dtype (no CPU init of 8B weights);
    tiny ones are built in fp32 on the CPU and cast, so that a seed gives the same weights
    everywhere. ``attn``: attention implementation (``sdpa``, ``eager``); default transformers'.
    """
    from transformers import AutoModelForCausalLM

    a = get_architecture(arch)
    cfg = build_config(arch, **overrides)
    if attn:
        cfg._attn_implementation = attn
    torch.manual_seed(seed)
    device = torch.device(device)
    if a.tiny:
        model = AutoModelForCausalLM.from_config(cfg).to(device, dtype)
    else:
        old = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                model = AutoModelForCausalLM.from_config(cfg)
        finally:
            torch.set_default_dtype(old)
    model.eval()
    model.requires_grad_(False)
    return model


def random_lm(
    arch: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    seed: int = 0,
    attn: str | None = "sdpa",
    tokenizer=None,
    **overrides,
):
    """:func:`random_model` wrapped as a ``LoadedModel`` named ``random:<arch>``, source
    ``random-init``, title ``<Title> (random init)``: timing only, never reconstruction claims."""
    from prototokens.inputs.models import LoadedModel, resolve_device, resolve_dtype

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    a = get_architecture(arch)
    t0 = time.perf_counter()
    model = random_model(a.name, device=dev, dtype=dt, seed=seed, attn=attn, **overrides)
    lm = LoadedModel(
        name=f"random:{a.name}",
        model=model,
        tokenizer=tokenizer,
        title=f"{a.title} (random init)",
        source="random-init",
    )
    lm.build_s = time.perf_counter() - t0  # type: ignore[attr-defined]
    return lm


def is_random_spec(spec: str) -> bool:
    """``random:<arch>`` specs name a random-init architecture (see :data:`ARCHITECTURES`)."""
    return isinstance(spec, str) and spec.startswith("random:")
