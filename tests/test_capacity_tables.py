"""Table 3 aggregation and the claim verdicts, on hand-made per-text rows."""

from __future__ import annotations

import math

import pandas as pd
from prototokens.studies.capacity_tables import (
    FAILS,
    HOLDS,
    NOT_MEASURABLE,
    capacity_claims,
    paper_model,
    search_comparison,
    table3,
)


def rows(spec, model="m", arrangement="e+m*N", max_tried=64):
    """spec: (source, setting, text_id, capacity, h_lm_nats)."""
    out = []
    for src, setting, tid, cap, h in spec:
        out.append(
            dict(
                model=model,
                arrangement=arrangement,
                setting=setting,
                search="grid",
                source=src,
                label=src,
                text_id=tid,
                capacity=cap,
                c_tokens=cap,
                h_lm_nats=h if cap else math.nan,
                h_lm_bits=(h / math.log(2)) if cap else math.nan,
                max_tried=max_tried,
                censored=cap >= max_tried,
                steps=10 * cap,
                rows=3,
                theoretical_capacity=576 * 16 / math.log2(49152),
            )
        )
    return pd.DataFrame(out)


BASE = [
    ("pg19", "per-text", "a", 32, 100.0),
    ("pg19", "per-text", "b", 22, 70.0),
    ("random", "per-text", "r", 16, 90.0),
    ("random", "per-text", "s", 11, 60.0),
    ("pg19", "shared m", "a", 16, 50.0),
    ("pg19", "shared m", "b", 11, 35.0),
    ("random", "shared m", "r", 8, 45.0),
    ("random", "shared m", "s", 5, 30.0),
]


def verdicts(per, ar=None):
    return {
        c["claim"].split(" ")[0] + c["claim"].split(" ")[1]: c for c in capacity_claims(per, ar)
    }


def test_claims_hold_on_paper_like_rows():
    per = rows(BASE)
    ar = rows(
        [("pg19", "per-text", "a", 45, 200.0), ("pg19", "per-text", "b", 45, 150.0),
         ("random", "per-text", "r", 16, 95.0), ("random", "per-text", "s", 16, 70.0)],
        arrangement="ar-2",
    )  # fmt: skip
    v = verdicts(per, ar)
    assert v["randomtext"]["verdict"] == HOLDS and "pg19 32" in v["randomtext"]["numbers"]
    assert v["sharingm"]["verdict"] == HOLDS and "0.50" in v["sharingm"]["numbers"]
    assert v["one-passH_LM"]["verdict"] == HOLDS, v["one-passH_LM"]


def test_claims_fail_and_not_measurable():
    flipped = [(("random" if s == "pg19" else "pg19"),) + t[1:] for t in BASE for s in [t[0]]]
    assert verdicts(rows(flipped))["randomtext"]["verdict"] == FAILS
    same = [t if t[1] == "per-text" else t[:3] + (t[3] * 2, t[4]) for t in BASE]
    assert verdicts(rows(same))["sharingm"]["verdict"] == FAILS  # sharing costs nothing
    only_natural = [t for t in BASE if t[0] == "pg19"]
    v = verdicts(rows(only_natural))
    assert v["randomtext"]["verdict"] == NOT_MEASURABLE
    assert v["one-passH_LM"]["verdict"] == NOT_MEASURABLE  # no AR search
    censored = rows(BASE, max_tried=16)  # per-text capacities all reach the longest length
    assert verdicts(censored)["sharingm"]["verdict"] == NOT_MEASURABLE
    ar_cens = rows(
        [("pg19", "per-text", "a", 64, 300.0), ("pg19", "per-text", "b", 64, 250.0)],
        arrangement="ar-2",
    )
    assert verdicts(rows(BASE), ar_cens)["one-passH_LM"]["verdict"] == NOT_MEASURABLE
    ar_close = rows(
        [("pg19", "per-text", "a", 32, 105.0), ("pg19", "per-text", "b", 22, 72.0)],
        arrangement="ar-2",
    )
    assert verdicts(rows(BASE), ar_close)["one-passH_LM"]["verdict"] == FAILS  # natural ≈ AR


def test_table3_aggregates_and_paper_values():
    per = pd.concat([rows(BASE), rows(BASE, model="EleutherAI/pythia-160m")])
    tab = table3(per).set_index(["model", "source", "setting"])
    r = tab.loc[("m", "pg19", "per-text")]
    assert r.capacity_best == 32 and r.capacity_median == 27 and r.n_texts == 2
    assert abs(r.h_lm_nats_mean - 85) < 1e-9 and abs(r.h_lm_nats_std - 15) < 1e-9
    assert abs(r.h_lm_bits_mean - 85 / math.log(2)) < 1e-9
    assert abs(r.utilisation - 32 / r.theoretical_capacity) < 1e-3
    assert math.isnan(r.paper_c_tokens)  # not a paper model
    p = tab.loc[("EleutherAI/pythia-160m", "pg19", "shared m")]
    assert p.paper_c_tokens == 45 and p.paper_h_lm_mean == 156.0
    assert paper_model("pythia-1.4b") == "EleutherAI/pythia-1.4b"
    assert paper_model("smollm2-135m") is None


def test_search_comparison_ratios():
    g = rows(BASE[:2])
    p = g.assign(search="progressive", steps=g.steps // 4)
    attempts = pd.DataFrame(
        [
            dict(model="m", source="pg19", setting="per-text", search=s, round=r, wall_time_s=w)
            for s, r, w in [("grid", 0, 2.0), ("grid", 0, 3.0), ("grid", 1, 1.0),
                            ("progressive", 0, 1.0)]
        ]
    )  # fmt: skip
    cmp = search_comparison(pd.concat([g, p]), attempts).set_index("search")
    assert cmp.loc["grid", "seconds"] == 4.0 and cmp.loc["progressive", "seconds"] == 1.0
    assert abs(cmp.loc["progressive", "steps_vs_first"] - 0.25) < 0.01
