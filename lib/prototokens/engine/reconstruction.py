"""Cached, resumable reconstruction runs: the one call the notebooks make for any optimisation.

``reconstruct(lm, texts, ...)`` trains proto-tokens for every (text, seed) pair, in batches, and
returns one metrics row per pair as a DataFrame. Each row is written to a :class:`ResultStore`
the moment its optimisation finishes, so a repeated call is instant, and a call interrupted by
Ctrl-C or a dead kernel resumes with only the missing rows.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import pandas as pd
import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, get_arrangement
from prototokens.engine.metrics import (
    THRESHOLDS,
    h_lm,
    nats_to_bits,
    start_token,
    theoretical_capacity,
)
from prototokens.engine.progress import ProgressLog
from prototokens.engine.recipe import Recipe, get_recipe
from prototokens.engine.store import ResultStore, cache_key, engine_version
from prototokens.engine.train import Progress, RowResult, optimize
from prototokens.identity import text_fingerprint
from prototokens.records import Text


def as_texts(texts, tokenizer=None) -> list[Text]:
    """Accept :class:`~prototokens.records.Text` records, token-id sequences or strings (with
    ``tokenizer``); the latter two become ``Text`` records of source ``custom``."""
    out = []
    for t in texts:
        if isinstance(t, Text):
            out.append(t)
        elif isinstance(t, str):
            if tokenizer is None:
                raise ValueError("pass a tokenizer to reconstruct raw strings")
            ids = tuple(tokenizer(t, add_special_tokens=False)["input_ids"])
            out.append(Text(f"str-{text_fingerprint(ids)}", "custom", "custom", t, ids))
        else:
            ids = tuple(int(x) for x in t)
            out.append(Text(f"ids-{text_fingerprint(ids)}", "custom", "custom", "", ids))
    for t in out:
        if len(t.token_ids) == 0:
            raise ValueError(f"text {t.text_id!r} is empty: nothing to reconstruct")
    return out


def _groups(
    n_texts: int, seeds: Sequence[int], share: str | None, group_size: int | None, pairs=None
):
    """(text index, seed, group id) per row. Sharing groups hold ``group_size`` consecutive texts
    of one seed (all texts when ``group_size`` is None); without sharing every row is alone.
    ``pairs``: the rows instead, as (text index, seed); groups of ``group_size`` consecutive
    pairs (all of them when None), whatever their seeds."""
    if pairs is not None:
        pairs = [(int(t), int(s)) for t, s in pairs]
        bad = [p for p in pairs if not 0 <= p[0] < n_texts]
        if bad or len(set(pairs)) != len(pairs) or not pairs:
            raise ValueError(f"pairs must be distinct (text index < {n_texts}, seed), got {pairs}")
        size = group_size or len(pairs)
        return [(t, s, k // size if share else -1) for k, (t, s) in enumerate(pairs)]
    rows = []
    for si, seed in enumerate(seeds):
        for ti in range(n_texts):
            if share:
                size = group_size or n_texts
                gid = si * 10**6 + ti // size
            else:
                gid = -1
            rows.append((ti, seed, gid))
    return rows


def reconstruct(
    lm,
    texts,
    *,
    arrangement: str = DEFAULT_ARRANGEMENT,
    recipe: str | Recipe = "paper",
    seeds: Sequence[int] = (0,),
    share: str | None = None,
    group_size: int | None = None,
    store: ResultStore | str | None = None,
    batch_size: int = 16,
    force: bool = False,
    progress: bool | str | Callable[[Progress], None] = True,
    init_from: dict[tuple[int, int], str] | None = None,
    warm_moments: bool = True,
    pairs: Sequence[tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """Train (or load from the cache) proto-tokens for every (text, seed); one row per pair.

    ``share``: None, ``"m"`` or ``"e"``; rows of one seed are split into groups of
    ``group_size`` consecutive texts that share that vector (paper Table 2). Groups are never
    split across batches. ``batch_size``: rows per forward pass.
    ``init_from``: ``{(text index, seed): cache_key}`` of stored rows to warm-start from (their
    vectors and optimiser state, :func:`warm_start_of`); the source key is part of the new row's
    key. Used by the progressive capacity search (:mod:`prototokens.studies.capacity`).
    ``warm_moments=False``: warm-started rows keep the source's vectors but start the optimiser's
    moments and step count afresh (part of the key; the warm-start study compares both).
    ``pairs``: train these (text index, seed) rows instead of every text with every seed
    (``seeds`` is then unused); a shared vector is shared by ``group_size`` consecutive pairs
    (all when None) across seeds: the paper's locality set, one m for every solution.
    ``progress``: True, a tqdm bar and the lines of :mod:`prototokens.engine.progress` (a batch
    log's view); ``"log"``, the lines only; a callable, called with each
    :class:`~prototokens.engine.train.Progress`; False, nothing.
    """
    arrangement = get_arrangement(arrangement)
    recipe = get_recipe(recipe)
    items = as_texts(texts, lm.tokenizer)
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    seeds = [int(s) for s in ([seeds] if isinstance(seeds, int) else seeds)]
    plan = _groups(len(items), seeds, share, group_size, pairs)

    fingerprints = [text_fingerprint(it.token_ids) for it in items]
    members: dict[int, list[str]] = {}
    for t, s, g in plan:  # the texts (and seeds, across seeds) of each sharing group: in the key
        member = fingerprints[t] if pairs is None else f"{fingerprints[t]}:{s}"
        members.setdefault(g, []).append(member)

    identity = model_identity(lm)
    init_from = dict(init_from or {})

    def key_for(ti, seed, gid):
        warm = {"init_from": init_from[(ti, seed)]} if (ti, seed) in init_from else {}
        if warm and not warm_moments:
            warm["warm_moments"] = False
        return cache_key(
            **warm,
            **identity,
            arrangement=arrangement.name,
            tokens=fingerprints[ti],
            n=len(items[ti].token_ids),
            seed=seed,
            recipe=recipe.as_dict(),
            share=share,
            group=sorted(members[gid]) if share else [],
        )

    keys = [key_for(*p) for p in plan]
    # stored rows, by plan index; a damaged entry reads as missing (set aside, recomputed)
    found: dict[int, dict] = {}
    if not force:
        for i, k in enumerate(keys):
            if (row := store.get(k)) is not None:
                found[i] = row
    missing = [i for i in range(len(keys)) if i not in found]
    if missing:
        _run_missing(
            lm,
            items,
            plan,
            keys,
            missing,
            store,
            arrangement,
            recipe,
            share,
            batch_size,
            progress,
            init_from,
            warm_moments,
            found,
        )
    return pd.DataFrame.from_records([found[i] for i in range(len(keys))])


def model_identity(lm) -> dict:
    """What a row's cache key holds about the model: its name, its fingerprint (weights, config,
    tokenizer), its dtype and the device type. A row computed by one model, precision or kind of
    device is never served to another."""
    return {
        "model": lm.name,
        "model_fingerprint": lm.fingerprint,
        "dtype": str(lm.dtype).replace("torch.", ""),
        "device_type": lm.device.type,
    }


def _batches(missing: list[int], plan, batch_size: int) -> list[list[int]]:
    """Split row indices into batches of about ``batch_size``, keeping sharing groups whole."""
    units: dict = {}
    for i in missing:
        gid = plan[i][2]
        units.setdefault(gid if gid >= 0 else ("row", i), []).append(i)
    batches, cur = [], []
    for unit in units.values():
        if cur and len(cur) + len(unit) > batch_size:
            batches.append(cur)
            cur = []
        cur = cur + unit
    if cur:
        batches.append(cur)
    return batches


def _run_missing(
    lm,
    items,
    plan,
    keys,
    missing,
    store,
    arrangement,
    recipe,
    share,
    batch_size,
    progress,
    init_from,
    warm_moments,
    found,
):
    """Optimise the rows ``missing`` (plan indices) in batches; each finished row is stored at
    once and recorded in ``found`` as the store reads it back."""
    cap = theoretical_capacity(lm.d_model, lm.vocab_size)
    needed = sorted({plan[i][0] for i in missing})
    hl = dict(zip(needed, h_lm(lm, [items[t].token_ids for t in needed])))
    start = start_token(lm.tokenizer)  # (id, string) that conditioned t_1 in H_LM
    bar = log = None
    batches = _batches(missing, plan, batch_size)
    what = f"{arrangement.name} {recipe.name}"
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(missing), desc=what, unit="text")
    if progress is True or progress == "log":  # lines a batch log can follow (engine.progress)
        log = ProgressLog(what, len(missing), len(batches), recipe.max_steps)
    for batch in batches:
        if log is not None:
            n_tok = [len(items[plan[i][0]].token_ids) for i in batch]
            log.start_batch(len(batch), (min(n_tok), max(n_tok)))

        def on_done(results: list[RowResult], batch=batch):
            for res in results:
                i = batch[res.row]
                ti, seed, gid = plan[i]
                row = _row(
                    lm,
                    items[ti],
                    seed,
                    gid,
                    res,
                    arrangement,
                    recipe,
                    share,
                    len(batch),
                    hl[ti],
                    cap,
                    start,
                )
                row["cache_key"] = keys[i]
                # the warm-start source (None: from scratch), so that tables of training cost
                # can keep from-scratch rows apart from warm-started increments
                row["init_from"] = init_from.get(plan[i][:2])
                row["warm_started"] = row["init_from"] is not None
                row["warm_moments"] = bool(row["warm_started"] and warm_moments)
                tensors = {f"vec.{n}": v for n, v in res.vectors.items()}
                tensors["loss_curve"] = torch.as_tensor(res.loss_curve)
                tensors["accuracy_curve"] = torch.as_tensor(res.accuracy_curve)
                for slot, st in res.opt_state.items():
                    tensors.update({f"opt.{slot}.{k}": v.reshape(-1) for k, v in st.items()})
                found[i] = store.put(keys[i], row, tensors)
            if bar is not None:
                bar.update(len(results))

        warm = [warm_start_of(store, init_from.get(plan[i][:2])) for i in batch]
        optimize(
            lm,
            [items[plan[i][0]].token_ids for i in batch],
            init_vectors=[w[0] for w in warm] if init_from else None,
            init_state=[w[1] for w in warm] if init_from and warm_moments else None,
            arrangement=arrangement,
            recipe=recipe,
            seeds=[plan[i][1] for i in batch],
            share=share,
            groups=[plan[i][2] for i in batch],
            on_unit_done=on_done,
            progress=progress if callable(progress) else log,
        )
    if bar is not None:
        bar.close()
    if log is not None:
        log.close()


def _row(
    lm, item: Text, seed, gid, res: RowResult, arrangement, recipe, share, batch, h_nats, cap, start
) -> dict:
    m = res.metrics
    ce = m.get("ce_nats")
    gain = (h_nats - ce) if ce is not None and math.isfinite(h_nats) else None
    row = {
        "text_id": item.text_id,
        "source": item.source,
        "label": item.label,
        "context_id": item.context_id,
        "model": lm.name,
        "model_fingerprint": lm.fingerprint,
        "arrangement": arrangement.name,
        "num_tokens": len(item.token_ids),
        "seed": seed,
        "recipe": recipe.name,
        "share": share or "none",
        "group": gid,
        "status": res.status,
        "converged": res.converged,
        "diverged": res.diverged,
        "steps": res.steps,
        "accuracy": m["accuracy"],
        "c_tokens": m["c_tokens"],
        "exact_match": m["exact_match"],
        "first_wrong": m["first_wrong"],
        "train_accuracy": m["train_accuracy"],
        "ce_nats": ce,
        "ce_bits": nats_to_bits(ce),
        "h_lm_nats": h_nats,
        "h_lm_bits": nats_to_bits(h_nats),
        "start_token_id": start[0],
        "start_token": start[1],
        "info_gain_nats": gain,
        "info_gain_bits": nats_to_bits(gain),
        "wall_time_s": res.wall_time_s,
        "batch_size": batch,
        "d_model": lm.d_model,
        "vocab_size": lm.vocab_size,
        "theoretical_capacity": cap,
        "engine_version": engine_version(),
        "recipe_params": recipe.as_dict(),
        "device": str(lm.device),
        "dtype": str(lm.dtype).replace("torch.", ""),
        "token_ids": list(item.token_ids),
        "predicted_ids": list(res.predicted_ids),
    }
    for thr in THRESHOLDS:
        row[f"steps_to_{thr:g}"] = res.steps_to[thr]
    if res.diverged:  # never a success, whatever the last finite accuracy was
        row["exact_match"] = False
    return row


def warm_start_of(store: ResultStore, key: str | None):
    """(vectors, optimiser state) of a stored row for ``optimize(init_vectors=, init_state=)``;
    (None, None) for no key. The vectors are the row's solution (its best), the state the
    optimiser's moments and step count at its stop. Moments belong to the vectors they were
    accumulated on: when the best vectors are not the ones the run stopped on (accuracy fell after
    its best step), the state is None, so the warm start keeps the solution with fresh moments
    rather than pairing it with another point's moments. A source row that is missing raises
    KeyError, one whose tensors are damaged :class:`~prototokens.engine.store.DamagedEntry` (it is
    set aside, so rerunning the study that made it recomputes it)."""
    if key is None:
        return None, None
    t = store.tensors(key)
    vectors = {k[4:]: v for k, v in t.items() if k.startswith("vec.")}
    state: dict[str, dict] = {}
    for k, v in t.items():
        if k.startswith("opt."):
            _, slot, name = k.split(".")
            state.setdefault(slot, {})[name] = v if name != "step" else v.reshape(())
    if set(state) != set(vectors):
        raise KeyError(f"row {key} has no optimiser state to warm-start from (stored before it)")
    if any(not torch.equal(vectors[s], state[s]["param"].to(vectors[s])) for s in vectors):
        return vectors, None
    return vectors, state


def _result(tensors: dict[str, torch.Tensor]) -> dict:
    return {
        "vectors": {k[4:]: v for k, v in tensors.items() if k.startswith("vec.")},
        "loss_curve": tensors["loss_curve"].numpy(),
        "accuracy_curve": tensors["accuracy_curve"].numpy(),
    }


def load_result(store: ResultStore, row: dict | pd.Series) -> dict:
    """Vectors (``{"e": (d,), "m": (d,)}``) and curves (``(steps+1,)`` arrays) of a result row
    (as returned by :func:`reconstruct`); its safetensors file is read once. A damaged file is
    set aside and raises :class:`~prototokens.engine.store.DamagedEntry` naming it: call
    :func:`reconstruct` again to recompute the row."""
    return _result(store.tensors(row["cache_key"]))


def load_results(store: ResultStore, rows: pd.DataFrame | Sequence) -> dict[str, dict]:
    """:func:`load_result` for a whole DataFrame (or list) of rows, keyed by ``cache_key``.

    Each row's safetensors file is read exactly once, however many times the key occurs.
    """
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    out: dict[str, dict] = {}
    for row in records:
        key = row["cache_key"]
        if key not in out:
            out[key] = _result(store.tensors(key))
    return out
