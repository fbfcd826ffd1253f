"""Warm starts that save steps: what the progressive capacity search costs against fresh runs.

The paper measures capacity on a √2 grid of lengths, each from a fresh N(0, 1) init ("fresh"
here). Progressive Cramming grows the text instead and starts each length from the previous
length's solution. Whether that saves evaluations in the one-step scheme is measured, not assumed:
in an early try a warm-started +8 length needed as many steps as a fresh one.

Variants (:data:`VARIANTS`), all with the same recipe, budget per length, texts, seeds and patience:

- ``fresh``: the paper's grid, every length from scratch (the baseline);
- ``grid_warm``: the same lengths, each warm-started from the last row of the same (text, seed),
  vectors and the optimiser's moments kept;
- ``grid_warm_reset``: the same, moments and step count reset (vectors kept);
- ``stepK``: lengths K, 2K, 3K, ... warm-started with moments kept (the step size of the growth).

Measures per text (:func:`summarize_warm_starts`): the capacity reached (longest exact length),
the evaluations the whole search spent (a row spends ``steps_to_1 + 1`` when solved, its whole
run otherwise: :func:`prototokens.studies.optimizers.evals_spent`), and the evaluations spent up
to and including the capacity. Per length (:func:`cost_per_length`): the evaluations a warm-started
length costs against a fresh run at the same length. The aim, from the cost-per-solved-text
issue: the fresh grid's capacity in at most a third of its evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from prototokens.engine.progress import progress_label
from prototokens.engine.recipe import Recipe
from prototokens.studies.capacity import grid_lengths, search_capacity, step_lengths
from prototokens.studies.optimizers import evals_spent, pick


@dataclass(frozen=True)
class Variant:
    """How one capacity search of the study runs: ``mode`` of :func:`search_capacity`, the
    lengths (``step=None``: the √2 grid; else ``step, 2*step, ...``) and the warm start's
    moments (kept or reset)."""

    name: str
    mode: str
    step: int | None = None
    warm_moments: bool = True

    def lengths(self, max_length: int) -> list[int]:
        if self.step is None:
            return grid_lengths(max_length)
        return step_lengths(max_length, self.step, start=self.step)


VARIANTS = {
    v.name: v
    for v in (
        Variant("fresh", "grid"),
        Variant("grid_warm", "progressive"),
        Variant("grid_warm_reset", "progressive", warm_moments=False),
        Variant("step4", "progressive", step=4),
        Variant("step8", "progressive", step=8),
        Variant("step16", "progressive", step=16),
    )
}


def study_variants(names: Sequence[str] | None = None) -> dict[str, Variant]:
    """The study's variants (all, or ``names`` in that order; unknown names raise)."""
    return pick(VARIANTS, names, "warm-start variants")


def run_warm_start_study(
    lm,
    texts: Sequence,
    variants: dict[str, Variant],
    recipe: Recipe,
    *,
    max_length: int,
    seeds: Sequence[int] = (0,),
    patience: int = 1,
    store=None,
    batch_size: int = 16,
    log: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Every variant's capacity search over ``texts`` (at least ``max_length`` tokens each);
    the attempt rows of all searches with ``variant`` and ``evals`` (spent) added. Rows are
    cached rows of :func:`~prototokens.engine.reconstruction.reconstruct`: a rerun resumes."""
    short = [t.text_id for t in texts if len(t.token_ids) < max_length]
    if short:
        raise ValueError(f"texts shorter than max_length={max_length}: {short[:3]}")
    if not variants:
        raise ValueError("no variants: nothing to study")
    frames = []
    for name, v in variants.items():
        if log:
            log(f"warm-start study: {name} ({len(texts)} texts x {len(seeds)} seeds)")
        with progress_label(f"warm-start study {name}"):
            rows = search_capacity(
                lm, texts, mode=v.mode, recipe=recipe, seeds=seeds, lengths=v.lengths(max_length),
                patience=patience, store=store, batch_size=batch_size, warm_moments=v.warm_moments,
            )  # fmt: skip
        frames.append(rows.assign(variant=name))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(evals=evals_spent(out))


def per_text(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, text): capacity (longest exact length, 0 when none), evaluations
    of the whole search, evaluations up to and including the capacity, lengths tried."""
    out = []
    for (variant, text), g in rows.groupby(["variant", "text_id"], sort=False):
        good = g[g["success"].astype(bool)]
        cap = int(good["num_tokens"].max()) if len(good) else 0
        out.append(
            {
                "variant": variant,
                "text_id": text,
                "capacity": cap,
                "evals": float(g["evals"].sum()),
                "evals_to_capacity": float(g.loc[g["num_tokens"] <= cap, "evals"].sum()),
                "lengths_tried": int(g["num_tokens"].nunique()),
            }
        )
    return pd.DataFrame(out)


def summarize_warm_starts(rows: pd.DataFrame, baseline: str = "fresh") -> pd.DataFrame:
    """One row per variant: texts, median and mean capacity, median evaluations of the search and
    to the capacity, and per text against ``baseline`` (median ratios): evaluations, capacity;
    ``meets_aim``: every text the baseline solved at some length reaches the baseline's capacity
    in at most a third of the baseline's evaluations to that capacity, counting the variant's
    evaluations at lengths up to the baseline's capacity only (what it spends beyond, on longer
    texts the baseline never reached, is a gain, not a cost of matching it); None: the baseline
    solved none, so there is nothing to meet."""
    texts = per_text(rows)
    base = texts[texts["variant"] == baseline].set_index("text_id")
    base_cap = rows["text_id"].map(base["capacity"])
    upto = rows[rows["num_tokens"] <= base_cap].groupby(["variant", "text_id"])["evals"].sum()
    out = []
    for variant, g in texts.groupby("variant", sort=False):
        g = g.set_index("text_id")
        rec = {
            "variant": variant,
            "texts": len(g),
            "capacity_median": float(g["capacity"].median()),
            "capacity_mean": float(g["capacity"].mean()),
            "evals_median": float(g["evals"].median()),
            "evals_to_capacity_median": float(g["evals_to_capacity"].median()),
        }
        common = g.index.intersection(base.index)
        if len(common) and variant != baseline:
            b = base.loc[common]
            rec["evals_vs_baseline"] = float((g.loc[common, "evals"] / b["evals"]).median())
            rec["capacity_vs_baseline"] = float(
                (g.loc[common, "capacity"] / b["capacity"].replace(0, np.nan)).median()
            )
            solved = b.index[b["capacity"] > 0]  # the aim is about texts the baseline solved
            to_base = upto.reindex([(variant, t) for t in solved]).fillna(0.0).to_numpy()
            ratio = to_base / b.loc[solved, "evals_to_capacity"].to_numpy()
            rec["evals_to_baseline_capacity_vs_baseline"] = (
                float(np.median(ratio)) if len(solved) else None
            )
            rec["meets_aim"] = (
                bool((g.loc[solved, "capacity"] >= b.loc[solved, "capacity"]).all()
                     and (ratio <= 1 / 3).all())
                if len(solved)
                else None
            )  # fmt: skip
        out.append(rec)
    return pd.DataFrame(out)


def cost_per_length(rows: pd.DataFrame, baseline: str = "fresh") -> pd.DataFrame:
    """Per variant and length: rows, share solved, mean evaluations spent, and the baseline's mean
    at the same length (NaN where the baseline did not try that length)."""
    table = (
        rows.groupby(["variant", "num_tokens"], sort=False)
        .agg(rows=("evals", "size"), solved=("success", "mean"), evals_mean=("evals", "mean"))
        .reset_index()
    )
    base = table[table["variant"] == baseline].set_index("num_tokens")["evals_mean"]
    table["baseline_evals_mean"] = table["num_tokens"].map(base)
    return table.rename(columns={"num_tokens": "N"})


def plot_warm_starts(rows: pd.DataFrame, title: str = ""):
    """Per variant, the longest exact length a text has reached against the evaluations its
    search has spent so far (one thin line per text, the fresh grid drawn black)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    variants = list(dict.fromkeys(rows["variant"])) if len(rows) else []
    colors = plt.get_cmap("tab10")(np.arange(max(len(variants), 1)) % 10)
    for color, variant in zip(colors, variants):
        style = {"color": "black", "lw": 2.0} if variant == "fresh" else {"color": color}
        for i, (_, g) in enumerate(rows[rows["variant"] == variant].groupby("text_id")):
            g = g.sort_values("round")
            spent = g.groupby("round")["evals"].sum().cumsum()
            solved = g.groupby("round").apply(
                lambda r: r.loc[r["success"].astype(bool), "num_tokens"].max(), include_groups=False
            )
            reached = solved.fillna(0).cummax()
            ax.step(spent.values, reached.values, where="post", alpha=0.8,
                    label=variant if i == 0 else None, **style)  # fmt: skip
    if not variants:
        ax.text(0.5, 0.5, "no study rows", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("forward+backward evaluations spent by the search")
    ax.set_ylabel("longest exact length (tokens)")
    ax.grid(alpha=0.3)
    if variants:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
