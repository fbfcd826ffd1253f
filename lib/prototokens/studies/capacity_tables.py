"""Tables and claim verdicts of the capacity study (paper Table 3, Figs 1 and 3), from the
per-text capacities of :func:`prototokens.studies.capacity.capacity_per_text`.

- :func:`table3`: per model x source x setting: C_tokens as the paper aggregates it (best over
  texts) and the median / IQR over texts, H_LM at capacity (mean ± std, nats and bits), the
  theoretical capacity d·16/log2|V| and utilisation; the paper's values beside ours for the
  paper's models, in columns named ``paper_*``.
- :func:`search_comparison`: grid against progressive search: capacity, steps, seconds.
- :func:`capacity_claims`: holds / does not hold / not measurable, with the numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prototokens.studies.paper_tables import PAPER_TABLE3, paper_model


def table3(per_text: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 3 from per-text capacities (one search mode: filter ``search`` first)."""
    keys = ["model", "source", "label", "setting"]
    out = []
    for k, g in per_text.groupby(keys, sort=False):
        cap = g["capacity"].astype(float)
        at = g[g["capacity"] > 0]
        rec = dict(zip(keys, k))
        theo = float(g["theoretical_capacity"].iloc[0])
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
            theoretical_capacity=round(theo, 1),
            utilisation=float(g["c_tokens"].max()) / theo,
        )
        out.append(rec)
    tab = pd.DataFrame(out)
    if tab.empty:
        return tab
    tab["paper_model"] = tab["model"].map(paper_model)
    paper = PAPER_TABLE3.rename(columns={"model": "paper_model"})
    tab = tab.merge(paper, on=["paper_model", "source", "setting"], how="left")
    return tab


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
    return agg


# ---- claims -------------------------------------------------------------------------------------

HOLDS, FAILS, NOT_MEASURABLE = "holds", "does not hold", "not measurable here"
SHARE_HALVES = (0.25, 0.75)  # "roughly halves": shared/per-text best capacity in this band
AR_NATURAL = (0.15, 0.75)  # natural text: one-pass H_LM about half (up to 5x lower) of AR
AR_RANDOM_CLOSE = 0.7  # random text: one-pass H_LM at least this fraction of AR


def _claim(claim: str, verdict: str, numbers: str) -> dict:
    return {"claim": claim, "verdict": verdict, "numbers": numbers}


def capacity_claims(per_text: pd.DataFrame, ar_per_text: pd.DataFrame | None = None) -> list[dict]:
    """Verdicts on the paper's capacity claims for this run (one model; one-pass rows of one
    search). ``per_text``: :func:`capacity_per_text` rows (settings "per-text" and "shared m");
    ``ar_per_text``: the same for the ``ar-K`` arrangements (may be None)."""
    out = [_random_vs_natural(per_text), _sharing_halves(per_text)]
    out.append(_one_pass_vs_ar(per_text, ar_per_text))
    return out


def _best(df: pd.DataFrame, setting: str) -> pd.Series:
    d = df[df["setting"] == setting]
    return d.groupby("source")["capacity"].max()


def _random_vs_natural(per_text: pd.DataFrame) -> dict:
    name = "random text reaches fewer tokens than natural text (at a higher H_LM per token)"
    best = _best(per_text, "per-text")
    natural = best.drop("random", errors="ignore")
    if "random" not in best or natural.empty:
        return _claim(name, NOT_MEASURABLE, "needs the random source and a natural source")
    cens = per_text[(per_text["setting"] == "per-text")].groupby("source")["censored"].all()
    ok = per_text[(per_text["setting"] == "per-text") & (per_text["capacity"] > 0)]
    per_tok = (ok["h_lm_nats"] / ok["capacity"]).groupby(ok["source"]).mean()
    nums = ", ".join(f"{s} {int(c)}" for s, c in best.items())
    nums += "; H_LM/token (nats) " + ", ".join(f"{s} {v:.2f}" for s, v in per_tok.items())
    if best["random"] == 0 and (natural == 0).all():
        return _claim(name, NOT_MEASURABLE, f"no text reached any length ({nums})")
    if bool(cens.get("random", False)) and (cens.reindex(natural.index).fillna(False)).all():
        return _claim(name, NOT_MEASURABLE, f"every source reached the longest length ({nums})")
    verdict = HOLDS if best["random"] < natural.min() else FAILS
    return _claim(name, verdict, "best C over texts: " + nums)


def _sharing_halves(per_text: pd.DataFrame) -> dict:
    name = "sharing m roughly halves capacity"
    own, shared = _best(per_text, "per-text"), _best(per_text, "shared m")
    common = own.index.intersection(shared.index)
    own, shared = own[common], shared[common]
    if common.empty or (own == 0).all():
        return _claim(name, NOT_MEASURABLE, "needs both settings with a nonzero per-text capacity")
    cens = per_text[per_text["setting"] == "per-text"].groupby("source")["censored"].any()
    ratio = (shared / own.replace(0, np.nan)).dropna()
    nums = ", ".join(f"{s} {int(shared[s])}/{int(own[s])}" for s in common)
    if cens.reindex(common).fillna(False).all():
        return _claim(name, NOT_MEASURABLE, f"per-text capacity censored at the longest ({nums})")
    r = float(ratio.mean())
    lo, hi = SHARE_HALVES
    verdict = HOLDS if lo <= r <= hi else FAILS
    return _claim(name, verdict, f"shared/per-text best: {nums}; mean ratio {r:.2f}")


def _one_pass_vs_ar(per_text: pd.DataFrame, ar: pd.DataFrame | None) -> dict:
    name = "one-pass H_LM at capacity ≈ half of autoregressive for natural text, close for random"
    if ar is None or ar.empty:
        return _claim(name, NOT_MEASURABLE, "no autoregressive (ar-K) search in this run")
    one = per_text[per_text["setting"] == "per-text"]
    ar2 = ar[ar["arrangement"] == "ar-2"] if (ar["arrangement"] == "ar-2").any() else ar
    pair = one.merge(ar2, on=["source", "text_id"], suffixes=("", "_ar"))
    pair = pair[(pair["capacity"] > 0) & (pair["capacity_ar"] > 0)]
    if pair.empty:
        return _claim(name, NOT_MEASURABLE, "no text succeeded in both settings")
    ratio = (pair["h_lm_nats"] / pair["h_lm_nats_ar"]).groupby(pair["source"]).mean()
    cens = pair.groupby("source")["censored_ar"].mean()
    nums = ", ".join(
        f"{s} {ratio[s]:.2f} (AR censored in {cens[s]:.0%} of texts)" for s in ratio.index
    )
    natural = ratio.drop("random", errors="ignore")
    parts = []
    if not natural.empty:
        lo, hi = AR_NATURAL
        nat_c = cens.drop("random", errors="ignore")
        parts.append(
            None if (nat_c > 0.5).all() else bool(((natural >= lo) & (natural <= hi)).all())
        )
    if "random" in ratio:
        parts.append(None if cens["random"] > 0.5 else bool(ratio["random"] >= AR_RANDOM_CLOSE))
    if not parts or any(p is None for p in parts):
        return _claim(
            name, NOT_MEASURABLE, f"one-pass/AR H_LM: {nums}; AR capacity censored at the longest"
        )
    return _claim(name, HOLDS if all(parts) else FAILS, f"one-pass/AR H_LM: {nums}")
