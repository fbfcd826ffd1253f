"""The paper's claims about input arrangements (Table 1) and sharing within groups (Table 2),
judged on notebook 04's rows (one row per run: text x seed x arrangement x length, or text x
seed x shared vector x group size S_g).

Table 1's claims are judged at the longest length of the run, where arrangements differ most;
when every arrangement compared reconstructs there, the difference lies beyond the lengths tried
and the verdict is inconclusive (censored), never a pass on a tie.
"""

from __future__ import annotations

import pandas as pd

from prototokens.studies.claims import (
    BUDGET,
    CENSORED,
    NOT_RUN,
    SOLUTION_ACCURACY,
    TOO_FEW,
    Claim,
    ClaimSpec,
    count,
    n_of,
    sig,
)

MIN_RUNS = 3  # texts x seeds behind each mean accuracy compared
FAILS_BELOW = 0.9  # e*N "cannot reconstruct": mean accuracy below this
BEST_MARGIN = 0.05  # "best": ahead of every other arrangement by at least this accuracy
COST_MIN = 0.02  # "sharing costs accuracy": the per-run mean falls by at least this
RECOVER_WITHIN = 0.05  # "restarts recover it": best over seeds within this of S_g's smallest
# one e, then m repeated: Eq. 1 and the caption's reading, with and without the start token
TWO_REPEATED = ("e+m*(N-1)", "e+m*N", "bos+e+m*(N-1)", "bos+e+m*N")

SINGLE_FAILS = ClaimSpec(
    id="04.single_vector_fails",
    claim="one proto-token repeated (e×N) cannot reconstruct even a 2-token text",
    where="Sec. 2, Table 1",
    paper="e×N: 0.45 at N=2, 0.17 at N=4 (one e, repeated m: 1.00)",
    rule=(
        f"at the longest length N >= 2: e×N mean accuracy < {FAILS_BELOW} (holds) or not; needs "
        f">= {MIN_RUNS} runs and the best one-e-repeated-m arrangement at accuracy >= "
        f"{SOLUTION_ACCURACY} there (else the budget is too small to compare)"
    ),
)
TWO_BEST = ClaimSpec(
    id="04.two_vectors_one_repeated_best",
    claim="the best arrangement is one e followed by a repeated m",
    where="Sec. 2, Table 1",
    paper="N=256: [e][m]×(N−1) 0.99, [e][m]×N 0.97; alternating 0.17, halves 0.01",
    rule=(
        "at the longest length: the best one-e-repeated-m arrangement's mean accuracy exceeds "
        f"every other arrangement's by >= {BEST_MARGIN} (a tie does not pass); inconclusive when "
        f"both reach {SOLUTION_ACCURACY} (censored), neither does (budget) or with < "
        f"{MIN_RUNS} runs"
    ),
)
SHARING_COSTS = ClaimSpec(
    id="04.sharing_costs",
    claim="sharing e or m within larger groups costs accuracy per run",
    where="Sec. 4, Table 2 (avg)",
    paper="avg: e 0.98 -> 0.86, m 0.98 -> 0.83 from S_g = 1 to 256",
    rule=(
        f"for e and for m: the mean accuracy over runs falls by >= {COST_MIN} from the smallest "
        f"to the largest S_g; inconclusive when every run is solved (>= {SOLUTION_ACCURACY}), "
        "when the smallest S_g is not solved (best over seeds), or with < "
        f"{MIN_RUNS} runs per S_g"
    ),
)
RESTARTS_RECOVER = ClaimSpec(
    id="04.restarts_recover",
    claim="restarts recover what sharing costs, and larger groups need more of them",
    where="Sec. 4, Table 2 (max vs avg)",
    paper="max over 10 seeds >= 0.99 at every S_g; max - avg 0.02 -> 0.13-0.17",
    rule=(
        "for e and for m: the best-over-seeds accuracy at the largest S_g is within "
        f"{RECOVER_WITHIN} of the smallest S_g's, and max - avg is larger at the largest S_g; "
        "needs >= 2 seeds; inconclusive when every run is solved or the smallest S_g is not"
    ),
)


def arrangement_claims(rows1: pd.DataFrame, rows2: pd.DataFrame | None = None) -> list[Claim]:
    """Notebook 04's four claims. ``rows1``: Table 1 rows (arrangement, num_tokens, text_id,
    seed, accuracy); ``rows2``: Table 2 rows (share, group_size, text_id, seed, accuracy)."""
    need = {"arrangement", "num_tokens", "text_id", "seed", "accuracy"}
    if not need <= set(rows1.columns):
        raise ValueError(f"Table 1 rows lack {sorted(need - set(rows1.columns))}")
    out = [single_fails_claim(rows1), two_best_claim(rows1)]
    return out + sharing_claims(rows2 if rows2 is not None else pd.DataFrame())


def _n1(rows: pd.DataFrame) -> str:
    return n_of(texts=rows.text_id.nunique(), seeds=rows.seed.nunique(),
                lengths=rows.num_tokens.nunique())  # fmt: skip


def _at_longest(rows: pd.DataFrame) -> tuple[int, pd.Series, pd.Series]:
    """The longest length, mean accuracy and runs per arrangement there."""
    longest = int(rows.num_tokens.max())
    g = rows[rows.num_tokens == longest].groupby("arrangement", observed=True).accuracy
    return longest, g.mean(), g.size()


def single_fails_claim(rows: pd.DataFrame) -> Claim:
    spec, n = SINGLE_FAILS, _n1(rows)
    longest, acc, runs = _at_longest(rows)
    two = [a for a in TWO_REPEATED if a in acc.index]
    best_two = max(two, key=lambda a: acc[a]) if two else None
    ours = f"at N={longest}: e×N {sig(acc.get('e*N'))}" + (
        f", {best_two} {sig(acc[best_two])}" if best_two else ""
    )
    if "e*N" not in acc.index or best_two is None or longest < 2:
        return spec.inconclusive(NOT_RUN, "needs e*N, a one-e-repeated-m arrangement, N >= 2",
                                 ours, n)  # fmt: skip
    if runs["e*N"] < MIN_RUNS:
        return spec.inconclusive(TOO_FEW, f"{count(runs['e*N'], 'run')} < {MIN_RUNS}", ours, n)
    if acc[best_two] < SOLUTION_ACCURACY:
        detail = f"{best_two} reaches {sig(acc[best_two])} < {SOLUTION_ACCURACY} at N={longest}"
        return spec.inconclusive(BUDGET, detail, ours, n)
    return spec.judge(acc["e*N"] < FAILS_BELOW, ours, n)


def two_best_claim(rows: pd.DataFrame) -> Claim:
    spec, n = TWO_BEST, _n1(rows)
    longest, acc, runs = _at_longest(rows)
    two = [a for a in TWO_REPEATED if a in acc.index]
    others = [a for a in acc.index if a not in TWO_REPEATED]
    if not two or not others:
        return spec.inconclusive(NOT_RUN, "needs both kinds of arrangement", "-", n)
    a = max(two, key=lambda x: acc[x])
    o = max(others, key=lambda x: acc[x])
    ours = f"at N={longest}: {a} {sig(acc[a])} vs {o} {sig(acc[o])}"
    if min(runs[a], runs[o]) < MIN_RUNS:
        fewest = count(int(min(runs[a], runs[o])), "run")
        return spec.inconclusive(TOO_FEW, f"{fewest} < {MIN_RUNS}", ours, n)
    if acc[a] >= SOLUTION_ACCURACY and acc[o] >= SOLUTION_ACCURACY:
        detail = f"both reconstruct at N={longest}: they separate at longer lengths"
        return spec.inconclusive(CENSORED, detail, ours, n)
    if max(acc[a], acc[o]) < SOLUTION_ACCURACY:
        detail = f"no arrangement reconstructs at N={longest} (>= {SOLUTION_ACCURACY})"
        return spec.inconclusive(BUDGET, detail, ours, n)
    return spec.judge(acc[a] - acc[o] >= BEST_MARGIN, ours, n)


def _table2(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (share, group_size): avg = mean over runs, max = mean over texts of the best seed."""
    out = []
    for (share, size), g in rows.groupby(["share", "group_size"], sort=True):
        best = g.groupby("text_id").accuracy.max()
        out.append({"share": share, "size": int(size), "avg": g.accuracy.mean(),
                    "max": best.mean(), "runs": len(g)})  # fmt: skip
    return pd.DataFrame(out, columns=["share", "size", "avg", "max", "runs"])


def sharing_claims(rows: pd.DataFrame) -> list[Claim]:
    """Table 2's two claims, for e and m shared, smallest against largest S_g."""
    specs = (SHARING_COSTS, RESTARTS_RECOVER)
    need = {"share", "group_size", "text_id", "seed", "accuracy"}
    if rows.empty or not need <= set(rows.columns):
        return [s.inconclusive(NOT_RUN, "no Table 2 rows", "-", "0") for s in specs]
    n = n_of(texts=rows.text_id.nunique(), seeds=rows.seed.nunique(),
             group_sizes=rows.group_size.nunique())  # fmt: skip
    t = _table2(rows)
    ends, parts = {}, []
    for share in ("e", "m"):
        g = t[t.share == share].sort_values("size")
        if len(g) < 2:
            continue
        lo, hi = g.iloc[0], g.iloc[-1]
        ends[share] = (lo, hi)
        parts.append(
            f"{share}: avg {sig(lo.avg)} -> {sig(hi.avg)}, max {sig(lo['max'])} -> "
            f"{sig(hi['max'])} (S_g {lo['size']} -> {hi['size']})"
        )
    ours = "; ".join(parts) or "-"
    if set(ends) != {"e", "m"}:
        return [s.inconclusive(NOT_RUN, "needs e and m shared at >= 2 group sizes", ours, n)
                for s in specs]  # fmt: skip
    fewest = int(t.runs.min())
    if fewest < MIN_RUNS:
        detail = f"{count(fewest, 'run')} < {MIN_RUNS} per S_g"
        return [s.inconclusive(TOO_FEW, detail, ours, n) for s in specs]
    if (t.avg >= SOLUTION_ACCURACY).all():
        detail = "every run is solved at every S_g: the texts are too short to show a cost"
        return [s.inconclusive(CENSORED, detail, ours, n) for s in specs]
    unsolved = [sh for sh, (lo, _) in ends.items() if lo["max"] < SOLUTION_ACCURACY]
    if unsolved:  # the cost of sharing is measured against texts solved without it
        detail = (
            f"{', '.join(unsolved)} at S_g = {ends[unsolved[0]][0]['size']}: best over "
            f"seeds below {SOLUTION_ACCURACY}"
        )
        return [s.inconclusive(BUDGET, detail, ours, n) for s in specs]
    costs = all(lo.avg - hi.avg >= COST_MIN for lo, hi in ends.values())
    out = [SHARING_COSTS.judge(costs, ours, n)]
    if rows.seed.nunique() < 2:
        out.append(RESTARTS_RECOVER.inconclusive(TOO_FEW, "one seed: no restarts", ours, n))
        return out
    recover = all(
        hi["max"] >= lo["max"] - RECOVER_WITHIN and hi["max"] - hi.avg > lo["max"] - lo.avg
        for lo, hi in ends.values()
    )
    out.append(RESTARTS_RECOVER.judge(recover, ours, n))
    return out
