"""The paper's capacity claims (Sec. 5, Table 3, Fig. 3) judged on per-text capacities.

Inputs are rows of :func:`prototokens.studies.capacity.capacity_per_text` for one model and one
search: one row per (setting, source, text) of one arrangement. Where the model was searched
under two (a paper model: the paper's plain Eq. 1, then ours beside it), the claims are judged on
its primary arrangement, the first (:func:`prototokens.studies.families.primary_rows`): they are
claims about the paper's setup, and pooling two arrangements would count every text twice. Each
row has ``capacity`` (0 when no length succeeded),
``h_lm_nats`` at capacity, ``censored`` (the text succeeded at the longest length tried, so its
capacity is a lower bound) and ``lengths_tried``. Every claim is decided on texts as independent
samples (one number per text), never on a single best text alone.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd

from prototokens.studies.claims import (
    BUDGET,
    CENSORED,
    NOT_RUN,
    TOO_FEW,
    Claim,
    ClaimSpec,
    n_of,
    sig,
)
from prototokens.studies.families import primary_rows

MIN_TEXTS = 3  # per side of every comparison
ALPHA = 0.05  # one-sided significance of the rank test
SHARE_BAND = (0.30, 0.65)  # "roughly halves": median shared/per-text capacity; one sqrt(2) step
# (0.71) fails, two (0.5) and three (0.35) pass
AR_NATURAL = (0.20, 0.75)  # one-pass/AR H_LM for natural text: "most often 2x, up to 5x lower"
AR_RANDOM = 0.70  # random text: one-pass H_LM at least this fraction of AR ("very similar")

RANDOM_FEWER = ClaimSpec(
    id="03.random_fewer_tokens",
    claim="random text reaches fewer tokens than natural text",
    where="Sec. 5, Table 3",
    paper="Llama-3.2-1B: random 256 vs natural 362 tokens (every model lower on random)",
    rule=(
        "for every natural source: random's best capacity over texts is lower (holds) or higher "
        "(does not hold); a tie on the best is decided by the medians over texts, a tie on both "
        f"is inconclusive; needs >= {MIN_TEXTS} texts per source and random not censored"
    ),
)
RANDOM_DENSER = ClaimSpec(
    id="03.random_higher_h_per_token",
    claim="random text carries more H_LM per token than natural text",
    where="Sec. 5, Table 3",
    paper="≈ 5.6 per token on random vs 2.8-3.0 on natural text",
    rule=(
        "H_LM at capacity / capacity per text: random higher than natural (all natural sources "
        f"pooled) by a one-sided Mann-Whitney test at p < {ALPHA} (holds), else does not hold; "
        "needs texts with a capacity on both sides, enough for p < alpha to be possible"
    ),
)
SHARING_HALVES = ClaimSpec(
    id="03.sharing_halves",
    claim="sharing m across texts roughly halves capacity",
    where="Sec. 5, Table 3",
    paper="Llama-3.2-1B 362 -> 181; median shared/per-text ratio over Table 3 ≈ 0.5",
    rule=(
        "median over texts of shared-m / per-text capacity (paired per text) in "
        f"[{SHARE_BAND[0]}, {SHARE_BAND[1]}] (one sqrt(2) grid step, 0.71, fails); needs >= "
        f"{MIN_TEXTS} texts whose per-text capacity is > 0 and not censored; a shared capacity "
        "of 0 counts only where the band's lower end of the per-text capacity reaches the "
        "shortest length tried (else it lies below the grid, where halving would also put it)"
    ),
)
AR_NATURAL_HALF = ClaimSpec(
    id="03.ar_natural_half",
    claim="for natural text one pass holds about half the H_LM of autoregressive decoding",
    where="Sec. 5, Fig. 3",
    paper="one-pass H_LM most often ≈ 2x lower, up to 5x lower",
    rule=(
        "median over natural texts of one-pass / AR H_LM at capacity (paired per text) in "
        f"[{AR_NATURAL[0]}, {AR_NATURAL[1]}]; needs >= {MIN_TEXTS} texts with a capacity in both "
        "and at most half of them censored"
    ),
)
AR_RANDOM_CLOSE = ClaimSpec(
    id="03.ar_random_close",
    claim="for random text one pass holds about as much H_LM as autoregressive decoding",
    where="Sec. 5, Fig. 3",
    paper="very similar, sometimes identical",
    rule=(
        f"median over random texts of one-pass / AR H_LM at capacity >= {AR_RANDOM}; needs >= "
        f"{MIN_TEXTS} texts with a capacity in both and at most half of them censored"
    ),
)
# (AR arrangement, one-pass setting) of Fig. 3: right panel, then left panel
AR_PAIRS = (("ar-2", "per-text"), ("ar-1", "shared m"))


def capacity_claims(
    per_text: pd.DataFrame, ar_per_text: pd.DataFrame | None = None, seeds: int = 1
) -> list[Claim]:
    """The five capacity claims for one model and search. ``per_text``: settings "per-text" and
    "shared m", judged on the model's primary arrangement where it holds two (the other is set
    aside); ``ar_per_text``: the ``ar-K`` searches (None or empty: not run); ``seeds``:
    restarts per text and length (for ``n``)."""
    need = {"setting", "source", "text_id", "capacity", "h_lm_nats", "censored"}
    missing = need - set(per_text.columns)
    if missing:
        raise ValueError(f"per_text lacks columns {sorted(missing)} (capacity_per_text rows)")
    if "model" in per_text and per_text["model"].nunique() > 1:
        raise ValueError("capacity_claims judges one model at a time: filter per_text by model")
    per_text = primary_rows(per_text)  # one arrangement: the paper's Eq. 1 where it was searched
    own = per_text[per_text["setting"] == "per-text"]
    return [
        random_fewer_claim(own, seeds),
        random_denser_claim(own, seeds),
        sharing_halves_claim(per_text, seeds),
        *ar_claims(per_text, ar_per_text, seeds),
    ]


def _n(rows: pd.DataFrame, seeds: int) -> str:
    lengths = int(rows["lengths_tried"].max()) if "lengths_tried" in rows and len(rows) else None
    return n_of(texts=rows[["source", "text_id"]].drop_duplicates().shape[0], seeds=seeds,
                lengths=lengths)  # fmt: skip


def _sources(own: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    return own[own["source"] == "random"], sorted(set(own["source"]) - {"random"})


def random_fewer_claim(own: pd.DataFrame, seeds: int = 1) -> Claim:
    """Random against each natural source: best over texts, ties decided by medians."""
    spec, n = RANDOM_FEWER, _n(own, seeds)
    rnd, natural = _sources(own)
    by = own.groupby("source")["capacity"]
    best, med, k = by.max(), by.median(), by.size()
    ours = "; ".join(
        f"{s}: best {best[s]}, median {sig(med[s])} ({k[s]} texts)" for s in best.index
    )
    if rnd.empty or not natural:
        return spec.inconclusive(NOT_RUN, "needs the random source and a natural one", ours, n)
    small = [s for s in best.index if k[s] < MIN_TEXTS]
    if small:
        return spec.inconclusive(TOO_FEW, f"{', '.join(small)} < {MIN_TEXTS} texts", ours, n)
    if (best == 0).all():
        return spec.inconclusive(BUDGET, "no text reached any length", ours, n)
    if bool(rnd.loc[rnd["capacity"] == best["random"], "censored"].any()):
        return spec.inconclusive(CENSORED, "random's best is the longest length tried", ours, n)
    order = []
    for s in natural:
        key_r, key_s = (best["random"], med["random"]), (best[s], med[s])
        order.append("fewer" if key_r < key_s else "more" if key_r > key_s else "tie")
    if "more" in order:
        return spec.judge(False, ours, n)
    if "tie" in order:
        ties = ", ".join(s for s, o in zip(natural, order) if o == "tie")
        return spec.inconclusive(TOO_FEW, f"tie on best and median with {ties}", ours, n)
    return spec.judge(True, ours, n)


def min_p_one_sided(n1: int, n2: int) -> float:
    """The smallest p a one-sided exact Mann-Whitney test can give with n1 and n2 samples."""
    return 1.0 / comb(n1 + n2, n1) if n1 and n2 else 1.0


def random_denser_claim(own: pd.DataFrame, seeds: int = 1, alpha: float = ALPHA) -> Claim:
    """Per-token H_LM at capacity, random against pooled natural texts (one-sided rank test)."""
    from scipy.stats import mannwhitneyu

    spec, n = RANDOM_DENSER, _n(own, seeds)
    ok = own[own["capacity"] > 0]
    per_tok = ok["h_lm_nats"] / ok["capacity"]
    r = per_tok[ok["source"] == "random"].to_numpy(float)
    nat = per_tok[ok["source"] != "random"].to_numpy(float)
    ours = (f"median nats/token: random {sig(np.median(r)) if len(r) else '-'} "
            f"({len(r)} texts), natural {sig(np.median(nat)) if len(nat) else '-'} "
            f"({len(nat)} texts)")  # fmt: skip
    if not (own["source"] == "random").any() or (own["source"] == "random").all():
        return spec.inconclusive(NOT_RUN, "needs the random source and a natural one", ours, n)
    if ok.empty:
        return spec.inconclusive(BUDGET, "no text reached any length", ours, n)
    if min_p_one_sided(len(r), len(nat)) >= alpha:
        detail = f"{len(r)} vs {len(nat)} texts with a capacity cannot reach p < {alpha}"
        return spec.inconclusive(TOO_FEW, detail, ours, n)
    p = float(mannwhitneyu(r, nat, alternative="greater").pvalue)
    return spec.judge(p < alpha, f"{ours}; Mann-Whitney p = {sig(p, 2)}", n)


def sharing_halves_claim(per_text: pd.DataFrame, seeds: int = 1) -> Claim:
    """Shared-m / per-text capacity, paired per text, median over texts."""
    spec = SHARING_HALVES
    keys = ["source", "text_id"]
    own = per_text[per_text["setting"] == "per-text"]
    shared = per_text[per_text["setting"] == "shared m"]
    lowest = shared["min_tried"] if "min_tried" in shared else 0
    shared = shared.assign(capacity_shared=shared["capacity"], min_tried_shared=lowest)
    pair = own.merge(shared[keys + ["capacity_shared", "min_tried_shared"]], on=keys)
    n = _n(pair, seeds)
    pair = pair[pair["capacity"] > 0]
    # shared 0: below the shortest length tried; uninformative where the band would be too
    below = (pair["capacity_shared"] == 0) & (
        pair["capacity"] * SHARE_BAND[0] < pair["min_tried_shared"]
    )
    free = pair[~pair["censored"].astype(bool) & ~below]
    ratio = free["capacity_shared"] / free["capacity"]
    ours = (f"median ratio {sig(ratio.median())} over {len(free)} texts "
            f"(per-text median {sig(free['capacity'].median())}, shared "
            f"{sig(free['capacity_shared'].median())})")  # fmt: skip
    if own.empty or shared.empty:
        return spec.inconclusive(NOT_RUN, "needs both settings", ours, n)
    if len(free) < MIN_TEXTS:
        reason = CENSORED if len(pair) >= MIN_TEXTS else TOO_FEW
        if len(pair) == 0 and len(own):
            reason = BUDGET  # texts searched, none reached any length
        detail = f"{len(free)} of {len(pair)} texts with a capacity are uncensored (< {MIN_TEXTS})"
        if below.any():
            low = int(pair.loc[below, "min_tried_shared"].min())
            detail += (
                f"; {int(below.sum())} shared capacities lie below the shortest length tried "
                f"(N = {low}), where halving their per-text capacity puts them too"
            )
        return spec.inconclusive(reason, detail, ours, n)
    lo, hi = SHARE_BAND
    return spec.judge(lo <= float(ratio.median()) <= hi, ours, n)


def ar_claims(
    per_text: pd.DataFrame, ar_per_text: pd.DataFrame | None, seeds: int = 1
) -> list[Claim]:
    """One pass against the autoregressive baseline, natural and random texts (Fig. 3)."""
    ar = ar_per_text if ar_per_text is not None else pd.DataFrame()
    which = next(((a, s) for a, s in AR_PAIRS if len(ar) and (ar["arrangement"] == a).any()), None)
    if which is None:
        none = "no autoregressive (ar-K) search in this run"
        return [c.inconclusive(NOT_RUN, none, "-", "0") for c in (AR_NATURAL_HALF, AR_RANDOM_CLOSE)]
    arrangement, setting = which
    one = per_text[per_text["setting"] == setting]
    ar = ar[ar["arrangement"] == arrangement]
    pair = one.merge(ar, on=["source", "text_id"], suffixes=("", "_ar"))
    out = []
    for spec, natural in ((AR_NATURAL_HALF, True), (AR_RANDOM_CLOSE, False)):
        side = pair[(pair["source"] != "random") if natural else (pair["source"] == "random")]
        n = _n(side, seeds)
        both = side[(side["capacity"] > 0) & (side["capacity_ar"] > 0)]
        ratio = both["h_lm_nats"] / both["h_lm_nats_ar"]
        cens = (both["censored"].astype(bool) | both["censored_ar"].astype(bool)).mean()
        ours = (
            f"median one-pass/AR H_LM {sig(ratio.median())} over {len(both)} texts "
            f"({arrangement} vs {setting}; {sig(100 * cens if len(both) else 0)}% censored)"
        )
        if side.empty:
            out.append(spec.inconclusive(NOT_RUN, "no text of this kind in the AR search", ours, n))
        elif both.empty and len(side) >= MIN_TEXTS:
            detail = "no text reached any length in both searches"
            out.append(spec.inconclusive(BUDGET, detail, ours, n))
        elif len(both) < MIN_TEXTS:
            detail = f"{len(both)} texts with a capacity in both (< {MIN_TEXTS})"
            out.append(spec.inconclusive(TOO_FEW, detail, ours, n))
        elif cens > 0.5:
            out.append(spec.inconclusive(CENSORED, "more than half the texts", ours, n))
        else:
            r = float(ratio.median())
            ok = AR_NATURAL[0] <= r <= AR_NATURAL[1] if natural else r >= AR_RANDOM
            out.append(spec.judge(ok, ours, n))
    return out
