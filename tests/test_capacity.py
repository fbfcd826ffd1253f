"""Capacity search mechanics on a tiny model with an accuracy oracle whose capacity is known.

The oracle wraps the real cached ``reconstruct`` (so caching, prefixes, warm starts and resume are
the real code paths) and then overwrites each row's accuracy with a known function of its length.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from prototokens.engine.recipe import Recipe
from prototokens.engine.reconstruction import reconstruct, warm_start_of
from prototokens.engine.store import ResultStore
from prototokens.engine.train import optimize
from prototokens.inputs.data.base import exact_text
from prototokens.studies.capacity import (
    capacity_per_text,
    grid_lengths,
    search_capacity,
    step_lengths,
)

REC = Recipe(name="t", max_steps=2, lr=0.05)
WORDS = "the quick brown fox jumps over the lazy dog and then some more words follow here " * 8


def make_texts(lm, n_texts=2, n_tokens=64):
    ids = lm.tokenizer(WORDS, add_special_tokens=False)["input_ids"]
    assert len(ids) >= n_tokens + n_texts
    return [
        exact_text(lm.tokenizer, ids[k : k + n_tokens], text_id=f"t{k}", source="pg19", label="p")
        for k in range(n_texts)
    ]


class Oracle:
    """Real reconstruct on the tiny model, then accuracy := 1 if length <= cap(text) else 0.5.

    Records every (text_id, length, seed) it was asked for and how many rows were computed."""

    def __init__(self, lm, store, caps, recipe=REC, fail_after: int | None = None):
        self.lm, self.store, self.caps, self.recipe = lm, store, caps, recipe
        self.calls: list[tuple[str, int, int]] = []
        self.fail_after = fail_after
        self.rounds = 0

    def __call__(self, texts, seeds, share, init_from):
        if self.fail_after is not None and self.rounds >= self.fail_after:
            raise KeyboardInterrupt("simulated interrupt")
        self.rounds += 1
        rows = reconstruct(
            self.lm,
            texts,
            recipe=self.recipe,
            seeds=seeds,
            share=share,
            store=self.store,
            progress=False,
            init_from=init_from,
        )
        cap = rows["text_id"].map(self.caps)
        rows["accuracy"] = [1.0 if n <= c else 0.5 for n, c in zip(rows["num_tokens"], cap)]
        self.calls += list(zip(rows["text_id"], rows["num_tokens"], rows["seed"]))
        return rows


def test_grid_lengths():
    assert grid_lengths(64) == [4, 5, 8, 11, 16, 22, 32, 45, 64]
    assert grid_lengths(20, 8) == [8, 11, 16]
    assert step_lengths(12, 3) == [4, 7, 10]
    with pytest.raises(ValueError, match="no grid length"):
        grid_lengths(3)


def test_grid_capacity_and_early_stop(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    texts = make_texts(tiny_llama)
    oracle = Oracle(tiny_llama, store, {"t0": 11, "t1": 5})
    rows = search_capacity(tiny_llama, texts, max_length=64, attempt=oracle, store=store)
    per = capacity_per_text(rows).set_index("text_id")
    assert per.loc["t0", "capacity"] == 11 and per.loc["t1", "capacity"] == 5
    tried = {t: sorted(n for tt, n, _ in oracle.calls if tt == t) for t in ("t0", "t1")}
    assert tried["t0"] == [4, 5, 8, 11, 16, 22]  # two consecutive failures, then stop
    assert tried["t1"] == [4, 5, 8, 11]
    assert not per["censored"].any()
    assert per.loc["t0", "steps"] == rows[rows.text_id == "t0"].steps.sum()
    # patience 1 stops after the first failure
    o1 = Oracle(tiny_llama, store, {"t0": 11, "t1": 5})
    search_capacity(tiny_llama, texts, max_length=64, patience=1, attempt=o1)
    assert max(n for t, n, _ in o1.calls if t == "t0") == 16


def test_bisection_pins_capacity_to_the_token(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    texts = make_texts(tiny_llama)
    oracle = Oracle(tiny_llama, store, {"t0": 13, "t1": 5})
    rows = search_capacity(tiny_llama, texts, max_length=64, bisect=True, attempt=oracle)
    per = capacity_per_text(rows).set_index("text_id")
    assert per.loc["t0", "capacity"] == 13 and per.loc["t1", "capacity"] == 5
    bis = rows[rows.phase == "bisect"]
    # t0: (11 ok, 16 failed) -> 13 ok -> 14 failed; t1: (5 ok, 8 failed) -> 6 failed
    assert list(bis[bis.text_id == "t0"].num_tokens) == [13, 14]
    assert list(bis[bis.text_id == "t1"].num_tokens) == [6]


def test_progressive_warm_start_uses_previous_vectors(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    texts = make_texts(tiny_llama, n_texts=1)
    still = Recipe(name="still", max_steps=0)  # no update: a row's vectors are its start
    oracle = Oracle(tiny_llama, store, {"t0": 64}, recipe=still)
    rows = search_capacity(tiny_llama, texts, mode="progressive", max_length=8, attempt=oracle)
    assert list(rows.num_tokens) == [4, 5, 8] and list(rows.warm_started) == [False, True, True]
    vec = [store.vectors(k) for k in rows.cache_key]
    for a, b in zip(vec, vec[1:]):
        assert torch.equal(a["e"], b["e"]) and torch.equal(a["m"], b["m"])
    grid = search_capacity(
        tiny_llama, texts, mode="grid", max_length=8, attempt=Oracle(tiny_llama, store, {"t0": 64})
    )
    g5 = store.vectors(grid[grid.num_tokens == 5].cache_key.iloc[0])
    assert not torch.equal(g5["m"], vec[1]["m"])  # grid: a fresh init at each length
    assert rows.cache_key.nunique() == 3  # the warm-start source is part of the key


def test_warm_start_continues_the_optimiser_state(tiny_llama, tmp_path):
    """3 steps + a warm-started 3 steps from the final state == 6 steps in one run."""
    ids = tiny_llama.tokenizer(WORDS, add_special_tokens=False)["input_ids"][:10]
    rec = Recipe(name="r", max_steps=3, lr=0.05)
    first = optimize(tiny_llama, [ids], recipe=rec, seeds=0)[0]
    final = {n: st["param"] for n, st in first.opt_state.items()}
    assert first.opt_state["m"]["step"] == 3 and first.opt_state["m"]["exp_avg"].abs().sum() > 0
    cont = optimize(
        tiny_llama,
        [ids],
        recipe=rec,
        seeds=0,
        init_vectors=[final],
        init_state=[first.opt_state],
    )[0]
    whole = optimize(tiny_llama, [ids], recipe=rec.with_(max_steps=6), seeds=0)[0]
    for n in ("e", "m"):
        torch.testing.assert_close(cont.opt_state[n]["param"], whole.opt_state[n]["param"])
        torch.testing.assert_close(cont.opt_state[n]["exp_avg"], whole.opt_state[n]["exp_avg"])
    assert cont.opt_state["m"]["step"] == 6
    # the store round trip gives the same state back
    store = ResultStore(tmp_path)
    text = make_texts(tiny_llama, n_texts=1, n_tokens=10)
    row = reconstruct(tiny_llama, text, recipe=rec, store=store, progress=False).iloc[0]
    vecs, state = warm_start_of(store, row.cache_key)
    stored = store.tensors(row.cache_key)
    if all(torch.equal(vecs[n], stored[f"opt.{n}.param"]) for n in ("e", "m")):
        assert set(state) == {"e", "m"} and float(state["e"]["step"]) == 3
    else:  # its best step was not its last: the moments are not the kept vectors' own
        assert state is None


def test_warm_start_pairs_moments_with_the_vectors_it_keeps(tmp_path):
    """Moments go with the point they were accumulated on: a row whose best vectors are not its
    final ones warm-starts from the best vectors with fresh moments (state None)."""
    store = ResultStore(tmp_path)
    best = {"e": torch.ones(4), "m": torch.zeros(4)}

    def put(key, final_e):
        tensors = {f"vec.{n}": v.clone() for n, v in best.items()}
        for n, v in best.items():
            param = final_e if n == "e" else v.clone()
            st = {"param": param, "exp_avg": v + 1, "exp_avg_sq": v + 2, "step": torch.ones(1)}
            tensors.update({f"opt.{n}.{k}": t for k, t in st.items()})
        store.put(key, {"text_id": key}, tensors)

    put("same", best["e"])
    put("moved", best["e"] * 3)  # the run stopped away from its best step
    vecs, state = warm_start_of(store, "same")
    assert torch.equal(vecs["e"], best["e"]) and torch.equal(state["e"]["exp_avg"], best["e"] + 1)
    vecs, state = warm_start_of(store, "moved")
    assert torch.equal(vecs["e"], best["e"]) and state is None
    assert warm_start_of(store, None) == (None, None)


def test_resume_after_interrupt(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    texts = make_texts(tiny_llama)
    caps = {"t0": 11, "t1": 5}
    broken = Oracle(tiny_llama, store, caps, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        search_capacity(tiny_llama, texts, max_length=64, attempt=broken)
    n_before = len(list((tmp_path / "rows").glob("*.json")))
    assert n_before == 6  # three rounds of two texts were stored
    again = Oracle(tiny_llama, store, caps)
    done = search_capacity(tiny_llama, texts, max_length=64, attempt=again)
    new = len(list((tmp_path / "rows").glob("*.json"))) - n_before
    assert new == len(done) - 6  # only the missing (text, length, seed) rows were computed
    per = capacity_per_text(done).set_index("text_id")
    assert per.loc["t0", "capacity"] == 11
    rerun = search_capacity(
        tiny_llama, texts, max_length=64, attempt=Oracle(tiny_llama, store, caps)
    )
    assert len(list((tmp_path / "rows").glob("*.json"))) == n_before + new  # nothing recomputed
    pd.testing.assert_frame_equal(rerun[["cache_key", "success"]], done[["cache_key", "success"]])


def test_restarts_and_shared_m(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    texts = make_texts(tiny_llama)

    class SeedOracle(Oracle):  # only seed 1 succeeds beyond 5 tokens
        def __call__(self, texts, seeds, share, init_from):
            rows = super().__call__(texts, seeds, share, init_from)
            rows.loc[(rows.seed == 0) & (rows.num_tokens > 5), "accuracy"] = 0.5
            return rows

    caps = {"t0": 11, "t1": 11}
    seq = SeedOracle(tiny_llama, store, caps)
    rows = search_capacity(
        tiny_llama, texts, seeds=[0, 1], restarts="sequential", max_length=64, attempt=seq
    )
    assert (capacity_per_text(rows).capacity == 11).all()
    assert ("t0", 4, 1) not in seq.calls  # seed 0 succeeded at 4: no restart there
    assert ("t0", 8, 1) in seq.calls
    bat = SeedOracle(tiny_llama, store, caps)
    search_capacity(tiny_llama, texts, seeds=[0, 1], max_length=64, attempt=bat)
    assert ("t0", 4, 1) in bat.calls  # side by side: every seed at every length
    shared = search_capacity(
        tiny_llama, texts, share="m", max_length=16, attempt=Oracle(tiny_llama, store, caps)
    )
    assert (shared.share == "m").all() and shared.groupby("num_tokens").group.nunique().max() == 1
    assert set(shared.setting) == {"shared m"}
    with pytest.raises(ValueError, match="bisect"):
        search_capacity(tiny_llama, texts, share="m", bisect=True, attempt=seq)
