"""Every claim of the ledger can come out each of the three ways: for each claim, synthetic rows
(no model) that give holds, does not hold and inconclusive, and the record's shape."""

from __future__ import annotations

import io
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from prototokens.harness import compare
from prototokens.harness.ledger import read_ledger, record_claims
from prototokens.harness.report import build_report
from prototokens.studies import arrangement_claims as ac
from prototokens.studies import capacity_claims as cc
from prototokens.studies import family_claims as fc
from prototokens.studies import geometry_claims as gc
from prototokens.studies import throughput_claims as tc
from prototokens.studies.claims import (
    BUDGET,
    CENSORED,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    NOT_SOLUTIONS,
    TOO_FEW,
    Claim,
    claims_table,
    one_pass_claims,
    sig,
    verdicts,
)
from prototokens.studies.geometry import enumerate_pairs

SEEN: dict[str, set[str]] = {}  # claim id -> verdicts the tests below have produced


def check(claim: Claim, verdict: str, reason: str = "") -> Claim:
    """The claim's verdict (and reason) with every field of the record filled in."""
    assert isinstance(claim, Claim)
    SEEN.setdefault(claim.id, set()).add(claim.verdict)
    assert claim.verdict == verdict, claim
    assert claim.id and claim.claim and claim.where and claim.rule and claim.n and claim.ours
    if verdict == INCONCLUSIVE:
        assert claim.reason.startswith(reason), claim
    return claim


def by_id(claims) -> dict[str, Claim]:
    return {c.id: c for c in claims}


# ---- the record ---------------------------------------------------------------------------------


def test_record_rejects_unknown_verdicts_and_reasonless_inconclusive():
    base = dict(id="x", claim="c", where="w", paper="p", ours="o", n="1 text", rule="r")
    with pytest.raises(ValueError, match="not one of"):
        Claim(**base, verdict="not measurable here")
    with pytest.raises(ValueError, match="needs a reason"):
        Claim(**base, verdict=INCONCLUSIVE)
    with pytest.raises(ValueError, match="only an inconclusive"):
        Claim(**base, verdict=HOLDS, reason=TOO_FEW)
    table = claims_table([Claim(**base, verdict=FAILS)])
    assert list(table.verdict) == [FAILS] and verdicts(table) == {"x": FAILS}


def test_sig_gives_three_significant_digits():
    assert sig(0.6666666666666666) == "0.667"
    assert sig(0.20331774800001767) == "0.203"
    assert sig(1234.5678) == "1230" and sig(0.00001234) == "1.23e-05"
    assert sig(12) == "12" and sig(float("nan")) == "-"


# ---- 02: one pass outputs the whole text --------------------------------------------------------


def batch(exact: list[bool], n=16):
    return pd.DataFrame(
        {"exact_match": exact, "accuracy": [1.0 if e else 0.6 for e in exact], "num_tokens": n}
    )


def test_02_one_pass_three_verdicts():
    check(one_pass_claims(batch([True, True, False]), 400)[0], HOLDS)
    check(one_pass_claims(batch([False, False, True]), 5000)[0], FAILS)
    c = check(one_pass_claims(batch([False] * 16), 300)[0], INCONCLUSIVE, BUDGET)
    assert "0 of 16" in c.ours
    check(one_pass_claims(batch([True, True]), 400)[0], INCONCLUSIVE, TOO_FEW)


# ---- 03: capacity -------------------------------------------------------------------------------


def per_text(spec, max_tried=64, lengths=7):
    """spec: (source, setting, text_id, capacity, h_lm_nats)."""
    return pd.DataFrame(
        [
            dict(
                model="m",
                setting=st,
                source=src,
                text_id=t,
                capacity=cap,
                h_lm_nats=h if cap else math.nan,
                censored=bool(cap) and cap >= max_tried,
                lengths_tried=lengths,
                arrangement="bos+e+m*(N-1)",
            )  # fmt: skip
            for src, st, t, cap, h in spec
        ]
    )


def texts(source, setting, caps, per_token):
    return [(source, setting, f"{source}{i}", c, c * per_token) for i, c in enumerate(caps)]


NATURAL = texts("pg19", "per-text", [32, 22, 32, 16], 3.0)
RANDOM = texts("random", "per-text", [16, 11, 16, 11], 6.0)


def test_03_random_fewer_tokens_three_verdicts():
    claim = cc.random_fewer_claim
    own = per_text(NATURAL + RANDOM)
    check(claim(own), HOLDS)
    check(claim(per_text(NATURAL + texts("random", "per-text", [45, 45, 32, 32], 6))), FAILS)
    # a grid tie on the best is decided by the medians (the H200 reference: 11 vs 11)
    tie_lower = texts("random", "per-text", [32, 8, 8, 8], 6.0)
    check(claim(per_text(NATURAL + tie_lower)), HOLDS)
    tie_higher = texts("random", "per-text", [32, 32, 32, 32], 6.0)
    check(claim(per_text(NATURAL + tie_higher)), FAILS)
    check(claim(per_text(NATURAL + NATURAL_AS_RANDOM)), INCONCLUSIVE, TOO_FEW)  # tie on both
    check(claim(per_text(NATURAL + RANDOM[:2])), INCONCLUSIVE, TOO_FEW)
    cens = texts("random", "per-text", [64, 11, 16, 11], 6.0)
    check(claim(per_text(NATURAL + cens)), INCONCLUSIVE, CENSORED)
    check(claim(per_text(NATURAL)), INCONCLUSIVE, NOT_RUN)


NATURAL_AS_RANDOM = [("random", st, f"r{t}", c, h) for _, st, t, c, h in NATURAL]


def test_03_random_higher_h_per_token_three_verdicts():
    claim = cc.random_denser_claim
    check(claim(per_text(NATURAL + RANDOM)), HOLDS)
    same = texts("random", "per-text", [16, 11, 16, 11], 3.0)
    check(claim(per_text(NATURAL + same)), FAILS)
    check(claim(per_text(NATURAL[:2] + RANDOM[:1])), INCONCLUSIVE, TOO_FEW)
    zero = [(s, st, t, 0, h) for s, st, t, c, h in NATURAL + RANDOM]
    check(claim(per_text(zero)), INCONCLUSIVE, BUDGET)
    check(claim(per_text(RANDOM)), INCONCLUSIVE, NOT_RUN)


def shared(own_spec, factor):
    return [(s, "shared m", t, round(c * factor), h * factor) for s, _, t, c, h in own_spec]


def test_03_sharing_halves_three_verdicts():
    claim = cc.sharing_halves_claim
    check(claim(per_text(NATURAL + shared(NATURAL, 0.5))), HOLDS)
    # one sqrt(2) grid step (0.71) is not "roughly halves"
    c = check(claim(per_text(NATURAL + shared(NATURAL, 0.71))), FAILS)
    assert "0.7" in c.ours
    check(claim(per_text(NATURAL + shared(NATURAL, 0.2))), FAILS)
    zero = [(s, st, t, 0, h) for s, st, t, c, h in NATURAL]
    check(claim(per_text(zero + shared(zero, 0.5))), INCONCLUSIVE, BUDGET)
    check(claim(per_text(NATURAL[:2] + shared(NATURAL[:2], 0.5))), INCONCLUSIVE, TOO_FEW)
    cens = texts("pg19", "per-text", [64, 64, 64, 16], 3.0)
    check(claim(per_text(cens + shared(cens, 0.5))), INCONCLUSIVE, CENSORED)
    check(claim(per_text(NATURAL)), INCONCLUSIVE, NOT_RUN)


def test_03_sharing_halves_a_zero_below_the_grid_counts_only_where_it_can_tell():
    """A shared capacity of 0 says the capacity lies below the shortest length tried (N = 4): for
    per-text capacities 4-5 halving puts it there too (inconclusive, not "does not hold"); for
    16-32 it is far below half (does not hold)."""
    claim = cc.sharing_halves_claim
    small = texts("pg19", "per-text", [5, 4, 5, 4, 4, 5], 3.0)
    rows = per_text(small + shared(small, 0.0))
    rows.loc[rows["setting"] == "shared m", "min_tried"] = 4
    c = check(claim(rows), INCONCLUSIVE, CENSORED)
    assert "below the shortest length tried (N = 4)" in c.reason
    rows = per_text(NATURAL + shared(NATURAL, 0.0))
    rows.loc[rows["setting"] == "shared m", "min_tried"] = 4
    check(claim(rows), FAILS)


def ar_rows(spec, arrangement="ar-2", max_tried=64):
    return per_text(spec, max_tried).assign(arrangement=arrangement)


def test_03_one_pass_against_ar_three_verdicts():
    own = per_text(NATURAL + RANDOM)
    ar_half = ar_rows([(s, st, t, c * 2, h * 2) for s, st, t, c, h in NATURAL + RANDOM])
    nat, rnd = cc.ar_claims(own, ar_half)
    check(nat, HOLDS)
    check(rnd, FAILS)  # random at half of AR is not "close"
    ar_same = ar_rows(NATURAL + RANDOM)
    nat, rnd = cc.ar_claims(own, ar_same)
    check(nat, FAILS)  # natural as much as AR: not "about half"
    check(rnd, HOLDS)
    few = ar_rows((NATURAL + RANDOM)[:2] + (NATURAL + RANDOM)[4:6])
    for c in cc.ar_claims(own, few):
        check(c, INCONCLUSIVE, TOO_FEW)
    cens = ar_rows([(s, st, t, 64, h * 2) for s, st, t, c, h in NATURAL + RANDOM])
    for c in cc.ar_claims(own, cens):
        check(c, INCONCLUSIVE, CENSORED)
    zero = ar_rows([(s, st, t, 0, h) for s, st, t, c, h in NATURAL + RANDOM])
    for c in cc.ar_claims(own, zero):
        check(c, INCONCLUSIVE, BUDGET)
    for c in cc.ar_claims(own, None):
        check(c, INCONCLUSIVE, NOT_RUN)


def attempts(caps: dict[tuple[str, str, str], int], lengths=(4, 5, 8, 11, 16), arrangement=None):
    """Search attempts: text (source, setting, id) succeeds up to its capacity, fails above."""
    out = []
    for (src, setting, tid), cap in caps.items():
        for n in lengths:
            ok = n <= cap
            out.append(dict(model="m", arrangement=arrangement or "bos+e+m*(N-1)",
                            setting=setting, search="grid", source=src, label=src, text_id=tid,
                            num_tokens=n, success=ok, accuracy=1.0 if ok else 0.5, c_tokens=n,
                            h_lm_nats=3.0 * n * (2 if src == "random" else 1),
                            h_lm_bits=4.3 * n, seed=0, steps=10, wall_time_s=0.1, d_model=8,
                            vocab_size=100, theoretical_capacity=10.0))  # fmt: skip
    return pd.DataFrame(out)


def test_03_claims_read_capacity_per_text_rows():
    """The rows notebook 03 passes (capacity_per_text of search attempts) fit the rules."""
    from prototokens.studies.capacity import capacity_per_text

    caps = {("pg19", "per-text", f"p{i}"): c for i, c in enumerate([11, 11, 8, 11])}
    caps |= {("random", "per-text", f"r{i}"): c for i, c in enumerate([5, 5, 4, 5])}
    caps |= {("pg19", "shared m", f"p{i}"): c for i, c in enumerate([5, 5, 4, 5])}
    caps |= {("random", "shared m", f"r{i}"): c for i, c in enumerate([0, 0, 0, 4])}
    ar = {("pg19", "per-text", f"p{i}"): 16 for i in range(4)}
    ar |= {("random", "per-text", f"r{i}"): 5 for i in range(4)}
    per = capacity_per_text(attempts(caps))
    ar_per = capacity_per_text(attempts(ar, arrangement="ar-2"))
    claims = by_id(cc.capacity_claims(per, ar_per))
    check(claims["03.random_fewer_tokens"], HOLDS)
    check(claims["03.random_higher_h_per_token"], HOLDS)
    check(claims["03.sharing_halves"], HOLDS)
    check(claims["03.ar_natural_half"], INCONCLUSIVE, CENSORED)  # AR at 16 = max
    check(claims["03.ar_random_close"], HOLDS)
    assert claims["03.sharing_halves"].n == "8 texts × 1 seed × 5 lengths"


def test_03_capacity_claims_one_model_five_records():
    own = per_text(NATURAL + RANDOM + shared(NATURAL + RANDOM, 0.5))
    claims = cc.capacity_claims(own, None, seeds=2)
    assert len(claims) == 5 and len(by_id(claims)) == 5
    assert "8 texts × 2 seeds × 7 lengths" == by_id(claims)["03.random_fewer_tokens"].n
    with pytest.raises(ValueError, match="one model"):
        cc.capacity_claims(pd.concat([own, own.assign(model="other")]))
    with pytest.raises(ValueError, match="lacks columns"):
        cc.capacity_claims(own.drop(columns="censored"))


# ---- 04: arrangements (Table 1) and sharing (Table 2) -------------------------------------------


def tab1_rows(acc: dict[str, float], lengths=(1, 2, 4), texts=1, seeds=3):
    """Every arrangement at every length; accuracy ``acc[a]`` at the longest, 1.0 below."""
    return pd.DataFrame(
        [
            dict(
                arrangement=a,
                num_tokens=n,
                text_id=f"t{t}",
                seed=s,
                accuracy=acc[a] if n == max(lengths) else 1.0,
            )  # fmt: skip
            for a in acc
            for n in lengths
            for t in range(texts)
            for s in range(seeds)
        ]
    )


PAPERLIKE = {"e*N": 0.17, "(e,m)*N/2": 0.6, "bos+e+m*(N-1)": 1.0}


def test_04_single_vector_fails_three_verdicts():
    check(ac.single_fails_claim(tab1_rows(PAPERLIKE)), HOLDS)
    check(ac.single_fails_claim(tab1_rows({**PAPERLIKE, "e*N": 1.0})), FAILS)
    low = {**PAPERLIKE, "bos+e+m*(N-1)": 0.8}  # the winner is not a solution: budget too small
    check(ac.single_fails_claim(tab1_rows(low)), INCONCLUSIVE, BUDGET)
    check(ac.single_fails_claim(tab1_rows(PAPERLIKE, seeds=2)), INCONCLUSIVE, TOO_FEW)
    check(ac.single_fails_claim(tab1_rows({"bos+e+m*(N-1)": 1.0})), INCONCLUSIVE, NOT_RUN)


def test_04_two_vectors_one_repeated_best_three_verdicts():
    check(ac.two_best_claim(tab1_rows(PAPERLIKE)), HOLDS)
    tie = {**PAPERLIKE, "(e,m)*N/2": 0.97, "bos+e+m*(N-1)": 0.995}  # a near tie does not pass
    check(ac.two_best_claim(tab1_rows(tie)), FAILS)
    reversed_ = {**PAPERLIKE, "(e,m)*N/2": 1.0, "bos+e+m*(N-1)": 0.6}
    check(ac.two_best_claim(tab1_rows(reversed_)), FAILS)
    # at N = 4 every arrangement reaching 1.0 is no evidence either way
    solved = {a: 1.0 for a in PAPERLIKE}
    check(ac.two_best_claim(tab1_rows(solved)), INCONCLUSIVE, CENSORED)
    check(ac.two_best_claim(tab1_rows(PAPERLIKE, seeds=1)), INCONCLUSIVE, TOO_FEW)
    unsolved = {a: 0.0 for a in PAPERLIKE}  # 3 steps: nothing to rank
    check(ac.two_best_claim(tab1_rows(unsolved)), INCONCLUSIVE, BUDGET)


def tab2_rows(avg: dict, best: dict, texts=4, seeds=2, sizes=(1, 4)):
    """Runs whose mean is ``avg[share, size]`` and best-over-seeds ``best[share, size]``:
    seed 0 reaches ``best``, the others ``2 avg - best`` spread to keep the mean (2 seeds)."""
    out = []
    for share in ("e", "m"):
        for size in sizes:
            a, b = avg[share, size], best[share, size]
            for t in range(texts):
                for s in range(seeds):
                    acc = b if s == 0 else (seeds * a - b) / (seeds - 1)
                    out.append(dict(share=share, group_size=size, text_id=f"t{t}", seed=s,
                                    accuracy=acc))  # fmt: skip
    return pd.DataFrame(out)


def both(lo, hi):
    return {("e", 1): lo, ("e", 4): hi, ("m", 1): lo, ("m", 4): hi}


def test_04_sharing_claims_three_verdicts():
    costs, recover = ac.sharing_claims(tab2_rows(both(0.98, 0.85), both(1.0, 0.99)))
    check(costs, HOLDS)
    check(recover, HOLDS)
    costs, recover = ac.sharing_claims(tab2_rows(both(0.9, 0.9), both(1.0, 0.9)))
    check(costs, FAILS)  # no cost with larger groups
    check(recover, FAILS)  # and the best over seeds falls by 0.1
    for c in ac.sharing_claims(tab2_rows(both(1.0, 1.0), both(1.0, 1.0))):
        check(c, INCONCLUSIVE, CENSORED)
    # nothing solved even without sharing (the smoke profile's 3 steps): the budget, not sharing
    for c in ac.sharing_claims(tab2_rows(both(0.0, 0.0), both(0.0, 0.0))):
        check(c, INCONCLUSIVE, BUDGET)
    for c in ac.sharing_claims(tab2_rows(both(0.98, 0.85), both(1.0, 0.99), texts=1)):
        check(c, INCONCLUSIVE, TOO_FEW)
    one_seed = tab2_rows(both(0.995, 0.85), both(0.995, 0.85), texts=4, seeds=1)
    costs, recover = ac.sharing_claims(one_seed)
    check(costs, HOLDS)
    check(recover, INCONCLUSIVE, TOO_FEW)
    for c in ac.sharing_claims(pd.DataFrame()):
        check(c, INCONCLUSIVE, NOT_RUN)


def test_04_arrangement_claims_four_records():
    claims = ac.arrangement_claims(tab1_rows(PAPERLIKE), tab2_rows(both(0.98, 0.85), both(1, 1)))
    assert [c.id for c in claims] == [
        "04.single_vector_fails",
        "04.two_vectors_one_repeated_best",
        "04.sharing_costs",
        "04.restarts_recover",
    ]
    assert claims[0].n == "1 text × 3 seeds × 3 lengths"
    assert claims[2].n == "4 texts × 2 seeds × 2 group sizes"
    with pytest.raises(ValueError, match="lack"):
        ac.arrangement_claims(tab1_rows(PAPERLIKE).drop(columns="seed"))


# ---- 05: model families -------------------------------------------------------------------------


def family(rows, texts=3):
    """rows: (model, family, params, best capacity, censored texts)."""
    return pd.DataFrame(
        [
            dict(
                model=m,
                family=f,
                params=p,
                capacity_best=c,
                censored_texts=k,
                texts=texts,
                setting="per-text",
                status="ok",
                source="pg19",
            )  # fmt: skip
            for m, f, p, c, k in rows
        ]
    )


LLAMA = [("llama-1b", "Llama", 1.24e9, 362, 0), ("llama-3b", "Llama", 3.2e9, 512, 0),
         ("llama-8b", "Llama", 8.0e9, 724, 0)]  # fmt: skip
PYTHIA = [("pythia-160m", "Pythia (GPT-NeoX)", 1.6e8, 128, 0),
          ("pythia-410m", "Pythia (GPT-NeoX)", 4.1e8, 181, 0),
          ("pythia-1.4b", "Pythia (GPT-NeoX)", 1.41e9, 131, 0)]  # fmt: skip


def test_05_growth_follows_the_papers_direction_per_family():
    grows, flat = fc.growth_claims(fc.per_model(family(LLAMA + PYTHIA)))
    check(grows, HOLDS)
    check(flat, HOLDS)  # 181 / 128 is one sqrt(2) step: flat, as the paper says
    swapped = [(m, f, p, c, 0) for (m, f, p, _, _), (*_, c, _) in zip(LLAMA, PYTHIA)]
    swapped += [(m, f, p, c, 0) for (m, f, p, _, _), (*_, c, _) in zip(PYTHIA, LLAMA)]
    grows, flat = fc.growth_claims(fc.per_model(family(swapped)))
    check(grows, FAILS)
    check(flat, FAILS)
    grows, flat = fc.growth_claims(fc.per_model(family(LLAMA[:1] + PYTHIA, texts=2)))
    check(grows, INCONCLUSIVE, TOO_FEW)  # one Llama model
    check(flat, INCONCLUSIVE, TOO_FEW)  # 2 texts per model
    cens = [(m, f, p, c, 1 if c == 724 else 0) for m, f, p, c, _ in LLAMA]
    check(fc.growth_claims(fc.per_model(family(cens)))[0], INCONCLUSIVE, CENSORED)
    check(fc.growth_claims(fc.per_model(family(LLAMA)))[1], INCONCLUSIVE, NOT_RUN)


def test_05_llama_vs_pythia_three_verdicts():
    claim = fc.llama_vs_pythia_claim
    c = check(claim(fc.per_model(family(LLAMA + PYTHIA))), HOLDS)
    assert "2.76x" in c.ours  # 362 vs 131
    close = [(m, f, p, 200 if m == "llama-1b" else c, k) for m, f, p, c, k in LLAMA]
    check(claim(fc.per_model(family(close + PYTHIA))), FAILS)
    check(claim(fc.per_model(family(LLAMA + PYTHIA, texts=1))), INCONCLUSIVE, TOO_FEW)
    cens = [(m, f, p, c, 1) for m, f, p, c, _ in PYTHIA]
    check(claim(fc.per_model(family(LLAMA + cens))), INCONCLUSIVE, CENSORED)
    small = [("smollm2-135m", "Llama", 1.35e8, 22, 0), ("gemma3-270m", "Gemma-3", 2.7e8, 16, 0)]
    check(claim(fc.per_model(family(small))), INCONCLUSIVE, NOT_RUN)


def test_05_family_claims_skip_skipped_models():
    table = pd.concat([family(LLAMA), pd.DataFrame([{"model": "x", "status": "skipped"}])])
    claims = by_id(fc.family_claims(table))
    assert set(claims) == {"05.llama_grows", "05.pythia_flat", "05.llama_vs_pythia"}
    check(claims["05.llama_grows"], HOLDS)
    assert claims["05.llama_grows"].n == "3 texts × 3 models"


# ---- 06: geometry -------------------------------------------------------------------------------


def solutions(contexts=6, continuations=2, seeds=3, accuracy=1.0):
    """Notebook 06's layout: per context, continuations texts; the last has ``seeds`` seeds."""
    out = []
    for c in range(contexts):
        for k in range(continuations):
            for s in range(seeds if k == continuations - 1 else 1):
                out.append(dict(text_id=f"c{c}t{k}", context_id=f"c{c}", seed=s,
                                accuracy=accuracy))  # fmt: skip
    return pd.DataFrame(out)


def locality(rows, same_text=0.3, same_context=0.6, different=0.9, seed=0):
    pairs = enumerate_pairs(rows)
    rng = np.random.default_rng(seed)
    base = pairs.kind.map(
        {"same_text": same_text, "same_context": same_context, "different_context": different}
    )
    return pairs.assign(distance=base + rng.normal(0, 0.01, len(pairs)))


def test_06_locality_orderings_three_verdicts():
    rows = solutions()
    text, ctx = gc.geometry_claims(rows, locality(rows))[:2]
    check(text, HOLDS)
    check(ctx, HOLDS)
    assert text.n.startswith("6 texts") and ctx.n.startswith("6 contexts")
    text, ctx = gc.geometry_claims(rows, locality(rows, 0.9, 0.9, 0.6))[:2]
    check(text, FAILS)
    check(ctx, FAILS)
    # vectors that are not solutions (the H200 reference: accuracy 0.145) decide nothing
    bad = solutions(accuracy=0.145)
    for c in gc.geometry_claims(bad, locality(bad))[:2]:
        check(c, INCONCLUSIVE, NOT_SOLUTIONS)
    few = solutions(contexts=3)  # the default profile's 3 contexts cannot reach p < 0.05
    for c in gc.geometry_claims(few, locality(few))[:2]:
        check(c, INCONCLUSIVE, TOO_FEW)


def path_rows(line_mid, curve_mid, end=1.0, pairs=3, line_ce=2.0, curve_ce=0.1):
    out = []
    for p in range(pairs):
        for name, mid, ce in (("line", line_mid, line_ce), ("bezier", curve_mid, curve_ce)):
            for tau, acc in ((0.0, end), (0.5, mid), (1.0, end)):
                out.append(dict(pair=p, path=name, tau=tau, accuracy=acc,
                                ce_nats=ce if tau == 0.5 else 0.0))  # fmt: skip
    return pd.DataFrame(out)


def ratios(*r):
    return pd.DataFrame({"length_ratio": list(r)})


def test_06_line_loses_accuracy_three_verdicts():
    check(gc.line_drop_claim(path_rows(0.4, 1.0)), HOLDS)
    check(gc.line_drop_claim(path_rows(1.0, 1.0)), FAILS)
    check(gc.line_drop_claim(path_rows(0.4, 1.0, end=0.5)), INCONCLUSIVE, NOT_SOLUTIONS)
    check(gc.line_drop_claim(path_rows(0.4, 1.0, pairs=2)), INCONCLUSIVE, TOO_FEW)
    check(gc.line_drop_claim(None), INCONCLUSIVE, NOT_RUN)


def test_06_curve_keeps_accuracy_three_verdicts():
    check(gc.curve_keeps_claim(path_rows(0.4, 0.97)), HOLDS)
    check(gc.curve_keeps_claim(path_rows(0.4, 0.6)), FAILS)  # trained, still drops
    barely = path_rows(0.4, 0.5, line_ce=2.0, curve_ce=1.9)  # 30 steps: almost the line
    check(gc.curve_keeps_claim(barely), INCONCLUSIVE, BUDGET)
    check(gc.curve_keeps_claim(path_rows(0.4, 1.0, end=0.9)), INCONCLUSIVE, NOT_SOLUTIONS)


def test_06_length_ratio_three_verdicts():
    check(gc.length_ratio_claim(ratios(1.01, 1.1, 1.18), path_rows(0.4, 1.0)), HOLDS)
    check(gc.length_ratio_claim(ratios(1.01, 1.1, 1.6), path_rows(0.4, 1.0)), FAILS)
    # the H200 reference's trivial pass: a barely trained curve is straight (ratio 1.0)
    barely = path_rows(0.4, 0.99, line_ce=2.0, curve_ce=1.9)
    check(gc.length_ratio_claim(ratios(1.0, 1.0, 1.0), barely), INCONCLUSIVE, BUDGET)
    lost = path_rows(0.4, 0.5)  # a curve that leaves the solutions: its length says nothing
    check(gc.length_ratio_claim(ratios(1.0, 1.0, 1.0), lost), INCONCLUSIVE, BUDGET)
    ends = path_rows(0.4, 1.0, end=0.5)
    check(gc.length_ratio_claim(ratios(1.0, 1.0, 1.0), ends), INCONCLUSIVE, NOT_SOLUTIONS)


def test_06_geometry_claims_five_records():
    rows = solutions()
    claims = gc.geometry_claims(rows, locality(rows))
    assert len(claims) == 5
    assert [c.verdict for c in claims[2:]] == [INCONCLUSIVE] * 3  # connectivity not run
    with pytest.raises(ValueError, match="pairs lack"):
        gc.geometry_claims(rows, locality(rows).drop(columns="kind"))


# ---- 07: throughput -----------------------------------------------------------------------------


def timings(speedup: dict[int, float], model="smollm2-135m", repeats=3):
    """Batch-1 rows: one forward at ``speedup[N]`` x generate's 30 tok/s, per length N."""
    out = []
    for n, x in speedup.items():
        for method, tok_s in (("one_forward", 30.0 * x), ("ar_generate", 30.0)):
            out.append(dict(model=model, method=method, num_tokens=n, batch_size=1,
                            tok_s=tok_s, repeats=repeats))  # fmt: skip
    return pd.DataFrame(out)


def stored(capacity: int, model="smollm2-135m"):
    """Store rows: reconstructed up to ``capacity`` tokens, failed beyond."""
    return pd.DataFrame(
        [
            dict(
                model=model,
                num_tokens=n,
                accuracy=1.0 if n <= capacity else 0.5,
                arrangement="bos+e+m*(N-1)",
                share="none",
            )  # fmt: skip
            for n in (16, 64, 181, 256)
        ]
    )


def test_07_speedup_judged_at_the_capacity_length():
    # 250x at N = 256, but the model reconstructs only 181 tokens: judged at N = 181 (100x)
    c = check(tc.throughput_claims(timings({181: 100.0, 256: 250.0}), stored(181))[0], FAILS)
    assert "at N = 181 (capacity 181)" in c.ours
    c = check(tc.throughput_claims(timings({181: 150.0, 256: 250.0}), stored(181))[0], HOLDS)
    check(tc.throughput_claims(timings({181: 150.0}), stored(64))[0], INCONCLUSIVE, NOT_SOLUTIONS)
    check(tc.throughput_claims(timings({181: 150.0}), None)[0], INCONCLUSIVE, NOT_RUN)
    failed = timings({181: 150.0, 256: 250.0})
    failed.loc[(failed.num_tokens == 181) & (failed.method == "ar_generate"), "tok_s"] = np.nan
    check(tc.throughput_claims(failed, stored(181))[0], INCONCLUSIVE, NOT_SOLUTIONS)
    few = timings({181: 150.0}, repeats=1)
    check(tc.throughput_claims(few, stored(181))[0], INCONCLUSIVE, TOO_FEW)


def test_07_speedup_unreachable_below_the_threshold_length_is_inconclusive():
    """The default run: capacity 16, 4x at N = 16. A speed-up over N tokens is at most about N,
    so 139.5x cannot be reached there: budget, not "does not hold"."""
    c = check(tc.throughput_claims(timings({16: 4.0, 64: 30.0}), stored(16))[0], INCONCLUSIVE,
              BUDGET)  # fmt: skip
    assert "averaging 16 tokens" in c.reason and "4x at N = 16" in c.ours


# ---- the ledger, the report and the comparison --------------------------------------------------


def record(folder, notebook, claims):
    return record_claims(SimpleNamespace(output_dir=folder, notebook=notebook), claims)


def test_ledger_gathers_every_notebook_in_order(tmp_path):
    shown = record(tmp_path, "03_metrics", cc.capacity_claims(per_text(NATURAL + RANDOM)))
    assert list(shown.columns)[:2] == ["id", "claim"] and len(shown) == 5
    record(tmp_path, "02_optimization", one_pass_claims(batch([True, True, False]), 400))
    ledger = pd.read_csv(tmp_path / "tables" / "claims.csv")
    assert list(ledger.columns) == ["notebook", "id", "claim", "where", "paper", "ours", "n",
                                    "rule", "verdict", "reason"]  # fmt: skip
    assert list(ledger.notebook) == ["02_optimization"] + ["03_metrics"] * 5
    assert (tmp_path / "tables" / "claims.md").read_text().count("03_metrics") == 5
    # a rerun of one notebook replaces its rows, never duplicates them
    record(tmp_path, "02_optimization", one_pass_claims(batch([False] * 3), 400))
    again = read_ledger(tmp_path)
    assert len(again) == 6 and again.verdict.iloc[0] == INCONCLUSIVE
    with pytest.raises(ValueError, match="notebook"):
        record_claims(SimpleNamespace(output_dir=tmp_path, notebook=""), [])


def test_report_opens_on_the_ledger_with_three_significant_digits(tmp_path):
    record(tmp_path, "03_metrics", cc.capacity_claims(per_text(NATURAL + RANDOM)))
    tables = tmp_path / "tables"
    (tables / "tab3_capacity.csv").write_text(
        "model,utilisation,median_s\nm,0.6666666666666666,2.5\n"
    )
    (tables / "tab_other.csv").write_text("a\n0.20331774800001767\n")
    page = build_report(tmp_path).read_text()
    claims, paper, runs = (
        page.index(h) for h in ("The paper's claims", "Table 3 ·", "<h2>Notebooks")
    )
    assert claims < paper < runs
    assert "03.random_fewer_tokens" in page and 'class="holds"' in page
    assert "0.667" in page and "0.6666666666666666" not in page and "0.203" in page
    assert "median_s (s)" in page
    assert "Not in this run (notebook 04)" in page  # Table 1 is missing, said so


def test_compare_shows_where_a_verdict_differs(tmp_path):
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    for folder in (ours, ref):
        (folder / "metrics").mkdir(parents=True)
    record(ref, "02_optimization", one_pass_claims(batch([True, True, False]), 400))
    record(ours, "02_optimization", one_pass_claims(batch([False] * 3), 400))
    out = io.StringIO()
    rows = compare.compare(ours, ref, out=out)["claims"]
    assert rows == [("02.one_pass_whole_text", HOLDS, INCONCLUSIVE, "differs")]
    assert "0 of 1 verdicts the same" in out.getvalue()
    # a reference from before the ledger: its old-shape claims are listed, not matched
    old = tmp_path / "old"
    (old / "metrics").mkdir(parents=True)
    (old / "metrics" / "03_metrics.json").write_text(
        json.dumps({"claims": {"sharing m roughly halves capacity": "holds"}})
    )
    out = io.StringIO()
    rows = compare.compare_claims(ours, old, out=out)
    assert rows == [("02.one_pass_whole_text", "-", INCONCLUSIVE, "only ours")]
    assert "predates the claims ledger" in out.getvalue() and "roughly halves" in out.getvalue()


# ---- every claim can come out each of the three ways --------------------------------------------


def test_every_claim_can_give_each_verdict():
    """Runs the three-verdict tests above and checks that every ClaimSpec of every study module
    was seen giving holds, does not hold and inconclusive: a new claim without such tests, or a
    rule that cannot fail, fails here."""
    from prototokens.studies import claims as claims_module
    from prototokens.studies.claims import VERDICTS, ClaimSpec

    modules = (claims_module, cc, ac, fc, gc, tc)
    specs = {v.id for m in modules for v in vars(m).values() if isinstance(v, ClaimSpec)}
    assert len(specs) == 19
    SEEN.clear()
    for name, test in sorted(globals().items()):
        if name.startswith("test_0") and callable(test):
            test()
    missing = {i: sorted(set(VERDICTS) - SEEN.get(i, set())) for i in sorted(specs)}
    assert not {i: m for i, m in missing.items() if m}, missing
