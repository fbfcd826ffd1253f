"""The reconstruction explorer's callback path: build it, pick a text, press Train, read the result.

A browser is not needed to run the callbacks: ``Button.click()`` fires the same handler that a click
in JupyterLab fires through the widget comm.
"""

from __future__ import annotations

import ipywidgets as w
from prototokens.engine.store import ResultStore
from prototokens.harness.explore import reconstruction_explorer
from prototokens.records import Text


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _by_description(ui, description):
    return next(x for x in _walk(ui) if getattr(x, "description", None) == description)


def test_explorer_trains_and_reports(tiny_llama, tmp_path):
    ids = tuple(tiny_llama.tokenizer("Call me Ishmael.", add_special_tokens=False)["input_ids"])
    item = Text("t0", "custom", "custom", "Call me Ishmael.", ids)
    ui = reconstruction_explorer(
        tiny_llama, [item], store=ResultStore(tmp_path), max_steps=5, num_tokens=3
    )
    assert isinstance(ui, w.VBox)
    _by_description(ui, "recipe").value = "fast"
    _by_description(ui, "Train").click()
    status = next(x for x in _walk(ui) if isinstance(x, w.HTML)).value
    assert "after 5 steps" in status and "accuracy" in status, status
    assert len(list((tmp_path / "rows").glob("*.json"))) == 1, (
        "the run went through the shared cache"
    )


def test_explorer_reports_bad_input_in_the_widget(tiny_llama, tmp_path):
    ui = reconstruction_explorer(tiny_llama, [], store=ResultStore(tmp_path), max_steps=3)
    _by_description(ui, "Train").click()  # nothing typed, nothing picked
    status = next(x for x in _walk(ui) if isinstance(x, w.HTML)).value
    assert "type a text" in status


def test_arrangement_explorer_draws_layout_and_trains(tiny_llama, tmp_path):
    from prototokens.harness.explore import arrangement_explorer

    ids = tuple(tiny_llama.tokenizer("Call me Ishmael.", add_special_tokens=False)["input_ids"])
    item = Text("t0", "custom", "custom", "Call me Ishmael.", ids)
    ui = arrangement_explorer(
        tiny_llama, [item], store=ResultStore(tmp_path), max_steps=4, num_tokens=3
    )
    # outside a kernel, Output widgets do not capture; a failing redraw would raise here
    _by_description(ui, "arrangement").value = "bos+e+m*(N-1)"  # redraws, with the start token
    _by_description(ui, "N").value = 2
    _by_description(ui, "Train").click()
    status = next(x for x in _walk(ui) if isinstance(x, w.HTML)).value
    assert "after 4 steps" in status and "first wrong position" in status, status
    row = next((tmp_path / "rows").glob("*.json")).read_text()
    assert '"arrangement": "bos+e+m*(N-1)"' in row and '"num_tokens": 2' in row
