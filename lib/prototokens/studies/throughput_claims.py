"""The paper's throughput claim (Sec. 11, Fig. 4) judged on notebook 07's timings.

The paper's 279x is an average over models of (one-pass throughput / autoregressive throughput),
each at the longest length that model reconstructs losslessly (90 to 724 tokens): the speed-up
grows with N (N forward passes against one), so a speed-up timed at a length the model cannot
reconstruct is not the paper's quantity. Here each model is judged at the longest timed length N
not above its measured capacity, read from the result store's rows (notebooks 02-06 write them:
the longest N any default-arrangement row without sharing reconstructed at accuracy >= 0.99).

The speed-up at length N is at most about N (N sequential forwards against one forward over N
positions, which costs no less than one decoding step), so where the judged lengths average below
the threshold the threshold cannot be reached: the claim is then inconclusive (budget), since the
capacity this run's budget reached, not the claim, decides it.
"""

from __future__ import annotations

import pandas as pd

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
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

PAPER_SPEEDUP = 279.0
SPEEDUP_MIN = PAPER_SPEEDUP / 2  # holds at the paper's order of magnitude: >= half its 279x
MIN_REPEATS = 3  # timed calls behind each median

SPEEDUP = ClaimSpec(
    id="07.speedup_279x",
    claim="one forward pass reconstructs a text about 279x faster than autoregressive decoding",
    where="Sec. 11, Fig. 4",
    paper="279x on average (A100/H100, batch 1, at each model's capacity: 90-724 tokens)",
    rule=(
        "batch 1, transformers generate as the baseline: mean over models of the speed-up at "
        "each model's measured capacity length (the longest timed N <= capacity) >= "
        f"{sig(SPEEDUP_MIN)}x (half the paper's); needs >= {MIN_REPEATS} timed repeats and "
        f"judged lengths averaging >= {sig(SPEEDUP_MIN)} tokens (the speed-up at N is at most "
        "about N)"
    ),
)


def capacity_lengths(rows: pd.DataFrame | None, arrangement: str = DEFAULT_ARRANGEMENT) -> dict:
    """``{model: longest N reconstructed}`` from stored rows (accuracy >= 0.99, nothing shared)."""
    need = {"model", "num_tokens", "accuracy", "arrangement"}
    if rows is None or rows.empty or not need <= set(rows.columns):
        return {}
    r = rows[(rows.arrangement == arrangement) & (rows.accuracy >= SOLUTION_ACCURACY)]
    if "share" in r:
        r = r[r["share"].isna() | (r["share"] == "none")]
    return {m: int(n) for m, n in r.groupby("model").num_tokens.max().items()}


def throughput_claims(timings: pd.DataFrame, stored_rows: pd.DataFrame | None) -> list[Claim]:
    """Notebook 07's claim. ``timings``: :func:`throughput.run_throughput` rows (model, method,
    num_tokens, batch_size, tok_s, repeats); ``stored_rows``: the result store's rows."""
    spec = SPEEDUP
    ok = timings[timings["tok_s"].notna()] if "tok_s" in timings else timings.iloc[:0]
    b1 = ok[ok.batch_size == 1] if len(ok) else ok
    wide = (
        b1.pivot_table(index=["model", "num_tokens"], columns="method", values="tok_s")
        if len(b1)
        else pd.DataFrame()
    )
    if not wide.empty and {"one_forward", "ar_generate"} <= set(wide.columns):
        wide = wide.dropna(subset=["one_forward", "ar_generate"])  # a failed shape is no timing
    if wide.empty or not {"one_forward", "ar_generate"} <= set(wide.columns):
        return [spec.inconclusive(NOT_RUN, "no batch-1 timing of both methods", "-", "0")]
    caps = capacity_lengths(stored_rows)
    judged, notes = {}, []
    for model, g in wide.groupby(level="model"):
        lengths = sorted(g.index.get_level_values("num_tokens"))
        cap = caps.get(model)
        fit = [n for n in lengths if cap is not None and n <= cap]
        if not fit:
            notes.append(f"{model}: capacity {cap if cap is not None else 'unknown'}, "
                         f"timed N = {', '.join(map(str, lengths))}")  # fmt: skip
            continue
        n = fit[-1]
        row = g.loc[(model, n)]
        judged[model] = (n, cap, float(row["one_forward"] / row["ar_generate"]))
    ours = "; ".join(f"{m}: {sig(s)}x at N = {n} (capacity {c})" for m, (n, c, s) in judged.items())
    ours = "; ".join([x for x in (ours, *notes) if x])
    repeats = int(b1["repeats"].min()) if "repeats" in b1 else 0
    n = n_of(models=len(judged), repeats=repeats)
    if not judged:
        reason = NOT_RUN if not caps else NOT_SOLUTIONS
        detail = (
            "no stored rows give a capacity (run 03 first)"
            if not caps
            else "every timed length is longer than the model reconstructs"
        )
        return [spec.inconclusive(reason, detail, ours, n)]
    if repeats < MIN_REPEATS:
        return [spec.inconclusive(TOO_FEW, f"{repeats} repeats < {MIN_REPEATS}", ours, n)]
    mean = sum(s for _, _, s in judged.values()) / len(judged)
    mean_n = sum(n_tok for n_tok, _, _ in judged.values()) / len(judged)
    if mean_n < SPEEDUP_MIN:
        detail = (
            f"judged at N averaging {sig(mean_n)} tokens, where the speed-up is at most about "
            f"N < {sig(SPEEDUP_MIN)}x: the capacities this budget reached decide it"
        )
        return [spec.inconclusive(BUDGET, detail, f"mean {sig(mean)}x; {ours}", n)]
    return [spec.judge(mean >= SPEEDUP_MIN, f"mean {sig(mean)}x; {ours}", n)]
