"""Which notebooks have an Explore section, and the fast interactive copy the browser runs.

The committed notebook is never touched. Its copy gets, right after its ``parameters`` cell, an
``injected-parameters`` cell (as papermill writes one) with the smoke profile's values, the
table's overrides and ``interactive = True``; the ``skip-execution`` tags are removed (so "Run
All Cells" builds the widgets) and stored outputs are cleared. Pure JSON editing: the browser
venv needs neither papermill nor nbformat.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

EXPLORE_HEADING = re.compile(r"^#{1,6}\s*Explore\b", re.MULTILINE)
SKIP_TAG = "skip-execution"
INJECTED_TAG = "injected-parameters"


class NotebookError(ValueError):
    """A notebook cannot be prepared for the browser check; the message names it."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list:
    return cell.get("metadata", {}).get("tags", [])


def has_explore(path: str | Path) -> bool:
    """True when a markdown cell of the notebook has an ``Explore`` heading."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return any(
        c.get("cell_type") == "markdown" and EXPLORE_HEADING.search(_source(c))
        for c in nb.get("cells", [])
    )


def explore_notebooks(nb_dir: str | Path) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks of ``nb_dir`` that have an Explore section, in order."""
    paths = sorted(Path(nb_dir).glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if has_explore(p)]


def table_mismatch(notebooks: Iterable[str], table: Mapping[str, Any]) -> list[str]:
    """Problems between the notebooks with an Explore section and the table's keys."""
    names = list(notebooks)
    problems = [
        f"notebook {n} has an Explore section but no entry in ci/browser/interactions.py "
        f"(add INTERACTIONS[{n!r}] = Explore(steps=(...)); format in ci/README.md)"
        for n in names
        if n not in table
    ]
    problems += [
        f"ci/browser/interactions.py has an entry for {n!r}, which is not a notebook with an "
        "Explore section"
        for n in table
        if n not in names
    ]
    return problems


def parameters_line(name: str, value: Any) -> str:
    """``name = <literal>`` for one injected parameter (only Python literals are allowed)."""
    if not re.match(r"^[A-Za-z_]\w*$", name):
        raise NotebookError(f"bad parameter name {name!r}")
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, (str, int, float, bool)) for v in value):
            raise NotebookError(f"parameter {name}: list items must be str/int/float/bool")
        return f"{name} = {list(value)!r}"
    if value is None or isinstance(value, (str, int, float, bool)):
        return f"{name} = {value!r}"
    raise NotebookError(f"parameter {name}: {type(value).__name__} is not a literal")


def prepare_copy(src: str | Path, dest_dir: str | Path, params: Mapping[str, Any]) -> Path:
    """Write the browser copy of notebook ``src`` into ``dest_dir`` (same file name); see module
    docstring. Raises :class:`NotebookError` unless it has exactly one ``parameters`` cell."""
    src = Path(src)
    nb = json.loads(src.read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    at = [i for i, c in enumerate(cells) if "parameters" in _tags(c)]
    if len(at) != 1:
        raise NotebookError(f"{src.name}: expected one cell tagged 'parameters', found {len(at)}")
    for cell in cells:
        tags = _tags(cell)
        if SKIP_TAG in tags:
            tags.remove(SKIP_TAG)
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    lines = ["# Parameters injected by the browser check (ci/browser)"]
    lines += [parameters_line(k, v) for k, v in {**params, "interactive": True}.items()]
    injected = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": [INJECTED_TAG]},
        "outputs": [],
        "source": "\n".join(lines) + "\n",
    }
    if nb.get("nbformat", 4) >= 4 and nb.get("nbformat_minor", 0) >= 5:
        injected["id"] = "browser-check-parameters"
    cells.insert(at[0] + 1, injected)
    dest = Path(dest_dir) / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return dest


def smoke_parameters(python: str, notebook: str | Path, output_dir: str | Path) -> dict:
    """The notebook's resolved ``smoke`` parameters (profile file + params/NN.yaml smoke section,
    ``output_dir`` set), asked from the project's interpreter ``python``, which has the library."""
    code = (
        "import json, sys\n"
        "from prototokens.harness.runner import resolve_parameters\n"
        "r = resolve_parameters(sys.argv[1], 'smoke', output_dir=sys.argv[2])\n"
        "print(json.dumps(r.values))\n"
    )
    proc = subprocess.run(
        [python, "-c", code, str(notebook), str(output_dir)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise NotebookError(
            f"{Path(notebook).stem}: could not resolve the smoke parameters:\n{proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])
