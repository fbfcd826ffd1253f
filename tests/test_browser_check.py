"""The pure logic of the browser check (ci/browser), without a browser: the interaction table and
its validation, the interactive copy of a notebook, and what the report check makes of what the
browser read on the report's pages. The real browser run is ``make browser-test``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `ci` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from ci.browser import interactions as A  # noqa: E402
from ci.browser.__main__ import explore_notebooks, link_cache, prepare_copies  # noqa: E402
from ci.browser.driver import report_problems  # noqa: E402
from ci.browser.interactions import INTERACTIONS, table_mismatch  # noqa: E402

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
    assert repr(A.Set("tau", 0.5)) == "Set(widget='tau', value=0.5)"  # a failing step's name
    assert "'Train'" in repr(A.Click("Train"))


def test_default_error_pattern_catches_printed_exceptions_only():
    import re

    assert re.search(A.DEFAULT_ERRORS, "ValueError: type a text or pick one from the list")
    assert re.search(A.DEFAULT_ERRORS, "status: RuntimeError: CUDA out of memory")
    assert not re.search(A.DEFAULT_ERRORS, "converged after 12 steps · accuracy 1.000")
    assert not re.search(A.DEFAULT_ERRORS, "decoded: 'the error: none'")


# --------------------------------------------------------------------------- notebook copy


@pytest.mark.slow
def test_prepare_copies_inject_smoke_parameters_and_unskip_explore(tmp_path):
    """The copy as papermill prepares a batch run: the smoke parameters, the entry's overrides and
    interactive=True in an injected cell after the parameters cell; Explore cells not skipped."""
    before = NB02.read_bytes()
    params = {"num_texts": 1, "study_methods": ["paper"], "interactive": False}
    values = prepare_copies(sys.executable, {NB02: params}, tmp_path, tmp_path / "outputs")
    assert NB02.read_bytes() == before, "the committed notebook must not change"
    values = values["02_optimization"]
    assert values["profile"] == "smoke" and values["output_dir"] == str(tmp_path / "outputs")
    assert values["num_tokens"] == 4  # params/02_optimization.yaml, smoke section
    assert values["num_texts"] == 1 and values["interactive"] is True  # True wins
    cells = json.loads((tmp_path / NB02.name).read_text())["cells"]
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    at = next(i for i, t in enumerate(tags) if "parameters" in t)
    assert "injected-parameters" in tags[at + 1]
    injected: dict = {}
    exec("".join(cells[at + 1]["source"]), injected)  # what the kernel will run
    assert injected["num_texts"] == 1 and injected["study_methods"] == ["paper"]
    assert injected["interactive"] is True and injected["num_tokens"] == 4
    assert not any("skip-execution" in t for t in tags)
    assert all(c["outputs"] == [] for c in cells if c["cell_type"] == "code")
    assert len(cells) == len(json.loads(before)["cells"]) + 1


@pytest.mark.slow
def test_prepare_copies_reject_a_bad_notebook_or_override(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 4}  # fmt: skip
    src = tmp_path / "src" / "05_x.ipynb"
    src.parent.mkdir()
    src.write_text(json.dumps(nb))
    with pytest.raises(RuntimeError, match="05_x.ipynb has 0 cells tagged 'parameters'"):
        prepare_copies(sys.executable, {src: {}}, tmp_path, tmp_path / "outputs")
    with pytest.raises(RuntimeError, match="num_textz"):  # a typo in the table's params
        prepare_copies(sys.executable, {NB02: {"num_textz": 1}}, tmp_path, tmp_path / "outputs")
    assert prepare_copies(sys.executable, {}, tmp_path, tmp_path) == {}


def test_explore_notebooks_finds_the_heading(tmp_path):
    def write(name, markdown):
        cell = {"cell_type": "markdown", "metadata": {}, "source": markdown}
        (tmp_path / name).write_text(json.dumps({"cells": [cell]}))

    write("01_a.ipynb", "## Explore\nwidgets")
    write("02_b.ipynb", "Nothing to explore here")
    write("03_c.ipynb", "# Intro\n\n### Explore the curves")
    write("notes.ipynb", "## Explore")
    assert [p.name for p in explore_notebooks(tmp_path)] == ["01_a.ipynb", "03_c.ipynb"]
    assert NB02 in explore_notebooks(NB02.parent)


# --------------------------------------------------------------------------- the report

BASE = "http://127.0.0.1:8000"
INDEX = f"{BASE}/report/index.html"
SUB = f"{BASE}/report/notebooks/02_optimization.html"


def read(**facts) -> dict:
    """What READ_PAGE returns for a page where nothing is wrong, with ``facts`` replaced."""
    table = {"rows": 2, "height": 40.0}
    return {"images": 1, "bad_images": [], "tables": [table], "links": [], "ids": []} | facts


def test_report_problems_names_each_broken_thing_and_nothing_else():
    links = [f"{INDEX}#figs", f"{INDEX}#gone", f"{SUB}#sec", f"{SUB}#nope", f"{SUB}#caf%C3%A9"]
    links += [f"{BASE}/tables/tab1.csv", f"{BASE}/tables/no%20such.csv", "https://example.org/p"]
    pages = {
        INDEX: read(
            links=links,
            ids=["figs"],
            bad_images=["../figures/missing.png"],
            tables=[{"rows": 2, "height": 40.0}, {"rows": 0, "height": 0.0}],
        ),
        SUB: read(ids=["sec", "café"], bad_images=["data:image/png;base64,xx"]),
    }
    statuses = {INDEX: 200, SUB: 200, f"{BASE}/tables/tab1.csv": 200}
    statuses[f"{BASE}/tables/no%20such.csv"] = 404
    problems = report_problems(INDEX, pages, statuses)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "link http://127.0.0.1:8000/tables/no%20such.csv answered 404" in text  # broken link
    assert "report: image '../figures/missing.png' did not load" in text  # missing image
    assert f"{SUB}: image 'data:image/png;base64,xx' did not load" in text  # on a linked page
    assert "table #2 not rendered" in text and "table #1" not in text  # empty table
    assert f"{INDEX}#gone: no element with id 'gone'" in text  # missing target, same page
    assert f"{SUB}#nope: no element with id 'nope'" in text  # missing target, linked page
    assert "#figs" not in text and "#sec" not in text and "caf" not in text
    assert "example.org" not in text and "tab1.csv" not in text


def test_report_problems_checks_fragments_only_on_pages_it_opened():
    pages = {INDEX: read(links=[f"{BASE}/tables/tab1.md#x", f"{INDEX}#top"], ids=["top"])}
    assert report_problems(INDEX, pages, {f"{BASE}/tables/tab1.md": 200, INDEX: 200}) == []
    assert report_problems(INDEX, {INDEX: read(tables=[{"rows": 3, "height": 0}])}, {}) == [
        "report: table #1 not rendered ({'rows': 3, 'height': 0})"  # collapsed: not shown
    ]


def test_link_cache_shares_rows_read_only(tmp_path):
    """The browser run reads the smoke runs' cached rows, but what it writes stays its own."""
    import os

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
