"""Capacity search: the longest prefix of a text that one forward pass reconstructs (paper Table 3).

Two searches over the lengths of one text (its prefixes, :func:`prototokens.inputs.data.prefix`):

- ``mode="grid"`` (paper-faithful): every length of the paper's √2 grid (:data:`GRID`, cut at
  ``max_length``) is trained **from scratch**; a length succeeds when the one-pass token accuracy
  is >= 0.99; capacity = the longest successful length (with its C_tokens and H_LM). A text's
  sweep stops after ``patience`` (2) consecutive failed lengths.
- ``mode="progressive"`` (ours; Progressive Cramming applied to the one-step scheme): each length
  starts from the previous length's solution of the same text and seed: its e, its m (growing N
  only adds copies of m) **and** the AdamW moments and step count
  (``reconstruct(init_from=...)``). Lengths are the grid, or every ``+k`` tokens
  (:func:`step_lengths`).

Options shared by both: ``share="m"`` (one m for all texts of the call at each length: one
sharing group, trained jointly; texts keep being trained in the group until every text has
stopped); ``seeds`` = restarts: ``restarts="batch"`` runs all seeds of a text side by side in one
batch (on a GPU about the cost of one row), ``"sequential"`` runs seed k only for texts whose
seeds < k all failed at that length; a text succeeds at a length when any seed does. ``bisect``
(off in paper-faithful runs) pins capacity to the token between the last success and the next
failed length (per text; from scratch in grid mode, warm from the last success in progressive
mode); it assumes success is monotone in length, which optimisation noise can break.

Every attempt goes through the cached row store (:func:`reconstruct`), and the search is a
deterministic function of the rows, so a rerun recomputes nothing and an interrupted search
resumes at the first missing (text, length, seed).
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import pandas as pd

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, get_arrangement
from prototokens.engine.progress import progress_label
from prototokens.engine.recipe import Recipe, get_recipe
from prototokens.engine.reconstruction import reconstruct
from prototokens.engine.store import ResultStore
from prototokens.inputs.data import Text, prefix

GRID = (4, 5, 8, 11, 16, 22, 32, 45, 64, 90, 128, 181, 256, 362, 512, 724, 1024, 1448)
SUCCESS_ACCURACY = 0.99  # paper: a length is reconstructed when token accuracy >= 0.99
MODES = ("grid", "progressive")
RESTARTS = ("batch", "sequential")

# What one attempt at one length is: (texts, seeds, share, init_from) -> rows with at least
# text_id, num_tokens, seed, accuracy, diverged, steps, wall_time_s, cache_key.
Attempt = Callable[..., pd.DataFrame]


def grid_lengths(max_length: int, min_length: int = 4) -> list[int]:
    """The paper's √2 grid cut to ``[min_length, max_length]``."""
    out = [n for n in GRID if min_length <= n <= max_length]
    if not out:
        raise ValueError(f"no grid length in [{min_length}, {max_length}]; the grid is {GRID}")
    return out


def step_lengths(max_length: int, k: int, start: int = 4) -> list[int]:
    """``start, start+k, ...`` up to ``max_length`` (progressive growth by ``k`` tokens)."""
    if k < 1 or start < 1:
        raise ValueError(f"need k >= 1 and start >= 1, got k={k}, start={start}")
    return list(range(start, max_length + 1, k))


def reconstruct_attempt(
    lm,
    *,
    arrangement: str = DEFAULT_ARRANGEMENT,
    recipe: str | Recipe = "paper",
    store: ResultStore | None = None,
    batch_size: int = 16,
    progress: bool | str = "log",
    warm_moments: bool = True,
) -> Attempt:
    """The default attempt: :func:`reconstruct` with all fixed but texts, seeds, warm start.
    ``warm_moments=False``: a warm start keeps the vectors and resets the optimiser's moments."""

    def attempt(texts, seeds, share, init_from):
        return reconstruct(
            lm,
            texts,
            arrangement=arrangement,
            recipe=recipe,
            seeds=seeds,
            share=share,
            store=store,
            batch_size=batch_size,
            progress=progress,
            init_from=init_from,
            warm_moments=warm_moments,
        )

    return attempt


def is_success(rows: pd.DataFrame, threshold: float = SUCCESS_ACCURACY) -> pd.Series:
    """Accuracy >= threshold and not diverged (a diverged row is never a success)."""
    ok = rows["accuracy"].astype(float) >= threshold - 1e-9
    if "diverged" in rows:
        ok &= ~rows["diverged"].astype(bool)
    return ok


def search_capacity(
    lm,
    texts: Sequence[Text],
    *,
    mode: str = "grid",
    arrangement: str = DEFAULT_ARRANGEMENT,
    recipe: str | Recipe = "paper",
    share: str | None = None,
    seeds: Sequence[int] = (0,),
    restarts: str = "batch",
    lengths: Sequence[int] | None = None,
    max_length: int = 64,
    patience: int = 2,
    threshold: float = SUCCESS_ACCURACY,
    bisect: bool = False,
    store: ResultStore | None = None,
    batch_size: int = 16,
    attempt: Attempt | None = None,
    progress: bool | str = "log",
    warm_moments: bool = True,
) -> pd.DataFrame:
    """Run a capacity search over ``texts``; returns every attempt row (one per text, length,
    seed), with the columns of :func:`reconstruct` plus ``search``, ``phase`` ("grid", "step"
    or "bisect"), ``round`` (the attempt call that made it), ``success`` and ``setting``.

    ``lengths``: the lengths to sweep (default :func:`grid_lengths` up to ``max_length``, cut
    at each text's own length). ``attempt``: replaces :func:`reconstruct_attempt` (tests use
    it to inject an accuracy oracle). ``warm_moments``: progressive mode, whether a warm start
    keeps the optimiser's moments (default) or resets them.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if restarts not in RESTARTS:
        raise ValueError(f"restarts must be one of {RESTARTS}, got {restarts!r}")
    if share not in (None, "m", "e"):
        raise ValueError(f"share must be None, 'm' or 'e', got {share!r}")
    if bisect and share:
        raise ValueError("bisect is per text; it is not defined with a shared vector")
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to search")
    ids = [t.text_id for t in texts]
    if len(set(ids)) != len(ids):
        raise ValueError("text_ids must be unique within one capacity search")
    seeds = [int(s) for s in seeds]
    lengths = sorted(set(lengths or grid_lengths(max_length)))
    recipe = get_recipe(recipe)
    arrangement = get_arrangement(arrangement).name
    if attempt is None:
        attempt = reconstruct_attempt(
            lm,
            arrangement=arrangement,
            recipe=recipe,
            store=store,
            batch_size=batch_size,
            progress=progress,
            warm_moments=warm_moments,
        )
    s = _Search(texts, mode, share, seeds, restarts, threshold, attempt)
    phase = "grid" if lengths == [n for n in GRID if n in lengths] else "step"

    fails = [0] * len(texts)
    stopped = [False] * len(texts)
    for n in lengths:
        for i, t in enumerate(texts):
            if not stopped[i] and len(t.token_ids) < n:
                stopped[i] = True
        live = [i for i in range(len(texts)) if not stopped[i]]
        if not live:
            break
        members = (
            live if not share else [i for i in range(len(texts)) if len(texts[i].token_ids) >= n]
        )
        ok = s.at({i: n for i in members}, phase)
        for i in live:
            fails[i] = 0 if ok[i] else fails[i] + 1
            stopped[i] = fails[i] >= patience
    if bisect:
        s.bisect()
    df = pd.concat(s.frames, ignore_index=True) if s.frames else pd.DataFrame()
    if not df.empty:
        df["search"] = mode
        df["setting"] = "shared " + share if share else "per-text"
    return df


class _Search:
    """State of one search: the attempt rows so far and each (text, seed)'s last row key."""

    def __init__(self, texts, mode, share, seeds, restarts, threshold, attempt):
        self.texts, self.mode, self.share, self.seeds = texts, mode, share, seeds
        self.restarts, self.threshold, self.attempt = restarts, threshold, attempt
        self.frames: list[pd.DataFrame] = []
        self.last: dict[tuple[int, int], str] = {}  # (text, seed) -> cache_key of its last row
        self.success_key: dict[int, tuple[int, int, str]] = {}  # text -> (length, seed, key)
        self.failed_above: dict[int, int] = {}  # text -> shortest failed length above success
        self.round = 0

    def at(self, lengths: Mapping[int, int], phase: str) -> dict[int, bool]:
        """Attempt ``lengths[text] `` for each text; returns success per text."""
        todo = list(lengths)
        ok = {i: False for i in todo}
        groups = [self.seeds] if self.restarts == "batch" else [[s] for s in self.seeds]
        for seed_group in groups:
            if not todo:
                break
            rows = self._call(todo, lengths, seed_group, phase)
            for i in todo:
                mine = rows[rows["_text"] == i]
                good = mine[mine["success"]]
                if len(good) and not ok[i]:
                    ok[i] = True
                    n = lengths[i]
                    if n > self.success_key.get(i, (0,))[0]:
                        r = good.iloc[0]
                        self.success_key[i] = (n, int(r["seed"]), r["cache_key"])
            if self.share:  # a shared vector trains the whole group: retry all, or none
                todo = todo if not all(ok.values()) else []
            else:
                todo = [i for i in todo if not ok[i]]
        for i in lengths:
            n = lengths[i]
            best = self.success_key.get(i, (0,))[0]
            if not ok[i] and n > best:
                self.failed_above[i] = min(self.failed_above.get(i, n), n)
            if ok[i] and self.failed_above.get(i, n + 1) <= n:
                self.failed_above.pop(i)  # success beyond an earlier failure: forget it
        return ok

    def _call(self, todo, lengths, seeds, phase) -> pd.DataFrame:
        items = [prefix(self.texts[i], lengths[i]) for i in todo]
        init_from = {}
        if self.mode == "progressive":
            for k, i in enumerate(todo):
                for s in seeds:
                    src = self._warm_source(i, s, phase)
                    if src is not None:
                        init_from[(k, s)] = src
        t0 = time.perf_counter()
        rows = self.attempt(items, seeds, self.share, init_from or None)
        elapsed = time.perf_counter() - t0
        rows = rows.reset_index(drop=True).copy()
        pos = {(self.texts[i].text_id, lengths[i]): i for i in todo}
        rows["_text"] = [pos[(t, int(n))] for t, n in zip(rows["text_id"], rows["num_tokens"])]
        rows["success"] = is_success(rows, self.threshold)
        rows["phase"] = phase
        rows["round"] = self.round
        rows["round_seconds"] = elapsed  # this call's wall time here (about 0 when cached)
        rows["warm_started"] = [
            (k, s) in init_from for k, s in zip(rows["_text"].map(todo.index), rows["seed"])
        ]
        self.round += 1
        for i, s, key in zip(rows["_text"], rows["seed"], rows["cache_key"]):
            self.last[(int(i), int(s))] = key
        self.frames.append(rows.drop(columns="_text"))
        return rows

    def _warm_source(self, i: int, seed: int, phase: str) -> str | None:
        """Progressive: bisection grows from the last success; otherwise the same seed's last row
        (a seed without one starts fresh: a restart is a fresh chain)."""
        if phase == "bisect" and i in self.success_key:
            return self.success_key[i][2]
        return self.last.get((i, seed))

    def bisect(self) -> None:
        """Halve every text's (last success, first failure above it) gap, all texts per round."""
        while True:
            mids = {}
            for i, hi in self.failed_above.items():
                lo = self.success_key.get(i, (0,))[0]
                if lo >= 1 and hi - lo > 1:
                    mids[i] = (lo + hi) // 2
            if not mids:
                return
            ok = self.at(mids, "bisect")
            for i, n in mids.items():
                if not ok[i]:
                    self.failed_above[i] = n


def capacity_per_text(attempts: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, arrangement, setting, search, source, text): capacity = the longest
    successful length (0 when none), its C_tokens and H_LM, the shortest and longest lengths
    tried (capacity equal to the longest is censored: the true capacity may be higher; 0 says only
    that it lies below the shortest), total steps and row seconds."""
    keys = ["model", "arrangement", "setting", "search", "source", "label", "text_id"]
    out = []
    for k, g in attempts.groupby(keys, sort=False):
        good = g[g["success"]]
        rec = dict(zip(keys, k))
        if len(good):
            best = good.sort_values(["num_tokens", "accuracy"]).iloc[-1]
            rec.update(
                capacity=int(best["num_tokens"]),
                c_tokens=int(best["c_tokens"]),
                h_lm_nats=float(best["h_lm_nats"]),
                h_lm_bits=float(best["h_lm_bits"]),
                seed=int(best["seed"]),
            )
        else:
            rec.update(capacity=0, c_tokens=0, h_lm_nats=float("nan"), h_lm_bits=float("nan"))
            rec["seed"] = -1
        rec.update(
            min_tried=int(g["num_tokens"].min()),
            max_tried=int(g["num_tokens"].max()),
            lengths_tried=len(set(g["num_tokens"])),
            rows=len(g),
            steps=int(g["steps"].sum()),
            row_seconds=float(g["wall_time_s"].sum()),
            d_model=int(g["d_model"].iloc[0]),
            vocab_size=int(g["vocab_size"].iloc[0]),
            theoretical_capacity=float(g["theoretical_capacity"].iloc[0]),
        )
        rec["censored"] = rec["capacity"] > 0 and rec["capacity"] >= rec["max_tried"]
        out.append(rec)
    return pd.DataFrame(out)


def run_capacity(
    lm,
    texts_by_source: Mapping[str, Sequence[Text]],
    *,
    settings: Sequence[str | None] = (None, "m"),
    mode: str = "grid",
    arrangement: str = DEFAULT_ARRANGEMENT,
    **search_kwargs,
) -> pd.DataFrame:
    """Capacity search for one model: every source x sharing setting (``None``: m per text,
    ``"m"``: one m shared by all texts of a source at each length). Returns the attempt rows of
    all searches (:func:`search_capacity`); :func:`capacity_per_text` summarises them. ``bisect``
    applies to the per-text setting only. Loading
    and releasing the model between models is the caller's job (notebook 05)."""
    bisect = search_kwargs.pop("bisect", False)
    frames = []
    for share in settings:
        # without sharing, texts of all sources search side by side (bigger batches); a shared
        # m is one group per source
        batches = (
            [[t for ts in texts_by_source.values() for t in ts]]
            if share is None
            else [list(ts) for ts in texts_by_source.values()]
        )
        for texts in batches:
            if not texts:
                continue
            sources = ",".join(dict.fromkeys(str(t.source) for t in texts))
            setting = "m per text" if share is None else f"{share} shared"
            with progress_label(f"{lm.name} capacity {mode}, {setting}, {sources}"):
                frames.append(
                    search_capacity(
                        lm,
                        texts,
                        mode=mode,
                        arrangement=arrangement,
                        share=share,
                        bisect=bisect and share is None,
                        **search_kwargs,
                    )
                )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
