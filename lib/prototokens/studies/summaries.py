"""Aggregations of result rows shared by several notebooks and the benches.

The recipe summary is the one comparison rule of the project: a run that does not reach accuracy
1.0 within its budget counts at the budget (``steps_budgeted``), and recipes are ranked by the
fraction of runs that converge, then by the mean budgeted steps. Steps, not seconds, are compared:
a row's wall time depends on which batch it shared.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = [
    "runs",
    "converged_fraction",
    "exact_fraction",
    "median_steps_to_1",
    "mean_steps_budgeted",
    "mean_accuracy",
]


def _need(rows: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ValueError(f"{what} needs result rows with columns {missing}; got {list(rows)}")
    if rows.empty:
        raise ValueError(f"{what} got no rows")


def finite(x) -> float | None:
    """``x`` as a float, or None when it is missing or not finite (metrics files hold finite
    numbers only: None marks "not measured")."""
    if x is None or pd.isna(x):
        return None
    v = float(x)
    return v if np.isfinite(v) else None


def steps_budgeted(rows: pd.DataFrame, max_steps: int) -> np.ndarray:
    """Steps to convergence per row, a non-converged row counted at ``max_steps``."""
    return np.where(rows.converged.astype(bool), rows.steps, max_steps).astype(float)


def summarise_recipes(
    rows: pd.DataFrame, max_steps: int, by: Sequence[str] = ("recipe", "label")
) -> pd.DataFrame:
    """One line per group of ``by`` (default recipe × source label), in first-seen order, with
    :data:`SUMMARY_COLUMNS`. ``median_steps_to_1`` is NaN when no run of the group converged."""
    by = list(by)
    _need(rows, [*by, "converged", "steps", "steps_to_1", "accuracy", "exact_match"], "summary")
    frame = rows.assign(
        steps_budgeted=steps_budgeted(rows, max_steps),
        steps_to_1=pd.to_numeric(rows.steps_to_1, errors="coerce"),
        converged=rows.converged.astype(bool),
        exact_match=rows.exact_match.astype(bool),
    )
    summary = (
        frame.groupby(by, sort=False)
        .agg(
            runs=("converged", "size"),
            converged_fraction=("converged", "mean"),
            exact_fraction=("exact_match", "mean"),
            median_steps_to_1=("steps_to_1", "median"),
            mean_steps_budgeted=("steps_budgeted", "mean"),
            mean_accuracy=("accuracy", "mean"),
        )
        .reset_index()
    )
    return summary[[*by, *SUMMARY_COLUMNS]]


def rank_recipes(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary best first: most runs converged, then fewest budgeted steps on average."""
    _need(summary, ["converged_fraction", "mean_steps_budgeted"], "ranking")
    return summary.sort_values(
        ["converged_fraction", "mean_steps_budgeted"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def winner(summary: pd.DataFrame) -> pd.Series:
    """The first line of :func:`rank_recipes`."""
    return rank_recipes(summary).iloc[0]


def mean_std(rows: pd.DataFrame, by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """``<column>_mean`` and ``<column>_std`` per group of ``by`` (std 0 for a single row), plus
    ``runs``: the mean ± std tables of the paper."""
    by, columns = list(by), list(columns)
    _need(rows, [*by, *columns], "mean_std")
    groups = rows.groupby(by, sort=False)[columns]
    out = groups.mean().add_suffix("_mean").join(groups.std(ddof=0).add_suffix("_std"))
    out.insert(0, "runs", groups.size())
    ordered = ["runs"] + [f"{c}_{s}" for c in columns for s in ("mean", "std")]
    return out[ordered].reset_index()
