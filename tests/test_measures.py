"""Measurements that mean what they say (issue 20, item 3): utilisation counts the vectors a text
owns, seconds per text divide by the batch, Table 4 reads one recipe and budget from scratch with
the paper's beside it, and the paper's nearest model stands beside ours in Table 3 and Fig. 1."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.studies import families
from prototokens.studies.capacity import capacity_per_text
from prototokens.studies.capacity_plots import plot_fig1
from prototokens.studies.capacity_tables import table3
from prototokens.studies.measures import seconds_per_text, trained_vectors_per_text, utilisation
from prototokens.studies.paper_tables import PAPER_TABLE4, nearest_paper_model, paper_name
from prototokens.studies.throughput import training_time_table

ONE = 576 * 16 / math.log2(49152)  # one vector's d·16/log2|V| at SmolLM2's width and vocabulary


def test_vectors_per_text_and_utilisation():
    assert trained_vectors_per_text(None) == 2 == trained_vectors_per_text("per-text")
    assert trained_vectors_per_text("m", 4) == 1.25 == trained_vectors_per_text("shared m", 4)
    assert trained_vectors_per_text("shared e", 1) == 2
    with pytest.raises(ValueError, match="group_size"):
        trained_vectors_per_text("m")
    with pytest.raises(ValueError, match="share must be"):
        trained_vectors_per_text("x", 2)
    assert utilisation(32, ONE, 2) == pytest.approx(32 / (2 * ONE))
    assert math.isnan(utilisation(32, 0.0, 2))


def test_seconds_per_text_divides_by_the_batch():
    rows = pd.DataFrame({"wall_time_s": [8.0, 8.0, 3.0], "batch_size": [4, 4, None]})
    assert seconds_per_text(rows).tolist() == [2.0, 2.0, 3.0]
    assert seconds_per_text(rows.drop(columns="batch_size")).tolist() == [8.0, 8.0, 3.0]
    with pytest.raises(ValueError, match="wall_time_s"):
        seconds_per_text(pd.DataFrame({"x": [1]}))


def test_nearest_paper_model_by_size():
    assert nearest_paper_model("smollm2-135m") == "EleutherAI/pythia-160m"
    assert nearest_paper_model("gemma3-270m") == "EleutherAI/pythia-410m"  # 1.51x vs 1.65x
    assert nearest_paper_model("pythia-1.4b") == "EleutherAI/pythia-1.4b"  # the paper's own
    assert nearest_paper_model("some/model", params=3.0e9) == "meta-llama/Llama-3.2-3B"
    assert nearest_paper_model("some/model") is None  # size unknown: nothing beside it
    assert paper_name("EleutherAI/pythia-160m") == "Pythia-160M (paper)"


def _per_text(model, spec):
    """spec: (source, setting, text_id, capacity)."""
    return pd.DataFrame(
        [
            dict(model=model, arrangement=DEFAULT_ARRANGEMENT, setting=st, search="grid",
                 source=src, label=src, text_id=t, capacity=c, c_tokens=c, h_lm_nats=3.0 * c,
                 h_lm_bits=3.0 * c / math.log(2), max_tried=64, censored=False, steps=1, rows=1,
                 theoretical_capacity=ONE)
            for src, st, t, c in spec
        ]
    )  # fmt: skip


def test_table3_utilisation_and_the_papers_nearest_model():
    spec = [("pg19", "per-text", "a", 16), ("pg19", "per-text", "b", 8),
            ("pg19", "shared m", "a", 8), ("pg19", "shared m", "b", 4)]  # fmt: skip
    per = pd.concat([_per_text("smollm2-135m", spec), _per_text("gemma3-270m", spec),
                     _per_text("my-own-model", spec)])  # fmt: skip
    tab = table3(per).set_index(["model", "setting"])
    own = tab.loc[("smollm2-135m", "per-text")]
    assert own.vectors_per_text == 2 and own.theoretical_capacity == pytest.approx(2 * ONE, 0.01)
    assert own.utilisation == pytest.approx(16 / (2 * ONE))
    shared = tab.loc[("smollm2-135m", "shared m")]  # 2 texts share m: 1.5 vectors per text
    assert shared.vectors_per_text == 1.5 and shared.utilisation == pytest.approx(8 / (1.5 * ONE))
    assert own.paper_model == "Pythia-160M (paper)" and own.paper_c_tokens == 128
    assert shared.paper_c_tokens == 45 and shared.paper_h_lm_mean == 156.0
    gemma = tab.loc[("gemma3-270m", "per-text")]
    assert gemma.paper_model == "Pythia-410M (paper)" and gemma.paper_c_tokens == 167
    unknown = tab.loc[("my-own-model", "per-text")]
    assert pd.isna(unknown.paper_model) and math.isnan(unknown.paper_c_tokens)


def test_family_table_utilisation_reads_the_best_c_tokens_as_table3_does():
    """At capacity 128 a text may get 127 tokens right (accuracy >= 0.99): utilisation is the
    best C_tokens (127) over the bound, as in Table 3, not the best capacity length (128)."""
    rows = [dict(model="smollm2-135m", arrangement=DEFAULT_ARRANGEMENT, setting="per-text",
                 search="grid", source="pg19", label="pg19", text_id=t, num_tokens=n,
                 success=True, accuracy=c / n, c_tokens=c, h_lm_nats=3.0 * n,
                 h_lm_bits=3.0 * n / math.log(2), seed=0, steps=1, wall_time_s=1.0,
                 d_model=576, vocab_size=49152, theoretical_capacity=ONE)
            for t, n, c in (("a", 90, 90), ("a", 128, 127), ("b", 90, 90))]  # fmt: skip
    facts = dict(model="smollm2-135m", family="Llama", params=1.35e8, d_model=576,
                 vocab_size=49152, device="cpu", dtype="float32",
                 arrangements=[DEFAULT_ARRANGEMENT])  # fmt: skip
    run = families.ModelRun("smollm2-135m", "ok", facts=facts, attempts=pd.DataFrame(rows))
    row = families.family_table([run]).iloc[0]
    assert row.capacity_best == 128 and row.c_tokens_best == 127
    assert row.utilisation == pytest.approx(127 / (2 * ONE))
    per = table3(capacity_per_text(pd.DataFrame(rows))).iloc[0]
    assert row.utilisation == pytest.approx(per.utilisation)  # one definition, both tables


def test_fig1_draws_the_papers_nearest_model_by_name():
    fig = plot_fig1(_per_text("smollm2-135m", [("pg19", "per-text", "a", 8)]))
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["Pythia-160M (paper)"]
    xs = [c.get_offsets()[0][0] for c in fig.axes[0].collections if len(c.get_offsets())]
    assert 128 in xs  # the paper's Pythia-160M capacity, as the red diamond


FAST40 = {"name": "fast", "max_steps": 40, "lr": 0.1}


def _stored(**cols):
    """Stored-row-like frame: converged per-text rows of the default arrangement, from scratch,
    recipe fast at 40 steps, unless ``cols`` (lists, one value per row) say otherwise."""
    n = len(next(iter(cols.values())))
    base = dict(model="smollm2-135m", device="cpu", num_tokens=8, wall_time_s=4.0, converged=True,
                arrangement=DEFAULT_ARRANGEMENT, batch_size=2, steps=10, share="none",
                warm_started=False, recipe_params=FAST40)  # fmt: skip
    return pd.DataFrame({**{k: [v] * n for k, v in base.items()}, **cols})


def test_table4_reads_one_recipe_from_scratch_with_the_papers_beside():
    fast60 = {**FAST40, "max_steps": 60}
    rows = _stored(
        wall_time_s=[2.0, 4.0, 100.0, 1.0, 50.0, 7.0, 9.0],
        converged=[True, True, False, True, True, True, True],
        warm_started=[False, False, False, True, False, None, False],  # None: not recorded
        share=["none", "none", "none", "none", "m", "none", "none"],
        recipe_params=[FAST40] * 6 + [fast60],
    )
    t = training_time_table(rows)
    ours, paper = t[t.origin == "ours"], t[t.origin == "paper"]
    # only the two converged, per-text, from-scratch rows of the majority recipe (fast, 40)
    assert ours.rows.tolist() == [2] and ours.median_s_to_converge.tolist() == [3.0]
    assert ours.median_s_per_text.tolist() == [1.5]  # batch of 2 texts
    assert ours.recipe.tolist() == ["fast"] and ours.max_steps.tolist() == [40]
    assert set(paper.model) == {"Pythia-160M (paper)"}
    assert paper.set_index("num_tokens").median_s_per_text.to_dict() == {32: 6, 64: 25, 128: 68}
    assert (paper.device == "A100/H100 (paper)").all()
    # asking for the other budget reads its row only
    t60 = training_time_table(rows, max_steps=60)
    assert t60[t60.origin == "ours"].median_s_to_converge.tolist() == [9.0]
    assert training_time_table(rows, recipe="paper").empty
    assert training_time_table(pd.DataFrame()).empty
    # rows that do not record whether they were warm-started are never read
    assert training_time_table(rows.drop(columns="warm_started")).empty


def test_paper_table4_is_the_papers():
    t = PAPER_TABLE4.set_index(["paper_model", "num_tokens"]).paper_seconds
    assert t[("meta-llama/Llama-3.1-8B", 512)] == 215 and len(t) == 3 * 3 + 4 + 5 + 5


def test_seconds_per_length_divides_by_the_batch():
    attempts = pd.DataFrame({"num_tokens": [4, 4, 8], "wall_time_s": [6.0, 6.0, 5.0],
                             "batch_size": [3, 3, 1], "steps": [5, 5, 9]})  # fmt: skip
    run = families.ModelRun("m", "ok", facts={"device": "cpu"}, attempts=attempts)
    s = families.seconds_per_length([run]).set_index("num_tokens")
    assert s.seconds_per_text.to_dict() == {4: 2.0, 8: 5.0}
    assert s.seconds_per_batch.to_dict() == {4: 6.0, 8: 5.0}
    # a warm-started increment (progressive search) is its own row, never pooled with scratch
    warm = attempts.assign(warm_started=[False, True, None])
    s = families.seconds_per_length([families.ModelRun("m", "ok", facts={}, attempts=warm)])
    assert s[["warm_started", "num_tokens", "rows"]].values.tolist() == [
        [False, 4, 1], [False, 8, 1], [True, 4, 1]]  # fmt: skip


def test_the_papers_models_get_plain_eq1_with_ours_beside(tmp_path):
    """A spec naming a paper model (here a tiny GPT-NeoX loaded in its place) is searched with
    the paper's plain Eq. 1 first and ours beside it; the table marks Eq. 1 as its primary."""
    from prototokens.engine.recipe import get_recipe
    from prototokens.engine.store import ResultStore
    from prototokens.inputs.data.base import exact_text
    from prototokens.inputs.models import load_model
    from support import tiny_model, tiny_tokenizer

    assert families.model_arrangements("EleutherAI/pythia-160m") == [
        "e+m*(N-1)", DEFAULT_ARRANGEMENT]  # fmt: skip
    assert families.model_arrangements("smollm2-135m") == [DEFAULT_ARRANGEMENT]
    path = tmp_path / "tiny-neox"
    tiny_model("gpt_neox", seed=1).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)

    def texts_for(lm):
        ids = lm.tokenizer("The quick brown fox jumps over", add_special_tokens=False)
        return {"custom": [exact_text(lm.tokenizer, ids["input_ids"][:5], text_id="fox",
                                      source="custom", label="custom")]}  # fmt: skip

    runs = families.run_model_families(
        ["EleutherAI/pythia-160m"], texts_for, loader=lambda spec: load_model(str(path)),
        settings=(None,), recipe=get_recipe("fast").with_(max_steps=2), max_length=5,
        store=ResultStore(tmp_path / "runs"), device="cpu",
    )  # fmt: skip
    assert runs[0].facts["arrangements"] == ["e+m*(N-1)", DEFAULT_ARRANGEMENT]
    assert set(runs[0].attempts.arrangement) == {"e+m*(N-1)", DEFAULT_ARRANGEMENT}
    tab = families.family_table(runs).set_index("arrangement")
    assert tab.primary.to_dict() == {"e+m*(N-1)": True, DEFAULT_ARRANGEMENT: False}
    with pytest.raises(ValueError, match="arrangements="):
        families.run_model_families(["x"], texts_for, arrangement="e+m*N")


def test_family_claims_read_each_model_on_its_own_arrangement():
    from prototokens.studies.family_claims import per_model

    row = dict(model="EleutherAI/pythia-160m", family="Pythia (GPT-NeoX)", params=1.6e8,
               status="ok", setting="per-text", texts=3, censored_texts=0)  # fmt: skip
    table = pd.DataFrame([
        {**row, "arrangement": "e+m*(N-1)", "primary": True, "capacity_best": 8},
        {**row, "arrangement": DEFAULT_ARRANGEMENT, "primary": False, "capacity_best": 16},
    ])  # fmt: skip
    assert per_model(table).capacity.tolist() == [8]


def test_stored_rows_say_whether_they_were_warm_started(tiny_llama, tmp_path):
    """End to end through the row store: a warm-started row records its source and Table 4
    leaves it out, whatever it cost."""
    from prototokens.engine.recipe import get_recipe
    from prototokens.engine.reconstruction import reconstruct
    from prototokens.engine.store import ResultStore

    store = ResultStore(tmp_path)
    recipe = get_recipe("fast").with_(max_steps=3)
    kw = dict(recipe=recipe, store=store, progress=False)
    fresh = reconstruct(tiny_llama, [[5, 6, 7]], **kw)
    warm = reconstruct(tiny_llama, [[5, 6, 7, 8]], init_from={(0, 0): fresh.cache_key[0]}, **kw)
    assert not fresh.warm_started[0] and fresh.init_from[0] is None
    assert warm.warm_started[0] and warm.init_from[0] == fresh.cache_key[0]
    rows = store.rows().assign(converged=True)  # 3 steps converge nothing: read them as if
    t = training_time_table(rows)
    assert t[t.origin == "ours"].num_tokens.tolist() == [3]
