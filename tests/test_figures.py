"""Every figure of the project reads at a glance (issue 19, item 6).

Each ``plot_*`` function of ``prototokens.studies`` and ``prototokens.harness`` (found by
introspection, so a new plot is covered) is drawn on the sample inputs of
``tests/figure_samples.py`` and checked after a real draw (Agg renderer):

- no two text boxes overlap: titles, suptitle, axis labels, annotations, legends, and tick
  labels (against their neighbours on the same axis, and against every other text box);
- no legend sits over data of its own panel (a scatter point, a line vertex, a bar);
- a panel without data says in words what is missing.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from figure_samples import SAMPLES  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from prototokens.studies.plotting import REFERENCE_GID  # noqa: E402

PACKAGES = ("prototokens.studies", "prototokens.harness")


@functools.cache
def plot_functions() -> dict[str, object]:
    """``{module.function: function}`` for every ``plot_*`` defined (not re-exported) in a module
    of :data:`PACKAGES`."""
    found = {}
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__, package + "."):
            module = importlib.import_module(info.name)
            for name, fn in inspect.getmembers(module, inspect.isfunction):
                if name.startswith("plot_") and fn.__module__ == info.name:
                    found[f"{info.name}.{name}"] = fn
    return found


def test_every_plot_function_has_sample_inputs():
    plots = plot_functions()
    missing = sorted(set(plots) - set(SAMPLES))
    assert not missing, (
        f"plot functions without sample inputs in tests/figure_samples.py SAMPLES: {missing}; "
        "add inputs shaped as the notebook passes them so that the figure test draws them"
    )
    stale = sorted(set(SAMPLES) - set(plots))
    assert not stale, f"SAMPLES names plot functions that no longer exist: {stale}"


def _cases():
    """One test per plot function, named ``module.plot_x``."""
    return [pytest.param(name, id=".".join(name.split(".")[-2:])) for name in sorted(SAMPLES)]


# --- what the checks read from a drawn figure ---------------------------------------------------


def _shown(text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def _tick_labels(axis) -> list:
    """Visible tick labels of one axis whose tick lies inside the view interval (the locator also
    returns ticks just outside, which are not drawn)."""
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for locs, ticks in (
        (axis.get_majorticklocs(), axis.get_major_ticks()),
        (axis.get_minorticklocs(), axis.get_minor_ticks()),
    ):
        for loc, tick in zip(locs, ticks):
            if not (lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo)):
                continue
            if not tick.get_visible():
                continue
            out += [lab for lab in (tick.label1, tick.label2) if _shown(lab)]
    return out


def _text_boxes(fig, renderer):
    """(tick groups, other boxes): each tick group lists (label, bbox) of one axis; other boxes
    are (description, bbox) of titles, axis labels, texts, annotations and legends."""
    ticks, other = [], []
    if fig._suptitle is not None and _shown(fig._suptitle):
        other.append(("suptitle", fig._suptitle.get_window_extent(renderer)))
    for t in fig.texts:
        if _shown(t) and t is not fig._suptitle:
            other.append((f"figure text {t.get_text()!r}", t.get_window_extent(renderer)))
    for leg in fig.legends:
        other.append(("figure legend", leg.get_window_extent(renderer)))
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not (ax.axison and axis.get_visible()):  # ax.axis("off") draws no axis
                continue
            labels = _tick_labels(axis)
            ticks.append(
                [
                    (f"axes {i} {name} tick {t.get_text()!r}", t.get_window_extent(renderer))
                    for t in labels
                ]
            )
            if _shown(axis.label):
                other.append((f"axes {i} {name} label", axis.label.get_window_extent(renderer)))
        for title in (ax.title, ax._left_title, ax._right_title):
            if _shown(title):
                other.append((f"axes {i} title", title.get_window_extent(renderer)))
        for t in ax.texts:
            if _shown(t):
                other.append((f"axes {i} text {t.get_text()!r}", t.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            other.append((f"axes {i} legend", ax.get_legend().get_window_extent(renderer)))
    return ticks, other


def _overlap(a, b, tol=0.5) -> bool:
    """Boxes overlap by more than ``tol`` pixels on both axes (touching is fine)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def overlapping_texts(fig, renderer) -> list[str]:
    """Every pair of overlapping text boxes of a drawn figure, described."""
    ticks, other = _text_boxes(fig, renderer)
    found = []
    for group in ticks:
        group = sorted(group, key=lambda t: (t[1].x0, t[1].y0))
        for (na, a), (nb, b) in zip(group, group[1:]):
            if _overlap(a, b):
                found.append(f"{na} / {nb}")
    for i, (na, a) in enumerate(other):
        for nb, b in other[i + 1 :] + [t for g in ticks for t in g]:
            if _overlap(a, b):
                found.append(f"{na} / {nb}")
    return found


def _is_data(artist) -> bool:
    if not artist.get_visible() or artist.get_gid() == REFERENCE_GID:
        return False
    if isinstance(artist, matplotlib.lines.Line2D):
        return len(artist.get_xdata()) > 0
    if isinstance(artist, PathCollection):
        return len(artist.get_offsets()) > 0
    if isinstance(artist, matplotlib.collections.Collection):
        return len(artist.get_paths()) > 0
    return True


def data_artists(ax) -> list:
    return [a for a in [*ax.lines, *ax.collections, *ax.patches, *ax.images] if _is_data(a)]


def empty_panels_without_words(fig, renderer) -> list[str]:
    """Panels of a drawn figure with no data artist and no sentence (three words or more) saying
    why, and explanations that run out of their panel."""
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or data_artists(ax):
            continue
        words = [t for t in ax.texts if _shown(t) and len(t.get_text().split()) >= 3]
        if not words:
            out.append(f"axes {i} ({ax.get_title()!r}) has no data and does not say why")
        frame = ax.get_window_extent(renderer)
        for t in words:
            box = t.get_window_extent(renderer)
            if box.x0 < frame.x0 - 1 or box.x1 > frame.x1 + 1:
                out.append(f"axes {i}: the explanation {t.get_text()!r} runs out of its panel")
    return out


def _data_points(ax):
    """Display coordinates (k, 2) of every scatter point and line vertex of the panel."""
    import numpy as np

    pts = []
    for a in data_artists(ax):
        if isinstance(a, PathCollection):
            pts.append(a.get_offset_transform().transform(a.get_offsets()))
        elif isinstance(a, matplotlib.lines.Line2D):
            xy = np.asarray(a.get_xydata(), dtype=float)
            pts.append(a.get_transform().transform(xy[np.isfinite(xy).all(axis=1)]))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def legends_over_data(fig, renderer) -> list[str]:
    """Legends of a drawn figure that cover a data point, a line vertex or a bar of their own
    panel."""
    out = []
    for i, ax in enumerate(fig.axes):
        leg = ax.get_legend()
        if leg is None or not leg.get_visible():
            continue
        box = leg.get_window_extent(renderer)
        pts = _data_points(ax)
        inside = [p for p in pts if box.x0 < p[0] < box.x1 and box.y0 < p[1] < box.y1]
        if inside:
            out.append(f"axes {i}: the legend covers {len(inside)} data point(s)")
        bars = [
            p
            for p in data_artists(ax)
            if isinstance(p, matplotlib.patches.Rectangle)
            and _overlap(p.get_window_extent(renderer), box)
        ]
        if bars:
            out.append(f"axes {i}: the legend covers {len(bars)} bar(s)")
    return out


def figure_problems(fig) -> list[str]:
    """Everything that keeps a figure from reading at a glance (one real draw)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [
        *overlapping_texts(fig, renderer),
        *empty_panels_without_words(fig, renderer),
        *legends_over_data(fig, renderer),
    ]


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _cases())
def test_figure_reads_at_a_glance(name, tmp_path):
    module, function = name.rsplit(".", 1)
    plot = getattr(importlib.import_module(module), function)
    problems = []
    cases = SAMPLES[name](tmp_path)
    assert cases, f"no sample case for {name}"
    for case, (args, kwargs) in cases.items():
        fig = plot(*args, **kwargs)
        try:
            assert isinstance(fig, matplotlib.figure.Figure), f"{name} returned {type(fig)}"
            problems += [f"[{case}] {p}" for p in figure_problems(fig)]
        finally:
            plt.close(fig)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


# --- the checks themselves fail on bad figures ----------------------------------------------------


def test_checks_catch_overlaps_empty_panels_and_covered_points():
    fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
    a.set_xscale("log")
    a.set_xlim(1.3e8, 9e9)
    a.set_xticks([2e8, 2.05e8], ["200000000", "205000000"])  # neighbours that overprint
    a.annotate("model one", (0.5, 0.5), xycoords="axes fraction")
    a.annotate("model two", (0.5, 0.5), xycoords="axes fraction")
    b.text(0.5, 0.5, "a sentence far too long for its panel", transform=b.transAxes)
    problems = figure_problems(fig)
    assert "axes 0 x tick '200000000' / axes 0 x tick '205000000'" in problems
    assert "axes 0 text 'model one' / axes 0 text 'model two'" in problems
    assert "axes 0 ('') has no data and does not say why" in problems
    assert any("runs out of its panel" in p for p in problems)
    b.scatter([0.5], [0.5])
    b.bar([0.5], [0.6], 0.1)
    b.set_xlim(0, 1)
    b.set_ylim(0, 1)
    b.legend(["a point", "a bar"], loc="center")
    problems = figure_problems(fig)
    assert "axes 1: the legend covers 1 data point(s)" in problems
    assert "axes 1: the legend covers 1 bar(s)" in problems
    plt.close(fig)
