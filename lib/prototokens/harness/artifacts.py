"""Named outputs: figures, tables and metrics, saved under the outputs tree by artefact name.

Every notebook saves what the paper shows through these three helpers, so files are named after
the paper's artefacts (``fig2_schematic``, ``fig7_bezier_connectivity``, ``tab1_arrangements``) and
land where the runner and the report look for them:

- ``<output_dir>/figures/<name>.png`` (preview, 150 dpi) and ``.pdf`` (TrueType fonts, type 42);
- ``<output_dir>/tables/<name>.csv`` (full precision) and ``.md`` (rounded, for reading);
- ``<output_dir>/metrics/<notebook>.json``: the notebook's key numbers, which the smoke tests and
  the run manifest read back.

``output_dir=None`` means :func:`prototokens.paths.output_dir` (``$PROTOTOKENS_OUTPUT_DIR`` or
``<repo>/outputs``). Writes are atomic (:mod:`prototokens.files`): a killed run never leaves half a
file.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from prototokens.files import atomic_path, write_json, write_text
from prototokens.paths import output_dir as _output_dir

ARTEFACT_NAME = re.compile(r"^(fig|tab|setup)[0-9a-z_]*$")
NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
FIGURE_DPI = 150


def _check_artefact_name(name: str) -> str:
    """Reject anything but a bare artefact name: the directory and extensions are ours to choose."""
    if not isinstance(name, str) or not ARTEFACT_NAME.match(name):
        hint = ""
        if isinstance(name, str) and ("/" in name or "\\" in name):
            hint = " (give a name, not a path: the directory comes from output_dir)"
        elif isinstance(name, str) and "." in name:
            hint = " (leave out the extension: both formats are written)"
        raise ValueError(
            f"bad artefact name {name!r}{hint}; expected a paper artefact name such as "
            f"'fig2_schematic' or 'tab1_arrangements' (pattern {ARTEFACT_NAME.pattern})"
        )
    return name


def _check_notebook_name(notebook: str) -> str:
    if not isinstance(notebook, str) or not NOTEBOOK_NAME.match(notebook):
        raise ValueError(
            f"bad notebook name {notebook!r}; expected the notebook's file stem, e.g. '03_metrics'"
        )
    return notebook


def figures_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """``<output_dir>/figures`` (created)."""
    path = _output_dir(output_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tables_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """``<output_dir>/tables`` (created)."""
    path = _output_dir(output_dir) / "tables"
    path.mkdir(parents=True, exist_ok=True)
    return path


def metrics_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """``<output_dir>/metrics`` (created): per-notebook metrics and the runner's manifests."""
    path = _output_dir(output_dir) / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, name: str, output_dir: str | os.PathLike | None = None) -> list[Path]:
    """Save a matplotlib figure as ``figures/<name>.png`` and ``figures/<name>.pdf``.

    The PDF embeds TrueType fonts (``pdf.fonttype`` 42, editable text in the paper's figures) and
    carries no creation date, so reruns give byte-stable files. Returns ``[png, pdf]``.
    """
    import matplotlib

    _check_artefact_name(name)
    folder = figures_dir(output_dir)
    written = []
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        for fmt, extra in (
            ("png", {"dpi": FIGURE_DPI}),
            ("pdf", {"metadata": {"CreationDate": None}}),
        ):
            target = folder / f"{name}.{fmt}"
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=fmt, bbox_inches="tight", **extra)
            written.append(target)
    return written


def _format_cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return format(value, floatfmt)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return _format_cell(value.item(), floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table for a DataFrame (numbers right-aligned).

    Written here rather than through ``DataFrame.to_markdown`` so no ``tabulate`` dependency is
    needed. A non-default index is kept as leading column(s).
    """
    import pandas as pd

    frame = df
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in frame.columns
    ]
    rows = [[_format_cell(v, floatfmt) for v in row] for row in frame.itertuples(index=False)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if num else ":---" for num in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save_table(
    df, name: str, output_dir: str | os.PathLike | None = None, floatfmt: str = ".4g"
) -> list[Path]:
    """Save a DataFrame as ``tables/<name>.csv`` (full precision) and ``tables/<name>.md``.

    ``floatfmt`` (a format spec, default ``.4g``) applies to the Markdown copy only. A
    non-default index is written as column(s) in both. Returns ``[csv, md]``.
    """
    import pandas as pd

    _check_artefact_name(name)
    folder = tables_dir(output_dir)
    keep_index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None
    csv_path = write_text(folder / f"{name}.csv", df.to_csv(index=keep_index))
    md_path = write_text(folder / f"{name}.md", markdown_table(df, floatfmt=floatfmt))
    return [csv_path, md_path]


def _clean_metrics(value: Any, key: str) -> Any:
    """Plain-JSON copy of ``value``; non-finite floats and unknown types raise, naming ``key``."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"metric {key!r} is {value!r}; metrics must be finite numbers "
                "(use None for 'not measured')"
            )
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return _clean_metrics(value.item(), key)
    if hasattr(value, "tolist"):  # numpy arrays, torch tensors
        return _clean_metrics(value.tolist(), key)
    if isinstance(value, Mapping):
        return {
            str(k): _clean_metrics(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_clean_metrics(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"metric {key!r} has type {type(value).__name__}; use numbers, strings, "
        "booleans, None, lists or dicts"
    )


def metrics_path(notebook: str, output_dir: str | os.PathLike | None = None) -> Path:
    """``<output_dir>/metrics/<notebook>.json``."""
    return metrics_dir(output_dir) / f"{_check_notebook_name(notebook)}.json"


def write_metrics(
    notebook: str, metrics: Mapping[str, Any], output_dir: str | os.PathLike | None = None
) -> Path:
    """Write a notebook's key metrics to ``metrics/<notebook>.json`` (atomically).

    ``notebook`` is the file stem (``"03_metrics"``). Values may be numbers, strings, booleans,
    None, lists and dicts of those (numpy/torch scalars are converted); NaN and infinities are
    rejected with an error naming the key, because a smoke test that reads back a NaN would
    otherwise pass on garbage. Conventionally a notebook records ``device`` here, which the run
    manifest then reports.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
    return write_json(metrics_path(notebook, output_dir), _clean_metrics(metrics, ""))
