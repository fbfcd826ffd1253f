"""Notebook 02 (the method end to end): the arrangements table, the result columns shown, the
loss/accuracy curves of a set of rows, the recipe comparison and its figure.

``run_*`` return DataFrames computed through the cached :func:`reconstruct`; ``plot_*`` return
matplotlib Figures from rows; nothing here saves a file (the notebook's session does).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from prototokens.engine.arrangements import ARRANGEMENTS, DEFAULT_ARRANGEMENT
from prototokens.engine.recipe import Recipe, get_recipe
from prototokens.engine.reconstruction import load_result, reconstruct
from prototokens.engine.store import ResultStore
from prototokens.studies.claims import verdicts
from prototokens.studies.optimization_plots import plot_curves, plot_steps_distribution
from prototokens.studies.summaries import rank_recipes, summarise_recipes, winner

# The columns of a result row that 02's tables show (tab_opt_single, tab_opt_batch).
RESULT_COLUMNS = [
    "text_id",
    "label",
    "num_tokens",
    "status",
    "steps",
    "steps_to_0.95",
    "steps_to_0.99",
    "steps_to_1",
    "accuracy",
    "c_tokens",
    "first_wrong",
    "h_lm_bits",
    "ce_bits",
    "info_gain_bits",
    "wall_time_s",
]


def run_arrangements_table(num_tokens: int = 8) -> pd.DataFrame:
    """Every input arrangement the engine knows: name, inputs, input length at ``num_tokens``."""
    return pd.DataFrame(
        [(a.name, a.description, a.input_length(num_tokens)) for a in ARRANGEMENTS.values()],
        columns=["arrangement", "inputs", f"input length at N={num_tokens}"],
    )


def result_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The :data:`RESULT_COLUMNS` of ``rows`` (a clear error names any that are missing)."""
    missing = [c for c in RESULT_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"result rows lack columns {missing}; were they made by reconstruct?")
    return rows[RESULT_COLUMNS].reset_index(drop=True)


def curves(
    store: ResultStore, rows: pd.DataFrame, label: str = "text_id"
) -> dict[str, tuple[list[float], list[float]]]:
    """``{name: (loss_curve, accuracy_curve)}`` per row, each row's stored result read once.

    ``label`` names the row column used as the curve name; rows of several seeds of one text get
    `` (seed s)`` appended so that no curve overwrites another.
    """
    several_seeds = "seed" in rows and rows.groupby(label)["seed"].nunique().gt(1).any()
    out = {}
    for _, row in rows.iterrows():
        result = load_result(store, row)
        name = str(row[label]) + (f" (seed {row['seed']})" if several_seeds else "")
        out[name] = (list(result["loss_curve"]), list(result["accuracy_curve"]))
    return out


def plot_opt_curves(store: ResultStore, rows: pd.DataFrame, title: str = ""):
    """Loss and accuracy per step for every row (fig_opt_single_curves, fig_opt_batch_curves)."""
    return plot_curves(curves(store, rows), title=title)


def run_recipe_comparison(
    lm,
    texts,
    recipes: Sequence[str | Recipe],
    seeds: Sequence[int],
    *,
    max_steps: int,
    store: ResultStore,
    arrangement: str = DEFAULT_ARRANGEMENT,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Rows of every recipe (each capped at ``max_steps``) on the same texts and seeds."""
    if not recipes:
        raise ValueError("run_recipe_comparison needs at least one recipe")
    frames = [
        reconstruct(
            lm,
            texts,
            arrangement=arrangement,
            recipe=get_recipe(r).with_(max_steps=max_steps),
            seeds=list(seeds),
            store=store,
            batch_size=batch_size,
        )
        for r in recipes
    ]
    return pd.concat(frames, ignore_index=True)


def run_recipe_summary(runs: pd.DataFrame, max_steps: int) -> pd.DataFrame:
    """tab_opt_recipes: :func:`~prototokens.studies.summaries.summarise_recipes` per recipe and
    source label, best recipe first."""
    return rank_recipes(summarise_recipes(runs, max_steps))


def plot_recipe_steps(runs: pd.DataFrame, max_steps: int, title: str = ""):
    """fig_opt_recipes: the distribution of steps to accuracy 1.0 per recipe."""
    steps = {name: g.steps_to_1.tolist() for name, g in runs.groupby("recipe", sort=False)}
    return plot_steps_distribution(steps, max_steps, title=title)


def optimization_metrics(
    lm, *, arrangement: str, num_tokens: int, source: str, single: pd.DataFrame,
    batch: pd.DataFrame, summary: pd.DataFrame, claims=(),
) -> dict:  # fmt: skip
    """Notebook 02's metrics: the single text, the batch (accuracy, converged and exact counts),
    the recipe comparison (``summary`` of :func:`run_recipe_summary`, best recipe first) and the
    claims' verdicts."""
    row = single.iloc[0]
    return {
        "device": str(lm.device),
        "model": lm.name,
        "arrangement": arrangement,
        "num_tokens": num_tokens,
        "source": source,
        "single": {"accuracy": row.accuracy, "steps": row.steps, "converged": row.converged},
        "batch": {
            "mean_accuracy": batch.accuracy.mean(),
            "max_accuracy": batch.accuracy.max(),
            "converged_fraction": batch.converged.mean(),
            "num_exact": int(batch.exact_match.sum()),
            "num_texts": len(batch),
        },
        "recipes": {
            r.recipe: {
                "converged_fraction": r.converged_fraction,
                "mean_steps_budgeted": r.mean_steps_budgeted,
                "mean_accuracy": r.mean_accuracy,
            }
            for r in summary.itertuples()
        },
        "winner": winner(summary).recipe,
        "claims": verdicts(claims),
    }
