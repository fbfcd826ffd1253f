"""``pg19_gen``: the model's own continuations of PG-19 contexts, cached on disk.

For each selected PG-19 chunk (the same chunks ``pg19`` gives for this length and seed), the model
continues the end of the chunk's first half. Choices, all documented in the label and ids:

- The prompt is the last ``context_tokens`` (default 128, as in the paper's read-out study)
  tokens of the first half, preceded by BOS when the tokenizer adds one by default.
- Sampling is plain multinomial at temperature 1 (``top_k=0``, ``top_p=1``), exactly
  ``num_tokens`` new tokens (the length of the original second half as cut to ``num_tokens``);
  end-of-text and the other special tokens are suppressed so the continuation is plain text.
- The generated ids are the ground-truth ``token_ids`` (never a re-encoding of their decoding).
- The continuations of one context are one batch (same prompt, no padding), sampled after
  ``torch.manual_seed(stable_seed(seed, chunk_id))``: a context's continuations depend on
  (model, tokenizer, seed, num_tokens, continuations, context_tokens, device), not on ``n``.

Results are cached as a ``datasets.Dataset`` per configuration under
``cache_dir("data")/generated/<key>``, one row per (context, continuation); a later call only
generates the contexts that are missing.
"""

from __future__ import annotations

import numpy as np
import torch

from prototokens.identity import hash_json, model_fingerprint, stable_seed
from prototokens.paths import cache_dir

from .base import (
    Text,
    decode,
    encode,
    exact_text,
    load_dataset_dir,
    save_dataset,
)
from .pools import Pool, pg19_pool, select

CONTEXT_TOKENS = 128


def model_name(model) -> str:
    """A short display name: the last part of ``config._name_or_path``, else the model type."""
    raw = getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""
    name = raw.rstrip("/").split("/")[-1] or model.config.model_type
    return name.lower()


def _prompt_ids(tokenizer, context: str, context_tokens: int) -> tuple[list[int], list[int]]:
    """(ids given to the model, the context ids they end with)."""
    ctx = encode(tokenizer, context)[-context_tokens:]
    bos = tokenizer.bos_token_id
    if bos is not None and tokenizer("a")["input_ids"][:1] == [bos]:
        return [bos] + ctx, ctx  # the tokenizer adds BOS by default (Llama-style): keep it
    return ctx, ctx


@torch.no_grad()
def sample_continuations(
    model, tokenizer, prompt: list[int], num_tokens: int, continuations: int, seed: int
) -> np.ndarray:
    """``[continuations, num_tokens]`` ids sampled at temperature 1 after ``prompt``."""
    device = next(model.parameters()).device
    inp = torch.tensor([prompt] * continuations, dtype=torch.long, device=device)  # [C, P]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    out = model.generate(
        input_ids=inp,
        attention_mask=torch.ones_like(inp),
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        num_beams=1,
        max_new_tokens=num_tokens,
        min_new_tokens=num_tokens,
        suppress_tokens=sorted(set(tokenizer.all_special_ids)),
        pad_token_id=pad,
    )
    new = out[:, inp.shape[1] :].cpu().numpy()  # [C, num_tokens]
    if new.shape != (continuations, num_tokens):
        raise RuntimeError(f"generate returned {new.shape[1]} new tokens, expected {num_tokens}")
    return new


def generated_texts(
    model,
    tokenizer,
    n: int,
    num_tokens: int,
    seed: int,
    continuations: int = 1,
    context_tokens: int = CONTEXT_TOKENS,
    allow_hub: bool | None = None,
) -> list[Text]:
    """``n`` contexts × ``continuations`` continuations of exactly ``num_tokens`` tokens."""
    pool: Pool = pg19_pool(allow_hub)
    chosen = select(pool, "pg19_gen", n, num_tokens, tokenizer, seed)
    weights = next(model.parameters())
    key = hash_json(
        [
            "seed-v2",  # stable_seed of prototokens.identity (the data module had its own before)
            pool.name,
            model_fingerprint(model, tokenizer),
            str(weights.dtype),
            weights.device.type,
            seed,
            num_tokens,
            continuations,
            context_tokens,
        ],
        length=20,
    )
    path = cache_dir("data") / "generated" / key
    ds = load_dataset_dir(path)
    rows = {} if ds is None else {(r["chunk_id"], r["continuation"]): r for r in ds}
    missing = [i for i in chosen if (pool.chunk_ids[i], 0) not in rows]
    for idx in missing:
        prompt, ctx = _prompt_ids(tokenizer, pool.contexts[idx], context_tokens)
        ids = sample_continuations(
            model,
            tokenizer,
            prompt,
            num_tokens,
            continuations,
            stable_seed(seed, pool.chunk_ids[idx]),
        )
        for c in range(continuations):
            rows[(pool.chunk_ids[idx], c)] = {
                "chunk_id": pool.chunk_ids[idx],
                "continuation": c,
                "token_ids": ids[c].tolist(),
                "prompt": decode(tokenizer, ctx),
            }
    if missing:
        import datasets

        ordered = [rows[k] for k in sorted(rows)]
        save_dataset(datasets.Dataset.from_list(ordered), path)
    label = (
        f"pg19_gen ({model_name(model)})"
        if pool.name == "pg19-hub"
        else f"pg19_gen ({model_name(model)}; contexts: offline Gutenberg Shakespeare)"
    )
    out = []
    for idx in chosen:
        cid = pool.chunk_ids[idx]
        for c in range(continuations):
            row = rows[(cid, c)]
            text_id = f"pg19_gen-{cid.removeprefix('pg19-')}-c{c}"  # pg19_gen-00012-c3
            out.append(
                exact_text(
                    tokenizer,
                    row["token_ids"],
                    text_id=text_id,
                    source="pg19_gen",
                    label=label,
                    context=row["prompt"],
                    context_id=cid,
                )
            )
    return out
