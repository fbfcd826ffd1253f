"""The study calls that notebooks 04-07 make instead of computing in cells: the Eq. 1 variants,
the picks of notebook 06, Table 4 or its note, the headline speed-ups, and every ``*_metrics``
dict (finite numbers only: what ``Session.write_metrics`` accepts)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from prototokens.studies import arrangement_study, families, geometry_study, throughput_study
from prototokens.studies.claims import ClaimSpec

SPEC = ClaimSpec(id="0x.test", claim="c", where="w", paper="p", rule="r")


def finite_json(metrics: dict) -> dict:
    return json.loads(json.dumps(metrics, allow_nan=False))


def tab1_rows():
    """Two Eq. 1 readings at N = 2 and 4 (one text, two seeds) and e*N at N = 4."""
    names = ["e+m*(N-1)"] * 4 + ["bos+e+m*(N-1)"] * 4 + ["e*N"] * 2
    lengths = [2, 2, 4, 4] * 2 + [4, 4]
    acc = [1.0, 1.0, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0, 0.25, 0.5]
    return pd.DataFrame(
        dict(
            arrangement=names,
            num_tokens=lengths,
            text_id=["a"] * 10,
            seed=[0, 1] * 5,
            accuracy=acc,
            c_tokens=[int(a * n) for a, n in zip(acc, lengths)],
            first_wrong=[None if a == 1 else 0 for a in acc],
            exact_match=[a == 1 for a in acc],
            converged=[a == 1 for a in acc],
            steps=[10 if a == 1 else 50 for a in acc],
            steps_to_1=[10 if a == 1 else None for a in acc],
            recipe_params=[{"max_steps": 50}] * 10,
        )
    )


def test_eq1_variants_pick_the_best_reading_at_the_longer_lengths():
    rows = tab1_rows()
    tab1 = arrangement_study.summarize_tab1(rows)
    per_length, variants, best = arrangement_study.eq1_variants(tab1, rows)
    assert list(variants.index) == ["e+m*(N-1)", "bos+e+m*(N-1)"]  # EQ1_VARIANTS order
    assert best == "bos+e+m*(N-1)"
    assert variants.loc["e+m*(N-1)", "runs"] == 2  # N = 4 only
    assert variants.loc["e+m*(N-1)", "exact_fraction"] == 0
    assert list(per_length.columns.get_level_values(1).unique()) == [4]
    with pytest.raises(ValueError, match="Eq. 1 variants"):
        arrangement_study.eq1_variants(tab1, rows[rows.arrangement == "e*N"])


def test_arrangement_metrics(tiny_llama):
    rows = tab1_rows()
    tab1 = arrangement_study.summarize_tab1(rows)
    _, variants, best = arrangement_study.eq1_variants(tab1, rows)
    tab2 = pd.DataFrame(
        dict(share=["e", "m"], group_size=[2, 2], aggregation=["max", "avg"],
             mean_accuracy=[1, 0.5])  # fmt: skip
    )
    claims = [SPEC.judge(True, "ours", "n")]
    m = arrangement_study.arrangement_metrics(
        tiny_llama, source="pg19", lengths=[2, 4], num_texts=1, num_seeds=2, max_steps=50,
        tab1=tab1, variants=variants, best_variant=best, ce_reduced=0.5, tab2=tab2, claims=claims,
    )  # fmt: skip
    m = finite_json(m)
    assert m["tab1"]["e*N@4"]["mean_accuracy"] == pytest.approx(0.375)
    assert m["eq1_variants"]["bos+e+m*(N-1)"]["exact_fraction"] == 1
    assert m["tab2"] == {"e@2@max": {"mean_accuracy": 1.0}, "m@2@avg": {"mean_accuracy": 0.5}}
    assert m["claims"] == {"0x.test": "holds"} and m["best_eq1_variant"] == best


def test_eq1_schematics_draw_only_the_variants_asked_for(tiny_llama):
    figs = arrangement_study.eq1_schematics(tiny_llama, ["e*N", "e+m*N", "bos+e+m*N"])
    assert len(figs) == 2


def speed_rows(one_b1=(5000.0, np.nan)):
    """Two models; model b's one-pass time at B=1 is missing (NaN) when asked."""
    out = []
    for model, one in zip(("a", "b"), one_b1):
        for method, tok_s in (("one_forward", one), ("ar_generate", 10.0), ("ar_static", 50.0)):
            out.append(
                dict(model=model, title=model, source="x", device_name="cpu", dtype="fp32",
                     num_tokens=8, batch_size=1, method=method, tok_s=tok_s,
                     fraction_of_bound=0.5, random_init=model == "b", error=None,
                     tokens_match_generate=True)
            )  # fmt: skip
    return pd.DataFrame(out)


def test_throughput_metrics_hold_no_nan_when_a_ratio_is_missing():
    from prototokens.studies.throughput import speedups

    df = speed_rows()
    sp = speedups(df)
    assert throughput_study.headline_speedups(sp) == (500.0, 100.0)  # model a only
    tab4, note = throughput_study.tab4_or_note(pd.DataFrame())
    assert "run 03_metrics and 05 first" in note and tab4.rows.sum() == 0
    m = finite_json(throughput_study.throughput_metrics(df, sp, tab4, "cpu"))
    assert m["mean_speedup_vs_generate_b1"] == 500 and m["mean_speedup_vs_strong_b1"] == 100
    assert m["random_init_models"] == ["b"] and m["claims"] == {}  # verdicts: the ledger's only
    assert m["device"] == "cpu, fp32" and m["n_measurements"] == 5 and m["n_errors"] == 0
    nothing = speedups(speed_rows((np.nan, np.nan)))
    assert all(np.isnan(throughput_study.headline_speedups(nothing)))
    none = finite_json(throughput_study.throughput_metrics(speed_rows((np.nan, np.nan)),
                                                           nothing, tab4, "cpu"))  # fmt: skip
    assert none["mean_speedup_vs_generate_b1"] is None
    assert none["mean_speedup_vs_strong_b1"] is None
    assert throughput_study.measurement_errors(df).empty


def test_notebook_06_picks():
    rows = pd.DataFrame(
        dict(text_id=["a", "b", "b", "b", "c", "c"], seed=[0, 0, 1, 2, 0, 1], accuracy=[1.0] * 6)
    )
    vecs = np.arange(6)[:, None, None] * np.ones((6, 2, 3))
    assert list(geometry_study.first_seed_rows(rows).index) == [0, 1, 4]
    picked, v = geometry_study.connected_solutions(rows, vecs, first_seed=0, num_texts=1)
    assert list(picked.text_id) == ["b", "b", "b"] and list(v[:, 0, 0]) == [1, 2, 3]

    class Fit:
        loss_curve = [2.0, 0.5]

    assert geometry_study.describe_fit(Fit, picked) == (
        "3 pairs; control-point loss 2.00 -> 0.50 nats (sampled τ, mean per pair)"
    )
    Fit.loss_curve = []
    assert geometry_study.describe_fit(Fit, picked) == "3 pairs; no training steps"


def test_geometry_metrics(tiny_llama):
    rows = pd.DataFrame(dict(accuracy=[1.0, 0.5]))
    tests = pd.DataFrame(
        dict(ordering=["x<y"], p_value=[np.nan], median_closer=[0.1], median_farther=[0.2])
    )
    pairs = pd.DataFrame(dict(kind=["same_text", "other"], distance=[0.1, 0.3]))
    corr = pd.DataFrame(dict(text_distance=["tfidf", "semantic"], pairs=["all"] * 2,
                             spearman=[0.4, np.nan]))  # fmt: skip
    path = pd.DataFrame(dict(path=["line", "bezier"], ce_nats=[2.0, 1.0]))
    conn = pd.DataFrame(dict(line_min_accuracy=[0.5], bezier_min_accuracy=[1.0],
                             length_ratio=[1.1]))  # fmt: skip
    probe = pd.DataFrame(dict(generated_match_fraction=[0.0], one_pass_match_fraction=[1.0]))
    m = finite_json(geometry_study.geometry_metrics(
        tiny_llama, source="s", num_tokens=4, rows=rows, tests=tests, pairs=pairs,
        correlations=corr, semantic_message="no MiniLM", path=path, connections=conn,
        probe=probe,
    ))  # fmt: skip
    assert m["locality"]["x<y"] == {"p_value": None, "median_closer": 0.1, "median_farther": 0.2}
    assert m["spearman"] == {"tfidf/all": 0.4} and m["semantic_available"] is False
    assert m["connectivity"]["line_mean_ce_nats"] == 2 and m["solution_accuracy"] == 0.75


def test_family_metrics():
    runs = [
        families.ModelRun("a", "ok", facts={"params": 1e6}),
        families.ModelRun("b", "skipped", "no such model"),
    ]
    table = pd.DataFrame(
        dict(model=["a", "b"], status=["ok", "skipped"], source=["s", None],
             arrangement=["e+m*(N-1)", None], setting=["per-text", None],
             capacity_best=[8, None], device=["cpu", None])
    )  # fmt: skip
    m = finite_json(families.family_metrics(["a", "b"], runs, table, [SPEC.judge(False, "", "")]))
    assert m["loaded"] == ["a"] and m["skipped"] == {"b": "no such model"}
    assert m["capacity_best"] == {"a | e+m*(N-1) | s | per-text": 8} and m["device"] == ["cpu"]
    assert m["claims"] == {"0x.test": "does not hold"}


def test_setup_metrics_and_failures(tiny_llama):
    from prototokens.studies import setup

    sanity = setup.run_sanity_pass(tiny_llama, 4, seed=0)
    sources = pd.DataFrame(dict(section="source", check=["pg19", "fanfics"], ok=[True, False],
                                detail=""))  # fmt: skip
    good = setup.run_setup_table(sources, sanity.checks())
    setup.raise_on_failures(good)  # nothing required failed
    m = finite_json(setup.setup_metrics(tiny_llama, good, sources, sanity, load_s=0.5))
    assert m["sources_available"] == ["pg19"] and m["num_failed"] == 0
    bad = setup.run_setup_table(
        pd.DataFrame(dict(section="package", check=["torch"], ok=[False], detail=["missing"]))
    )
    with pytest.raises(RuntimeError, match="setup check FAILED: torch: missing"):
        setup.raise_on_failures(bad)


def test_optimization_metrics(tiny_llama):
    from prototokens.studies import optimization

    batch = pd.DataFrame(dict(accuracy=[1.0, 0.5], converged=[True, False], steps=[3, 9],
                              exact_match=[True, False], num_tokens=[4, 4]))  # fmt: skip
    study = pd.DataFrame(
        dict(method=["fast", "paper"], N=[4, 4], success=[1.0, 0.5], evals_median=[3.0, 9.0],
             cost_per_solved=[3.0, float("inf")])
    )  # fmt: skip
    m = optimization.optimization_metrics(
        tiny_llama, arrangement="e+m*N", num_tokens=4, source="s", single=batch.iloc[:1],
        batch=batch, study=study, claims=[SPEC.judge(True, "", "")],
    )  # fmt: skip
    assert m["batch"]["num_exact"] == 1 and m["cheapest"] == "fast"
    assert m["claims"] == {"0x.test": "holds"}
    assert m["single"]["accuracy"] == 1.0 and set(m["optimizers"]) == {"fast | N=4", "paper | N=4"}
    assert m["optimizers"]["paper | N=4"]["cost_per_solved"] is None  # inf: not finite
