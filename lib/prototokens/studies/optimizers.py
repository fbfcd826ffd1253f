"""Cost per solved text: which optimiser reconstructs a text in the fewest evaluations.

Only 2·d numbers are trained per text and the model is frozen, so the whole cost of a solution is
the number of forward+backward evaluations it takes. This study trains the same texts from the
same initial vectors (a row's init depends only on its tokens, seed and slot; see
:mod:`prototokens.engine.train`) under several recipes and measures, per method and length N:

- **success**: the share of (text, seed) rows reconstructed exactly in one forward pass (at the
  deployment shape) within a fixed budget of evaluations;
- **evaluations to exact**: ``steps_to_1 + 1`` forward passes (the updates made, plus the forward
  that confirms the exact text), for solved rows;
- **cost per solved text**: all evaluations spent (a failed row spends its whole budget) divided
  by the rows solved, the number a user who wants texts reconstructed pays.

Methods (:func:`study_methods`): the paper's AdamW (lr 1e-2, constant, N(0, 1) init); AdamW over
a learning-rate range, constant and with a warm-up/cosine decay; a small U[0, 0.02) init; the loss
at temperature 0.25; Lion, a sign update (every coordinate moves by lr); and ``fast`` (AdamW lr
3e-2, betas 0.9/0.99, cosine decay to 0.1 lr), the recipe 03 and 05 used before the study. Every
row is an ordinary cached row of :func:`prototokens.engine.reconstruction.reconstruct`, so an
interrupted study resumes and a notebook reads what a script already trained.

Adoption (:func:`adoption`): a method replaces the paper's recipe as the default only if, at every
N >= 32 measured, it beats it on success *and* on cost per solved text by more than the spread
between seeds (its worst seed beats the paper's best seed on both).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from prototokens.engine.progress import progress_label
from prototokens.engine.recipe import PAPER, RECIPES, Recipe
from prototokens.engine.reconstruction import reconstruct
from prototokens.paths import repo_root

WARMUP_FRACTION = 0.1  # warm-up steps of the warm-up/cosine methods, as a share of the budget
# the full study's summary, written by bench/optimizer_study.py (its run record: the .json beside)
COMMITTED_STUDY = repo_root() / "bench" / "results" / "optimizer_study.csv"


def study_methods(budget: int, names: Sequence[str] | None = None) -> dict[str, Recipe]:
    """The study's recipes, each capped at ``budget`` evaluations (``max_steps = budget - 1``:
    the forward at step s follows s updates, so ``budget`` forwards in all).

    ``names``: a subset to return, in the given order (unknown names raise ``ValueError``).
    """
    if int(budget) < 2:
        raise ValueError(f"budget must be at least 2 evaluations, got {budget!r}")
    steps = int(budget) - 1
    warm = max(1, int(round(WARMUP_FRACTION * steps)))

    def adamw(lr: float, schedule: str = "constant", suffix: str = "", **kw) -> Recipe:
        name = f"adamw_lr{lr:g}{'_wc' if schedule != 'constant' else ''}{suffix}"
        extra = {"warmup_steps": warm} if schedule == "warmup_cosine" else {}
        return PAPER.with_(name=name, lr=lr, schedule=schedule, max_steps=steps, **extra, **kw)

    methods = [
        PAPER.with_(max_steps=steps),  # "paper": AdamW lr 1e-2, betas 0.9/0.9, wd 0.01, N(0,1)
        *(adamw(lr) for lr in (3e-2, 1e-1, 5e-1, 1.0)),
        *(adamw(lr, "warmup_cosine") for lr in (1e-1, 5e-1, 1.0)),
        adamw(1e-1, suffix="_uniform", init="uniform"),
        adamw(1e-1, suffix="_T0.25", temperature=0.25),
        PAPER.with_(
            name="lion_lr0.03", optimizer="lion", lr=3e-2, betas=(0.9, 0.99), max_steps=steps
        ),
        RECIPES["fast"].with_(max_steps=steps),  # the notebooks' reduced-budget recipe until now
    ]
    table = {r.name: r for r in methods}
    return pick(table, names, "study methods")


def pick(table: dict, names: Sequence[str] | None, what: str) -> dict:
    """``table`` (None), or its entries ``names`` in that order; unknown names raise a
    ``ValueError`` naming ``what`` and the choices (the optimiser and warm-start studies)."""
    if names is None:
        return dict(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; choose from {sorted(table)}")
    return {n: table[n] for n in names}


def run_optimizer_study(
    lm,
    texts_by_length: dict[int, list],
    methods: dict[str, Recipe],
    seeds: Sequence[int] = (0, 1),
    *,
    store=None,
    arrangement: str | None = None,
    batch_size: int = 32,
    log: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Train every (text, seed) of every length under every method; one row per run.

    ``texts_by_length``: ``{N: texts of N tokens}`` (the same texts for every method). Rows of one
    method and length train as one batch (``batch_size`` rows per forward). Returns the rows of
    :func:`reconstruct` with ``method``, ``budget`` and ``evals_to_exact`` added (NaN when the
    row is not an exact one-pass reconstruction).
    """
    frames = []
    kw = {"arrangement": arrangement} if arrangement else {}
    for n_tokens, texts in texts_by_length.items():
        for name, recipe in methods.items():
            if log:
                log(f"optimizer study: N={n_tokens} {name} ({len(texts)} texts x {len(seeds)})")
            with progress_label(f"optimizer study {name}"):
                rows = reconstruct(
                    lm, texts, recipe=recipe, seeds=list(seeds), store=store,
                    batch_size=batch_size, progress="log", **kw,
                )  # fmt: skip
            rows = rows.assign(method=name, budget=recipe.max_steps + 1)
            frames.append(rows)
    if not frames:
        raise ValueError("no texts or no methods: nothing to study")
    out = pd.concat(frames, ignore_index=True)
    return out.assign(evals_to_exact=evals_to_exact(out))


def evals_to_exact(rows: pd.DataFrame) -> pd.Series:
    """Forward+backward evaluations to an exact one-pass reconstruction (``steps_to_1 + 1``);
    NaN for rows that are not exact at the deployment shape."""
    steps = pd.to_numeric(rows["steps_to_1"], errors="coerce")
    return (steps + 1).where(rows["exact_match"].astype(bool))


def evals_spent(rows: pd.DataFrame) -> pd.Series:
    """Evaluations each row spent: to exact if solved, else its whole run (steps + 1)."""
    solved = evals_to_exact(rows)
    return solved.fillna(pd.to_numeric(rows["steps"]) + 1)


def _stats(rows: pd.DataFrame) -> dict:
    solved = evals_to_exact(rows).dropna()
    n, k = len(rows), len(solved)
    spent = float(evals_spent(rows).sum())
    return {
        "n": n,
        "solved": k,
        "success": k / n if n else math.nan,
        "evals_median": float(solved.median()) if k else math.nan,
        "evals_mean": float(solved.mean()) if k else math.nan,
        "cost_per_solved": spent / k if k else math.inf,
    }


def summarize_optimizer_study(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (N, method): n, solved, success, evaluations to exact (median, mean over
    solved rows), cost per solved text, and per seed the lowest and highest success and cost
    (``*_seed_min`` / ``*_seed_max``) and their range (a seed that solved nothing costs inf)."""
    out = []
    for (n_tokens, method), g in rows.groupby(["num_tokens", "method"], sort=True):
        per_seed = [_stats(s) for _, s in g.groupby("seed")]
        succ = [s["success"] for s in per_seed]
        cost = [s["cost_per_solved"] for s in per_seed]
        finite = [c for c in cost if math.isfinite(c)]
        cost_range = (max(finite) - min(finite)) if len(finite) == len(cost) else math.inf
        out.append(
            {
                "N": int(n_tokens),
                "method": method,
                "budget": int(g["budget"].max()),
                **_stats(g),
                "success_seed_range": max(succ) - min(succ),
                "cost_seed_range": cost_range,
                "success_seed_min": min(succ),
                "success_seed_max": max(succ),
                "cost_seed_min": min(cost),
                "cost_seed_max": max(cost),
                "wall_s": float(g.drop_duplicates("wall_time_s")["wall_time_s"].max()),
            }
        )
    table = pd.DataFrame(out)
    return table.sort_values(["N", "cost_per_solved", "method"], ignore_index=True)


def best_methods(summary: pd.DataFrame, n_tokens: int, k: int = 3) -> list[str]:
    """The ``k`` methods with the lowest cost per solved text at length ``n_tokens`` (ties: higher
    success first)."""
    at = summary[summary["N"] == n_tokens]
    if at.empty:
        raise ValueError(f"no study rows at N={n_tokens}; lengths: {sorted(summary['N'].unique())}")
    ranked = at.sort_values(["cost_per_solved", "success"], ascending=[True, False])
    return ranked["method"].head(k).tolist()


def adoption(summary: pd.DataFrame, baseline: str = "paper", min_length: int = 32) -> dict:
    """Which method (if any) may replace ``baseline`` as the default recipe.

    A candidate qualifies when, at every N >= ``min_length`` where both were measured, it beats
    the baseline by more than the spread between seeds: its worst seed's success exceeds the
    baseline's best seed's, and its worst seed's cost per solved text is below the baseline's best
    seed's (the per-seed ranges do not overlap; a seed that solved nothing costs inf, so a
    baseline seed with no solution does not block a candidate whose every seed solves). Among
    qualifying methods the lowest cost per solved text (then the higher success) at the longest N
    where a qualifier solved any text wins, among the qualifiers measured there: the study runs
    its longest length for the best few of the previous one only, and without the baseline
    (which they already beat). Returns ``{"adopt": name or None, "why": text, "lengths": [...],
    "chosen_at": N}``.
    """
    long = summary[summary["N"] >= min_length]
    base = long[long["method"] == baseline].set_index("N")
    if base.empty:
        return {"adopt": None, "why": f"{baseline!r} not measured at N >= {min_length}",
                "lengths": []}  # fmt: skip
    qualified = {}
    for method, g in long[long["method"] != baseline].groupby("method"):
        g = g.set_index("N")
        lengths = sorted(set(g.index) & set(base.index))
        if not lengths:
            continue
        ok = True
        for n in lengths:
            c, b = g.loc[n], base.loc[n]
            better_success = c["success_seed_min"] > b["success_seed_max"]
            cheaper = math.isfinite(c["cost_seed_max"]) and c["cost_seed_max"] < b["cost_seed_min"]
            ok &= bool(better_success and cheaper)
        if ok:
            qualified[method] = lengths
    if not qualified:
        return {"adopt": None, "lengths": sorted(base.index.tolist()),
                "why": f"no method beats {baseline!r} on both success and cost per solved text "
                       f"by more than the seed spread at every N >= {min_length}"}  # fmt: skip
    at = long[long["method"].isin(list(qualified))]
    solved = at[np.isfinite(at["cost_per_solved"].astype(float))]
    chosen_at = int((solved if len(solved) else at)["N"].max())
    ranked = at[at["N"] == chosen_at].sort_values(
        ["cost_per_solved", "success"], ascending=[True, False], kind="stable"
    )
    winner = str(ranked.iloc[0]["method"])
    return {"adopt": winner, "lengths": qualified[winner], "chosen_at": chosen_at,
            "why": f"{winner} beats {baseline!r} on success and cost per solved text by more "
                   f"than the seed spread at N = {qualified[winner]}, and is the cheapest of the "
                   f"{len(qualified)} that do at N = {chosen_at}"}  # fmt: skip


def success_curve(rows: pd.DataFrame, grid: np.ndarray | None = None) -> pd.DataFrame:
    """Share of rows solved within k evaluations, for k on ``grid``; columns N, method, k,
    solved_share (the success-against-evaluations curve of the study's figure)."""
    out = []
    for (n_tokens, method), g in rows.groupby(["num_tokens", "method"], sort=True):
        ev = evals_to_exact(g).to_numpy(dtype=float)
        ks = grid if grid is not None else np.arange(1, int(g["budget"].max()) + 1)
        share = [(ev <= k).sum() / len(ev) for k in ks]  # NaN <= k is False: unsolved
        out += [
            {"N": int(n_tokens), "method": method, "k": int(k), "solved_share": s}
            for k, s in zip(ks, share)
        ]
    return pd.DataFrame(out)


def plot_optimizer_study(rows: pd.DataFrame, title: str = ""):
    """Success against evaluations: per length N a panel with, per method, the share of rows
    solved within k forward+backward evaluations (the paper's recipe drawn black)."""
    import matplotlib.pyplot as plt

    curve = success_curve(rows)
    lengths = sorted(curve["N"].unique())
    fig, axes = plt.subplots(
        1, len(lengths), figsize=(4.2 * len(lengths), 3.6), squeeze=False, sharey=True
    )
    methods = sorted(curve["method"].unique())
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(methods), 2)))
    for ax, n_tokens in zip(axes[0], lengths):
        at = curve[curve["N"] == n_tokens]
        for color, method in zip(colors, methods):
            c = at[at["method"] == method]
            if c.empty:
                continue
            style = {"color": "black", "lw": 2.2} if method == "paper" else {"color": color}
            ax.step(c["k"], c["solved_share"], where="post", label=method, **style)
        ax.set_title(f"N = {n_tokens} tokens")
        ax.set_xlabel("forward+backward evaluations")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of texts reconstructed exactly")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # a method may be missing at the first length (e.g. N=64: top three)
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def committed_study(path: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The full study as committed by ``bench/optimizer_study.py`` (its summary table and its
    run record with the adoption decision), to show beside a notebook's own smaller study.
    Missing files give an empty table and ``{}``."""
    path = Path(path) if path is not None else COMMITTED_STUDY
    meta_path = path.with_suffix(".json")
    table = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return table, meta


def study_note(summary: pd.DataFrame, committed: pd.DataFrame, meta: dict) -> str:
    """Two lines for a notebook: this run's cheapest method against the paper's recipe, and the
    committed study's size and adoption decision."""
    lines = []
    for n_tokens, at in summary.groupby("N"):
        best = at.iloc[0]  # summarize_optimizer_study sorts by cost per solved text
        paper = at[at["method"] == "paper"]
        ref = (f"; paper: {paper.iloc[0]['success']:.0%} solved, "
               f"{paper.iloc[0]['cost_per_solved']:.3g} evaluations per solved text"
               if len(paper) else "")  # fmt: skip
        lines.append(
            f"This run, N={n_tokens}: cheapest {best['method']} ({best['success']:.0%} solved, "
            f"{best['cost_per_solved']:.3g} evaluations per solved text){ref}."
        )
    if committed.empty:
        lines.append("No committed study found (run bench/optimizer_study.py).")
    else:
        decision = meta.get("decision", {})
        lines.append(
            f"Committed study ({meta.get('texts', '?')} texts x {meta.get('seeds', '?')} seeds, "
            f"lengths {sorted(committed['N'].unique().tolist())}, budget {meta.get('budget', '?')}"
            f" evaluations, {meta.get('device', '?')} {meta.get('dtype', '')}): "
            f"adopt {decision.get('adopt')!r}: {decision.get('why', 'no decision recorded')}."
        )
    return "\n".join(lines)
