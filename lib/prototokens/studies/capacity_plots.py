"""Figures of the capacity study: Fig. 1 (capacity per model), Fig. 3 (one pass against
autoregressive H_LM at capacity), and accuracy against prefix length for one text (Explore).

Figs 1 and 3 draw each model on its primary arrangement
(:func:`prototokens.studies.families.primary_rows`: a paper model's plain Eq. 1, though ours was
searched beside it), as the paper draws its models; two arrangements would put every text twice."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prototokens.studies.families import primary_rows
from prototokens.studies.paper_tables import PAPER_FIG1, nearest_paper_model, paper_name
from prototokens.studies.plotting import (
    SOURCE_MARKERS,
    explain_empty,
    legend_outside,
    mark_reference,
)


def plot_fig1(per_text: pd.DataFrame, title: str = ""):
    """Fig. 1: the longest reconstructed length per model (large dot: best over texts and
    sources, per-text m) with every text's capacity as a small point, by source; the paper's
    value for the model, or for the paper's model nearest in size (SmolLM2-135M: Pythia-160M),
    as an open red diamond named "<model> (paper)". Each model's primary arrangement only."""
    d = primary_rows(per_text[per_text["setting"] == "per-text"])
    models = list(dict.fromkeys(d["model"]))
    # 0.7 in per model row, room for the title and the x label: points never touch the frame
    fig, ax = plt.subplots(figsize=(7.5, 1.7 + 0.7 * max(1, len(models))))
    sources = list(dict.fromkeys(d["source"]))
    right = [float(d["capacity"].max()) if len(d) else 1.0]
    for y, m in enumerate(models):
        g = d[d["model"] == m]
        for j, src in enumerate(sources):
            s = g[g["source"] == src]
            jitter = (j - (len(sources) - 1) / 2) * 0.08
            ax.scatter(
                s["capacity"],
                np.full(len(s), y + jitter),
                s=14,
                alpha=0.6,
                marker=SOURCE_MARKERS.get(src, "o"),
                label=f"{src} (one text)" if y == 0 else None,
            )
        best = "best over texts" if y == 0 else None
        ax.scatter([g["capacity"].max()], [y], s=120, c="k", zorder=3, label=best)
        pm = nearest_paper_model(m)  # the paper's model of that size, itself for the paper's
        if pm:
            right.append(PAPER_FIG1[pm])
            ax.scatter([PAPER_FIG1[pm]], [y], s=120, facecolors="none", edgecolors="r", marker="D",
                       label="the paper's value" if y == 0 else None)  # fmt: skip
            # right-aligned: the paper's value is often the largest, at the panel's right edge
            ax.annotate(paper_name(pm), (PAPER_FIG1[pm], y), xytext=(6, 9), ha="right",
                        textcoords="offset points", fontsize=7, color="r")  # fmt: skip
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("longest prefix reconstructed in one forward pass (tokens, accuracy ≥ 0.99)")
    ax.set_xlim(-0.03 * max(right), 1.08 * max(right))  # a capacity of 0 is not cut in half
    ax.set_ylim(-0.6, len(models) - 0.4)
    ax.grid(axis="x", alpha=0.3)
    if not models:
        explain_empty(ax, "no per-text capacity rows: the per-text setting was not searched")
    else:
        legend_outside(ax, fontsize=8)  # beside the strip: over no point and not the title
    ax.set_title(title or "Fig. 1: one pass, many tokens", fontsize=10)
    fig.tight_layout()
    return fig


def _why_empty(one: pd.DataFrame, ar: pd.DataFrame, setting: str, arrangement: str) -> str:
    """What a Fig. 3 panel lacks, in words (a blank panel reads as a plotting error)."""
    if one.empty:
        return f"no {setting!r} capacity rows: that setting was not searched in this run"
    if ar.empty:
        return f"no {arrangement} rows: the autoregressive search was not run"
    n_one, n_ar = int((one["capacity"] > 0).sum()), int((ar["capacity"] > 0).sum())
    return (
        f"no text has a capacity > 0 under both {setting} ({n_one} of {len(one)} texts) "
        f"and {arrangement} ({n_ar} of {len(ar)}): the budget reached no length of the grid"
    )


def _panel(ax, one: pd.DataFrame, ar: pd.DataFrame, setting: str, arrangement: str):
    pair = one.merge(ar, on=["model", "source", "text_id"], suffixes=("", "_ar"))
    pair = pair[(pair["capacity"] > 0) & (pair["capacity_ar"] > 0)]
    if pair.empty:
        explain_empty(ax, _why_empty(one, ar, setting, arrangement))
        return
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(pair["model"]))}
    for (m, src), g in pair.groupby(["model", "source"], sort=False):
        mk = SOURCE_MARKERS.get(src, "o")
        ax.scatter(g["h_lm_nats_ar"], g["h_lm_nats"], s=12, alpha=0.5, c=colours[m], marker=mk)
        ax.scatter(
            [g["h_lm_nats_ar"].mean()],
            [g["h_lm_nats"].mean()],
            s=110,
            c=colours[m],
            marker=mk,
            edgecolors="k",
            label=f"{m} · {src}",
        )
    vals = pd.concat([pair["h_lm_nats"], pair["h_lm_nats_ar"]])
    lo, hi = max(1.0, float(vals.min()) / 2), float(vals.max()) * 2
    x = np.geomspace(lo, hi, 50)
    for f, ls in ((1, "-"), (2, "--"), (5, ":")):
        label = "y = x" if f == 1 else f"y = x/{f}"
        mark_reference(ax.plot(x, x / f, "k", ls=ls, lw=0.8, label=label))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("autoregressive H_LM at capacity (nats)")
    ax.set_ylabel("one-forward H_LM at capacity (nats)")
    legend_outside(ax)


def plot_fig3(per_text: pd.DataFrame, ar_per_text: pd.DataFrame, title: str = ""):
    """Fig. 3: left, one trainable vector (ar-1 against shared m); right, two (ar-2 against
    per-text m). Small points: texts; large: model × source means; log2 axes. A panel without a
    text reconstructed under both says which rows are missing. One pass: each model's primary
    arrangement only."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    per_text = primary_rows(per_text)
    one_vec = per_text[per_text["setting"] == "shared m"]
    two_vec = per_text[per_text["setting"] == "per-text"]
    ar = ar_per_text
    _panel(axes[0], one_vec, ar[ar["arrangement"] == "ar-1"], "shared m", "ar-1")
    _panel(axes[1], two_vec, ar[ar["arrangement"] == "ar-2"], "per-text m", "ar-2")
    axes[0].set_title("one trainable embedding: [mem] (ar-1) vs shared m", fontsize=10)
    axes[1].set_title("two trainable embeddings: 2 [mem] (ar-2) vs per-text m", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_length(attempts: pd.DataFrame, text_id: str, threshold: float = 0.99):
    """Accuracy of every attempt of one text against its prefix length, one line per setting and
    search (Explore)."""
    d = attempts[attempts["text_id"] == text_id]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if d.empty:
        explain_empty(ax, f"no attempt of text {text_id!r} in these rows")
        return fig
    for (setting, search, arr), g in d.groupby(["setting", "search", "arrangement"], sort=False):
        best = g.groupby("num_tokens")["accuracy"].max()
        ax.plot(best.index, best.values, marker="o", label=f"{arr} · {setting} · {search}")
    mark_reference(ax.axhline(threshold, color="k", lw=0.8, ls="--"))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prefix length (tokens)")
    ax.set_ylabel("one-pass token accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{text_id}: accuracy against prefix length")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
