"""Notebook 04: input arrangements (paper Table 1) and sharing one vector within groups (Table 2).

``run_tab1_arrangements`` trains every arrangement on the same texts (prefixes of one set of
texts) and the same seeds at each length and returns the cached rows; ``summarize_tab1`` turns
rows into the table (token accuracy mean ± std, exact-match fraction, the fraction of runs whose
only wrong token is position 0, steps). ``run_tab2_sharing`` trains with e or m shared within
groups of ``S_g`` texts; ``summarize_tab2`` gives both of the paper's aggregations. Everything is
computed from rows of :func:`prototokens.engine.reconstruction.reconstruct`, so a rerun is instant.
``eq1_variants`` sets Eq. 1 against the caption's reading, ``ce_reduced_fraction`` says how many
runs lowered their CE, and ``arrangement_metrics`` is the notebook's metrics dict.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prototokens.engine.metrics import start_token_id
from prototokens.engine.progress import progress_label
from prototokens.engine.reconstruction import load_results, reconstruct
from prototokens.inputs.data.base import prefix
from prototokens.studies.claims import verdicts

# Eq. 1 and the Table 1 caption's reading, without and with the model's start token
EQ1_VARIANTS = ("e+m*(N-1)", "e+m*N", "bos+e+m*(N-1)", "bos+e+m*N")

# Paper values (Table 1: Llama-3.2-1B, 50 PG-19 texts; Table 2: 256 texts of 256 tokens),
# shown beside ours and labelled as the paper's. Table 1's [e][m]xN row is our ``e+m*N`` and
# its winner [e][m]x(N-1) is Eq. 1, ``e+m*(N-1)`` (see the notebook on the caption's ambiguity).
PAPER_TAB1 = {
    "e*N": {1: 1.00, 2: 0.45, 4: 0.17, 256: 0.01},
    "e*N/2+m*N/2": {1: 1.00, 2: 1.00, 4: 0.12, 256: 0.01},
    "(e,m)*N/2": {1: 1.00, 2: 1.00, 4: 1.00, 256: 0.17},
    "e+m*N": {1: 1.00, 2: 1.00, 4: 1.00, 256: 0.97},
    "e+m*(N-1)": {1: 1.00, 2: 1.00, 4: 1.00, 256: 0.99},
}
PAPER_TAB2 = {  # (shared, aggregation) -> {S_g: mean accuracy}
    ("e", "max"): {1: 1.00, 16: 0.99, 256: 0.99},
    ("e", "avg"): {1: 0.98, 16: 0.90, 256: 0.86},
    ("m", "max"): {1: 1.00, 16: 1.00, 256: 1.00},
    ("m", "avg"): {1: 0.98, 16: 0.86, 256: 0.83},
}


def doubling_lengths(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit`` (``limit`` itself appended if it is not a power of two)."""
    if limit < 1:
        raise ValueError(f"length limit must be >= 1, got {limit}")
    out, n = [], 1
    while n <= limit:
        out.append(n)
        n *= 2
    if out[-1] != limit:
        out.append(limit)
    return out


def run_tab1_arrangements(
    lm,
    texts,
    arrangements: Sequence[str],
    lengths: Sequence[int],
    seeds: Sequence[int],
    recipe,
    store,
    batch_size: int = 64,
    progress="log",
) -> pd.DataFrame:
    """Rows of every (arrangement, length, text, seed): texts cut to each length (their prefixes),
    so that all arrangements see identical targets and seeds. One ``reconstruct`` per
    arrangement over all lengths: the prefixes share padded batches, which on a CPU costs less than
    one small batch per length (a step over few rows is bound by reading the weights: SmolLM2,
    2 cores, 0.22 s at 4 rows of N=2, 0.39 s at N=8, 0.75 s at 16 rows of N=8). Rows are keyed by
    their own inputs, never by the batch, so they are the same rows either way."""
    short = [t for t in texts if len(t.token_ids) < max(lengths)]
    if short:
        raise ValueError(
            f"{len(short)} texts are shorter than the longest length {max(lengths)} "
            f"(e.g. {short[0].text_id}: {len(short[0].token_ids)} tokens)"
        )
    cut = [prefix(t, n, lm.tokenizer) for n in lengths for t in texts]  # length-major order
    frames = []
    for name in arrangements:
        with progress_label(f"Table 1 {name}, N in {list(lengths)}"):
            frames.append(
                reconstruct(
                    lm,
                    cut,
                    arrangement=name,
                    recipe=recipe,
                    seeds=list(seeds),
                    store=store,
                    batch_size=batch_size,
                    progress=progress,
                )
            )
    return pd.concat(frames, ignore_index=True)


def only_position0_wrong(rows: pd.DataFrame) -> pd.Series:
    """Per row: the decoding is wrong at position 0 and nowhere else."""
    first = rows["first_wrong"]
    return (first.notna() & (first == 0) & (rows["c_tokens"] == rows["num_tokens"] - 1)).astype(
        bool
    )


def _max_steps(rows: pd.DataFrame) -> pd.Series:
    return rows["recipe_params"].map(lambda p: int(p["max_steps"]))


def summarize_tab1(
    rows: pd.DataFrame, by: Sequence[str] = ("arrangement", "num_tokens")
) -> pd.DataFrame:
    """Table 1 from rows: per (arrangement, num_tokens) the number of runs, token accuracy mean and
    std, exact-match fraction, fraction of runs whose only wrong token is position 0, median steps
    to accuracy 1.0 over the runs that got there, and mean steps with failures counted at the
    budget (so an arrangement cannot look fast by failing). ``by=["arrangement"]`` pools lengths."""
    df = rows.assign(
        pos0_only=only_position0_wrong(rows),
        steps_budgeted=np.where(rows["converged"], rows["steps"], _max_steps(rows)),
        exact=rows["exact_match"].astype(float),
        steps_to_1=pd.to_numeric(rows["steps_to_1"], errors="coerce"),
    )
    order = list(dict.fromkeys(rows["arrangement"]))
    out = (
        df.groupby(list(by), sort=False)
        .agg(
            runs=("accuracy", "size"),
            mean_accuracy=("accuracy", "mean"),
            std_accuracy=("accuracy", lambda a: float(np.std(a, ddof=0))),
            exact_fraction=("exact", "mean"),
            pos0_only_fraction=("pos0_only", "mean"),
            median_steps_to_1=("steps_to_1", "median"),
            mean_steps_budgeted=("steps_budgeted", "mean"),
        )
        .reset_index()
    )
    out["arrangement"] = pd.Categorical(out["arrangement"], order, ordered=True)
    return out.sort_values(list(by)).reset_index(drop=True)


def tab1_wide(summary: pd.DataFrame, with_paper: bool = True) -> pd.DataFrame:
    """The paper's layout: one row per arrangement, one column per length, cells "mean ± std";
    with ``with_paper``, the paper's value at that length (where it has one) in brackets."""
    cells = {}
    for r in summary.itertuples():
        text = f"{r.mean_accuracy:.2f} ± {r.std_accuracy:.2f}"
        paper = PAPER_TAB1.get(str(r.arrangement), {}).get(int(r.num_tokens))
        if with_paper and paper is not None:
            text += f" (paper {paper:.2f})"
        cells.setdefault(str(r.arrangement), {})[f"N={int(r.num_tokens)}"] = text
    return pd.DataFrame.from_dict(cells, orient="index").rename_axis("arrangement").reset_index()


def eq1_schematics(lm, arrangements: Sequence[str], num_tokens: int = 4) -> list:
    """Fig. 2-style schematics of the :data:`EQ1_VARIANTS` among ``arrangements``, the model's
    own start token named in the ``bos+`` ones."""
    from prototokens.studies.optimization_plots import plot_schematic

    start = lm.tokenizer.convert_ids_to_tokens([start_token_id(lm.tokenizer)])[0]
    names = [a for a in EQ1_VARIANTS if a in arrangements]
    return [plot_schematic(a, num_tokens, start_label=start) for a in names]


def ce_reduced_fraction(store, rows: pd.DataFrame) -> float:
    """Fraction of rows whose target CE fell during training (last point of the stored loss
    curve below the first): a run that learned something, even where it did not converge."""
    results = load_results(store, rows)
    curves = [results[k]["loss_curve"] for k in rows["cache_key"]]
    return float(np.mean([c[-1] < c[0] for c in curves]))


def eq1_variants(
    tab1: pd.DataFrame, rows: pd.DataFrame, min_length: int = 4
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Eq. 1 against the caption, with and without the start token (:data:`EQ1_VARIANTS` present
    in ``rows``), at the lengths where there is something to fail (>= ``min_length``, or the
    longest length when all are shorter). Returns ``(per length: exact and position-0-only
    fractions, pooled summary per variant, the best variant by exact fraction then accuracy)``."""
    present = set(rows["arrangement"])
    names = [a for a in EQ1_VARIANTS if a in present]
    if not names:
        raise ValueError(f"none of the Eq. 1 variants {EQ1_VARIANTS} is among the rows")
    shortest = min(min_length, int(rows["num_tokens"].max()))
    long = tab1[tab1.arrangement.isin(names) & (tab1.num_tokens >= shortest)]
    per_length = long.pivot(
        index="arrangement", columns="num_tokens", values=["exact_fraction", "pos0_only_fraction"]
    )
    chosen = rows[rows.arrangement.isin(names) & (rows.num_tokens >= shortest)]
    pooled = summarize_tab1(chosen, by=["arrangement"]).astype({"arrangement": str})
    variants = pooled.set_index("arrangement").reindex(names)
    ranked = variants.sort_values(["exact_fraction", "mean_accuracy"], ascending=False)
    return per_length, variants, str(ranked.index[0])


def arrangement_metrics(
    lm,
    *,
    source: str,
    lengths: Sequence[int],
    num_texts: int,
    num_seeds: int,
    max_steps: int,
    tab1: pd.DataFrame,
    variants: pd.DataFrame,
    best_variant: str,
    ce_reduced: float,
    tab2: pd.DataFrame,
    claims=(),
) -> dict:
    """Notebook 04's metrics: Table 1 per arrangement and length, the Eq. 1 variants, Table 2 per
    shared slot, group size and aggregation, the claims' verdicts."""
    start = lm.tokenizer.convert_ids_to_tokens([start_token_id(lm.tokenizer)])[0]
    fractions = ("mean_accuracy", "exact_fraction", "pos0_only_fraction")
    return {
        "device": str(lm.device),
        "model": lm.name,
        "source": source,
        "lengths": list(lengths),
        "num_texts": num_texts,
        "num_seeds": num_seeds,
        "max_steps": max_steps,
        "start_token": start,
        "tab1": {
            f"{r.arrangement}@{int(r.num_tokens)}": {k: float(getattr(r, k)) for k in fractions}
            for r in tab1.itertuples()
        },
        "eq1_variants": {
            a: {k: float(v[k]) for k in ("exact_fraction", "mean_accuracy", "pos0_only_fraction")}
            for a, v in variants.iterrows()
        },
        "best_eq1_variant": best_variant,
        "tab1_ce_reduced_fraction": ce_reduced,
        "tab2": {
            f"{r.share}@{r.group_size}@{r.aggregation}": {"mean_accuracy": float(r.mean_accuracy)}
            for r in tab2.itertuples()
        },
        "claims": verdicts(claims),
    }


def run_tab2_sharing(
    lm,
    texts,
    group_sizes: Sequence[int],
    seeds: Sequence[int],
    recipe,
    store,
    shares: Sequence[str] = ("e", "m"),
    arrangement: str | None = None,
    batch_size: int = 64,
    progress="log",
) -> pd.DataFrame:
    """Rows of every (shared vector, S_g, text, seed): the texts of one seed split into groups of
    ``S_g`` consecutive texts that share e (or m); each group is optimised jointly in one batch
    (its shared vector's gradient is the sum over its texts). Adds a ``group_size`` column."""
    bad = [g for g in group_sizes if g < 1 or len(texts) % g]
    if bad:
        raise ValueError(
            f"group sizes {bad} do not divide the {len(texts)} texts into whole groups"
        )
    kwargs = {"arrangement": arrangement} if arrangement else {}
    frames = []
    for share in shares:
        for size in group_sizes:
            with progress_label(f"Table 2 {share} shared by S_g={size}"):
                rows = reconstruct(
                    lm,
                    texts,
                    recipe=recipe,
                    seeds=list(seeds),
                    share=share,
                    group_size=size,
                    store=store,
                    batch_size=max(batch_size, size),
                    progress=progress,
                    **kwargs,
                )
            frames.append(rows.assign(group_size=size))
    return pd.concat(frames, ignore_index=True)


def summarize_tab2(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 2 from rows (columns share, group_size, text_id, seed, accuracy): for each shared
    vector and S_g both of the paper's aggregations, mean ± std over texts of

    - ``max``: the best accuracy over seeds of each text (what more restarts can recover);
    - ``avg``: the accuracy of every (text, seed) run (std over all runs).
    """
    out = []
    for (share, size), g in rows.groupby(["share", "group_size"], sort=True):
        best = g.groupby("text_id")["accuracy"].max()
        for agg, values in (("max", best), ("avg", g["accuracy"])):
            out.append(
                {
                    "share": share,
                    "group_size": int(size),
                    "aggregation": agg,
                    "mean_accuracy": float(values.mean()),
                    "std_accuracy": float(np.std(values, ddof=0)),
                    "texts": int(g["text_id"].nunique()),
                    "seeds": int(g["seed"].nunique()),
                    "paper": PAPER_TAB2.get((share, agg), {}).get(int(size)),
                }
            )
    return pd.DataFrame(out)


def plot_arrangements_accuracy_vs_length(summary: pd.DataFrame, title: str = ""):
    """Token accuracy against N (log2 axis) per arrangement: mean line, ± std band; prefixed
    (start-token) variants dashed; the paper's Table 1 values as hollow markers."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (name, g) in enumerate(summary.groupby("arrangement", sort=False, observed=True)):
        g = g.sort_values("num_tokens")
        x, y, s = g["num_tokens"].to_numpy(), g["mean_accuracy"], g["std_accuracy"]
        style = "--" if str(name).startswith("bos+") else "-"
        ax.plot(x, y, style, color=f"C{i}", marker="o", ms=3, label=str(name))
        ax.fill_between(x, np.clip(y - s, 0, 1), np.clip(y + s, 0, 1), color=f"C{i}", alpha=0.12)
        paper = {n: v for n, v in PAPER_TAB1.get(str(name), {}).items() if n <= x.max()}
        if paper:  # only within our lengths, so that the axis stays ours
            ax.scatter(list(paper), list(paper.values()), facecolors="none", edgecolors=f"C{i}")
    ax.scatter([], [], facecolors="none", edgecolors="k", label="paper (Llama-3.2-1B)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("text length N (tokens)")
    ax.set_ylabel("token accuracy (one forward)")
    ax.set_ylim(-0.02, 1.04)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_sharing_vs_group_size(summary: pd.DataFrame, title: str = ""):
    """Accuracy against S_g (log2 axis): one line per (shared vector, aggregation), ± std band;
    the paper's Table 2 values as hollow markers."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, ((share, agg), g) in enumerate(summary.groupby(["share", "aggregation"], sort=True)):
        g = g.sort_values("group_size")
        x, y, s = g["group_size"].to_numpy(), g["mean_accuracy"], g["std_accuracy"]
        ls = "-" if agg == "max" else ":"
        label = f"{share} shared, {agg} over seeds" if agg == "max" else f"{share} shared, avg"
        ax.plot(x, y, ls, color=f"C{i}", marker="o", ms=3, label=label)
        ax.fill_between(x, np.clip(y - s, 0, 1), np.clip(y + s, 0, 1), color=f"C{i}", alpha=0.1)
        paper = {k: v for k, v in PAPER_TAB2.get((share, agg), {}).items() if k <= x.max()}
        if paper:  # only within our group sizes, so that the axis stays ours
            ax.scatter(list(paper), list(paper.values()), facecolors="none", edgecolors=f"C{i}")
    ax.scatter([], [], facecolors="none", edgecolors="k", label="paper (256 tokens, 10 seeds)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("group size S_g (texts sharing one vector)")
    ax.set_ylabel("token accuracy")
    ax.set_ylim(-0.02, 1.04)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
