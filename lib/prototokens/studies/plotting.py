"""Shared helpers for the studies' ``plot_*`` figures, so that every figure reads at a glance.

Three rules the figure test (tests/test_figures.py) checks on every ``plot_*`` function:

- no two text boxes overlap (tick labels, axis labels, annotations, legends, titles);
- a panel with no data says in words what is missing (:func:`explain_empty`);
- a legend covers no data point (:func:`legend_outside` when the data fill the panel).

Reference artists (``y = x``, the paper's range, a threshold line) are not data: they are marked
with :func:`mark_reference` so that a panel holding only them still counts as empty.
"""

from __future__ import annotations

import textwrap
from typing import Sequence

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

# One marker per text source, in every figure that distinguishes them.
SOURCE_MARKERS = {"pg19": "o", "fanfics": "s", "random": "^", "pg19_gen": "D"}

# Artists with this gid are guides (reference lines, paper ranges), not data.
REFERENCE_GID = "reference"


def mark_reference(*artists):
    """Mark guide artists (``y = x``, a threshold, the paper's range) as not being data."""
    for artist in artists:
        for a in artist if isinstance(artist, (list, tuple)) else [artist]:
            a.set_gid(REFERENCE_GID)
    return artists[0] if len(artists) == 1 else artists


def explain_empty(ax, why: str, fontsize: float = 9):
    """Say in the middle of an empty panel what is missing and why, wrapped to the panel's width,
    and hide its ticks (a panel with axes but no data reads as a plotting error)."""
    if not why:
        raise ValueError("explain_empty needs the reason the panel is empty")
    fig = ax.figure
    width_in = ax.get_position().width * fig.get_figwidth()  # the panel's width, inches
    chars = max(16, int(0.8 * width_in * 72 / (0.55 * fontsize)))  # ~0.55 em per character
    for axis, shared in ((ax.xaxis, ax.get_shared_x_axes()), (ax.yaxis, ax.get_shared_y_axes())):
        if len(shared.get_siblings(ax)) == 1:  # a shared axis keeps its sibling's ticks
            axis.set_ticks([])
    ax.text(
        0.5,
        0.5,
        textwrap.fill(why, chars, break_long_words=False, break_on_hyphens=False),
        ha="center",
        va="center",
        fontsize=fontsize,
        color="#555",
        transform=ax.transAxes,
    )


def legend_outside(ax, fontsize: float = 7, **kwargs):
    """The axes' legend to the right of the panel, top-aligned: never over a data point (the
    layout engine, tight or constrained, makes room for it)."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=fontsize, borderaxespad=0, **kwargs
    )


def _short_count(x: float, _pos=None) -> str:
    """135e6 -> '135M', 1.2e9 -> '1.2B', 3e3 -> '3k' (at most 3 significant digits)."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def count_axis(axis, subs: Sequence[float] = (1.0, 3.0)):
    """A log axis of counts (parameters) labelled 100M, 300M, 1B, ... at ``subs`` x 10^k, with no
    minor labels: matplotlib's default labels every minor tick of a short log range
    (2x10^8 3x10^8 ...), and they overprint each other."""
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(_short_count))
    axis.set_minor_formatter(NullFormatter())


def label_points(ax, xy: Sequence[tuple[float, float]], labels: Sequence[str], fontsize=7):
    """Annotate each point, moving a label up in steps of its own height until it overlaps no
    label placed before it (two models at one point, or close, otherwise overprint).

    Draws the figure once to know the text sizes; returns the annotations.
    """
    fig = ax.figure
    fig.draw_without_rendering()  # run the layout so that positions in pixels are final
    renderer = fig.canvas.get_renderer()
    placed, boxes = [], []
    for (x, y), text in sorted(zip(xy, labels), key=lambda p: (p[0][0], p[0][1])):
        dy = 3.0
        for _ in range(12):
            ann = ax.annotate(
                text, (x, y), xytext=(4, dy), textcoords="offset points", fontsize=fontsize
            )
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in boxes):
                break
            ann.remove()
            dy += box.height * 72.0 / fig.dpi + 1.0  # one line up, in points
        placed.append(ann)
        boxes.append(box)
    return placed
