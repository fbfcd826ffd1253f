"""Notebook 07: one-forward reconstruction against autoregressive decoding, with physical bounds.

``run_throughput`` measures (never reads from the optimisation cache) one row per (model, length
N, batch B, method): ``one_forward`` (a pass over Z and the argmax), ``ar_generate``
(``transformers`` ``generate``) and ``ar_static`` (the strong baseline); each row records the
device that measured it, tokens/s and the fraction of its physical bound (compute bound for the
one pass, weight-reading bound for decoding). ``speedups`` pairs them; ``training_time_table``
READS Table 4's seconds per text from the result store's rows (notebooks 03 and 05 write them):
from-scratch rows of one recipe and budget, with the paper's Table 4 beside them.
"""

from __future__ import annotations

import gc
import json
import platform

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.engine.decoding import greedy_generate
from prototokens.studies import bounds
from prototokens.studies.decode_timing import (
    StaticDecoder,
    ar_prefix,
    one_forward_decode,
    one_forward_inputs,
    quiet_transformers,
    time_call,
)
from prototokens.studies.measures import seconds_per_text
from prototokens.studies.paper_tables import PAPER_TABLE4, nearest_paper_model, paper_name
from prototokens.studies.plotting import explain_empty, legend_outside, mark_reference

METHODS = ("one_forward", "ar_generate", "ar_static")
METHOD_LABELS = {
    "one_forward": "one forward pass",
    "ar_generate": "AR: transformers generate",
    "ar_static": "AR: static cache (strong)",
}
# Paper section 11 (A100/H100, batch 1): the ranges drawn on fig4 as the paper's, not ours.
PAPER_AR_RANGE = (20.0, 140.0)
PAPER_ONE_FORWARD_MAX = 25_000.0
PAPER_MEAN_SPEEDUP = 279.0


def load_for_timing(spec, device="auto", dtype="auto"):
    """A ``LoadedModel``: as given, a ``random:<arch>`` random-init copy, or ``load_model``."""
    from prototokens.inputs.architectures import is_random_spec, random_lm
    from prototokens.inputs.models import load_model

    if not isinstance(spec, str):
        return spec
    if is_random_spec(spec):
        return random_lm(spec, device=device, dtype=dtype)
    return load_model(spec, device=device, dtype=dtype)


def _row_base(lm, peaks, params) -> dict:
    import transformers

    return {
        "model": lm.name,
        "title": lm.title,
        "source": lm.source,
        "random_init": lm.source == "random-init",
        "params": params,
        "device": str(lm.device),
        "device_name": peaks.device_name,
        "dtype": str(lm.dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "host": platform.node(),
        "peaks_source": peaks.source,
    }


def measure_model(
    lm,
    lengths,
    batch_sizes,
    *,
    repeats: int = 3,
    warmup: int = 1,
    methods=METHODS,
    strong_mode: str = "auto",
    peaks: bounds.Peaks | None = None,
    prefix_k: int = 1,
    log=print,
) -> list[dict]:
    """Rows for one loaded model over the (N, B) grid; see the module docstring."""
    quiet_transformers()
    bad = set(methods) - set(METHODS)
    if bad:
        raise ValueError(f"unknown methods {sorted(bad)}; choose from {METHODS}")
    peaks = peaks or bounds.device_peaks(lm.device, lm.dtype)
    params = sum(p.numel() for p in lm.model.parameters())
    bpp = bounds.bytes_per_param(lm.dtype)
    base = _row_base(lm, peaks, params)
    rows = []
    for N in lengths:
        for B in batch_sizes:
            gen_tokens = None
            for method in methods:
                row = {**base, "method": method, "num_tokens": int(N), "batch_size": int(B)}
                try:
                    if method == "one_forward":
                        plan, vec = one_forward_inputs(lm, N, B)
                        t = time_call(
                            lambda: one_forward_decode(lm, plan, vec), lm.device, repeats, warmup
                        )
                        bound = bounds.compute_bound_tok_s(params, peaks.flops_for(lm.dtype))
                        row["bound_kind"] = "compute: peak / (2 params)"
                    else:
                        prefix = ar_prefix(lm, B, prefix_k)
                        if method == "ar_generate":
                            fn = lambda: greedy_generate(lm, prefix, N)  # noqa: E731
                        else:
                            dec = StaticDecoder(lm, B, prefix_k, N, strong_mode)
                            fn = lambda: dec(prefix)  # noqa: E731
                        t = time_call(fn, lm.device, repeats, warmup)
                        if method == "ar_static":
                            row["impl"] = dec.mode
                        toks = t.result.cpu()
                        if method == "ar_generate":
                            gen_tokens = toks
                        elif gen_tokens is not None:
                            row["tokens_match_generate"] = bool(torch.equal(toks, gen_tokens))
                        bound = bounds.decode_bound_tok_s(params, bpp, peaks.bandwidth, B)
                        row["bound_kind"] = "memory: read all weights once per step"
                    tok_s = B * N / t.median_s
                    row.update(
                        median_s=t.median_s,
                        min_s=t.min_s,
                        repeats=len(t.times),
                        tok_s=tok_s,
                        bound_tok_s=bound,
                        fraction_of_bound=tok_s / bound,
                    )
                    log(
                        f"{lm.name:>24s} N={N:<5d} B={B:<4d} {method:12s} {tok_s:12.1f} tok/s "
                        f"({100 * tok_s / bound:5.1f}% of bound)"
                    )
                except Exception as exc:  # an OOM at one shape must not lose the rest
                    row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                    log(f"{lm.name} N={N} B={B} {method}: FAILED {row['error']}")
                    if lm.device.type == "cuda":
                        torch.cuda.empty_cache()
                rows.append(row)
    return rows


def run_throughput(
    models,
    lengths=(32,),
    batch_sizes=(1,),
    *,
    device="auto",
    dtype="auto",
    repeats: int = 3,
    warmup: int = 1,
    methods=METHODS,
    strong_mode: str = "auto",
    log=print,
) -> pd.DataFrame:
    """Throughput rows for every model spec (``LoadedModel``, embedded name, hub id or
    ``random:<arch>``); a model that cannot be loaded gives one row with its error."""
    rows = []
    for spec in models:
        try:
            lm = load_for_timing(spec, device, dtype)
        except Exception as exc:
            rows.append({"model": str(spec), "error": f"{type(exc).__name__}: {exc}"[:300]})
            log(f"{spec}: cannot load ({rows[-1]['error']})")
            continue
        rows += measure_model(
            lm,
            lengths,
            batch_sizes,
            repeats=repeats,
            warmup=warmup,
            methods=methods,
            strong_mode=strong_mode,
            log=log,
        )
        if lm is not spec:
            del lm
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return pd.DataFrame(rows)


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, N, B): tokens/s of each method and the one pass's speed-up against
    ``generate`` and against the strong baseline."""
    ok = df[df.get("tok_s", pd.Series(dtype=float)).notna()] if "tok_s" in df else df.iloc[:0]
    if ok.empty:
        return pd.DataFrame()
    keys = ["model", "title", "source", "device_name", "dtype", "num_tokens", "batch_size"]
    wide = ok.pivot_table(index=keys, columns="method", values="tok_s").reset_index()
    for m in METHODS:
        if m not in wide:
            wide[m] = np.nan
    wide["speedup_vs_generate"] = wide["one_forward"] / wide["ar_generate"]
    wide["speedup_vs_strong"] = wide["one_forward"] / wide["ar_static"]
    wide["strong_vs_generate"] = wide["ar_static"] / wide["ar_generate"]
    wide.columns.name = None
    return wide


def training_time_table(
    rows: pd.DataFrame,
    arrangement: str = DEFAULT_ARRANGEMENT,
    *,
    recipe: str | None = None,
    max_steps: int | None = None,
) -> pd.DataFrame:
    """Table 4 from stored rows, with the paper's Table 4 beside it. Never re-measured here.

    Reads only rows that mean "seconds to train one text": of ``arrangement``, nothing shared,
    trained from scratch (``warm_started`` recorded False: a warm-started increment of the
    progressive search costs less than a text; rows that do not record it are left out),
    converged, and of ONE recipe and budget (the full recipe parameters, ``max_steps``
    included): ``recipe``/``max_steps`` pick it, else the recipe with the most such rows.
    Per (model, device, N): rows, the median wall time from the start of the batch to
    convergence, the median seconds per text (:func:`measures.seconds_per_text`: the rows of a
    batch train together) and the median steps; ``origin`` "ours". Beside them, the paper's
    Table 4 rows of the paper's nearest model by size to each of ours
    (:func:`paper_tables.nearest_paper_model`), ``origin`` "paper", named "<model> (paper)".
    """
    need = {"model", "num_tokens", "wall_time_s", "converged", "arrangement", "recipe_params"}
    need.add("steps")
    if rows is None or rows.empty or not need <= set(rows.columns):
        return pd.DataFrame()
    r = rows[(rows.arrangement == arrangement) & rows.converged.astype(bool)].copy()
    for col, default in (("device", "unknown"), ("share", None), ("warm_started", None)):
        if col not in r:
            r[col] = default
    # rows store share "none" when nothing is shared (engine.reconstruction)
    r = r[(r["share"].isna() | (r["share"] == "none")) & (r["warm_started"] == False)]  # noqa: E712
    if r.empty:
        return pd.DataFrame()
    r["recipe_name"] = [p.get("name") for p in r.recipe_params]
    r["max_steps"] = [p.get("max_steps") for p in r.recipe_params]
    r["_recipe"] = [json.dumps(p, sort_keys=True) for p in r.recipe_params]
    if recipe is not None:
        r = r[r.recipe_name == recipe]
    if max_steps is not None:
        r = r[r.max_steps == max_steps]
    if r.empty:
        return pd.DataFrame()
    r = r[r._recipe == r._recipe.value_counts().index[0]]  # one recipe and budget
    r["s_per_text"] = seconds_per_text(r)
    ours = (
        r.groupby(["model", "device", "recipe_name", "max_steps", "num_tokens"])
        .agg(
            rows=("wall_time_s", "size"),
            median_s_to_converge=("wall_time_s", "median"),
            median_s_per_text=("s_per_text", "median"),
            median_steps=("steps", "median"),
        )
        .reset_index()
        .rename(columns={"recipe_name": "recipe"})
    )
    ours.insert(0, "origin", "ours")
    nearest = dict.fromkeys(m for m in map(nearest_paper_model, ours.model.unique()) if m)
    paper = PAPER_TABLE4[PAPER_TABLE4.paper_model.isin(list(nearest))]
    paper = pd.DataFrame(
        {
            "origin": "paper",
            "model": paper.paper_model.map(paper_name),
            "device": "A100/H100 (paper)",
            "recipe": "paper",
            "max_steps": 5000,
            "num_tokens": paper.num_tokens,
            "median_s_per_text": paper.paper_seconds,
        }
    )
    return pd.concat([ours, paper], ignore_index=True)


def _label(title: str, source: str) -> str:
    return title.replace(" (random init)", "") + (
        "\n(random init)" if source == "random-init" else ""
    )


def plot_throughput(df: pd.DataFrame, title: str = ""):
    """Fig. 4: tokens/s per model and method (log scale), one panel per batch size, each bar's
    physical bound as a black tick, the paper's ranges shaded and labelled as the paper's."""
    ok = df[df["tok_s"].notna()] if "tok_s" in df else df.iloc[:0]
    sizes = sorted(ok.batch_size.unique()) if not ok.empty else [1]
    panel_w = max(5.5, 1.1 * ok["model"].nunique() + 1) if not ok.empty else 5.5  # room per label
    fig, axes = plt.subplots(1, len(sizes), figsize=(panel_w * len(sizes) + 2, 4.6), squeeze=False)
    if ok.empty:
        explain_empty(axes[0][0], "no speed measured: every row's tok_s is empty")
        return fig
    colours = {"one_forward": "#1b9e77", "ar_generate": "#d95f02", "ar_static": "#7570b3"}
    for ax, B in zip(axes[0], sizes):
        sub = ok[ok.batch_size == B]
        # longest length per model: the one-pass row the paper reports is the longest text
        sub = sub[sub.num_tokens == sub.groupby("model").num_tokens.transform("max")]
        models = list(dict.fromkeys(sub.model))
        width = 0.8 / len(METHODS)
        for j, m in enumerate(METHODS):
            for i, name in enumerate(models):
                r = sub[(sub.model == name) & (sub.method == m)]
                if r.empty:
                    continue
                r = r.iloc[0]
                x = i + (j - 1) * width
                ax.bar(
                    x, r.tok_s, width, color=colours[m], label=METHOD_LABELS[m] if i == 0 else None
                )
                ax.plot([x - width / 2, x + width / 2], [r.bound_tok_s] * 2, color="k", lw=1.5,
                        label="physical bound" if (i == 0 and j == 0) else None)  # fmt: skip
        mark_reference(
            ax.axhspan(*PAPER_AR_RANGE, color="#d95f02", alpha=0.12,
                       label="paper: AR 20-140 tok/s"),
            ax.axhline(PAPER_ONE_FORWARD_MAX, color="#1b9e77", ls="--", lw=1,
                       label="paper: one pass up to ~25,000 tok/s"),
        )  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(
            [_label(sub[sub.model == n].title.iloc[0], sub[sub.model == n].source.iloc[0])
             for n in models], fontsize=8)  # fmt: skip
        ns = sorted(sub.num_tokens.unique())
        ax.set_title(f"batch {B}, N = {', '.join(map(str, ns))}", fontsize=10)
        ax.set_ylabel("tokens / s")
        ax.grid(axis="y", alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    legend_outside(axes[0][-1], handles=handles, labels=labels)  # bars fill every panel
    dev = ok.device_name.iloc[0]
    fig.suptitle(title or f"Throughput on {dev} ({ok.dtype.iloc[0]})", fontsize=11)
    fig.tight_layout()
    return fig


def bounds_table(df: pd.DataFrame) -> pd.DataFrame:
    """The measured speeds with their bounds, one row per measurement."""
    cols = ["title", "source", "device_name", "dtype", "method", "impl", "num_tokens",
            "batch_size", "median_s", "tok_s", "bound_tok_s", "fraction_of_bound",
            "tokens_match_generate"]  # fmt: skip
    ok = df[df["tok_s"].notna()] if "tok_s" in df else df.iloc[:0]
    return ok[[c for c in cols if c in ok]].reset_index(drop=True)
