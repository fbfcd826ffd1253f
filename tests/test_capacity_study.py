"""Notebook 03's study calls on a tiny model: the per-model study (grid in both settings plus the
autoregressive searches), further models through the family loop, the search comparison and the
metrics dict."""

from __future__ import annotations

import json

import pytest
from prototokens.engine.recipe import Recipe
from prototokens.engine.store import ResultStore
from prototokens.inputs.data.base import exact_text
from prototokens.studies import capacity_study, families
from prototokens.studies.capacity import capacity_per_text, run_capacity
from prototokens.studies.capacity_tables import table3
from support import tiny_model, tiny_tokenizer

WORDS = "the quick brown fox jumps over the lazy dog and then some more words follow here " * 4
RECIPE = Recipe(name="t", max_steps=2, lr=0.05)


def texts_for(lm):
    ids = lm.tokenizer(WORDS, add_special_tokens=False)["input_ids"]
    return {
        src: [
            exact_text(lm.tokenizer, ids[k : k + 8], text_id=f"{src}{k}", source=src, label=src)
            for k in range(j, j + 2)
        ]
        for j, src in ((0, "pg19"), (5, "random"))
    }


def search(tmp_path):
    store = ResultStore(tmp_path / "runs")
    return dict(recipe=RECIPE, seeds=[0], max_length=5, patience=1, store=store, batch_size=8)


def test_the_study_of_one_model_is_the_grid_and_the_ar_searches(tiny_llama, tmp_path):
    kw = search(tmp_path)
    texts = texts_for(tiny_llama)
    rows = capacity_study.run_capacity_study(
        tiny_llama, texts, ar_sources=["random", "fanfics"], ar_num_texts=1, **kw
    )
    grid = run_capacity(tiny_llama, texts, settings=(None, "m"), mode="grid", **kw)
    one = {"random": texts["random"][:1]}
    ar = run_capacity(tiny_llama, one, settings=(None,), arrangement="ar-2", **kw)
    assert set(rows.arrangement) == {grid.arrangement.iloc[0], "ar-1", "ar-2"}
    assert list(rows.cache_key[: len(grid)]) == list(grid.cache_key)  # same rows, same order
    assert set(ar.cache_key) <= set(rows.cache_key)
    assert set(rows[rows.arrangement == "ar-1"].text_id) == {"random5"}
    with pytest.raises(ValueError, match="ar_arrangements"):
        capacity_study.run_capacity_study(tiny_llama, texts, ar_arrangements=[], **kw)


def test_further_models_load_one_at_a_time_and_a_bad_one_is_skipped(tiny_llama, tmp_path, capsys):
    folder = tmp_path / "tiny-neox"
    tiny_model("gpt_neox", seed=1).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    kw = search(tmp_path)
    attempts, ar_attempts = capacity_study.run_capacity_models(
        tiny_llama, texts_for, [str(folder), "no-such-model-here"], device="cpu",
        ar_sources=["pg19"], ar_num_texts=1, **kw,
    )  # fmt: skip
    assert not attempts.arrangement.str.startswith("ar-").any()
    assert set(ar_attempts.arrangement) == {"ar-1", "ar-2"}
    assert attempts.model.nunique() == 2 and ar_attempts.model.nunique() == 2
    assert "no-such-model-here: skipped" in capsys.readouterr().out
    alone, _ = capacity_study.run_capacity_models(tiny_llama, texts_for, [], **kw)
    assert alone.model.nunique() == 1


def test_comparison_and_metrics(tiny_llama, tmp_path):
    kw = search(tmp_path)
    texts = texts_for(tiny_llama)
    attempts, ar_attempts = capacity_study.run_capacity_models(tiny_llama, lambda lm: texts, **kw)
    cmp, prog = capacity_study.run_search_comparison(tiny_llama, texts, attempts, ["pg19"], **kw)
    assert list(cmp.search) == ["grid", "progressive"]
    assert set(prog.source) == {"pg19"}
    with pytest.raises(ValueError, match="comparison sources"):
        capacity_study.run_search_comparison(tiny_llama, texts, attempts, ["fanfics"], **kw)
    per_text = capacity_per_text(attempts)
    tab3 = table3(per_text)
    assert set(capacity_study.TABLE3_COLUMNS) <= set(tab3.columns)
    metrics = capacity_study.capacity_metrics(
        tiny_llama, RECIPE, lengths=[4, 5], patience=1, num_seeds=1, max_length=5,
        texts_by_source=texts, tab3=tab3, per_text=per_text, comparison=cmp, progressive=prog,
        attempts=attempts, ar_attempts=ar_attempts,
    )  # fmt: skip
    settings = sorted(set(attempts.setting))
    assert len(settings) == 2
    assert set(metrics["capacity"]) == {f"{s}/{t}" for s in texts for t in settings}
    assert metrics["num_rows"] == len(attempts) + len(ar_attempts) + len(prog)
    assert metrics["claims"] == {}
    json.dumps(metrics, allow_nan=False)  # what write_metrics accepts: finite numbers only
    # no comparison asked for (a reference run spends its time on Table 3): nothing runs
    cmp0, prog0 = capacity_study.run_search_comparison(tiny_llama, texts, attempts, [], **kw)
    assert cmp0.empty and prog0.empty and "warm_started" in prog0
    assert list(cmp0.columns) == list(cmp.columns)  # a table a reader (and pandas) can parse
    none = capacity_study.capacity_metrics(
        tiny_llama, RECIPE, lengths=[4, 5], patience=1, num_seeds=1, max_length=5,
        texts_by_source=texts, tab3=tab3, per_text=per_text, comparison=cmp0, progressive=prog0,
        attempts=attempts, ar_attempts=ar_attempts,
    )  # fmt: skip
    assert none["search"] == {} and none["progressive_warm_started_fraction"] is None
    assert none["num_rows"] == len(attempts) + len(ar_attempts)
    json.dumps(none, allow_nan=False)


def test_texts_for_sources_skips_and_fails_when_nothing_is_left(tiny_llama, capsys):
    one = families.texts_for_sources(["random", "fanfics"], 2, 4)(tiny_llama)
    assert list(one) == ["random"]
    assert "fanfics skipped" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="no text source"):
        families.texts_for_sources(["fanfics"], 2, 4)(tiny_llama)


def test_describe_texts(tiny_llama):
    text = capacity_study.describe_texts(texts_for(tiny_llama))
    assert text.splitlines() == [
        "pg19: 2 texts of 8 tokens (pg19)",
        "random: 2 texts of 8 tokens (random)",
    ]


def test_each_model_is_studied_under_every_arrangement_it_is_given(monkeypatch):
    """A paper model's study runs plain Eq. 1 and ours (in that order), any other model ours
    alone (the default profile's work unchanged); no model is trained here."""
    from types import SimpleNamespace

    import pandas as pd
    from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT

    seen = {}

    def fake_study(lm, texts, *, ar_arrangements, arrangements, **kw):
        seen[lm.name] = list(arrangements)
        return pd.DataFrame({"model": lm.name, "arrangement": [*arrangements, "ar-1"]})

    monkeypatch.setattr(capacity_study, "run_capacity_study", fake_study)
    for name, want in (("EleutherAI/pythia-160m", ["e+m*(N-1)", DEFAULT_ARRANGEMENT]),
                       ("smollm2-135m", [DEFAULT_ARRANGEMENT])):  # fmt: skip
        attempts, ar = capacity_study.run_capacity_models(SimpleNamespace(name=name), lambda lm: {})
        assert seen[name] == want and attempts.arrangement.tolist() == want
        assert ar.arrangement.tolist() == ["ar-1"]
