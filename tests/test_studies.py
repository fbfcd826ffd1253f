"""The study modules on real rows from a tiny random model (mechanics), and the shared summaries on
hand-built rows whose answer is known."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from prototokens.engine.recipe import Recipe
from prototokens.engine.reconstruction import reconstruct
from prototokens.engine.store import ResultStore
from prototokens.studies import optimization as opt
from prototokens.studies import setup
from prototokens.studies.summaries import (
    SUMMARY_COLUMNS,
    mean_std,
    rank_recipes,
    summarise_recipes,
    winner,
)

matplotlib.use("Agg")
TEXTS = ["Call me Ishmael.", "It was the best of times."]


def _rows(recipe, converged, steps, accuracy, label="src"):
    n = len(converged)
    return pd.DataFrame(
        {
            "recipe": [recipe] * n,
            "label": [label] * n,
            "converged": converged,
            "exact_match": converged,
            "steps": steps,
            "steps_to_1": [s if c else None for s, c in zip(steps, converged)],
            "accuracy": accuracy,
        }
    )


# ----------------------------------------------------------------------------- summaries


def test_recipe_summary_counts_non_converged_runs_at_the_budget_and_ranks():
    rows = pd.concat(
        [
            _rows("slow", [True, True], [80, 100], [1.0, 1.0]),
            _rows("fast", [True, False], [10, 200], [1.0, 0.5]),  # fails once: counted at 200
            _rows("sure", [True, True], [40, 60], [1.0, 1.0]),
        ]
    )
    summary = summarise_recipes(rows, max_steps=200)
    assert list(summary.columns) == ["recipe", "label", *SUMMARY_COLUMNS]
    assert list(summary.recipe) == ["slow", "fast", "sure"]  # first-seen order
    fast = summary.set_index("recipe").loc["fast"]
    assert fast.runs == 2 and fast.converged_fraction == 0.5
    assert fast.mean_steps_budgeted == 105.0 and fast.median_steps_to_1 == 10.0
    assert fast.mean_accuracy == 0.75
    assert list(rank_recipes(summary).recipe) == ["sure", "slow", "fast"]
    assert winner(summary).recipe == "sure"
    nothing = summarise_recipes(_rows("x", [False], [200], [0.3]), max_steps=200)
    assert math.isnan(nothing.median_steps_to_1[0]) and nothing.converged_fraction[0] == 0.0


def test_summaries_name_missing_columns_and_mean_std():
    with pytest.raises(ValueError, match=r"columns \['exact_match'\]"):
        summarise_recipes(_rows("a", [True], [1], [1.0]).drop(columns="exact_match"), 10)
    rows = pd.DataFrame({"g": ["a", "a", "b"], "x": [1.0, 3.0, 5.0]})
    table = mean_std(rows, ["g"], ["x"])
    assert list(table.columns) == ["g", "runs", "x_mean", "x_std"]
    assert table.x_mean.tolist() == [2.0, 5.0] and table.x_std.tolist() == [1.0, 0.0]
    assert table.runs.tolist() == [2, 1]


# ----------------------------------------------------------------------------- optimization


@pytest.fixture
def rows(tiny_llama, tmp_path):
    store = ResultStore(tmp_path / "runs")
    recipe = Recipe(name="t", lr=0.05, max_steps=6)
    df = reconstruct(tiny_llama, TEXTS, recipe=recipe, seeds=[0], store=store, progress=False)
    return store, df


def test_curves_and_plots_come_from_real_rows(rows):
    store, df = rows
    curves = opt.curves(store, df)
    assert set(curves) == set(df.text_id)
    for (loss, acc), steps in zip(curves.values(), df.steps):
        assert len(loss) == len(acc) == steps + 1 and all(0 <= a <= 1 for a in acc)
    fig = opt.plot_opt_curves(store, df, title="tiny")
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert len(lines) >= 2 * len(df), "one loss and one accuracy line per row"
    loss_line = next(ln for ln in lines if len(ln.get_ydata()) == df.steps.iloc[0] + 1)
    assert np.isfinite(loss_line.get_ydata()).all()
    table = opt.result_table(df)
    assert list(table.columns) == opt.RESULT_COLUMNS and len(table) == len(df)
    with pytest.raises(ValueError, match="lack columns"):
        opt.result_table(df.drop(columns=["c_tokens"]))


def test_arrangements_table():
    table = opt.run_arrangements_table(num_tokens=5)
    assert "e+m*N" in set(table.arrangement)
    assert table.set_index("arrangement").loc["e+m*N", "input length at N=5"] == 6


# ----------------------------------------------------------------------------- setup


def test_sanity_pass_and_setup_table(tiny_llama):
    sanity = setup.run_sanity_pass(tiny_llama, num_tokens=4, seed=1)
    assert sanity.ok and sanity.num_tokens == len(sanity.predicted_ids) == 4
    assert sanity.ce_nats > 0 and sanity.h_lm_nats > 0
    again = setup.run_sanity_pass(tiny_llama, num_tokens=4, seed=1)
    assert again.ce_nats == pytest.approx(sanity.ce_nats), "seeded vectors"
    bad_package = pd.DataFrame(
        [("package", "torch", False, "missing")], columns=setup.CHECK_COLUMNS
    )
    offline = pd.DataFrame([("model", "gemma", False, "absent")], columns=setup.CHECK_COLUMNS)
    table = setup.run_setup_table(bad_package, offline, sanity.checks())
    assert table.status.tolist() == ["[FAIL]", "[--]", "[OK]"]
    assert setup.failed_checks(table).check.tolist() == ["torch"]
    with pytest.raises(ValueError, match="at least 1"):
        setup.run_sanity_pass(tiny_llama, num_tokens=0)
