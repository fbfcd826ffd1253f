"""Figures of the capacity study: Fig. 1 (capacity per model), Fig. 3 (one pass against
autoregressive H_LM at capacity), and accuracy against prefix length for one text (Explore)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prototokens.studies.paper_tables import PAPER_FIG1, paper_model

MARKERS = {"pg19": "o", "fanfics": "s", "random": "^", "pg19_gen": "D"}


def plot_fig1(per_text: pd.DataFrame, title: str = ""):
    """Fig. 1: the longest reconstructed length per model (large dot: best over texts and
    sources, per-text m) with every text's capacity as a small point, by source; the paper's
    value as an open diamond where the model is one of the paper's."""
    d = per_text[per_text["setting"] == "per-text"]
    models = list(dict.fromkeys(d["model"]))
    fig, ax = plt.subplots(figsize=(7, 1.0 + 0.6 * max(1, len(models))))
    sources = list(dict.fromkeys(d["source"]))
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
                marker=MARKERS.get(src, "o"),
                label=src if y == 0 else None,
            )
        ax.scatter([g["capacity"].max()], [y], s=120, c="k", zorder=3)
        pm = paper_model(m)
        if pm:
            ax.scatter([PAPER_FIG1[pm]], [y], s=120, facecolors="none", edgecolors="r", marker="D")
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("longest prefix reconstructed in one forward pass (tokens, accuracy ≥ 0.99)")
    ax.set_xlim(left=0)
    ax.set_ylim(-0.6, len(models) - 0.4)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(title="text (small points)", fontsize=8, loc="lower right")
    ax.set_title(title or "Fig. 1: one pass, many tokens (black: best; red ◇: the paper's)")
    fig.tight_layout()
    return fig


def _panel(ax, one: pd.DataFrame, ar: pd.DataFrame, title: str):
    pair = one.merge(ar, on=["model", "source", "text_id"], suffixes=("", "_ar"))
    pair = pair[(pair["capacity"] > 0) & (pair["capacity_ar"] > 0)]
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(pair["model"]))}
    for (m, src), g in pair.groupby(["model", "source"], sort=False):
        mk = MARKERS.get(src, "o")
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
    vals = pd.concat([pair["h_lm_nats"], pair["h_lm_nats_ar"]]) if len(pair) else pd.Series([8, 64])
    lo, hi = max(1.0, float(vals.min()) / 2), float(vals.max()) * 2
    x = np.geomspace(lo, hi, 50)
    for f, ls in ((1, "-"), (2, "--"), (5, ":")):
        ax.plot(x, x / f, "k", ls=ls, lw=0.8, label="y = x" if f == 1 else f"y = x/{f}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("autoregressive H_LM at capacity (nats)")
    ax.set_ylabel("one-forward H_LM at capacity (nats)")
    ax.set_title(title)
    ax.legend(fontsize=7)


def plot_fig3(per_text: pd.DataFrame, ar_per_text: pd.DataFrame, title: str = ""):
    """Fig. 3: left, one trainable vector (ar-1 against shared m); right, two (ar-2 against
    per-text m). Small points: texts; large: model × source means; log2 axes."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    one_vec = per_text[per_text["setting"] == "shared m"]
    two_vec = per_text[per_text["setting"] == "per-text"]
    _panel(axes[0], one_vec, ar_per_text[ar_per_text["arrangement"] == "ar-1"], "one trainable")
    _panel(axes[1], two_vec, ar_per_text[ar_per_text["arrangement"] == "ar-2"], "two trainable")
    axes[0].set_title("one trainable embedding: [mem] (ar-1) vs shared m")
    axes[1].set_title("two trainable embeddings: 2 [mem] (ar-2) vs per-text m")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_length(attempts: pd.DataFrame, text_id: str, threshold: float = 0.99):
    """Accuracy of every attempt of one text against its prefix length, one line per setting and
    search (Explore)."""
    d = attempts[attempts["text_id"] == text_id]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for (setting, search, arr), g in d.groupby(["setting", "search", "arrangement"], sort=False):
        best = g.groupby("num_tokens")["accuracy"].max()
        ax.plot(best.index, best.values, marker="o", label=f"{arr} · {setting} · {search}")
    ax.axhline(threshold, color="k", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prefix length (tokens)")
    ax.set_ylabel("one-pass token accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{text_id}: accuracy against prefix length")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
