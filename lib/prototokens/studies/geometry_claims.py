"""The paper's geometry claims (Sections 9 and 10, Figs 6 and 7) judged on notebook 06's numbers.

Locality (Fig. 6) is decided on solutions only (accuracy >= 0.99: a vector that does not
reconstruct its text says nothing about where solutions lie) and with a test whose samples are
independent: the pairs of :func:`prototokens.studies.geometry.run_locality` share their vectors
(each solution sits in many pairs), so each text (or context) gives one paired difference, its
mean distance to other texts minus its mean distance within, and a one-sided Wilcoxon
signed-rank test runs over texts (or contexts).

Connectivity (Fig. 7) is decided on pairs whose two endpoints are solutions. A curve is judged
only once trained: where the line loses accuracy, a curve whose mean CE along the path is not
at most half the line's is barely trained (30 steps leave it almost straight, and its length
ratio ≈ 1 says nothing).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from prototokens.studies.claims import (
    BUDGET,
    NOT_RUN,
    NOT_SOLUTIONS,
    SOLUTION_ACCURACY,
    TOO_FEW,
    Claim,
    ClaimSpec,
    n_of,
    sig,
)

ALPHA = 0.05  # one-sided significance of the ordering tests
MIN_PAIRS = 3  # Bezier pairs with solution endpoints
LINE_DROP = 0.05  # the line "loses accuracy": mean (endpoints - minimum along it) >= this
CURVE_KEEPS = 0.05  # the curve "keeps" it: mean (endpoints - minimum along it) <= this
TRAINED_CE = 0.5  # a curve is trained when its mean CE along the path <= this x the line's
RATIO_MAX = 1.2 + 0.05  # paper: max length ratio 1.2 (with a tolerance of 0.05)

SAME_TEXT = ClaimSpec(
    id="06.same_text_closer",
    claim="solutions of the same text are closer than solutions of different texts",
    where="Sec. 10, Fig. 6",
    paper="same-text pairs almost always closer",
    rule=(
        "per text with >= 2 solutions: mean cosine distance to other texts minus mean within; "
        f"one-sided Wilcoxon signed-rank over texts at p < {ALPHA}; solutions only (accuracy >= "
        f"{SOLUTION_ACCURACY}); needs enough texts for p < {ALPHA} to be possible (5)"
    ),
)
SAME_CONTEXT = ClaimSpec(
    id="06.same_context_closer",
    claim="texts of the same context have closer solutions than texts of different contexts",
    where="Sec. 10, Fig. 6",
    paper="same-context pairs closer (small effect, heavy overlap)",
    rule=(
        "per context with >= 2 texts: mean distance to other contexts' texts minus mean within; "
        f"one-sided Wilcoxon signed-rank over contexts at p < {ALPHA}; solutions only; needs "
        f"enough contexts for p < {ALPHA} to be possible (5)"
    ),
)
LINE_DROPS = ClaimSpec(
    id="06.line_loses_accuracy",
    claim="the straight line between two solutions of a text loses accuracy in the middle",
    where="Sec. 9, Fig. 7",
    paper="linear interpolation drops (solutions are not a convex set)",
    rule=(
        f"mean over pairs of (endpoint accuracy - lowest accuracy along the line) >= {LINE_DROP}; "
        f"pairs whose endpoints are solutions (>= {SOLUTION_ACCURACY}); needs >= {MIN_PAIRS}"
    ),
)
CURVE_HOLDS = ClaimSpec(
    id="06.curve_keeps_accuracy",
    claim="a trained quadratic Bezier curve connects two solutions through solutions",
    where="Sec. 9, Fig. 7",
    paper="accuracy ≈ 1 along the curve",
    rule=(
        f"mean over pairs of (endpoint accuracy - lowest along the curve) <= {CURVE_KEEPS}; "
        f"solution endpoints, >= {MIN_PAIRS} pairs; a curve that loses accuracy counts only when "
        f"trained (its mean CE <= {TRAINED_CE} x the line's)"
    ),
)
LENGTH_RATIO = ClaimSpec(
    id="06.length_ratio",
    claim="the connecting curves are nearly straight",
    where="Sec. 9",
    paper="max curve length / straight distance = 1.2",
    rule=(
        f"largest length ratio <= {sig(RATIO_MAX)}; judged only on curves that keep the accuracy "
        f"and, where the line loses it, are trained (mean CE <= {TRAINED_CE} x the line's)"
    ),
)


def wilcoxon_greater(diffs) -> float:
    """One-sided Wilcoxon signed-rank p for ``diffs`` > 0 (1.0 when every difference is 0)."""
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, float)
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    return float(wilcoxon(d, alternative="greater").pvalue)


def min_units(alpha: float = ALPHA) -> int:
    """Units a one-sided signed-rank test needs for p < alpha to be possible (all differences
    positive gives p = 2^-n): 5 at alpha = 0.05."""
    return int(np.floor(np.log2(1 / alpha))) + 1


def _unit_diffs(pairs: pd.DataFrame, within: str, unit: str) -> pd.Series:
    """Per unit (text or context): mean distance of its pairs of kind ``other`` minus of kind
    ``within``. ``unit``: the column pair's stem ("text" or "context")."""
    out = {}
    a, b = pairs[f"{unit}_i"], pairs[f"{unit}_j"]
    other = pairs["kind"] == "different_context" if unit == "context" else pairs["kind"] != within
    for u in pd.unique(pd.concat([a, b])):
        mine = (a == u) | (b == u)
        inside = pairs[mine & (pairs["kind"] == within)].distance
        outside = pairs[mine & other].distance
        if len(inside) and len(outside):
            out[u] = float(outside.mean() - inside.mean())
    return pd.Series(out, dtype=float)


def ordering_claim(
    spec: ClaimSpec, pairs: pd.DataFrame, accuracy, within: str, unit: str, alpha: float = ALPHA
) -> Claim:
    """Locality: a Wilcoxon test over units, on pairs whose two vectors are solutions."""
    if alpha != ALPHA:  # the rule's words name the level used
        spec = replace(spec, rule=spec.rule.replace(f"p < {ALPHA}", f"p < {alpha}"))
    acc = np.asarray(accuracy, float)
    ok = (acc[pairs.i] >= SOLUTION_ACCURACY) & (acc[pairs.j] >= SOLUTION_ACCURACY)
    every = _unit_diffs(pairs, within, unit)
    d = _unit_diffs(pairs[ok], within, unit)
    n = n_of(**{f"{unit}s": len(d)}) + f" (of {len(every)} with any vectors)"
    p = wilcoxon_greater(d) if len(d) else float("nan")
    ours = (
        f"{(d > 0).sum()} of {len(d)} {unit}s closer within; median difference "
        f"{sig(d.median() if len(d) else None)}; Wilcoxon p = {sig(p, 2)}"
    )
    need = min_units(alpha)
    if len(d) < need:
        reason = NOT_SOLUTIONS if len(every) >= need else TOO_FEW
        detail = f"{len(d)} {unit}s with solutions on both sides (< {need} for p < {alpha})"
        return spec.inconclusive(reason, detail, ours, n)
    return spec.judge(p < alpha, ours, n)


def _per_pair(path: pd.DataFrame) -> pd.DataFrame:
    """Per pair: endpoint accuracy (line at tau 0 and 1), lowest accuracy along line and curve,
    mean CE along line and curve."""
    line, curve = path[path.path == "line"], path[path.path == "bezier"]
    ends = line[np.isclose(line.tau, 0) | np.isclose(line.tau, 1)].groupby("pair").accuracy
    out = pd.DataFrame({"end": ends.mean(), "end_min": ends.min(),
                        "line_min": line.groupby("pair").accuracy.min()})  # fmt: skip
    out["curve_min"] = curve.groupby("pair").accuracy.min()
    if "ce_nats" in path:
        out["line_ce"] = line.groupby("pair").ce_nats.mean()
        out["curve_ce"] = curve.groupby("pair").ce_nats.mean()
    return out


def _solution_pairs(spec, path) -> tuple[pd.DataFrame | None, Claim | None, str]:
    if path is None or len(path) == 0:
        return None, spec.inconclusive(NOT_RUN, "connectivity not run", "-", "0"), "0"
    per = _per_pair(path)
    good = per[per.end_min >= SOLUTION_ACCURACY]
    n = n_of(pairs=len(good)) + f" (of {len(per)})"
    if len(good) < MIN_PAIRS:
        reason = NOT_SOLUTIONS if len(per) >= MIN_PAIRS else TOO_FEW
        ends = f"endpoint accuracy {sig(per.end.mean())}"
        detail = f"{len(good)} pairs with solution endpoints (< {MIN_PAIRS})"
        return None, spec.inconclusive(reason, detail, ends, n), n
    return good, None, n


def _trained(good: pd.DataFrame) -> bool:
    if "curve_ce" not in good:
        return False
    return bool(good.curve_ce.mean() <= TRAINED_CE * good.line_ce.mean())


def line_drop_claim(path: pd.DataFrame | None) -> Claim:
    good, failed, n = _solution_pairs(LINE_DROPS, path)
    if failed:
        return failed
    drop = float((good.end - good.line_min).mean())
    ours = f"endpoints {sig(good.end.mean())}; lowest along the line {sig(good.line_min.mean())}"
    return LINE_DROPS.judge(drop >= LINE_DROP, ours, n)


def curve_keeps_claim(path: pd.DataFrame | None) -> Claim:
    good, failed, n = _solution_pairs(CURVE_HOLDS, path)
    if failed:
        return failed
    keeps = float((good.end - good.curve_min).mean()) <= CURVE_KEEPS
    ours = f"endpoints {sig(good.end.mean())}; lowest along the curve {sig(good.curve_min.mean())}"
    if "curve_ce" in good:
        ours += f"; mean CE curve {sig(good.curve_ce.mean())} vs line {sig(good.line_ce.mean())}"
    if not keeps and not _trained(good):
        return CURVE_HOLDS.inconclusive(BUDGET, "the curve is barely trained", ours, n)
    return CURVE_HOLDS.judge(keeps, ours, n)


def length_ratio_claim(conn: pd.DataFrame | None, path: pd.DataFrame | None) -> Claim:
    good, failed, n = _solution_pairs(LENGTH_RATIO, path)
    if failed:
        return failed
    r = conn["length_ratio"].to_numpy(float)[good.index.to_numpy()]
    ours = f"max {sig(r.max())}, median {sig(np.median(r))}"
    drops = float((good.end - good.line_min).mean()) >= LINE_DROP
    keeps = float((good.end - good.curve_min).mean()) <= CURVE_KEEPS
    if not keeps:
        detail = "the curve does not stay among solutions, so its length says nothing"
        return LENGTH_RATIO.inconclusive(BUDGET, detail, ours, n)
    if drops and not _trained(good):
        detail = "the line loses accuracy but the curve is barely trained (≈ straight)"
        return LENGTH_RATIO.inconclusive(BUDGET, detail, ours, n)
    return LENGTH_RATIO.judge(float(r.max()) <= RATIO_MAX, ours, n)


def geometry_claims(
    rows: pd.DataFrame,
    pairs: pd.DataFrame,
    path: pd.DataFrame | None = None,
    conn: pd.DataFrame | None = None,
    alpha: float = ALPHA,
) -> list[Claim]:
    """Notebook 06's five claims. ``rows``: the solutions (``accuracy``, positions as in
    ``pairs``); ``pairs``: :func:`geometry.run_locality`; ``path``, ``conn``:
    :func:`bezier.run_connectivity` (None: connectivity not run); ``alpha``: the orderings'
    significance level (the rule's words state 0.05)."""
    need = {"i", "j", "kind", "distance", "text_i", "text_j", "context_i", "context_j"}
    if not need <= set(pairs.columns):
        raise ValueError(f"pairs lack {sorted(need - set(pairs.columns))} (run_locality rows)")
    acc = rows["accuracy"].to_numpy(float)
    return [
        ordering_claim(SAME_TEXT, pairs, acc, "same_text", "text", alpha),
        ordering_claim(SAME_CONTEXT, pairs, acc, "same_context", "context", alpha),
        line_drop_claim(path),
        curve_keeps_claim(path),
        length_ratio_claim(conn, path),
    ]
