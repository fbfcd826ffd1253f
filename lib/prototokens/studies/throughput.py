"""Notebook 07: one-forward reconstruction against autoregressive decoding, with physical bounds.

``run_throughput`` measures (never reads from the optimisation cache) one row per (model, length
N, batch B, method): ``one_forward`` (a pass over Z and the argmax), ``ar_generate``
(``transformers`` ``generate``) and ``ar_static`` (the strong baseline); each row records the
device that measured it, tokens/s and the fraction of its physical bound (compute bound for the
one pass, weight-reading bound for decoding). ``speedups`` pairs them; ``training_time_table``
READS Table 4's seconds per text from the result store's rows (notebooks 03 and 05 write them).
"""

from __future__ import annotations

import gc
import platform

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.studies import bounds
from prototokens.studies.timing import (
    StaticDecoder,
    ar_prefix,
    generate_greedy,
    one_forward_decode,
    one_forward_inputs,
    quiet_transformers,
    time_call,
)

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
                            fn = lambda: generate_greedy(lm, prefix, N)  # noqa: E731
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


def training_time_table(rows: pd.DataFrame, arrangement: str = DEFAULT_ARRANGEMENT) -> pd.DataFrame:
    """Table 4 from stored rows: per (model, device, N), converged rows, median seconds to
    convergence (``wall_time_s``: from the start of its batch) and the same divided by the batch
    size (the batch trained together: the cost per text). Never re-measured here."""
    need = {"model", "num_tokens", "wall_time_s", "converged", "arrangement"}
    if rows is None or rows.empty or not need <= set(rows.columns):
        return pd.DataFrame()
    r = rows[(rows.arrangement == arrangement) & rows.converged.astype(bool)].copy()
    if r.empty:
        return pd.DataFrame()
    for col, default in (("device", "unknown"), ("batch_size", 1), ("share", None)):
        if col not in r:
            r[col] = default
    # rows store share "none" when nothing is shared (engine.experiments); older tables had None
    r = r[r["share"].isna() | (r["share"] == "none")]
    r["s_per_text_batch"] = r.wall_time_s / r.batch_size.fillna(1).clip(lower=1)
    return (
        r.groupby(["model", "device", "num_tokens"])
        .agg(
            rows=("wall_time_s", "size"),
            median_s_to_converge=("wall_time_s", "median"),
            median_s_per_text=("s_per_text_batch", "median"),
            median_steps=("steps", "median"),
        )
        .reset_index()
    )


def _label(title: str, source: str) -> str:
    return title.replace(" (random init)", "") + (
        "\n(random init)" if source == "random-init" else ""
    )


def plot_throughput(df: pd.DataFrame, title: str = ""):
    """Fig. 4: tokens/s per model and method (log scale), one panel per batch size, each bar's
    physical bound as a black tick, the paper's ranges shaded and labelled as the paper's."""
    ok = df[df["tok_s"].notna()] if "tok_s" in df else df.iloc[:0]
    sizes = sorted(ok.batch_size.unique()) if not ok.empty else [1]
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes) + 1, 4.6), squeeze=False)
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
        ax.axhspan(*PAPER_AR_RANGE, color="#d95f02", alpha=0.12, label="paper: AR 20-140 tok/s")
        ax.axhline(PAPER_ONE_FORWARD_MAX, color="#1b9e77", ls="--", lw=1,
                   label="paper: one pass up to ~25,000 tok/s")  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(
            [_label(sub[sub.model == n].title.iloc[0], sub[sub.model == n].source.iloc[0])
             for n in models], fontsize=8)  # fmt: skip
        ns = sorted(sub.num_tokens.unique())
        ax.set_title(f"batch {B}, N = {', '.join(map(str, ns))}", fontsize=10)
        ax.set_ylabel("tokens / s")
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7, loc="upper right")
    if not ok.empty:
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
