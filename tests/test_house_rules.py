"""The house rules that a reader of the README is promised, checked on the source (no kernel).

1. A notebook orchestrates: outside its parameters cell and its Explore section, a notebook holds
   at most :data:`MAX_LOGIC_NODES` logic nodes (``ast`` nodes of the kinds in
   :data:`LOGIC_NODES`, counted over every code cell, claims and metrics cells included).
   Whatever computes more belongs in a study function.
2. Imports go down: the layer order is written once, in the package docstring of
   ``lib/prototokens/__init__.py``; every ``import`` in ``lib/`` (module level or inside a
   function) goes to its own layer or a layer listed before it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from prototokens.paths import repo_root

ROOT = repo_root()
LIB = ROOT / "lib" / "prototokens"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

MAX_LOGIC_NODES = 10
LOGIC_NODES = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.IfExp,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.ListComp,
    ast.DictComp,
    ast.SetComp,
    ast.GeneratorExp,
    ast.Try,
    ast.With,
    ast.AsyncWith,
    ast.Lambda,
)
EXPLORE = re.compile(r"^#{1,6}\s*Explore\b", re.MULTILINE)


# ------------------------------------------------------------------ 1. notebooks orchestrate
def orchestration_cells(nb: dict) -> list[tuple[int, str]]:
    """(index, source) of every code cell outside the parameters cell and the Explore section
    (which starts at the markdown heading ``## Explore`` and runs to the end)."""
    out, explore = [], False
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            explore = explore or bool(EXPLORE.search(source))
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and not explore and "parameters" not in tags:
            out.append((i, source))
    return out


def logic_nodes(source: str) -> list[str]:
    """The logic nodes of one cell, as ``Kind@line`` (IPython magics and shell lines dropped)."""
    code = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )
    nodes = ast.walk(ast.parse(code))
    return [f"{type(n).__name__}@{n.lineno}" for n in nodes if isinstance(n, LOGIC_NODES)]


def test_the_counter_counts_each_kind_and_skips_parameters_and_explore():
    """The counter itself: a cell of known logic, a parameters cell and an Explore cell."""
    logic = (
        "for x in y:\n    pass\nwhile a:\n    break\nif b:\n    c = d if e else f\n"
        "def g():\n    return [i for i in h]\nclass K:\n    pass\n"
        "s = {i for i in h}, {i: i for i in h}, sum(i for i in h), lambda: 1\n"
        "try:\n    pass\nexcept E:\n    pass\nwith o:\n    pass\n%time q = 1\n"
    )
    kinds = sorted(k.split("@")[0] for k in logic_nodes(logic))
    assert kinds == sorted(
        ["For", "While", "If", "IfExp", "FunctionDef", "ListComp", "ClassDef", "SetComp"]
        + ["DictComp", "GeneratorExp", "Lambda", "Try", "With"]
    ), kinds
    assert logic_nodes("session.write_metrics(study.metrics(table, claims))\nx = y[z > 1]") == []
    nb = {
        "cells": [
            {"cell_type": "code", "source": logic, "metadata": {}},
            {"cell_type": "code", "source": "if a:\n    b", "metadata": {"tags": ["parameters"]}},
            {"cell_type": "markdown", "source": "## Explore\nwidgets", "metadata": {}},
            {"cell_type": "code", "source": "if interactive:\n    pass", "metadata": {}},
        ]
    }
    assert [i for i, _ in orchestration_cells(nb)] == [0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_notebook_only_orchestrates(path):
    nb = json.loads(path.read_text())
    per_cell = {i: logic_nodes(src) for i, src in orchestration_cells(nb)}
    total = sum(len(v) for v in per_cell.values())
    where = "; ".join(f"cell {i}: {', '.join(v)}" for i, v in per_cell.items() if v)
    assert total <= MAX_LOGIC_NODES, (
        f"{path.name} holds {total} logic nodes outside its parameters cell and Explore "
        f"(at most {MAX_LOGIC_NODES}): {where}. Move the logic into a study function."
    )


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, f"expected the seven notebooks in {ROOT / 'notebooks'}"


# ------------------------------------------------------------------ 2. imports go down
def layer_order() -> list[str]:
    """Subpackage names bottom up, read from the package docstring's list of layers (the list
    items that start with a ``:mod:`prototokens.<name>``` reference); the top-level modules come
    first, as layer ``""``."""
    doc = ast.get_docstring(ast.parse((LIB / "__init__.py").read_text()))
    names = re.findall(r"^- :mod:`prototokens\.(\w+)`", doc or "", re.MULTILINE)
    return ["", *names]


def module_layer(module: str, order: list[str], lib: Path = LIB) -> int | None:
    """The rank of ``module`` in ``order`` (None outside the package). A top-level module
    (``prototokens.paths``) is layer 0; ``prototokens.engine.x`` is the rank of ``engine``."""
    parts = module.split(".")
    if parts[0] != "prototokens":
        return None
    if len(parts) > 1 and parts[1] in order:
        return order.index(parts[1])
    if len(parts) > 1 and (lib / parts[1]).is_dir():
        raise AssertionError(f"subpackage prototokens.{parts[1]} is missing from the layer list")
    return 0


def imports_of(path: Path, lib: Path = LIB) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, relative ones resolved."""
    rel = path.relative_to(lib.parent).with_suffix("")
    package = list(rel.parts if path.name == "__init__.py" else rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                out.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
            else:
                out.append((node.lineno, node.module))
    return out


def upward_imports(lib: Path = LIB) -> list[str]:
    """``file:line (layer) imports module (layer)`` for every import in ``lib`` that goes up."""
    order = layer_order()
    bad = []
    for path in sorted(lib.rglob("*.py")):
        rel = path.relative_to(lib.parent).with_suffix("")
        parts = rel.parts[:-1] if path.name == "__init__.py" else rel.parts
        mine = module_layer(".".join(parts), order, lib)
        for line, target in imports_of(path, lib):
            theirs = module_layer(target, order, lib)
            if theirs is not None and theirs > mine:
                bad.append(
                    f"{path.relative_to(lib.parent)}:{line} ({order[mine] or 'top level'}) "
                    f"imports {target} ({order[theirs]})"
                )
    return bad


def test_the_layer_order_is_written_in_the_package_docstring():
    assert layer_order() == ["", "engine", "inputs", "studies", "harness"]


def test_no_import_goes_up():
    bad = upward_imports()
    assert not bad, "imports that go up the layers (see prototokens/__init__.py):\n" + "\n".join(
        bad
    )


def test_the_import_walker_sees_upward_imports(tmp_path):
    """The walker on a fake package: a function-local upward import and a relative one count,
    downward and outside imports do not."""
    lib = tmp_path / "prototokens"
    for sub in ("engine", "studies", "harness"):
        (lib / sub).mkdir(parents=True)
    (lib / "paths.py").write_text("import os\n")
    (lib / "engine" / "probe.py").write_text(
        "import numpy\nfrom prototokens import paths\n"
        "def f():\n    from prototokens.harness import plots\nfrom ..studies import x\n"
    )
    (lib / "harness" / "plots.py").write_text("from prototokens.engine import probe\n")
    found = upward_imports(lib)
    assert sorted(b.split(" imports ")[1] for b in found) == [
        "prototokens.harness (harness)",
        "prototokens.studies (studies)",
    ], found


# ------------------------------------------------------------------ the studies' table of contents
def test_the_studies_docstring_lists_every_study_module():
    """``prototokens.studies`` says what each of its modules offers: none missing, none stale."""
    doc = ast.get_docstring(ast.parse((LIB / "studies" / "__init__.py").read_text())) or ""
    listed = set(re.findall(r"^``(\w+)``\s", doc, re.MULTILINE))
    present = {p.stem for p in (LIB / "studies").glob("*.py") if p.stem != "__init__"}
    assert not present - listed, f"studies modules missing from its docstring: {present - listed}"
    assert not listed - present, f"the studies docstring lists absent modules: {listed - present}"


# ------------------------------------------------------------------ the public API
def test_the_lazy_top_level_api_gives_each_name_from_its_defining_module():
    """``prototokens.<name>`` resolves every name of the public API, each from the module that
    defines it (no re-export chain), and ``import prototokens`` loads none of them."""
    import subprocess
    import sys

    import prototokens

    for name, module in prototokens._LAZY.items():
        value = getattr(prototokens, name)
        assert value.__module__ == module, f"prototokens.{name} comes from {value.__module__}"
    code = "import sys, prototokens; print(any(m.startswith('prototokens.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "import prototokens imported a subpackage eagerly"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        prototokens.nope  # noqa: B018


def test_subpackages_do_not_re_export():
    """Re-exports live only in the top-level lazy API: a layer's ``__init__`` is a docstring
    (the nested ``inputs.data`` package keeps its entry points: ``load_texts`` and its errors)."""
    for init in sorted(LIB.glob("*/__init__.py")):
        body = [n for n in ast.parse(init.read_text()).body if not isinstance(n, ast.Expr)]
        body = [n for n in body if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
        assert not body, f"{init.relative_to(ROOT)} holds code or imports (re-exports?)"
