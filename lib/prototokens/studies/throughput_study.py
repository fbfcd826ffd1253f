"""What notebook 07 reports from its measurements (:mod:`prototokens.studies.throughput`).

- :func:`measurement_errors`: the models or shapes that could not be timed, and why;
- :func:`tab4_or_note`: Table 4 from the stored rows of notebooks 03/05, or a one-row table that
  says why there is none yet (nothing is re-measured);
- :func:`headline_speedups`: the one pass's mean speed-up at batch 1 against ``generate`` and
  against the strong baseline (the paper's 279x is the first);
- :func:`where_measured`: the device and dtype the timings come from;
- :func:`throughput_metrics`: the metrics dict of notebook 07 (finite numbers or None).
"""

from __future__ import annotations

import pandas as pd

from prototokens.studies.claims import verdicts
from prototokens.studies.summaries import finite
from prototokens.studies.throughput import training_time_table


def measurement_errors(df: pd.DataFrame) -> pd.DataFrame:
    """``model, error`` of every measurement that failed (empty when all ran)."""
    if "error" not in df:
        return pd.DataFrame(columns=["model", "error"])
    return df[df.error.notna()][["model", "error"]]


def tab4_or_note(stored: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Table 4 (:func:`training_time_table`) from ``stored`` rows and a line saying where it comes
    from; without usable rows, a one-row table whose ``note`` says to run 03 and 05 first."""
    tab4 = training_time_table(stored)
    if not tab4.empty:
        ours = tab4[tab4.origin == "ours"]
        recipe = f"{ours.recipe.iloc[0]} recipe, {int(ours.max_steps.iloc[0])} steps"
        return tab4, (
            f"Table 4 from {int(ours.rows.sum())} stored rows trained from scratch ({recipe}), "
            f"device(s): {sorted(ours.device.unique())}; rows of origin 'paper': the paper's "
            "Table 4 for its model nearest in size (A100/H100)"
        )
    note = (
        f"no converged rows of notebooks 03/05 in this outputs folder's result store yet "
        f"({len(stored)} rows stored): run 03_metrics and 05 first; nothing is re-measured here"
    )
    row = {"model": "-", "device": "-", "num_tokens": None, "rows": 0, "note": note}
    return pd.DataFrame([row]), note


def headline_speedups(speedups: pd.DataFrame) -> tuple[float, float]:
    """Mean over models of the one pass's speed-up at batch 1 and each model's longest N:
    ``(against generate, against the strong baseline)``; NaN where nothing was measured."""
    ok = speedups.dropna(subset=["one_forward"]) if not speedups.empty else speedups
    if ok.empty:
        return float("nan"), float("nan")
    b1 = ok[ok.batch_size == 1]
    b1 = b1[b1.num_tokens == b1.groupby("model").num_tokens.transform("max")]
    if b1.empty:
        return float("nan"), float("nan")
    return float(b1.speedup_vs_generate.mean()), float(b1.speedup_vs_strong.mean())


def where_measured(df: pd.DataFrame, device) -> str:
    """``"<device name>, <dtype>"`` of the measurements, else the resolved ``device``."""
    if "device_name" in df:
        return f"{df.device_name.dropna().iloc[0]}, {df.dtype.dropna().iloc[0]}"
    return str(device)


def throughput_metrics(
    df: pd.DataFrame, speedups: pd.DataFrame, tab4: pd.DataFrame, device, claims=()
) -> dict:
    """Notebook 07's metrics from its measurements ``df`` (:func:`run_throughput`), their
    speed-ups, Table 4, the resolved ``device`` and the claims' records (their verdicts are the
    only judgement of the 279x here: the ledger's rule, at each model's capacity). Ratios that
    could not be measured are None."""
    vs_generate, vs_strong = (finite(x) for x in headline_speedups(speedups))
    timed = df.dropna(subset=["tok_s"]) if "tok_s" in df else df
    one_b1 = df[(df.method == "one_forward") & (df.batch_size == 1)].tok_s if "tok_s" in df else []
    random_init = (
        sorted(df[df.random_init.fillna(False).astype(bool)].model.unique().tolist())
        if "random_init" in df
        else []
    )
    return {
        "device": where_measured(df, device),
        "models": sorted(df.model.dropna().unique().tolist()),
        "random_init_models": random_init,
        "mean_speedup_vs_generate_b1": vs_generate,
        "mean_speedup_vs_strong_b1": vs_strong,
        "claims": verdicts(claims),
        "max_one_forward_tok_s": finite(one_b1.max()) if len(one_b1) else None,
        "bound_ratio": {
            m: finite(g.fraction_of_bound.max()) for m, g in timed.groupby("method")
        },
        "strong_tokens_match_generate": (
            bool(df.tokens_match_generate.dropna().all()) if "tokens_match_generate" in df else None
        ),
        "n_measurements": int(len(timed)),
        "n_errors": int(df.error.notna().sum()) if "error" in df else 0,
        "n_tab4_rows": int(tab4.rows.sum()),
    }
