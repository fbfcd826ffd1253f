"""Result store and the cached, resumable ``reconstruct``: cache hits, resume after an interrupt,
atomic rows, diverged rows never stored as successes, exports."""

from __future__ import annotations

import json

import pandas as pd
import prototokens.engine.train as engine
import pytest
import torch
from prototokens.engine import experiments
from prototokens.engine.experiments import load_result, reconstruct
from prototokens.engine.recipe import Recipe
from prototokens.engine.store import ResultStore, cache_key

TEXTS = [
    "The quick brown fox jumps over",
    "To be, or not to be, that is",
    "Call me Ishmael.",
    "It was the best of times",
]
RECIPE = Recipe(name="test", lr=0.1, max_steps=12)


def _count_optimize(monkeypatch):
    calls = []
    real = experiments.optimize

    def counting(lm, token_ids, **kw):
        calls.append(len(token_ids))
        return real(lm, token_ids, **kw)

    monkeypatch.setattr(experiments, "optimize", counting)
    return calls


def test_rows_have_metrics_and_tensors(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    df = reconstruct(
        tiny_llama, TEXTS[:2], recipe=RECIPE, seeds=[0, 1], store=store, progress=False
    )
    assert len(df) == 4 and set(df.seed) == {0, 1}
    for col in [
        "c_tokens",
        "accuracy",
        "exact_match",
        "first_wrong",
        "h_lm_nats",
        "h_lm_bits",
        "ce_nats",
        "info_gain_nats",
        "steps_to_0.95",
        "steps_to_1",
        "wall_time_s",
        "theoretical_capacity",
    ]:
        assert col in df.columns, col
    row = df.iloc[0]
    assert row.h_lm_bits == pytest.approx(row.h_lm_nats / 0.6931471805599453)
    assert row.info_gain_nats == pytest.approx(row.h_lm_nats - row.ce_nats)
    res = load_result(store, row)
    assert set(res["vectors"]) == {"e", "m"} and res["vectors"]["e"].shape == (tiny_llama.d_model,)
    assert len(res["loss_curve"]) == row.steps + 1
    # the stored vectors reproduce the stored accuracy in one forward pass
    pred, _ = engine.predict(tiny_llama, "e+m*N", res["vectors"], row.num_tokens)
    ids = tiny_llama.tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert sum(p == t for p, t in zip(pred, ids)) == row.c_tokens


def test_second_call_is_a_cache_hit(tiny_llama, tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    calls = _count_optimize(monkeypatch)
    a = reconstruct(
        tiny_llama, TEXTS, recipe=RECIPE, seeds=[0], store=store, progress=False, batch_size=2
    )
    assert sum(calls) == 4
    b = reconstruct(tiny_llama, TEXTS, recipe=RECIPE, seeds=[0], store=store, progress=False)
    assert sum(calls) == 4, "a repeated call must not optimise again"
    pd.testing.assert_frame_equal(a, b)
    # a changed input (recipe) is a different key
    reconstruct(
        tiny_llama, TEXTS[:1], recipe=RECIPE.with_(lr=0.05), seeds=[0], store=store, progress=False
    )
    assert sum(calls) == 5


def test_interrupted_run_keeps_finished_rows_and_resumes(tiny_llama, tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    real = experiments.optimize

    def interrupted(lm, token_ids, on_unit_done=None, **kw):
        def first_then_ctrl_c(results):
            on_unit_done(results)
            raise KeyboardInterrupt

        return real(lm, token_ids, on_unit_done=first_then_ctrl_c, **kw)

    monkeypatch.setattr(experiments, "optimize", interrupted)
    recipe = RECIPE.with_(max_steps=40)
    with pytest.raises(KeyboardInterrupt):
        # one-token texts converge within the budget, the long ones do not: rows stop at
        # different steps
        reconstruct(
            tiny_llama, ["a", "b", *TEXTS], recipe=recipe, seeds=[0], store=store, progress=False
        )
    kept = len(store.rows())
    assert 1 <= kept < 6, "some but not all rows were stored before the interrupt"
    assert not list(tmp_path.rglob("*.tmp")), "no half-written files"
    monkeypatch.setattr(experiments, "optimize", real)
    calls = _count_optimize(monkeypatch)
    df = reconstruct(
        tiny_llama, ["a", "b", *TEXTS], recipe=recipe, seeds=[0], store=store, progress=False
    )
    assert len(df) == 6 and sum(calls) == 6 - kept, "the rerun optimises only the missing rows"


def test_diverged_rows_are_flagged_not_successes(tiny_neox, tmp_path):
    store = ResultStore(tmp_path)
    df = reconstruct(
        tiny_neox,
        TEXTS[:1],
        recipe=RECIPE.with_(init_scale=1e30),
        seeds=[0],
        store=store,
        progress=False,
    )
    row = df.iloc[0]
    assert row.status == "diverged" and not row.converged and not row.exact_match


def test_shared_m_groups_and_cache(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    df = reconstruct(
        tiny_llama,
        TEXTS,
        recipe=RECIPE,
        seeds=[0],
        share="m",
        group_size=2,
        store=store,
        progress=False,
    )
    assert df.group.nunique() == 2 and (df.share == "m").all()
    m = [load_result(store, r)["vectors"]["m"] for _, r in df.iterrows()]
    assert torch.equal(m[0], m[1]) and torch.equal(m[2], m[3]) and not torch.equal(m[0], m[2])
    e = [load_result(store, r)["vectors"]["e"] for _, r in df.iterrows()]
    assert not torch.equal(e[0], e[1])


def test_store_writes_are_atomic_and_exportable(tmp_path):
    store = ResultStore(tmp_path)
    key = cache_key(a=1)
    assert key == cache_key(a=1) and key != cache_key(a=2)
    with pytest.raises(ValueError):
        store.put(key, {"x": float("nan")}, {"v": torch.zeros(2)})  # NaN is not JSON: no row stored
    assert store.get(key) is None and not list(tmp_path.rglob("*.tmp"))
    store.put(key, {"x": 1.5}, {"vec.e": torch.ones(3)})
    assert store.get(key) == {"x": 1.5} and torch.equal(store.vectors(key)["e"], torch.ones(3))
    assert json.loads(store.export(tmp_path / "rows.jsonl").read_text().splitlines()[0]) == {
        "x": 1.5
    }
    assert pd.read_parquet(store.export(tmp_path / "rows.parquet")).x.tolist() == [1.5]
    with pytest.raises(ValueError, match="parquet"):
        store.export(tmp_path / "rows.csv")


def test_empty_text_is_rejected(tiny_llama, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        reconstruct(tiny_llama, [[]], store=ResultStore(tmp_path), progress=False)
