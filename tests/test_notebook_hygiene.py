"""Hygiene of the committed notebooks and parameter files (no kernel needed, except one test that
pins papermill's handling of the ``skip-execution`` tag).

For every ``notebooks/*.ipynb``: no outputs, an ``NN_snake_case`` name, kernel ``python3``,
exactly one ``parameters`` cell of typed, commented literals holding the shared names, no
absolute paths, widgets only in a guarded, tagged ``Explore`` section. For every
``params/*.yaml``: each key known to its notebook under every profile, ``interactive`` false.

The folders can be pointed elsewhere with ``PROTOTOKENS_NOTEBOOKS_DIR`` / ``PROTOTOKENS_PARAMS_DIR``
(to check a draft); by default they are the repository's.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from prototokens.harness import params as nbparams
from prototokens.paths import repo_root

NB_DIR = nbparams.notebook_folder()
P_DIR = nbparams.params_folder()
ALL_NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
NOTEBOOKS = nbparams.list_notebooks()
EXPECTED = ("01_setup", "02_optimization")
PARAMS_FILES = sorted(p for p in P_DIR.glob("*.yaml") if not p.name.startswith("profile_"))
PROFILE_FILES = sorted(P_DIR.glob("profile_*.yaml"))

# Quoted absolute POSIX paths ('/x/y'), home-relative paths ('~/x'), Windows drive paths.
ABSOLUTE_PATH = re.compile(r"""(["'])(?:/[\w.-]+/|~/|[A-Za-z]:\\)""")
# Machine-specific locations, also forbidden in markdown (they leak whose machine ran it).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:home|root|Users|work|tmp|mnt|scratch)/\w")
WIDGET_CODE = re.compile(r"\bipywidgets\b|\binteract(?:ive_output|_manual)?\(|\bwidgets\.")
EXPLORE_HEADING = re.compile(r"^#{1,6}\s*(?:\d+\s*[·.]?\s*)?Explore\b", re.MULTILINE)


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _ids(paths):
    return [p.name for p in paths]


def test_the_notebooks_are_there():
    """Fails, rather than skipping everything, when the notebooks folder is empty."""
    assert NOTEBOOKS, f"no NN_name.ipynb notebooks in {NB_DIR}"
    for stem in EXPECTED:
        assert (NB_DIR / f"{stem}.ipynb").exists(), f"{stem}.ipynb is missing from {NB_DIR}"
    assert PROFILE_FILES, f"no params/profile_*.yaml in {P_DIR}"
    assert {p.stem.removeprefix("profile_") for p in PROFILE_FILES} >= set(nbparams.PROFILES)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_ids(ALL_NOTEBOOKS))
def test_name_kernel_and_no_outputs(path):
    assert nbparams.NOTEBOOK_FILE.match(path.name), f"{path.name}: expected NN_snake_case.ipynb"
    nb = _read(path)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{path.name}: kernelspec must be python3 (papermill runs -k python3)"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: widget state committed (run `make strip`)"
    assert "papermill" not in nb.metadata, f"{path.name}: an executed notebook was committed"
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i}: outputs committed (run `make strip`)"
            assert cell.execution_count is None, f"{path.name} cell {i}: execution count committed"
        assert "injected-parameters" not in _tags(cell), f"{path.name} cell {i}: papermill cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_one_parameters_cell_of_typed_commented_literals(path):
    nb = _read(path)
    cells = [c for c in nb.cells if "parameters" in _tags(c)]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters', need one"
    source = cells[0].source
    tree = ast.parse(source)
    lines = source.splitlines()
    names = []
    for node in tree.body:
        where = f"{path.name} parameters line {node.lineno}"
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name), (
            f"{where}: write `name: type = value  # help`"
        )
        assert node.value is not None, f"{where}: no value"
        ast.literal_eval(node.value)  # a literal, nothing derived (derived values go below)
        assert node.lineno == node.end_lineno, f"{where}: one parameter per line"
        line = lines[node.lineno - 1]
        assert re.search(r"\S\s+#\s*\S", line), f"{where}: add a `# help` comment"
        names.append(node.target.id)
    assert len(names) == len(set(names)), f"{path.name}: a parameter is declared twice"
    missing = [n for n in nbparams.SHARED_NAMES if n not in names]
    assert not missing, f"{path.name}: shared parameters missing: {missing}"
    declared = nbparams.declared_parameters(path)  # papermill must read every line the same way
    assert sorted(declared) == sorted(names)
    assert declared["interactive"]["inferred_type_name"] == "bool"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_ids(ALL_NOTEBOOKS))
def test_no_absolute_paths(path):
    for i, cell in enumerate(_read(path).cells, 1):
        leak = MACHINE_PATH.search(cell.source)
        assert not leak, f"{path.name} cell {i}: machine-specific path {leak.group(0)!r}"
        if cell.cell_type == "code":
            found = ABSOLUTE_PATH.search(cell.source)
            assert not found, (
                f"{path.name} cell {i}: absolute path near {found.group(0)!r}; "
                "use prototokens.paths / output_dir"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_widgets_only_in_a_guarded_tagged_explore_section(path):
    cells = _read(path).cells
    start = next(
        (
            i
            for i, c in enumerate(cells)
            if c.cell_type == "markdown" and EXPLORE_HEADING.search(c.source)
        ),
        len(cells),
    )
    for i, cell in enumerate(cells[:start], 1):
        if cell.cell_type == "code":
            assert not WIDGET_CODE.search(cell.source), (
                f"{path.name} cell {i}: widget code outside the final Explore section"
            )
    for i, cell in enumerate(cells[start:], start + 1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        assert "skip-execution" in _tags(cell), (
            f"{path.name} cell {i}: Explore cell not tagged skip-execution"
        )
        body = [n for n in ast.parse(cell.source).body]
        guarded = all(
            isinstance(n, ast.If)
            and "interactive" in {x.id for x in ast.walk(n.test) if isinstance(x, ast.Name)}
            for n in body
        )
        assert body and guarded, (
            f"{path.name} cell {i}: put the Explore code under `if interactive:`"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_params_file_keys_are_known_for_every_profile(path, tmp_path):
    params_file = P_DIR / f"{path.stem}.yaml"
    assert params_file.exists(), f"{path.stem}: add {params_file.name} (at least `default: {{}}`)"
    sections = nbparams.load_params_file(params_file)
    assert "default" in sections, f"{params_file.name}: needs a `default:` section"
    for profile in nbparams.known_profiles(P_DIR):
        # checks unknown keys (naming the closest one), types and the shared names
        resolved = nbparams.resolve_parameters(path, profile, params_dir=P_DIR, output_dir=tmp_path)
        assert resolved.values["interactive"] is False
        assert resolved.values["profile"] == profile


def test_every_params_file_has_its_notebook():
    stems = {p.stem for p in NOTEBOOKS}
    orphans = [p.name for p in PARAMS_FILES if p.stem not in stems]
    assert not orphans, (
        f"params files without a notebook (a misspelt name is never used): {orphans}"
    )


@pytest.mark.parametrize(
    "path", PROFILE_FILES + PARAMS_FILES, ids=_ids(PROFILE_FILES + PARAMS_FILES)
)
def test_interactive_is_false_in_every_params_file(path):
    data = yaml.safe_load(path.read_text()) or {}
    if path.name.startswith("profile_"):
        assert data.get("interactive") is False, f"{path.name}: set `interactive: false`"
        assert data.get("profile") == path.stem.removeprefix("profile_")
        assert isinstance(data.get("model"), str) and isinstance(data.get("device"), str)
    else:
        for section, body in data.items():
            assert (body or {}).get("interactive", False) is False, (
                f"{path.name} [{section}]: interactive must stay false"
            )


def test_papermill_skips_cells_tagged_skip_execution(tmp_path):
    """nbclient honours ``skip-execution`` and papermill executes through it; undocumented on
    papermill's side, so pinned here: the Explore guard relies on it."""
    import papermill

    marker = tmp_path / "explore_ran.txt"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("before = 1"),
            nbformat.v4.new_code_cell(
                f"open({marker.name!r}, 'w').write('ran')\nraise SystemExit('should be skipped')",
                metadata={"tags": ["skip-execution"]},
            ),
            nbformat.v4.new_code_cell("after = before + 1\nprint(after)"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(
        str(src),
        str(out),
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        execution_timeout=120,
    )
    done = _read(out)
    assert not marker.exists()
    assert done.cells[1].outputs == [] and done.cells[1].execution_count is None
    assert done.cells[2].outputs[0]["text"] == "2\n"


def test_lib_is_tracked_by_git():
    """The stock Python .gitignore ignores lib/, which holds the package."""
    root = repo_root()
    inside = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
    )
    if inside.returncode != 0:
        pytest.skip("not a git checkout")
    files = subprocess.run(
        ["git", "-C", str(root), "ls-files", "lib"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "lib/prototokens/__init__.py" in files, "lib/ is not tracked: check .gitignore"
