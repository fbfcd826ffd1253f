"""What notebook 03 runs, per model, and the numbers it reports (paper Table 3, Figs 1 and 3).

- :func:`run_capacity_study`: for one loaded model, the grid capacity search in both settings of
  Table 3 (m per text, one m shared per source) under each of its arrangements (a paper model:
  plain Eq. 1, then ours beside it; any other: ours alone,
  :func:`prototokens.studies.families.model_arrangements`) and the autoregressive searches of
  Fig. 3 (``ar-K`` arrangements on the first texts of some sources).
- :func:`run_capacity_models`: that study on the session's model and then on further model specs,
  loaded one at a time through :func:`prototokens.studies.families.run_model_families` (the same
  loop as notebook 05); returns the one-pass rows and the autoregressive rows apart.
- :func:`run_search_comparison`: the progressive search on some sources, set beside the grid rows
  of the same texts (:func:`prototokens.studies.capacity_tables.search_comparison`).
- :func:`capacity_metrics`: the metrics dict of notebook 03.

Every search goes through the cached row store, so these functions cost nothing on a rerun.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import pandas as pd

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.studies import families
from prototokens.studies.capacity import capacity_per_text, run_capacity
from prototokens.studies.capacity_tables import SEARCH_COMPARISON_COLUMNS, search_comparison
from prototokens.studies.claims import verdicts
from prototokens.studies.summaries import finite

# Table 3 as notebook 03 saves it (tab3_capacity): the columns a reader compares with the paper
TABLE3_COLUMNS = [
    "model", "arrangement", "label", "setting", "n_texts", "c_tokens_best", "capacity_median",
    "capacity_q1", "capacity_q3", "censored_texts", "h_lm_nats_mean", "h_lm_nats_std",
    "h_lm_bits_mean", "h_lm_bits_std", "vectors_per_text", "theoretical_capacity", "utilisation",
    "paper_model", "paper_c_tokens", "paper_h_lm_mean", "paper_h_lm_std",
]  # fmt: skip


def describe_texts(texts_by_source: Mapping[str, Sequence]) -> str:
    """One line per source: how many texts of how many tokens, and the source's label."""
    return "\n".join(
        f"{src}: {len(ts)} texts of {ts[0].num_tokens} tokens ({ts[0].label})"
        for src, ts in texts_by_source.items()
    )


def run_capacity_study(
    lm,
    texts_by_source: Mapping[str, Sequence],
    *,
    ar_sources: Sequence[str] = ("pg19", "random"),
    ar_num_texts: int = 3,
    ar_arrangements: Sequence[str] = ("ar-1", "ar-2"),
    bisect: bool = False,
    arrangements: Sequence[str] = (DEFAULT_ARRANGEMENT,),
    **search,
) -> pd.DataFrame:
    """One model: the grid search with m per text and with m shared (``bisect`` on the first)
    under each of ``arrangements`` in turn (:func:`run_capacity_models` gives a paper model the
    paper's plain Eq. 1 and ours beside it, any other model ours alone), then every
    ``ar_arrangements`` search on the first ``ar_num_texts`` texts of each of ``ar_sources``
    that is present. Rows of all searches in that order (the ``arrangement`` column tells them
    apart); ``search`` goes to :func:`run_capacity` (recipe, seeds, max_length, patience, store,
    batch_size)."""
    if not ar_arrangements:
        raise ValueError("ar_arrangements is empty: Fig. 3 needs at least one ar-K arrangement")
    if isinstance(arrangements, str) or not arrangements:
        raise ValueError(f"arrangements must be a non-empty list, got {arrangements!r}")
    grid = [
        run_capacity(lm, texts_by_source, settings=(None, "m"), mode="grid", bisect=bisect,
                     arrangement=a, **search)
        for a in arrangements
    ]  # fmt: skip
    ar_texts = {s: texts_by_source[s][:ar_num_texts] for s in ar_sources if s in texts_by_source}
    ar_rows = [
        run_capacity(lm, ar_texts, settings=(None,), arrangement=a, **search)
        for a in ar_arrangements
    ]
    return pd.concat([*grid, *ar_rows], ignore_index=True)


def run_capacity_models(
    lm,
    texts_for: Callable[[object], Mapping[str, Sequence]],
    other_models: Sequence[str] = (),
    *,
    device: str = "auto",
    ar_arrangements: Sequence[str] = ("ar-1", "ar-2"),
    **study,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`run_capacity_study` on ``lm`` (already loaded), then on each of ``other_models``,
    loaded one at a time and released (a model that cannot load is printed and skipped).
    ``texts_for(lm)`` gives each model its texts (:func:`families.texts_for_sources`). Each
    model is searched under every arrangement :func:`families.model_arrangements` gives it, its
    primary one first (a paper model: plain Eq. 1, then ours; any other: ours alone). Returns
    ``(attempts, ar_attempts)``: the one-pass rows and the autoregressive rows of every model."""

    def study_one(model, texts):
        arrangements = families.model_arrangements(model.name)
        return run_capacity_study(
            model, texts, ar_arrangements=ar_arrangements, arrangements=arrangements, **study
        )

    frames = [study_one(lm, texts_for(lm))]
    if other_models:
        runs = families.run_model_families(
            list(other_models),
            texts_for,
            device=device,
            search=study_one,
            on_model=families.print_run,
            require_one=False,
        )
        frames += [r.attempts for r in runs if r.status == "ok"]
    rows = pd.concat(frames, ignore_index=True)
    is_ar = rows["arrangement"].isin(list(ar_arrangements))
    return rows[~is_ar].reset_index(drop=True), rows[is_ar].reset_index(drop=True)


def run_search_comparison(
    lm,
    texts_by_source: Mapping[str, Sequence],
    attempts: pd.DataFrame,
    sources: Sequence[str],
    **search,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The progressive search (m per text) on the texts of ``sources``, beside the grid rows of
    ``attempts`` on the same texts and arrangement (a paper model's grid also holds plain Eq. 1
    rows, which the progressive search, under ``search``'s arrangement, does not run). Returns
    ``(comparison table, progressive rows)``; both empty when ``sources`` is (no comparison
    asked for, as in a long reference run that spends its time on Table 3)."""
    if not list(sources):
        empty = attempts.iloc[:0].assign(warm_started=pd.Series(dtype=bool))
        return pd.DataFrame(columns=SEARCH_COMPARISON_COLUMNS), empty
    texts = {s: texts_by_source[s] for s in sources if s in texts_by_source}
    if not texts:
        raise ValueError(f"none of the comparison sources {list(sources)} has texts here")
    prog = run_capacity(lm, texts, settings=(None,), mode="progressive", **search)
    same = attempts.arrangement.isin(list(prog.arrangement.unique()))
    grid = attempts[(attempts.setting == "per-text") & attempts.source.isin(list(texts)) & same]
    both = pd.concat([grid, prog], ignore_index=True)
    return search_comparison(capacity_per_text(both), both), prog


def capacity_metrics(
    lm,
    recipe,
    *,
    lengths: Sequence[int],
    patience: int,
    num_seeds: int,
    max_length: int,
    texts_by_source: Mapping[str, Sequence],
    tab3: pd.DataFrame,
    per_text: pd.DataFrame,
    comparison: pd.DataFrame,
    progressive: pd.DataFrame,
    attempts: pd.DataFrame,
    ar_attempts: pd.DataFrame,
    claims=(),
) -> dict:
    """Notebook 03's metrics: capacity per source and setting (``lm``'s rows of its primary
    arrangement, :func:`families.primary_rows`), the search comparison, how many texts stopped
    early, the claims' verdicts (:func:`prototokens.studies.claims.verdicts`)."""
    own = families.primary_rows(tab3[tab3["model"] == lm.name]) if len(tab3) else tab3
    capacity = {
        f"{r.source}/{r.setting}": {
            "best": int(r.capacity_best),
            "median": float(r.capacity_median),
            "h_lm_nats_mean": finite(r.h_lm_nats_mean),
            "utilisation": float(r.utilisation),
            "num_texts": int(r.n_texts),
        }
        for r in own.itertuples()
    }
    search = {
        f"{r.source}/{r.search}": {
            "capacity_mean": float(r.capacity_mean),
            "total_steps": int(r.total_steps),
            "seconds": float(r.seconds),
        }
        for r in comparison.itertuples()
    }
    return {
        "device": str(lm.device),
        "model": lm.name,
        "recipe": recipe.name,
        "max_steps": recipe.max_steps,
        "lengths": list(lengths),
        "patience": patience,
        "num_seeds": num_seeds,
        "sources": {src: ts[0].label for src, ts in texts_by_source.items()},
        "capacity": capacity,
        "lengths_tried_max": int(per_text.lengths_tried.max()),
        "early_stopped_fraction": float((per_text.max_tried < max_length).mean()),
        "search": search,
        "progressive_warm_started_fraction": (
            float(progressive.warm_started.mean()) if len(progressive) else None
        ),
        "claims": verdicts(claims),
        "num_rows": int(len(attempts) + len(ar_attempts) + len(progressive)),
    }
