"""The batched forward pass: trained vectors -> input embeddings -> per-text CE and correct counts.

Texts of different lengths share one padded batch. Padding goes on the right, and with the model's
causal mask a position never sees anything to its right, so padded positions cannot change the
outputs at real positions: no attention mask is needed and the result equals the unpadded one.

Logits are computed only where a target is, in chunks, each chunk under activation checkpointing,
so at most one chunk of (tokens x vocab) logits is alive: a 128k vocabulary at N=724 fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from prototokens.engine.arrangements import START, TOKEN, Arrangement

DEFAULT_CHUNK_ELEMENTS = 2**24  # logits per chunk on CPU (64 MiB in fp32)


def auto_chunk_elements(device: torch.device | str) -> int:
    """Logits per chunk: 2**24 on CPU; on CUDA a quarter of the free memory at ~16 bytes per logit
    (fp32 logits, their gradient, softmax scratch). One chunk means no checkpointing and no
    recomputation of the LM head: measured on an H200, 2**24 (130 tokens per chunk at a 128k
    vocabulary) cost Llama-3.2-1B at N=362 about a third of its step time."""
    device = torch.device(device)
    if device.type != "cuda":
        return DEFAULT_CHUNK_ELEMENTS
    free, _ = torch.cuda.mem_get_info(device)
    return max(DEFAULT_CHUNK_ELEMENTS, free // 4 // 16)


@dataclass
class BatchPlan:
    """Index tensors of one padded batch of R texts under an arrangement (all on one device).

    slot      (R, L)  vector slot per position, or TOKEN; padding uses slot 0
    token     (R, L)  token id embedded at TOKEN positions, else 0
    tgt_flat  (T,)    flat index r*L + p of every supervised position, over all texts
    tgt_token (T,)    the target token id there
    tgt_row   (T,)    which text (0..R-1) it belongs to
    tgt_pos   (T,)    which target index (0..N_r-1) of that text
    n_targets (R,)    N_r
    """

    slot: torch.Tensor
    token: torch.Tensor
    tgt_flat: torch.Tensor
    tgt_token: torch.Tensor
    tgt_row: torch.Tensor
    tgt_pos: torch.Tensor
    n_targets: torch.Tensor
    parts: list = field(default_factory=list, repr=False)  # per-text python layouts, for subset()
    has_tokens: bool = False  # any position embeds a text token (ar-K); decided once, on the host

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.slot.shape)

    def subset(self, rows: torch.Tensor) -> "BatchPlan":
        """The plan restricted to ``rows`` (indices into this plan), re-padded to their max
        length."""
        rows_cpu = rows.cpu().tolist()
        return plan_from_parts([self.parts[r] for r in rows_cpu], self.slot.device)


def plan_batch(
    arrangement: Arrangement,
    token_ids: list[list[int]] | list[tuple[int, ...]],
    device: torch.device | str = "cpu",
    start_token: int | None = None,
) -> BatchPlan:
    """Build the index tensors for a batch of texts (lists of target token ids).

    ``start_token``: the id embedded where the layout asks for the model's start token (``START``;
    the ``bos+`` arrangements), e.g. ``engine.metrics.start_token_id(tokenizer)``.
    """
    if start_token is None and arrangement.needs_start_token:
        raise ValueError(
            f"arrangement {arrangement.name!r} feeds the model's start token: pass "
            "start_token=start_token_id(tokenizer) to plan_batch"
        )
    parts = []
    for ids in token_ids:
        layout = arrangement.build(len(ids))
        tok = [
            (start_token if i == START else ids[i]) if s == TOKEN else 0
            for s, i in zip(layout.slot, layout.token_index)
        ]
        tgt = [(p, j, ids[j]) for p, j in enumerate(layout.target_index) if j >= 0]
        parts.append((layout.slot, tok, tgt, len(ids)))
    return plan_from_parts(parts, device)


def plan_from_parts(parts: list, device) -> BatchPlan:
    R = len(parts)
    L = max(len(p[0]) for p in parts)
    slot = torch.zeros(R, L, dtype=torch.long)
    token = torch.zeros(R, L, dtype=torch.long)
    flat, tt, trow, tpos = [], [], [], []
    for r, (s, tok, tgt, _) in enumerate(parts):
        slot[r, : len(s)] = torch.tensor(s)
        token[r, : len(tok)] = torch.tensor(tok)
        for p, j, t in tgt:
            flat.append(r * L + p)
            tt.append(t)
            trow.append(r)
            tpos.append(j)
    return BatchPlan(
        slot.to(device),
        token.to(device),
        torch.tensor(flat, device=device),
        torch.tensor(tt, device=device),
        torch.tensor(trow, device=device),
        torch.tensor(tpos, device=device),
        torch.tensor([p[3] for p in parts], device=device),
        parts,
        any(TOKEN in p[0] for p in parts),
    )


def input_embeddings(model, plan: BatchPlan, vectors: torch.Tensor) -> torch.Tensor:
    """(R, L, d) inputs in the model dtype. ``vectors``: (R, S, d) fp32, the S slot vectors per
    text.

    The vectors stay fp32 (the trainable master copy) and are cast only here, at the input.
    """
    emb = model.get_input_embeddings()
    R, L = plan.shape
    idx = plan.slot.clamp(min=0)[..., None].expand(R, L, vectors.shape[-1])
    x = torch.gather(vectors, 1, idx).to(emb.weight.dtype)  # (R, L, d)
    if plan.has_tokens:  # known on the host: no device sync in the hot loop
        x = torch.where((plan.slot == TOKEN)[..., None], emb(plan.token), x)
    return x


def _head_ce(
    head, softcap, h: torch.Tensor, target: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = head(h).float()  # (t, V)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    scaled = logits if temperature == 1.0 else logits / temperature  # argmax unchanged
    ce = F.cross_entropy(scaled, target, reduction="none")  # (t,)
    correct = (logits.argmax(-1) == target).float()  # (t,)
    return ce, correct


def hidden_states(model, inputs_embeds: torch.Tensor) -> torch.Tensor:
    """Final hidden states (R, L, d) of the decoder stack, without the LM head."""
    out = model.base_model(inputs_embeds=inputs_embeds, use_cache=False)
    return out.last_hidden_state


def target_ce(
    model,
    plan: BatchPlan,
    hidden: torch.Tensor,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-target CE (nats) of logits / ``temperature`` and correctness (argmax == target), each
    (T,), from hidden (R, L, d)."""
    head = model.get_output_embeddings()
    softcap = getattr(model.config, "final_logit_softcapping", None)
    R, L, d = hidden.shape
    h = hidden.reshape(R * L, d)[plan.tgt_flat]  # (T, d)
    vocab = head.weight.shape[0]
    per_chunk = max(1, chunk_elements // vocab)
    T = h.shape[0]
    if T <= per_chunk:
        return _head_ce(head, softcap, h, plan.tgt_token, temperature)
    ces, cors = [], []
    for start in range(0, T, per_chunk):
        sl = slice(start, start + per_chunk)
        if torch.is_grad_enabled() and h.requires_grad:
            ce, cor = checkpoint(
                _head_ce, head, softcap, h[sl], plan.tgt_token[sl], temperature,
                use_reentrant=False,
            )  # fmt: skip
        else:
            ce, cor = _head_ce(head, softcap, h[sl], plan.tgt_token[sl], temperature)
        ces.append(ce)
        cors.append(cor)
    return torch.cat(ces), torch.cat(cors)


@torch.no_grad()
def target_argmax(
    model, plan: BatchPlan, hidden: torch.Tensor, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> torch.Tensor:
    """Greedy prediction (T,) at every supervised position: the one-forward decoding."""
    head = model.get_output_embeddings()
    R, L, d = hidden.shape
    h = hidden.reshape(R * L, d)[plan.tgt_flat]
    per_chunk = max(1, chunk_elements // head.weight.shape[0])
    # softcapping is monotone, so it cannot change the argmax
    return torch.cat(
        [head(h[s : s + per_chunk]).argmax(-1) for s in range(0, h.shape[0], per_chunk)]
    )


def batch_loss(
    model,
    plan: BatchPlan,
    vectors: torch.Tensor,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward. Returns per-text CE sums (R,) in nats (of logits / ``temperature``: the
    training loss), correct counts (R,) and the per-target argmax correctness (T,) (for
    first-error positions)."""
    hidden = hidden_states(model, input_embeddings(model, plan, vectors))
    ce, correct = target_ce(model, plan, hidden, chunk_elements, temperature)
    R = plan.shape[0]
    ce_rows = torch.zeros(R, device=ce.device, dtype=ce.dtype).index_add(0, plan.tgt_row, ce)
    cor_rows = torch.zeros(R, device=ce.device, dtype=ce.dtype).index_add(0, plan.tgt_row, correct)
    return ce_rows, cor_rows, correct
