"""Figures and displays of the method (notebook 02; the schematic also in 04 and the explorer).

Fig. 2's schematic drawn from an arrangement's layout, loss/accuracy curves, the distribution of
steps to accuracy 1.0 per recipe, and the token-by-token reconstruction (HTML for the explorer, a
DataFrame for batch runs). Each takes computed data and returns a Figure (or HTML / a DataFrame);
saving goes through the notebook's session (``prototokens.harness.artifacts.save_figure``).
"""

from __future__ import annotations

import html
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, START, TOKEN, get_arrangement
from prototokens.studies.plotting import explain_empty, legend_outside, mark_reference

SLOT_COLOURS = {"e": "#d95f02", "m": "#1b9e77", "<s>": "#666666"}


def plot_schematic(
    arrangement: str = DEFAULT_ARRANGEMENT,
    num_tokens: int = 6,
    title: str | None = None,
    target_labels: Sequence[str] | None = None,
    start_label: str = "<s>",
):
    """Paper Fig. 2: trained vectors -> frozen LLM -> the whole text in one forward pass.

    Drawn from the arrangement's own :class:`Layout`, so the picture is the engine's indexing:
    which vector sits at each input position (``start_label`` for the model's start token of the
    ``bos+`` arrangements) and which target token each output predicts (``t1``.. or, given
    ``target_labels``, e.g. the decoded tokens of a text; "—" = unsupervised).
    """
    arr = get_arrangement(arrangement)
    lay = arr.build(num_tokens)
    L = lay.length
    small = 8 if L > 14 else 11  # font size: long layouts are drawn narrower per position
    fig, ax = plt.subplots(figsize=(min(1.1 * L + 1.5, 18), 3.2))
    ax.set_xlim(-0.8, L + 0.2)
    ax.set_ylim(-0.2, 3.3)
    ax.axis("off")
    ax.add_patch(
        FancyBboxPatch(
            (-0.3, 1.15), L - 0.4, 0.8, boxstyle="round,pad=0.05", fc="#eeeeee", ec="#555"
        )
    )
    ax.text(
        (L - 1) / 2,
        1.55,
        "frozen LLM (one forward pass, causal mask)",
        ha="center",
        va="center",
        fontsize=10,
    )
    for p in range(L):
        s = lay.slot[p]
        if s == TOKEN:
            j = lay.token_index[p]
            name = start_label if j == START else f"t{j + 1}"
        else:
            name = arr.slots[s]
        is_start = s == TOKEN and lay.token_index[p] == START
        colour = SLOT_COLOURS["<s>"] if is_start else SLOT_COLOURS.get(name, "#7570b3")
        ax.add_patch(
            FancyBboxPatch(
                (p - 0.3, 0.15), 0.6, 0.55, boxstyle="round,pad=0.03", fc=colour, ec="k", alpha=0.9
            )
        )
        ax.text(
            p,
            0.42,
            name,
            ha="center",
            va="center",
            color="white",
            fontsize=small if len(name) <= 4 else 6,  # e.g. <|endoftext|>
            weight="bold",
        )
        ax.add_patch(FancyArrowPatch((p, 0.75), (p, 1.12), arrowstyle="-|>", mutation_scale=10))
        j = lay.target_index[p]
        ax.add_patch(FancyArrowPatch((p, 1.98), (p, 2.35), arrowstyle="-|>", mutation_scale=10))
        label = (target_labels[j] if target_labels else f"t{j + 1}") if j >= 0 else "—"
        ax.text(
            p,
            2.6,
            label,
            ha="center",
            va="center",
            fontsize=small,
            rotation=45 if target_labels and j >= 0 else 0,
            color="k" if j >= 0 else "#999",
            style="normal" if j >= 0 else "italic",
        )
    ax.text(-0.75, 0.42, "inputs Z", ha="right", va="center", fontsize=9)
    ax.text(-0.75, 2.6, "targets", ha="right", va="center", fontsize=9)
    ax.set_title(title or f"Arrangement {arr.name}: {arr.description}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = ""):
    """Loss (CE sum, nats, log scale) and accuracy against step for each labelled run."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if not curves:
        for ax in (a1, a2):
            explain_empty(ax, "no curves: no result rows were given")
        return fig
    for label, (loss, acc) in curves.items():
        a1.plot(np.arange(len(loss)), loss, label=label, lw=1.2)
        a2.plot(np.arange(len(acc)), acc, label=label, lw=1.2)
    a1.set_yscale("log")
    a1.set_xlabel("step")
    a1.set_ylabel("CE over the text (nats)")
    a2.set_xlabel("step")
    a2.set_ylabel("token accuracy (one forward)")
    a2.set_ylim(-0.02, 1.02)
    for th in (0.95, 0.99, 1.0):
        mark_reference(a2.axhline(th, color="#bbb", lw=0.6, ls="--"))
    if len(curves) <= 12:
        legend_outside(a2)  # beside the panel: the curves fill it
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reconstruction_html(tokenizer, predicted_ids: Sequence[int], target_ids: Sequence[int]) -> str:
    """The one-pass reconstruction token by token: green = right, red = wrong (target in the
    tooltip)."""
    spans = []
    for p, t in zip(predicted_ids, target_ids):
        ptxt = html.escape(tokenizer.decode([p])).replace(" ", "&nbsp;").replace("\n", "⏎")
        ttxt = html.escape(tokenizer.decode([t]))
        ok = int(p) == int(t)
        colour = "#c7e9c0" if ok else "#fcbba1"
        title = "correct" if ok else f"expected {ttxt!r}"
        spans.append(
            f'<span title="{title}" style="background:{colour};border-radius:3px;'
            f'margin:1px;padding:0 1px;font-family:monospace">{ptxt}</span>'
        )
    n_ok = sum(int(p) == int(t) for p, t in zip(predicted_ids, target_ids))
    head = f"<div><b>{n_ok}/{len(target_ids)}</b> tokens correct in one forward pass</div>"
    return head + '<div style="line-height:1.9">' + "".join(spans) + "</div>"


def reconstruction_table(tokenizer, predicted_ids: Sequence[int], target_ids: Sequence[int]):
    """Token-by-token DataFrame (position, target, predicted, correct) for printing in batch
    runs."""
    import pandas as pd

    return pd.DataFrame(
        {
            "position": range(1, len(target_ids) + 1),
            "target": [tokenizer.decode([t]) for t in target_ids],
            "predicted": [tokenizer.decode([p]) for p in predicted_ids],
            "correct": [int(p) == int(t) for p, t in zip(predicted_ids, target_ids)],
        }
    )
