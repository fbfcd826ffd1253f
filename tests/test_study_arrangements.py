"""Notebook 04's mechanics: the start-token input, group sharing, and the Table 1/2 aggregations."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import prototokens.engine.decoding as engine_decoding
import prototokens.engine.train as engine
import pytest
import torch
from prototokens.engine.arrangements import get_arrangement
from prototokens.engine.forward import input_embeddings, plan_batch
from prototokens.engine.metrics import start_token_id
from prototokens.engine.optim import MaskedAdamW
from prototokens.engine.recipe import get_recipe
from prototokens.engine.train import optimize
from prototokens.studies.arrangement_study import (
    doubling_lengths,
    only_position0_wrong,
    plot_arrangements_accuracy_vs_length,
    plot_sharing_vs_group_size,
    summarize_tab1,
    summarize_tab2,
    tab1_wide,
)
from prototokens.studies.optimization_plots import plot_schematic

matplotlib.use("Agg")
TEXTS = ["Call me Ishmael.", "The quick brown fox jumps", "To be, or not to be", "Call me"]


def ids_of(lm, text):
    return lm.tokenizer(text)["input_ids"]


class _GradRecorder(MaskedAdamW):
    """MaskedAdamW that keeps a copy of the gradients of every step."""

    instances: list = []

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.grads = []
        _GradRecorder.instances.append(self)

    def step(self, lr, masks):
        self.grads.append([p.grad.clone() for p in self.params])
        super().step(lr, masks)


@pytest.fixture
def grads(monkeypatch):
    _GradRecorder.instances = []
    monkeypatch.setattr(engine, "MaskedAdamW", _GradRecorder)
    return _GradRecorder.instances


def _first_step_shared_grads(lm, texts, groups, share):
    rec = get_recipe("paper").with_(max_steps=1)
    optimize(lm, texts, recipe=rec, seeds=0, share=share, groups=groups)
    opt = _GradRecorder.instances[-1]
    return opt.grads[0][("e", "m").index(share)]  # (groups, d): one row per group, sorted ids


@pytest.mark.parametrize("share", ["m", "e"])
def test_shared_vector_gets_gradient_only_from_its_group(tiny_llama, grads, share):
    a, b, c, d = (ids_of(tiny_llama, t) for t in TEXTS)
    other = ids_of(tiny_llama, "Whales and the sea")
    base = _first_step_shared_grads(tiny_llama, [a, b, c, d], [0, 1, 0, 1], share)
    # change group 1's texts: group 0's gradient must not move, group 1's must
    changed = _first_step_shared_grads(tiny_llama, [a, other, c, other[:3]], [0, 1, 0, 1], share)
    torch.testing.assert_close(changed[0], base[0], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(changed[1], base[1])
    # group 0 optimised alone gets the same gradient as inside the mixed batch
    alone = _first_step_shared_grads(tiny_llama, [a, c], [0, 0], share)
    torch.testing.assert_close(alone[0], base[0], atol=1e-6, rtol=1e-5)
    assert base[0].abs().sum() > 0


def test_start_token_embedding_at_position_0_and_frozen(tiny_llama):
    lm = tiny_llama
    arr = get_arrangement("bos+e+m*N")
    start = start_token_id(lm.tokenizer)
    emb = lm.model.get_input_embeddings()
    plan = plan_batch(arr, [[5, 6, 7]], start_token=start)
    vec = torch.randn(1, 2, emb.weight.shape[1])
    x = input_embeddings(lm.model, plan, vec)  # (1, 5, d)
    torch.testing.assert_close(x[0, 0], emb.weight[start])
    torch.testing.assert_close(x[0, 1], vec[0, 0].to(x.dtype))  # e
    torch.testing.assert_close(x[0, 2:], vec[0, 1].expand(3, -1).to(x.dtype))  # m x N

    before = emb.weight.detach().clone()
    seen = []
    hook = lm.model.base_model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs["inputs_embeds"][:, 0].detach().clone()),
        with_kwargs=True,
    )
    try:
        res = optimize(
            lm,
            [[5, 6, 7], [9, 10]],
            arrangement=arr,
            recipe=get_recipe("paper").with_(max_steps=5, lr=0.1),
        )
    finally:
        hook.remove()
    assert set(res[0].vectors) == {"e", "m"}  # the start token is not a trained slot
    assert not emb.weight.requires_grad and torch.equal(emb.weight, before)
    assert len(seen) >= 6  # every training forward and the deployment decodings
    for first in seen:  # position 0 is the start token's own embedding in every forward
        torch.testing.assert_close(first, before[start].expand_as(first))


def test_engine_feeds_start_token_id_of_the_tokenizer(tiny_llama, monkeypatch):
    monkeypatch.setattr(engine_decoding, "start_token_id", lambda tok: 7)
    emb = tiny_llama.model.get_input_embeddings().weight
    seen = []
    hook = tiny_llama.model.base_model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs["inputs_embeds"][0, 0].detach().clone()),
        with_kwargs=True,
    )
    try:
        optimize(
            tiny_llama,
            [[5, 6]],
            arrangement="bos+e+m*(N-1)",
            recipe=get_recipe("paper").with_(max_steps=1),
        )
    finally:
        hook.remove()
    assert seen and all(torch.equal(s, emb[7]) for s in seen)


def _rows(**cols):
    return pd.DataFrame(cols)


def test_summarize_tab2_on_hand_made_rows():
    rows = _rows(
        share=["e"] * 4 + ["m"] * 4,
        group_size=[2] * 4 + [1] * 4,
        text_id=["a", "a", "b", "b"] * 2,
        seed=[0, 1, 0, 1] * 2,
        accuracy=[1.0, 0.5, 0.5, 0.5, 0.2, 0.4, 0.6, 1.0],
    )
    s = summarize_tab2(rows).set_index(["share", "group_size", "aggregation"])
    # e, S_g=2: best over seeds per text = [1.0, 0.5]; all runs = [1, .5, .5, .5]
    assert s.loc[("e", 2, "max"), "mean_accuracy"] == pytest.approx(0.75)
    assert s.loc[("e", 2, "max"), "std_accuracy"] == pytest.approx(0.25)
    assert s.loc[("e", 2, "avg"), "mean_accuracy"] == pytest.approx(0.625)
    assert s.loc[("e", 2, "avg"), "std_accuracy"] == pytest.approx(np.std([1, 0.5, 0.5, 0.5]))
    assert s.loc[("m", 1, "max"), "mean_accuracy"] == pytest.approx((0.4 + 1.0) / 2)
    assert s.loc[("m", 1, "avg"), "mean_accuracy"] == pytest.approx(0.55)
    assert s.loc[("m", 1, "max"), "paper"] == 1.00 and pd.isna(s.loc[("e", 2, "max"), "paper"])
    assert (s["texts"] == 2).all() and (s["seeds"] == 2).all()
    assert plot_sharing_vs_group_size(summarize_tab2(rows)) is not None


def test_summarize_tab1_on_hand_made_rows():
    budget = {"max_steps": 100}
    rows = _rows(
        arrangement=["e+m*N"] * 3 + ["e*N"] * 2,
        num_tokens=[4] * 5,
        accuracy=[1.0, 0.75, 0.75, 0.25, 0.5],
        c_tokens=[4, 3, 3, 1, 2],
        first_wrong=[None, 0, 2, 0, 1],
        exact_match=[True, False, False, False, False],
        converged=[True, False, False, False, False],
        steps=[40, 100, 100, 100, 100],
        steps_to_1=[40, None, None, None, None],
        recipe_params=[budget] * 5,
    )
    assert only_position0_wrong(rows).tolist() == [False, True, False, False, False]
    s = summarize_tab1(rows).set_index("arrangement")
    assert list(s.index) == ["e+m*N", "e*N"]  # order of first appearance
    r = s.loc["e+m*N"]
    assert r.runs == 3 and r.mean_accuracy == pytest.approx(2.5 / 3)
    assert r.exact_fraction == pytest.approx(1 / 3) and r.pos0_only_fraction == pytest.approx(1 / 3)
    assert r.median_steps_to_1 == 40 and r.mean_steps_budgeted == pytest.approx(80)
    assert s.loc["e*N"].pos0_only_fraction == 0 and s.loc["e*N"].std_accuracy == pytest.approx(
        0.125
    )
    wide = tab1_wide(summarize_tab1(rows))
    assert wide.set_index("arrangement").loc["e*N", "N=4"] == "0.38 ± 0.12 (paper 0.17)"
    assert plot_arrangements_accuracy_vs_length(summarize_tab1(rows)) is not None


def test_doubling_lengths():
    assert doubling_lengths(32) == [1, 2, 4, 8, 16, 32]
    assert doubling_lengths(24) == [1, 2, 4, 8, 16, 24]
    with pytest.raises(ValueError):
        doubling_lengths(0)


def test_schematic_draws_the_start_token_and_target_labels():
    fig = plot_schematic("bos+e+m*(N-1)", 3, target_labels=["A", "B", "C"], start_label="<eot>")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("<eot>") == 1 and texts.count("e") == 1 and texts.count("m") == 2
    assert {"A", "B", "C"} <= set(texts) and texts.count("—") == 1  # only <s> unsupervised
