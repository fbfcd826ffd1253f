"""The pure logic of the browser check (ci/browser), without a browser: the interaction table and
its validation, the interactive copy of a notebook, and the link/image/table scan of a page.
The real browser run is ``make browser-test``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `ci` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from ci.browser import actions as A  # noqa: E402
from ci.browser.interactions import INTERACTIONS  # noqa: E402
from ci.browser.notebooks import (  # noqa: E402
    INJECTED_TAG,
    NotebookError,
    explore_notebooks,
    has_explore,
    parameters_line,
    prepare_copy,
    smoke_parameters,
    table_mismatch,
)
from ci.browser.pages import check_page, external_links, scan_page  # noqa: E402

NB02 = REPO / "notebooks" / "02_optimization.ipynb"


# --------------------------------------------------------------------------- the table


def test_the_table_is_valid_and_covers_every_explore_notebook():
    A.check_table(INTERACTIONS)
    names = [p.stem for p in explore_notebooks(REPO / "notebooks")]
    assert "02_optimization" in names
    assert table_mismatch(names, INTERACTIONS) == []


def test_table_mismatch_names_the_missing_and_the_stale_entries():
    problems = table_mismatch(["02_optimization", "03_length"], {"02_optimization": 1, "09_x": 1})
    assert len(problems) == 2
    assert "03_length has an Explore section but no entry" in problems[0]
    assert "'09_x'" in problems[1]


GOOD = (A.Click("Train"), A.ExpectText(r"after \d+ steps"))


@pytest.mark.parametrize(
    "key, entry, message",
    [
        ("02_optimization", A.Explore(steps=()), "no steps"),
        ("optimization", A.Explore(steps=GOOD), "notebook stem"),
        ("02_optimization", {"steps": GOOD}, "must be Explore"),
        ("02_optimization", A.Explore(steps=(A.Click("Train"), "click Train")), "is not a step"),
        ("02_optimization", A.Explore(steps=(A.Set(" ", 3), *GOOD)), "description"),
        ("02_optimization", A.Explore(steps=(A.ExpectText("(unclosed"),)), "bad regular"),
        ("02_optimization", A.Explore(steps=(A.Click("Train"),)), "no Expect"),
        ("02_optimization", A.Explore(steps=(A.Screenshot("a b"), *GOOD)), "screenshot name"),
        ("02_optimization", A.Explore(steps=(A.ExpectImage(count=0),)), "count must be"),
        ("02_optimization", A.Explore(steps=(A.ExpectText("x", timeout=0),)), "timeout"),
        ("02_optimization", A.Explore(steps=GOOD, errors="[bad"), "bad regular"),
        ("02_optimization", A.Explore(steps=GOOD, params=["num_texts"]), "params must be"),
    ],
)
def test_check_entry_rejects_malformed_rows(key, entry, message):
    with pytest.raises(A.TableError, match=message) as err:
        A.check_entry(key, entry)
    assert "interactions.py" in str(err.value)


def test_a_well_formed_row_passes_and_steps_describe_themselves():
    A.check_entry("07_new", A.Explore(steps=(A.Set("tau", 0.5), *GOOD, A.Screenshot("x"))))
    assert A.Set("tau", 0.5).describe() == "set 'tau' to 0.5"
    assert "'Train'" in A.Click("Train").describe()


def test_default_error_pattern_catches_printed_exceptions_only():
    import re

    assert re.search(A.DEFAULT_ERRORS, "ValueError: type a text or pick one from the list")
    assert re.search(A.DEFAULT_ERRORS, "status: RuntimeError: CUDA out of memory")
    assert not re.search(A.DEFAULT_ERRORS, "converged after 12 steps · accuracy 1.000")
    assert not re.search(A.DEFAULT_ERRORS, "decoded: 'the error: none'")


# --------------------------------------------------------------------------- notebook copy


def test_prepare_copy_injects_parameters_and_unskips_explore(tmp_path):
    before = NB02.read_bytes()
    params = {"num_texts": 1, "study_methods": "paper", "interactive": False}
    copy = prepare_copy(NB02, tmp_path, params)
    assert NB02.read_bytes() == before, "the committed notebook must not change"
    assert copy == tmp_path / NB02.name
    cells = json.loads(copy.read_text())["cells"]
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    at = next(i for i, t in enumerate(tags) if "parameters" in t)
    injected = cells[at + 1]
    assert INJECTED_TAG in tags[at + 1]
    src = injected["source"]
    assert "num_texts = 1\n" in src and "study_methods = 'paper'\n" in src
    assert src.rstrip().endswith("interactive = True"), "interactive=True wins over the params"
    compile(src, "injected", "exec")
    assert not any("skip-execution" in t for t in tags)
    assert all(c["outputs"] == [] for c in cells if c["cell_type"] == "code")
    original = json.loads(before)["cells"]
    assert len(cells) == len(original) + 1


def test_prepare_copy_needs_exactly_one_parameters_cell(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}]}
    src = tmp_path / "src" / "05_x.ipynb"
    src.parent.mkdir()
    src.write_text(json.dumps(nb))
    with pytest.raises(NotebookError, match="05_x.ipynb: expected one cell tagged 'parameters'"):
        prepare_copy(src, tmp_path, {})


def test_parameters_line_writes_literals_only():
    assert parameters_line("models", ["a", "b"]) == "models = ['a', 'b']"
    assert parameters_line("tau", 0.5) == "tau = 0.5"
    with pytest.raises(NotebookError, match="not a literal"):
        parameters_line("cfg", {"a": 1})
    with pytest.raises(NotebookError, match="bad parameter name"):
        parameters_line("x; import os", 1)


def test_explore_notebooks_finds_the_heading(tmp_path):
    def write(name, markdown):
        cell = {"cell_type": "markdown", "metadata": {}, "source": markdown}
        (tmp_path / name).write_text(json.dumps({"cells": [cell]}))

    write("01_a.ipynb", "## Explore\nwidgets")
    write("02_b.ipynb", "Nothing to explore here")
    write("03_c.ipynb", "# Intro\n\n### Explore the curves")
    write("notes.ipynb", "## Explore")
    assert [p.name for p in explore_notebooks(tmp_path)] == ["01_a.ipynb", "03_c.ipynb"]
    assert has_explore(NB02)


@pytest.mark.slow
def test_smoke_parameters_come_from_the_runner(tmp_path):
    values = smoke_parameters(sys.executable, NB02, tmp_path)
    assert values["profile"] == "smoke" and values["interactive"] is False
    assert values["output_dir"] == str(tmp_path)
    assert values["num_tokens"] == 4  # params/02_optimization.yaml, smoke section


# --------------------------------------------------------------------------- page scan

PAGE = """<!DOCTYPE html><html><body>
<h2 id="figs">Figures</h2>
<a href="fig.png"><img src="fig.png" alt="ok"></a>
<img src="missing.png">
<img src="data:image/png;base64,iVBORw0KGgo=">
<a href="sub/page.html#sec">ok with fragment</a>
<a href="sub/page.html#nope">bad fragment</a>
<a href="#figs">top</a> <a href="#gone">gone</a>
<a href="no%20such.csv">missing csv</a>
<a href="https://example.org/paper">external</a>
<table><tr><th>a</th></tr><tr><td>1</td></tr></table>
<table></table>
<details><table><tr><td>nested <table><tr><td>x</td></tr></table></td></tr></table></details>
</body></html>"""


def test_scan_page_collects_links_images_ids_and_table_rows():
    scan = scan_page(PAGE)
    assert scan.images[:2] == ["fig.png", "missing.png"]
    assert "https://example.org/paper" in scan.links and "#figs" in scan.links
    assert "figs" in scan.ids
    assert scan.tables == [2, 0, 1, 1]  # rows with cells, per table (nested ones separately)
    assert external_links(scan) == ["https://example.org/paper"]


def test_check_page_reports_exactly_the_broken_targets(tmp_path):
    (tmp_path / "fig.png").write_bytes(b"png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text('<p id="sec">x</p>')
    index = tmp_path / "index.html"
    index.write_text(PAGE)
    _, problems = check_page(index)
    text = "\n".join(problems)
    assert len(problems) == 5, text
    assert "image 'missing.png'" in text
    assert "'sub/page.html#nope': no element with id 'nope'" in text
    assert "link '#gone'" in text
    assert "no such.csv does not exist" in text
    assert "table #2 has no rows" in text
    assert "fig.png" not in text and "example.org" not in text and "#figs" not in text


def test_the_run_report_links_only_existing_files(tmp_path):
    """The report of a (fake) outputs tree passes the scan the browser check starts with."""
    from prototokens.harness.report import build_report

    (tmp_path / "figures").mkdir()
    (tmp_path / "tables").mkdir()
    (tmp_path / "figures" / "fig1_demo.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "figures" / "fig1_demo.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "tables" / "tab1_demo.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tables" / "tab1_demo.md").write_text("| a | b |\n")
    scan, problems = check_page(build_report(tmp_path))
    assert problems == []
    assert "../figures/fig1_demo.png" in scan.images
    assert "../tables/tab1_demo.csv" in scan.links and "../figures/fig1_demo.pdf" in scan.links
    assert len(scan.tables) >= 2 and all(rows > 0 for rows in scan.tables)
    (tmp_path / "tables" / "tab1_demo.md").unlink()  # a link to a vanished file is caught
    _, problems = check_page(tmp_path / "report" / "index.html")
    assert any("tab1_demo.md does not exist" in p for p in problems)


def test_link_cache_shares_rows_read_only(tmp_path):
    """The browser run reads the smoke runs' cached rows, but what it writes stays its own."""
    import os

    from ci.browser.__main__ import link_cache

    src, dst = tmp_path / "smoke" / "cache", tmp_path / "lab" / "cache"
    (src / "runs" / "rows").mkdir(parents=True)
    (src / "runs" / "rows" / "k1.json").write_text('{"row": 1}')
    assert link_cache(src, dst) == 1
    assert (dst / "runs" / "rows" / "k1.json").read_text() == '{"row": 1}'
    new = dst / "runs" / "rows" / "k1.json.tmp"
    new.write_text('{"row": 2}')
    os.replace(new, dst / "runs" / "rows" / "k1.json")  # how prototokens.files writes atomically
    assert (src / "runs" / "rows" / "k1.json").read_text() == '{"row": 1}'
    assert link_cache(tmp_path / "absent", tmp_path / "x") == 0
