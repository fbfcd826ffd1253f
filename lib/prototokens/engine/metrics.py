"""Per-text metrics, computed from predictions and model outputs (never copied from the paper).

Units are explicit: every information quantity is stored in nats *and* bits (the predecessor's
code summed nats and the paper labelled them bits; we keep both).

- C_tokens (paper Eq. 2): number of positions whose one-forward argmax equals the target.
- H_LM (paper Eq. 3): -sum_i log P(t_i | t_<i) under the plain model. t_1 is conditioned on one
  start token (see :func:`start_token_id`), so all N tokens are scored; the predecessor scored only
  N-1 (its first token was given).
- information gain = H_LM - CE with the trained vectors (Kuratov et al.'s "cross-entropy
  reduction").
- theoretical capacity = d * 16 / log2|V| tokens: the bits of one 16-bit d-vector over the bits of a
  token id (predecessor's models_list.csv).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

THRESHOLDS = (0.95, 0.99, 1.0)
LN2 = math.log(2)


def token_metrics(pred: Sequence[int], target: Sequence[int]) -> dict:
    """C_tokens, accuracy, exact match and the first wrong position (None if none) of a decoding."""
    if len(pred) != len(target):
        raise ValueError(f"prediction has {len(pred)} tokens, target {len(target)}")
    wrong = [i for i, (p, t) in enumerate(zip(pred, target)) if int(p) != int(t)]
    c = len(target) - len(wrong)
    return {
        "num_tokens": len(target),
        "c_tokens": c,
        "accuracy": c / len(target) if target else float("nan"),
        "exact_match": not wrong,
        "first_wrong": wrong[0] if wrong else None,
    }


def theoretical_capacity(d_model: int, vocab_size: int, bits_per_value: int = 16) -> float:
    """Tokens one d-dimensional vector of ``bits_per_value``-bit numbers could index:
    d*16/log2|V|."""
    return d_model * bits_per_value / math.log2(vocab_size)


def nats_to_bits(x: float | None) -> float | None:
    return None if x is None else x / LN2


def start_token_id(tokenizer) -> int:
    """The token that conditions t_1 in H_LM: the tokenizer's document boundary.

    In order: the BOS when the tokenizer prepends it itself (Llama 3 ``<|begin_of_text|>``,
    Gemma 3 ``<bos>``); else ``<|endoftext|>`` when it is in the vocabulary (GPT-NeoX/Pythia,
    GPT-2, SmolLM2, whose BOS ``<|im_start|>`` opens a chat turn and whose *unk* token is
    ``<|endoftext|>``); else the BOS; else the EOS. Membership is read from the vocabulary, never
    from ``convert_tokens_to_ids`` (which answers the unk id for an unknown token).
    """
    bos = tokenizer.bos_token_id
    if bos is not None and tokenizer("a")["input_ids"][:1] == [bos]:
        return int(bos)
    eot = tokenizer.get_vocab().get("<|endoftext|>")
    if eot is not None:
        return int(eot)
    if bos is not None:
        return int(bos)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise ValueError(
        "tokenizer has no BOS, EOS or <|endoftext|> token to condition the first token on"
    )


def start_token(tokenizer) -> tuple[int, str]:
    """(id, string) of :func:`start_token_id`, as recorded in every result row."""
    tid = start_token_id(tokenizer)
    return tid, tokenizer.convert_ids_to_tokens(tid)


@torch.no_grad()
def h_lm(lm, token_ids: Sequence[Sequence[int]], batch_size: int = 8) -> list[float]:
    """H_LM in nats for each text: sum of next-token CE under the plain model, t_1 included."""
    from torch.nn import functional as F

    start = start_token_id(lm.tokenizer)
    out: list[float] = []
    for b in range(0, len(token_ids), batch_size):
        chunk = [list(t) for t in token_ids[b : b + batch_size]]
        L = max(len(t) for t in chunk) + 1
        ids = torch.full((len(chunk), L), start, dtype=torch.long)
        mask = torch.zeros((len(chunk), L), dtype=torch.long)
        for i, t in enumerate(chunk):
            ids[i, 1 : len(t) + 1] = torch.tensor(t)
            mask[i, : len(t) + 1] = 1
        ids, mask = ids.to(lm.device), mask.to(lm.device)
        logits = lm.model(input_ids=ids, attention_mask=mask).logits.float()  # (b, L, V)
        ce = F.cross_entropy(
            logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none"
        )  # (b, L-1)
        ce = (ce * mask[:, 1:]).sum(1)
        out.extend(float(x) for x in ce.cpu())
    return out
