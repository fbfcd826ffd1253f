"""Table 3 aggregation and the grid/progressive comparison, on hand-made per-text rows (the
capacity claims' verdicts are in tests/test_claims.py)."""

from __future__ import annotations

import math

import pandas as pd
from prototokens.studies.capacity_tables import search_comparison, table3
from prototokens.studies.paper_tables import paper_model


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


EQ1, OURS = "e+m*(N-1)", "bos+e+m*(N-1)"  # the paper's plain Eq. 1 and ours
PYTHIA = "EleutherAI/pythia-160m"
HALF = [(s, st, t, c // 2, h / 2) for s, st, t, c, h in BASE]  # ours: every capacity halved


def test_table3_one_row_per_arrangement_and_one_arrangement_as_before():
    """Two arrangements of one model are two rows, side by side, never pooled; one arrangement
    gives the rows (order and values) it gave before arrangements were a key."""
    one = table3(rows(BASE, model=PYTHIA, arrangement=OURS))
    assert list(zip(one.source, one.setting)) == [
        ("pg19", "per-text"), ("random", "per-text"), ("pg19", "shared m"), ("random", "shared m")
    ]  # fmt: skip
    assert one.c_tokens_best.tolist() == [32, 16, 16, 8] and set(one.arrangement) == {OURS}
    both = pd.concat([rows(BASE, model=PYTHIA, arrangement=EQ1),
                      rows(HALF, model=PYTHIA, arrangement=OURS)])  # fmt: skip
    two = table3(both)
    assert len(two) == 2 * len(one)
    assert two.arrangement.tolist()[:2] == [EQ1, OURS]  # side by side, the primary first
    t = two.set_index(["arrangement", "source", "setting"])
    assert t.loc[(EQ1, "pg19", "per-text")].c_tokens_best == 32
    assert t.loc[(OURS, "pg19", "per-text")].c_tokens_best == 16
    assert (t.n_texts == 2).all()  # each arrangement's own texts, not both pooled
    assert (t.paper_c_tokens.loc[[(EQ1, "pg19", "per-text"), (OURS, "pg19", "per-text")]]
            == 128).all()  # fmt: skip
    mine = two[two.arrangement == OURS].drop(columns="arrangement").reset_index(drop=True)
    theirs = table3(rows(HALF, model=PYTHIA, arrangement=OURS)).drop(columns="arrangement")
    pd.testing.assert_frame_equal(mine, theirs)


def test_claims_and_figures_read_the_primary_arrangement():
    """A paper model's claims and Fig. 1 read plain Eq. 1 (its primary) only; ours beside it
    changes nothing there. A model with one arrangement reads that one."""
    from prototokens.studies.capacity_claims import capacity_claims
    from prototokens.studies.capacity_plots import plot_fig1
    from prototokens.studies.families import primary_rows

    eq1 = rows(BASE, model=PYTHIA, arrangement=EQ1).assign(lengths_tried=5)
    both = pd.concat([eq1, rows(HALF, model=PYTHIA, arrangement=OURS).assign(lengths_tried=5)])
    pd.testing.assert_frame_equal(primary_rows(both), eq1)
    own = rows(BASE, model="m", arrangement=OURS)
    pd.testing.assert_frame_equal(primary_rows(pd.concat([own, both])), pd.concat([own, eq1]))
    assert [c.ours for c in capacity_claims(both)] == [c.ours for c in capacity_claims(eq1)]
    fig = plot_fig1(both)
    big = [c.get_offsets() for c in fig.axes[0].collections if c.get_sizes()[0] == 120]
    assert big[0][0][0] == 32  # the best over Eq. 1's texts, not ours (16)
