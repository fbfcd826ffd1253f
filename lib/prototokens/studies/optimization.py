"""Notebook 02 (the method end to end): the arrangements table, the result columns shown, the
loss/accuracy curves of a set of rows, the notebook's metrics (the optimiser study of its section
3.3 lives in :mod:`prototokens.studies.optimizers`).

``run_*`` return DataFrames computed through the cached :func:`reconstruct`; ``plot_*`` return
matplotlib Figures from rows; nothing here saves a file (the notebook's session does).
"""

from __future__ import annotations

import pandas as pd

from prototokens.engine.arrangements import ARRANGEMENTS
from prototokens.engine.reconstruction import load_result
from prototokens.engine.store import ResultStore
from prototokens.studies.claims import verdicts
from prototokens.studies.optimization_plots import plot_curves
from prototokens.studies.summaries import finite

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


def optimization_metrics(
    lm, *, arrangement: str, num_tokens: int, source: str, single: pd.DataFrame,
    batch: pd.DataFrame, study: pd.DataFrame, claims=(),
) -> dict:  # fmt: skip
    """Notebook 02's metrics: the single text, the batch (accuracy, converged and exact counts),
    the optimiser study (``study``: :func:`~prototokens.studies.optimizers.
    summarize_optimizer_study`, cheapest first) and the claims' verdicts."""
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
        "optimizers": {
            f"{r.method} | N={r.N}": {
                "success": r.success,
                "evals_median": finite(r.evals_median),
                "cost_per_solved": finite(r.cost_per_solved),
            }
            for r in study.itertuples()
        },
        "cheapest": study.iloc[0]["method"] if len(study) else None,
        "claims": verdicts(claims),
    }
