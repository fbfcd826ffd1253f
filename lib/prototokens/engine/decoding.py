"""One-forward decoding from trained vectors: the deployment path of every arrangement.

``predict(lm, arrangement, vectors, n_tokens)`` runs Z through the frozen model once and takes
the argmax at every supervised position (for ``ar-K``, free-running greedy decoding from the K
vectors). The engine calls it at the end of training (:func:`evaluate_row`), so a row's
``predicted_ids`` are what this function returns.

Two decoders, one definition each: :func:`forward_argmax` (one forward pass over a planned batch,
the argmax at every target position: what :func:`predict` and the throughput timings run) and
:func:`greedy_generate` (``transformers`` ``generate`` after a soft prompt of vectors, exactly
``n_tokens`` tokens, end-of-text neither stopping nor masked: the ``ar-K`` read-out, the read-out
probe of notebook 06 and the autoregressive timings of notebook 07).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from prototokens.engine.arrangements import Arrangement, get_arrangement
from prototokens.engine.forward import (
    DEFAULT_CHUNK_ELEMENTS,
    hidden_states,
    input_embeddings,
    plan_batch,
    target_argmax,
    target_ce,
)
from prototokens.engine.metrics import start_token_id, token_metrics


def start_token_for(lm, arrangement: Arrangement) -> int | None:
    """The model's start token id when ``arrangement`` feeds it (the ``bos+`` ones), else None."""
    return start_token_id(lm.tokenizer) if arrangement.needs_start_token else None


@torch.no_grad()
def predict(
    lm,
    arrangement: str | Arrangement,
    vectors: dict[str, torch.Tensor],
    n_tokens: int,
    token_ids: Sequence[int] | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[list[int], float | None]:
    """One-forward greedy decoding of ``n_tokens`` tokens from trained vectors.

    Returns (predicted ids, CE in nats of ``token_ids`` if given, else None). For an
    autoregressive arrangement (``ar-K``) the prediction is free-running ``generate`` from the K
    vectors, and the CE is teacher-forced.
    """
    arrangement = get_arrangement(arrangement)
    model = lm.model
    vec = torch.stack([vectors[n].to(lm.device, torch.float32) for n in arrangement.slots])[
        None
    ]  # (1,S,d)
    ids = list(token_ids) if token_ids is not None else [0] * n_tokens
    plan = plan_batch(arrangement, [ids], lm.device, start_token_for(lm, arrangement))
    ce_total = None
    if arrangement.autoregressive:
        pred = greedy_generate(lm, vec, n_tokens)[0].tolist()
        if token_ids is not None:
            hidden = hidden_states(model, input_embeddings(model, plan, vec))
            ce_total = float(target_ce(model, plan, hidden, chunk_elements)[0].sum())
        return pred, ce_total
    pred, hidden = forward_argmax(lm, plan, vec, chunk_elements)
    pred = pred[torch.argsort(plan.tgt_pos)].tolist()
    if token_ids is not None:
        ce_total = float(target_ce(model, plan, hidden, chunk_elements)[0].sum())
    return pred, ce_total


def forward_argmax(
    lm, plan, vectors: torch.Tensor, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over a planned batch (``forward.plan_batch``; ``vectors`` (B, S, d)):
    the greedy token at every target position, (T,) in the plan's target order, and the hidden
    states (B, L, d) (for a CE of the same pass)."""
    model = lm.model
    hidden = hidden_states(model, input_embeddings(model, plan, vectors))  # (B, L, d)
    return target_argmax(model, plan, hidden, chunk_elements), hidden


def _pad_id(lm) -> int:
    tok = lm.tokenizer
    return int(getattr(tok, "pad_token_id", None) or getattr(tok, "eos_token_id", None) or 0)


@torch.inference_mode()
def greedy_generate(lm, prefix: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(B, n) tokens from ``model.generate`` (default cache) after the soft prompt ``prefix``
    (B, P, d) of input vectors (cast to the model dtype), greedy, exactly ``n_tokens``: the stop
    token is an id outside the vocabulary, so end-of-text neither stops a row nor is masked
    (``min_new_tokens`` would mask it and change the argmax). The model's own generation config
    (sampling, penalties) is not used."""
    from transformers import GenerationConfig

    cfg = GenerationConfig(
        max_new_tokens=n_tokens,
        do_sample=False,
        eos_token_id=lm.vocab_size,
        pad_token_id=_pad_id(lm),
        bos_token_id=None,
    )
    x = prefix.to(lm.model.get_input_embeddings().weight.dtype)
    out = lm.model.generate(
        inputs_embeds=x,
        attention_mask=torch.ones(x.shape[:2], dtype=torch.long, device=x.device),
        generation_config=cfg,
    )
    return out[:, -n_tokens:]


def evaluate_row(
    lm, arrangement: Arrangement, res, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> None:
    """Fill ``res.predicted_ids`` and ``res.metrics`` of a finished row (``engine.train.RowResult``)
    by decoding at deployment shape (B=1)."""
    pred, ce = predict(
        lm, arrangement, res.vectors, len(res.token_ids), res.token_ids, chunk_elements
    )
    res.predicted_ids = tuple(pred)
    res.metrics = token_metrics(pred, res.token_ids)
    res.metrics["ce_nats"] = ce if ce is not None and math.isfinite(ce) else None
    res.metrics["train_accuracy"] = (
        float(np.nanmax(res.accuracy_curve)) if len(res.accuracy_curve) else 0.0
    )
