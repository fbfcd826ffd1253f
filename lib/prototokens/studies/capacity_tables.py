"""Tables and claim verdicts of the capacity study (paper Table 3, Figs 1 and 3), from the
per-text capacities of :func:`prototokens.studies.capacity.capacity_per_text`.

- :func:`table3`: per model x arrangement x source x setting (a paper model has two
  arrangements, plain Eq. 1 and ours, so two rows where any other model has one): C_tokens as
  the paper aggregates it (best over texts) and the median / IQR over texts, H_LM at capacity
  (mean ± std, nats and bits), the theoretical capacity of the vectors one text owns
  (``vectors_per_text`` x d·16/log2|V|) and utilisation (:mod:`prototokens.studies.measures`);
  beside every model the paper's values for the paper's nearest model by size (itself for the
  paper's six; Pythia-160M for SmolLM2-135M), in columns named ``paper_*`` with
  ``paper_model`` naming it as the paper's.
- :func:`search_comparison`: grid against progressive search: capacity, steps, seconds.
- :func:`capacity_claims`: the paper's capacity claims as :class:`~prototokens.studies.claims.Claim`
  records (rules in :mod:`prototokens.studies.capacity_claims`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prototokens.studies.capacity_claims import capacity_claims  # noqa: F401 (03 imports it here)
from prototokens.studies.measures import trained_vectors_per_text, utilisation
from prototokens.studies.paper_tables import PAPER_TABLE3, nearest_paper_model, paper_name


def table3(per_text: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 3 from per-text capacities (one search mode: filter ``search`` first).

    A shared m is shared by the texts of one source (:func:`run_capacity`), so the group size
    of the "shared m" setting is the number of texts in that row. Arrangements are never
    pooled: a model searched under two (a paper model: plain Eq. 1, then ours) has two rows per
    source and setting, side by side in the order searched, the primary one first."""
    keys = ["model", "arrangement", "source", "label", "setting"]
    out = []
    for k, g in per_text.groupby(keys, sort=False):
        cap = g["capacity"].astype(float)
        at = g[g["capacity"] > 0]
        rec = dict(zip(keys, k))
        vectors = trained_vectors_per_text(rec["setting"], len(g))
        one = float(g["theoretical_capacity"].iloc[0])  # one vector's d·16/log2|V|
        rec.update(
            n_texts=len(g),
            c_tokens_best=int(g["c_tokens"].max()),
            capacity_best=int(cap.max()),
            capacity_median=float(cap.median()),
            capacity_q1=float(cap.quantile(0.25)),
            capacity_q3=float(cap.quantile(0.75)),
            censored_texts=int(g["censored"].sum()),
            h_lm_nats_mean=float(at["h_lm_nats"].mean()) if len(at) else np.nan,
            h_lm_nats_std=float(at["h_lm_nats"].std(ddof=0)) if len(at) else np.nan,
            h_lm_bits_mean=float(at["h_lm_bits"].mean()) if len(at) else np.nan,
            h_lm_bits_std=float(at["h_lm_bits"].std(ddof=0)) if len(at) else np.nan,
            vectors_per_text=vectors,
            theoretical_capacity=round(one * vectors, 1),  # of the vectors one text owns
            utilisation=utilisation(g["c_tokens"].max(), one, vectors),
        )
        out.append(rec)
    tab = pd.DataFrame(out)
    if tab.empty:
        return tab
    # a model's arrangements side by side per source and setting (one arrangement: as grouped)
    row = pd.Series(list(zip(tab["model"], tab["source"], tab["label"], tab["setting"])))
    first = row.map({r: i for i, r in enumerate(dict.fromkeys(row))})
    tab = tab.loc[first.sort_values(kind="stable").index].reset_index(drop=True)
    tab["paper_model"] = tab["model"].map(nearest_paper_model)
    paper = PAPER_TABLE3.rename(columns={"model": "paper_model"})
    tab = tab.merge(paper, on=["paper_model", "source", "setting"], how="left")
    tab["paper_model"] = tab["paper_model"].map(paper_name, na_action="ignore")
    return tab


SEARCH_COMPARISON_COLUMNS = [
    "model", "source", "setting", "search", "n_texts", "capacity_mean", "capacity_median",
    "total_steps", "rows", "seconds", "steps_vs_first", "seconds_vs_first",
]  # fmt: skip


def search_comparison(per_text: pd.DataFrame, attempts: pd.DataFrame) -> pd.DataFrame:
    """Grid against progressive (and restart variants, as ``search`` labels): mean capacity,
    texts where it beats / ties / loses against the first search, total steps and seconds (the sum
    over length rounds of the slowest row's wall time in that round)."""
    keys = ["model", "source", "setting", "search"]
    secs = attempts.groupby(keys + ["round"]).wall_time_s.max().groupby(keys).sum()
    agg = per_text.groupby(keys, sort=False).agg(
        n_texts=("text_id", "size"),
        capacity_mean=("capacity", "mean"),
        capacity_median=("capacity", "median"),
        total_steps=("steps", "sum"),
        rows=("rows", "sum"),
    )
    agg["seconds"] = secs.reindex(agg.index)
    agg = agg.reset_index()
    base = agg.groupby(["model", "source", "setting"]).transform("first")
    agg["steps_vs_first"] = agg["total_steps"] / base["total_steps"].clip(lower=1)
    agg["seconds_vs_first"] = agg["seconds"] / base["seconds"].clip(lower=1e-9)
    return agg[SEARCH_COMPARISON_COLUMNS]
