"""Where things live: the repository root, the outputs tree and the on-disk caches.

Every path the library uses is resolved here, never from ``os.getcwd()``, so a notebook run by
papermill (``--cwd notebooks``) and the same notebook opened in JupyterLab see the same files.

Environment overrides:
- ``PROTOTOKENS_OUTPUT_DIR``: the outputs tree (default ``<repo>/outputs``).
- ``PROTOTOKENS_HOME``: caches that outlive one run — dequantised models, text sources
  (default ``~/.cache/prototokens``).
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKER = ("pyproject.toml", "lib/prototokens")


def repo_root() -> Path:
    """The checkout that holds this package (``lib/prototokens`` installed editable).

    Raises ``RuntimeError`` when the package is not inside a checkout (a wheel install), since
    the outputs tree then has no natural home; set ``PROTOTOKENS_OUTPUT_DIR`` in that case.
    """
    here = Path(__file__).resolve()
    for parent in here.parents:
        if all((parent / m).exists() for m in _MARKER):
            return parent
    raise RuntimeError(
        "prototokens is not installed from a checkout; set PROTOTOKENS_OUTPUT_DIR to choose where "
        "outputs go"
    )


def output_dir(override: str | os.PathLike | None = None) -> Path:
    """The outputs tree: ``override`` (relative paths are taken from the repo root), else
    ``$PROTOTOKENS_OUTPUT_DIR``, else ``<repo>/outputs``. Created if missing."""
    raw = override or os.environ.get("PROTOTOKENS_OUTPUT_DIR")
    if raw:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = repo_root() / path
    else:
        path = repo_root() / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def home_dir() -> Path:
    """Long-lived caches (``$PROTOTOKENS_HOME`` or ``~/.cache/prototokens``). Created if missing."""
    raw = os.environ.get("PROTOTOKENS_HOME")
    path = Path(raw).expanduser() if raw else Path.home() / ".cache" / "prototokens"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(kind: str) -> Path:
    """A named sub-cache of :func:`home_dir` (``models``, ``data``, ...). Created if missing."""
    path = home_dir() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
