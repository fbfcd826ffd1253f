"""The warm-start study (studies.warm_starts): the variants run as named, the summaries add up."""

import pandas as pd
import pytest
from prototokens.engine.recipe import Recipe
from prototokens.engine.store import ResultStore
from prototokens.inputs.data.base import exact_text
from prototokens.studies import warm_starts as ws

WORDS = "the quick brown fox jumps over the lazy dog and then some more words follow here " * 4


def _texts(lm, n_texts=2, n_tokens=8):
    ids = lm.tokenizer(WORDS, add_special_tokens=False)["input_ids"]
    return [
        exact_text(lm.tokenizer, ids[k : k + n_tokens], text_id=f"t{k}", source="pg19", label="p")
        for k in range(n_texts)
    ]


def test_variants_run_as_named(tiny_llama, tmp_path):
    store = ResultStore(tmp_path)
    variants = ws.study_variants(["fresh", "grid_warm", "grid_warm_reset", "step4"])
    rec = Recipe(name="t", max_steps=2, lr=0.05)
    rows = ws.run_warm_start_study(tiny_llama, _texts(tiny_llama), variants, rec, max_length=8,
                                   patience=9, store=store, log=None)  # fmt: skip
    by = {v: g for v, g in rows.groupby("variant")}
    assert sorted(by["fresh"].num_tokens.unique()) == [4, 5, 8]  # the √2 grid up to 8
    assert not by["fresh"].warm_started.any()
    warm = by["grid_warm"].sort_values("num_tokens")
    assert list(warm.warm_started) == [False, False, True, True, True, True]
    assert warm[warm.warm_started].warm_moments.all()
    reset = by["grid_warm_reset"]
    assert reset[reset.warm_started].warm_moments.eq(False).all()
    # the same source rows, but a reset start is a different row (its own cache key)
    assert set(warm.cache_key) & set(reset.cache_key) == set(warm[~warm.warm_started].cache_key)
    assert sorted(by["step4"].num_tokens.unique()) == [4, 8]
    assert (rows.evals == rows.steps + 1).where(~rows.exact_match).dropna().all()


def _rows(spec):
    """spec: {variant: {text: [(N, success, evals), ...]}} -> study rows."""
    out = []
    for variant, texts in spec.items():
        for text, attempts in texts.items():
            for r, (n, ok, evals) in enumerate(attempts):
                out.append({"variant": variant, "text_id": text, "num_tokens": n,
                            "success": ok, "evals": evals, "round": r})  # fmt: skip
    return pd.DataFrame(out)


def test_summary_meets_the_aim_only_at_a_third_of_the_cost():
    fresh = {"a": [(4, True, 100), (5, True, 100), (8, False, 300)],
             "b": [(4, True, 90), (5, False, 300)]}  # fmt: skip
    cheap = {"a": [(4, True, 60), (5, True, 6), (8, False, 300)], "b": [(4, True, 30)]}
    dear = {"a": [(4, True, 60), (5, True, 90), (8, False, 300)], "b": [(4, True, 30)]}
    short = {"a": [(4, True, 10), (5, False, 300)], "b": [(4, True, 10)]}
    # further than the baseline: what it spends beyond the baseline's capacity does not count
    longer = {"a": [(4, True, 30), (5, True, 30), (8, True, 300)],
              "b": [(4, True, 20), (5, True, 300)]}  # fmt: skip
    rows = _rows({"fresh": fresh, "cheap": cheap, "dear": dear, "short": short, "longer": longer})
    s = ws.summarize_warm_starts(rows).set_index("variant")
    assert s.loc["fresh", "capacity_median"] == 4.5 and pd.isna(s.loc["fresh", "meets_aim"])
    assert s.loc["cheap", "meets_aim"]  # 66 <= 200/3 and 30 <= 90/3
    assert not s.loc["dear", "meets_aim"]  # 150 > 200/3
    assert not s.loc["short", "meets_aim"]  # capacity 4 < 5 on text a
    assert s.loc["longer", "meets_aim"]  # 60 <= 200/3 up to N = 5 and 20 <= 90/3 up to N = 4
    assert s.loc["longer", "evals_to_baseline_capacity_vs_baseline"] == pytest.approx(0.2611, 1e-3)
    none = _rows({"fresh": {"a": [(4, False, 300)]}, "warm": {"a": [(4, False, 300)]}})
    assert pd.isna(ws.summarize_warm_starts(none).set_index("variant").loc["warm", "meets_aim"])
    per = ws.per_text(rows).set_index(["variant", "text_id"]).loc[("fresh", "a")]
    assert per["evals"] == 500 and per["evals_to_capacity"] == 200
    table = ws.cost_per_length(rows).set_index(["variant", "N"])
    assert table.loc[("cheap", 5), "baseline_evals_mean"] == 200  # (100 + 300) / 2


def test_bad_input_is_named(tiny_llama):
    with pytest.raises(ValueError, match="unknown warm-start variants"):
        ws.study_variants(["fresh", "lukewarm"])
    with pytest.raises(ValueError, match="shorter than max_length=16"):
        ws.run_warm_start_study(tiny_llama, _texts(tiny_llama), ws.study_variants(["fresh"]),
                                Recipe(name="t", max_steps=1), max_length=16, log=None)  # fmt: skip
