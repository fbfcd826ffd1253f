"""Speed of the training step: ``engine.optimize`` (eager or ``compiled=``) against a bare loop.

Bench-only (no notebook uses it), so it lives beside the benches that import it:
``engine_throughput.py``, ``gpu_throughput.py`` and ``cpu_step_time.py`` (one copy of the code;
``python bench/<script>.py`` puts this folder on the path). Timing and random ids come from the
library's :mod:`prototokens.studies.decode_timing`.

- :func:`time_optimize`: texts x steps per second of ``optimize`` on B texts of N random token
  ids, timed between the engine's host syncs after the warm-up (set-up, compilation or graph
  capture and the final per-row evaluation are excluded); the lr is tiny so no row can stop
  early, and the work per step is the same as at any lr;
- :func:`time_bare_loop`: a plain forward + CE + backward + ``torch.optim.AdamW`` loop at the
  same shape, the reference for the engine's overhead;
- :func:`compare_vectors`: eager against compiled ``optimize`` on the same texts and seeds.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from prototokens.studies.decode_timing import random_ids, sync

# The bare loop's layout (N+1 inputs, the last N supervised). It needs no start token, so a
# random-init model without a tokenizer can be timed too.
BARE_ARRANGEMENT = "e+m*N"


def time_optimize(
    lm, B: int, N: int, warmup: int = 3, steps: int = 20, sync_every=None, compiled=False,
    arrangement: str = BARE_ARRANGEMENT,
) -> dict:  # fmt: skip
    """ms per step and texts*steps/s of ``optimize`` between the host syncs after ``warmup`` and
    ``warmup + steps`` updates (both rounded up to multiples of ``sync_every``)."""
    from prototokens.engine.recipe import get_recipe
    from prototokens.engine.train import optimize

    every = sync_every or (8 if lm.device.type == "cuda" else 1)
    w = max(every, math.ceil(warmup / every) * every)
    s = max(every, math.ceil(steps / every) * every)
    recipe = get_recipe("paper").with_(max_steps=w + s, lr=1e-12)
    stamps: dict[int, float] = {}

    def progress(p):
        if p.n_stopped == 0 and p.step not in stamps:
            stamps[p.step] = time.perf_counter()  # after the engine's host sync of this step

    texts = random_ids(B, N, lm.vocab_size)
    t0 = time.perf_counter()
    res = optimize(
        lm, texts, recipe=recipe, seeds=list(range(B)), sync_every=every, progress=progress,
        compiled=compiled, arrangement=arrangement,
    )  # fmt: skip
    total = time.perf_counter() - t0
    if w not in stamps or w + s not in stamps:
        raise RuntimeError(f"engine stopped early: progress at steps {sorted(stamps)}")
    dt = stamps[w + s] - stamps[w]
    return {
        "step_ms": 1e3 * dt / s,
        "texts_steps_per_s": B * s / dt,
        "timed_steps": s,
        "warmup_steps": w,
        "sync_every": every,
        "compiled": str(compiled),
        "all_rows_full_steps": all(r.steps == w + s and r.status == "max_steps" for r in res),
        "first_sync_s": stamps[w] - t0 if w in stamps else None,  # includes compile / capture
        "call_s": total,
    }


def time_bare_loop(lm, B: int, N: int, warmup: int = 3, steps: int = 20) -> dict:
    """The bare loop at the engine's shape (``e+m*N``: N+1 inputs, the last N supervised)."""
    model, device, dtype = lm.model, lm.device, lm.dtype
    targets = torch.tensor(random_ids(B, N, lm.vocab_size), device=device)  # (B, N)
    x = torch.randn(B, N + 1, lm.d_model, device=device).requires_grad_(True)  # (B, N+1, d)
    opt = torch.optim.AdamW([x], lr=1e-2, betas=(0.9, 0.9), weight_decay=0.01, eps=1e-8)

    def step():
        logits = model(inputs_embeds=x.to(dtype), use_cache=False).logits[:, 1:].float()
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        )
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    dt = time.perf_counter() - t0
    return {
        "step_ms": 1e3 * dt / steps,
        "texts_steps_per_s": B * steps / dt,
        "timed_steps": steps,
        "warmup_steps": warmup,
        "loss_finite": bool(torch.isfinite(loss)),
    }


def compare_vectors(lm, B: int, N: int, steps: int, compiled, lr: float = 1e-2) -> dict:
    """Eager against ``compiled`` ``optimize`` on the same B texts and seeds for ``steps``
    updates: the largest absolute and relative vector difference, equal step counts."""
    from prototokens.engine.recipe import get_recipe
    from prototokens.engine.train import optimize

    texts = random_ids(B, N, lm.vocab_size, seed=1)
    recipe = get_recipe("paper").with_(max_steps=steps, lr=lr)
    kw = dict(recipe=recipe, seeds=list(range(B)), arrangement=BARE_ARRANGEMENT)
    a = optimize(lm, texts, **kw)
    b = optimize(lm, texts, compiled=compiled, **kw)
    abs_diff = max((ra.vectors[k] - rb.vectors[k]).abs().max().item() for ra, rb in zip(a, b)
                   for k in ra.vectors)  # fmt: skip
    scale = max(ra.vectors[k].abs().max().item() for ra in a for k in ra.vectors)
    return {
        "rows": B,
        "steps": steps,
        "max_abs_diff": abs_diff,
        "max_rel_diff": abs_diff / max(scale, 1e-12),
        "same_steps": all(ra.steps == rb.steps for ra, rb in zip(a, b)),
        "same_predictions": sum(ra.predicted_ids == rb.predicted_ids for ra, rb in zip(a, b)) / B,
        "eager_final_loss": float(sum(ra.loss_curve[-1] for ra in a)),
        "compiled_final_loss": float(sum(rb.loss_curve[-1] for rb in b)),
    }
