"""Verdicts on the geometry claims of the paper (Sections 9 and 10), from this run's numbers.

Each function returns one claim row: ``claim``, ``paper`` (what the paper reports), ``ours`` (the
numbers behind the verdict) and ``verdict``, one of :data:`VERDICTS`. A claim is "not measurable"
when the run lacks what it needs (too few pairs, or endpoints that are not solutions); thresholds
are arguments so that a notebook can state them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HOLDS, FAILS, NOT_MEASURABLE = "holds", "does not hold", "not measurable here"
VERDICTS = (HOLDS, FAILS, NOT_MEASURABLE)


def _row(claim: str, paper: str, ours: str, verdict: str) -> dict:
    assert verdict in VERDICTS
    return {"claim": claim, "paper": paper, "ours": ours, "verdict": verdict}


def ordering_claim(test: dict | pd.Series, claim: str, alpha: float = 0.05, min_n: int = 3) -> dict:
    """A Mann-Whitney row of :func:`geometry.locality_tests`: holds when the closer kind's
    distances are significantly smaller (one-sided p < ``alpha``), does not hold otherwise;
    not measurable with fewer than ``min_n`` distances on a side."""
    n1, n2 = int(test["n_closer"]), int(test["n_farther"])
    paper = "closer (Fig. 6)"
    if n1 < min_n or n2 < min_n:
        return _row(claim, paper, f"n = {n1} vs {n2} pairs (need {min_n} each)", NOT_MEASURABLE)
    ours = (
        f"median {test['median_closer']:.3f} vs {test['median_farther']:.3f}; "
        f"P(closer) = {test['p_closer_smaller']:.2f}; Mann-Whitney p = {test['p_value']:.2g} "
        f"(n = {n1} vs {n2})"
    )
    ok = test["p_value"] < alpha and test["median_closer"] < test["median_farther"]
    return _row(claim, paper, ours, HOLDS if ok else FAILS)


def _endpoint_accuracy(path: pd.DataFrame) -> float:
    ends = path[(path.path == "line") & (np.isclose(path.tau, 0) | np.isclose(path.tau, 1))]
    return float(ends.accuracy.mean()) if len(ends) else float("nan")


def line_drop_claim(path: pd.DataFrame, min_drop: float = 0.05, min_end: float = 0.9) -> dict:
    """The straight line loses accuracy in the middle: the mean over pairs of the lowest
    accuracy along the line is at least ``min_drop`` below the endpoints' mean accuracy.
    Not measurable without pairs or when the endpoints (mean accuracy < ``min_end``) are not
    solutions."""
    claim, paper = "straight line loses accuracy in the middle", "yes (Fig. 7)"
    end = _endpoint_accuracy(path)
    if not np.isfinite(end) or end < min_end:
        return _row(claim, paper, f"endpoint accuracy {end:.3f} < {min_end}", NOT_MEASURABLE)
    line = path[path.path == "line"]
    low = float(line.groupby("pair").accuracy.min().mean())
    mid = float(line[np.isclose(line.tau, 0.5)].accuracy.mean())
    ours = f"endpoints {end:.3f}; line: mean minimum {low:.3f}, mean at τ=0.5 {mid:.3f}"
    return _row(claim, paper, ours, HOLDS if end - low >= min_drop else FAILS)


def curve_keeps_claim(path: pd.DataFrame, max_drop: float = 0.05, min_end: float = 0.9) -> dict:
    """The trained curve keeps the accuracy: the mean over pairs of the lowest accuracy along
    the curve is within ``max_drop`` of the endpoints' mean accuracy."""
    claim, paper = "trained Bezier curve keeps the accuracy", "accuracy ≈ 1 along the path (Fig. 7)"
    end = _endpoint_accuracy(path)
    if not np.isfinite(end) or end < min_end or not (path.path == "bezier").any():
        return _row(claim, paper, f"endpoint accuracy {end:.3f} < {min_end}", NOT_MEASURABLE)
    low = float(path[path.path == "bezier"].groupby("pair").accuracy.min().mean())
    ours = f"endpoints {end:.3f}; curve: mean minimum {low:.3f}"
    return _row(claim, paper, ours, HOLDS if end - low <= max_drop else FAILS)


def length_ratio_claim(
    pairs: pd.DataFrame,
    path: pd.DataFrame | None = None,
    bound: float = 1.2,
    tolerance: float = 0.05,
    min_end: float = 0.9,
) -> dict:
    """Curve length / straight distance is at most about ``bound`` (paper: max 1.2): holds when
    the largest ratio is <= bound + tolerance. With ``path``, not measurable when the endpoints
    are not solutions (a curve between non-solutions says nothing about the solution set, and an
    untrained curve is trivially straight)."""
    claim, paper = "curve length / straight distance", f"max ≈ {bound}"
    r = pairs.length_ratio.dropna().to_numpy() if "length_ratio" in pairs else np.array([])
    if len(r) == 0:
        return _row(claim, paper, "no pairs", NOT_MEASURABLE)
    end = _endpoint_accuracy(path) if path is not None else 1.0
    if not np.isfinite(end) or end < min_end:
        ours = f"max {r.max():.3f}, but endpoint accuracy {end:.3f} < {min_end}"
        return _row(claim, paper, ours, NOT_MEASURABLE)
    ours = f"max {r.max():.3f}, median {np.median(r):.3f} over {len(r)} pairs"
    return _row(claim, paper, ours, HOLDS if r.max() <= bound + tolerance else FAILS)


def geometry_claims(
    tests: pd.DataFrame, path: pd.DataFrame | None, pairs: pd.DataFrame | None, alpha: float = 0.05
) -> pd.DataFrame:
    """All four claims of the notebook as one table (path/pairs None: connectivity not run)."""
    rows = [
        ordering_claim(tests.iloc[0], "same-text solutions closer than different-text", alpha),
        ordering_claim(tests.iloc[1], "same-context closer than different-context", alpha),
    ]
    if path is None or pairs is None or len(path) == 0:
        for c in ("straight line loses accuracy", "curve keeps accuracy", "length ratio"):
            rows.append(_row(c, "Fig. 7", "connectivity not run", NOT_MEASURABLE))
    else:
        rows += [line_drop_claim(path), curve_keeps_claim(path), length_ratio_claim(pairs, path)]
    return pd.DataFrame(rows)
