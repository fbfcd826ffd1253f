"""Read-out probe (paper Section 10) and decoding of arbitrary points (the Explore tau slider).

The paper started ordinary autoregressive generation from the trained (e, m), with and without
a BOS token in front, and found only token salad or fluent text unrelated to the encoded text:
the information is reachable only through the one-pass decoding. :func:`run_readout` repeats it
next to the one-pass decoding of the same vectors.
"""

from __future__ import annotations

import pandas as pd
import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, get_arrangement
from prototokens.engine.decoding import greedy_generate, predict
from prototokens.engine.metrics import start_token_id

PROMPTS = ("e, m", "<start>, e, m")


@torch.no_grad()
def generate_from_vectors(
    lm, vectors: dict[str, torch.Tensor], n_tokens: int, with_start: bool
) -> list[int]:
    """Greedy autoregressive continuation of the prompt [start?] e m (the trained vectors as a
    soft prompt). ``with_start`` puts the model's document-start token
    (:func:`prototokens.engine.metrics.start_token_id`) in front."""
    emb = lm.model.get_input_embeddings()
    parts = [vectors[s].to(lm.device, torch.float32) for s in ("e", "m")]  # (d,) each
    x = torch.stack(parts)  # (2, d)
    if with_start:
        start = torch.tensor([start_token_id(lm.tokenizer)], device=lm.device)
        x = torch.cat([emb(start).float(), x])
    return greedy_generate(lm, x[None], n_tokens)[0].tolist()  # x[None]: (1, P, d)


def run_readout(
    lm, rows: pd.DataFrame, vectors: list[dict], arrangement: str = DEFAULT_ARRANGEMENT
):
    """One row per (solution, prompt): the encoded text, its one-pass decoding, and greedy
    autoregressive generation from [e, m] and [start, e, m], with the token overlap of each
    generation with the encoded text (positionwise matches / N)."""
    if "e" not in get_arrangement(arrangement).slots:
        raise ValueError(f"read-out needs an arrangement with e and m slots, not {arrangement!r}")
    tok = lm.tokenizer
    out = []
    for (_, row), vec in zip(rows.iterrows(), vectors):
        target = list(row.token_ids)
        n = len(target)
        one_pass, _ = predict(lm, arrangement, vec, n)
        for prompt, with_start in zip(PROMPTS, (False, True)):
            gen = generate_from_vectors(lm, vec, n, with_start)
            out.append(
                {
                    "text_id": row.text_id,
                    "prompt": prompt,
                    "encoded_text": tok.decode(target),
                    "one_pass": tok.decode(one_pass),
                    "generated": tok.decode(gen),
                    "generated_match_fraction": sum(a == b for a, b in zip(gen, target)) / n,
                    "one_pass_match_fraction": sum(a == b for a, b in zip(one_pass, target)) / n,
                }
            )
    return pd.DataFrame(out)


def decode_point(
    lm, vectors: torch.Tensor, n_tokens: int, arrangement: str = DEFAULT_ARRANGEMENT
) -> str:
    """One-pass decoding of a point (S, d) of the arrangement's vector space, as text."""
    arr = get_arrangement(arrangement)
    vec = {s: vectors[k] for k, s in enumerate(arr.slots)}
    pred, _ = predict(lm, arr, vec, n_tokens)
    return lm.tokenizer.decode(pred)
