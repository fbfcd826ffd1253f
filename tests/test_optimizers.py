"""The optimiser study's engine pieces (Lion, loss temperature, the small uniform init) and its
measures (evaluations to exact, cost per solved text, the adoption rule)."""

from __future__ import annotations

import ast
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from prototokens.engine.arrangements import get_arrangement
from prototokens.engine.forward import batch_loss, plan_batch
from prototokens.engine.optim import MaskedLion
from prototokens.engine.recipe import ADOPTED, PAPER, RECIPES, Recipe
from prototokens.engine.train import optimize
from prototokens.harness.params import declared_parameters, list_notebooks, resolve_parameters
from prototokens.studies import optimizers as study

IDS = [[5, 17, 33, 9, 41, 8], [12, 7, 3, 30, 2, 19]]


def test_lion_moves_every_active_coordinate_by_lr_and_freezes_the_rest():
    p = torch.randn(3, 8, requires_grad=True)
    before = p.detach().clone()
    opt = MaskedLion([p], betas=(0.9, 0.99), weight_decay=0.0)
    p.grad = torch.randn(3, 8)
    opt.step(0.05, [torch.tensor([True, False, True])])
    moved = (p.detach() - before).abs()
    torch.testing.assert_close(moved[[0, 2]], torch.full((2, 8), 0.05))
    assert torch.equal(p.detach()[1], before[1])  # frozen row: bit-identical
    assert opt.steps[0].tolist() == [1.0, 0.0, 1.0]


def test_temperature_scales_the_training_loss_not_the_argmax(tiny_llama):
    arr = get_arrangement("e+m*N")
    plan = plan_batch(arr, IDS)
    vec = torch.randn(2, 2, tiny_llama.d_model, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ce1, cor1, _ = batch_loss(tiny_llama.model, plan, vec)
        ce4, cor4, _ = batch_loss(tiny_llama.model, plan, vec, temperature=0.25)
        for r, ids in enumerate(IDS):
            x = torch.cat([vec[r, :1], vec[r, 1:2].expand(len(ids), -1)])[None]
            logits = tiny_llama.model(inputs_embeds=x).logits[0, 1:].float()
            ref = F.cross_entropy(logits / 0.25, torch.tensor(ids), reduction="sum")
            assert ce4[r].item() == pytest.approx(ref.item(), rel=1e-5)
    assert not torch.allclose(ce1, ce4)
    assert torch.equal(cor1, cor4)


def test_uniform_init_is_small_and_positive(tiny_llama):
    recipe = PAPER.with_(name="u", init="uniform", max_steps=0)
    res = optimize(tiny_llama, IDS, recipe=recipe, arrangement="e+m*N", seeds=[0, 1])
    for r in res:
        for v in r.vectors.values():
            assert float(v.min()) >= 0.0 and float(v.max()) < 0.02


@pytest.mark.parametrize(
    "bad", [{"optimizer": "sgd"}, {"temperature": 0.0}, {"temperature": -1.0}, {"init": "zeros"}]
)
def test_recipe_rejects_bad_study_fields(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Recipe(**bad)


def test_study_methods_cover_the_issue_and_cap_the_budget():
    methods = study.study_methods(300)
    assert {"paper", "adamw_lr0.03", "adamw_lr0.1", "adamw_lr0.5", "adamw_lr1"} <= set(methods)
    assert {"adamw_lr0.1_wc", "adamw_lr0.5_wc", "adamw_lr1_wc"} <= set(methods)
    assert methods["adamw_lr0.1_uniform"].init == "uniform"
    assert methods["adamw_lr0.1_T0.25"].temperature == 0.25
    assert methods["lion_lr0.03"].optimizer == "lion"
    assert methods["fast"].schedule == "cosine" and methods["fast"].lr == 3e-2
    assert all(r.max_steps == 299 for r in methods.values())
    assert methods["paper"].lr == 1e-2 and methods["paper"].schedule == "constant"
    with pytest.raises(ValueError, match="unknown study methods"):
        study.study_methods(300, ["paper", "adam"])


def _rows(method, n, steps_to_1, seeds=(0, 1), budget=100):
    """Synthetic study rows: steps_to_1 per row (None = not solved) over texts x seeds."""
    out = []
    for i, s in enumerate(steps_to_1):
        out.append({
            "method": method, "num_tokens": n, "seed": seeds[i % len(seeds)],
            "text_id": f"t{i // len(seeds)}", "budget": budget,
            "steps_to_1": s, "exact_match": s is not None,
            "steps": s if s is not None else budget - 1, "wall_time_s": 1.0,
        })  # fmt: skip
    return pd.DataFrame(out)


def test_evals_and_cost_per_solved_text():
    rows = _rows("paper", 32, [9, None, 19, None])  # 2 of 4 solved at 10 and 20 evaluations
    s = study.summarize_optimizer_study(rows).iloc[0]
    assert s["solved"] == 2 and s["success"] == 0.5
    assert s["evals_median"] == 15 and s["evals_mean"] == 15
    assert s["cost_per_solved"] == (10 + 20 + 100 + 100) / 2  # failures spend their budget
    assert list(study.evals_to_exact(rows).isna()) == [False, True, False, True]
    assert math.isinf(study.summarize_optimizer_study(_rows("x", 16, [None, None]))
                      .iloc[0]["cost_per_solved"])  # fmt: skip


def test_adoption_needs_both_margins_beyond_the_seed_spread():
    paper = _rows("paper", 32, [None, None, 49, 59, None, None])  # 1/3 per seed, slow
    fast = _rows("fast", 32, [9, 10, 11, 12, 13, 14])  # 6/6, cheap, seeds agree
    noisy = _rows("noisy", 32, [9, None, 10, None, 11, None])  # seed 1 never solves
    summary = study.summarize_optimizer_study(pd.concat([paper, fast, noisy]))
    decision = study.adoption(summary)
    assert decision["adopt"] == "fast" and decision["lengths"] == [32]
    # without the clear winner, the noisy method's seed spread (success 1.0 vs 0.0) blocks it
    alone = study.adoption(study.summarize_optimizer_study(pd.concat([paper, noisy])))
    assert alone["adopt"] is None and "seed spread" in alone["why"]
    # measured only below min_length: nothing can be adopted
    short = study.summarize_optimizer_study(pd.concat([_rows("paper", 16, [5, 6]),
                                                       _rows("fast", 16, [1, 1])]))  # fmt: skip
    assert study.adoption(short)["adopt"] is None
    assert study.best_methods(summary, 32, k=2) == ["fast", "noisy"]


def test_adoption_chooses_among_qualifiers_at_their_longest_common_length():
    paper = _rows("paper", 32, [None] * 6)  # fails everywhere: both candidates qualify at 32
    a = _rows("a", 32, [9, 10, 11, 12, 13, 14])  # cheaper at 32 ...
    b = _rows("b", 32, [19, 20, 21, 22, 23, 24])
    a64 = _rows("a", 64, [90, None, 95, None, 99, None])  # ... but half solved at 64
    b64 = _rows("b", 64, [50, 51, 52, 53, 54, 55])  # the study's longest length, no baseline
    c = _rows("c", 32, [5, 5, 5, 5, 5, 5])  # the cheapest at 32 ...
    c64 = _rows("c", 64, [None] * 6)  # ... solves nothing at 64
    summary = study.summarize_optimizer_study(pd.concat([paper, a, b, c, a64, b64, c64]))
    decision = study.adoption(summary)
    assert decision["adopt"] == "b" and decision["chosen_at"] == 64
    assert decision["lengths"] == [32]  # qualified where the baseline was measured
    # a length where no qualifier solves anything does not choose: the longest that does
    decision = study.adoption(study.summarize_optimizer_study(pd.concat([paper, a, b, c, c64])))
    assert decision["adopt"] == "c" and decision["chosen_at"] == 32
    # without the longer length, the cheaper one at 32 wins
    decision = study.adoption(study.summarize_optimizer_study(pd.concat([paper, a, b])))
    assert decision["adopt"] == "a" and decision["chosen_at"] == 32


def test_success_curve_counts_rows_solved_within_k():
    curve = study.success_curve(_rows("m", 8, [0, 4, None, 9]), grid=np.array([1, 5, 10]))
    assert curve["solved_share"].tolist() == [0.25, 0.5, 0.75]


def test_run_optimizer_study_trains_cached_rows(tiny_llama, tmp_path):
    methods = study.study_methods(6, ["paper", "lion_lr0.03"])
    texts = {6: [ids for ids in IDS]}
    rows = study.run_optimizer_study(
        tiny_llama, texts, methods, seeds=[0], store=tmp_path, arrangement="e+m*N", log=None
    )
    assert len(rows) == 4 and set(rows["method"]) == set(methods)
    assert (rows["budget"] == 6).all() and (rows["steps"] <= 5).all()
    # a second call is served from the row store: the same keys, nothing trained again
    again = study.run_optimizer_study(
        tiny_llama, texts, methods, seeds=[0], store=tmp_path, arrangement="e+m*N", log=None
    )
    assert again["cache_key"].tolist() == rows["cache_key"].tolist()


def test_committed_study_and_note(tmp_path):
    rows = pd.concat([_rows("paper", 16, [9, None]), _rows("fast", 16, [1, 2])])
    summary = study.summarize_optimizer_study(rows)
    missing, meta = study.committed_study(tmp_path / "none.csv")
    assert missing.empty and meta == {}
    assert "No committed study" in study.study_note(summary, missing, meta)
    path = tmp_path / "optimizer_study.csv"
    summary.to_csv(path, index=False)
    path.with_suffix(".json").write_text(
        '{"texts": 6, "seeds": 2, "budget": 300, "device": "cpu", "dtype": "float32",'
        ' "decision": {"adopt": null, "why": "no method beats it"}}'
    )
    table, meta = study.committed_study(path)
    assert len(table) == 2 and meta["texts"] == 6
    note = study.study_note(summary, table, meta)
    assert "cheapest fast (100% solved, 2.5 evaluations per solved text)" in note
    assert "paper: 50% solved, 110 evaluations per solved text" in note
    assert "6 texts x 2 seeds" in note and "no method beats it" in note


def test_the_adopted_recipe_is_the_committed_studys_decision():
    """The notebooks' default recipe changes only when the committed study says so: the registry's
    ADOPTED is the study's adoption, the same recipe as the study's method (budget apart), and the
    committed run record holds the decision the committed summary gives."""
    summary, meta = study.committed_study()
    decision = study.adoption(summary)
    assert decision["adopt"] == meta["decision"]["adopt"] == ADOPTED
    trained = study.study_methods(int(summary["budget"].max()), [ADOPTED])[ADOPTED]
    assert RECIPES[ADOPTED].with_budget(trained.max_steps) == trained


def test_notebooks_default_to_the_adopted_recipe_and_the_paper_profile_to_the_papers():
    recipes = {}
    for nb in list_notebooks():
        declared = declared_parameters(nb)
        if "recipe" not in declared:
            continue
        for profile in ("default", "paper"):  # the profile's value, else the notebook's default
            values = resolve_parameters(nb, profile).values
            recipes[nb.name, profile] = values.get("recipe", ast.literal_eval(
                declared["recipe"]["default"]))  # fmt: skip
    assert len(recipes) >= 2 * 5  # 02-06 train with a recipe parameter
    for (name, profile), recipe in recipes.items():
        assert recipe == (ADOPTED if profile == "default" else "paper"), (name, profile)
