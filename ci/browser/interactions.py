"""THE table of the browser check and its vocabulary (format and meaning: ci/README.md): per
notebook with an Explore section, what a person does with its widgets and what they must then
see. A notebook whose Explore section has no entry fails the check and its unit test, so new
widgets cannot slip in untested. :func:`check_entry` rejects a malformed entry, naming the
notebook and the step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Text a widget shows when its callback caught an exception and printed it (e.g. 02's status
# line "ValueError: type a text ..."): CamelCase name ending in Error/Exception, then ": ".
DEFAULT_ERRORS = r"\b[A-Z]\w*(?:Error|Exception): "
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Set:
    widget: str  # the control's description (its label on screen)
    value: Any  # option label, number, text or bool


@dataclass(frozen=True)
class Click:
    widget: str  # the button's text (its description)


@dataclass(frozen=True)
class ExpectText:
    pattern: str  # regular expression searched in the widgets' visible text
    what: str = ""  # what the person must see, for failure messages
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class ExpectImage:
    what: str = "image"
    count: int = 1
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class ExpectElement:
    css: str  # selector inside the Explore widgets
    what: str = ""
    count: int = 1
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class ExpectWidget:
    widget: str
    enabled: bool = False  # also wait until it can be used (e.g. Train again after a run)
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Screenshot:
    name: str


STEP_TYPES = (Set, Click, ExpectText, ExpectImage, ExpectElement, ExpectWidget, Screenshot)
_SCREENSHOT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Explore:
    """One notebook's entry: parameter overrides for the browser run, then the steps."""

    steps: tuple = ()
    # Values written into the copy's injected-parameters cell on top of the smoke profile
    # (interactive=True is always added). Use them to make the batch cells even faster.
    params: dict = field(default_factory=dict)
    errors: str = DEFAULT_ERRORS  # regex: widget text that means a callback failed
    run_timeout: float = 600.0  # seconds for Run All Cells (batch cells + building the widgets)


class TableError(ValueError):
    """The interaction table is malformed; the message names the notebook and the step."""


def check_entry(notebook: str, entry: Explore) -> None:
    """Validate one table entry; raise :class:`TableError` naming what is wrong."""
    where = f"ci/browser/interactions.py[{notebook!r}]"
    if not re.match(r"^\d\d_[a-z0-9_]+$", notebook):
        raise TableError(f"{where}: key must be a notebook stem such as '02_optimization'")
    if not isinstance(entry, Explore):
        raise TableError(f"{where}: value must be Explore(steps=[...]), got {type(entry).__name__}")
    if not entry.steps:
        raise TableError(f"{where}: no steps: operate at least one widget and expect what it shows")
    if not isinstance(entry.params, dict) or not all(isinstance(k, str) for k in entry.params):
        raise TableError(f"{where}: params must be a dict of parameter names to values")
    _compile(entry.errors, f"{where} errors")
    seen_expect = False
    for i, step in enumerate(entry.steps):
        at = f"{where} step {i}"
        if not isinstance(step, STEP_TYPES):
            names = ", ".join(t.__name__ for t in STEP_TYPES)
            raise TableError(f"{at}: {step!r} is not a step ({names})")
        if isinstance(step, (Set, Click, ExpectWidget)) and not str(step.widget).strip():
            raise TableError(f"{at}: {type(step).__name__} needs the widget's description")
        if isinstance(step, ExpectText):
            _compile(step.pattern, at)
        if isinstance(step, (ExpectImage, ExpectElement)) and step.count < 1:
            raise TableError(f"{at}: count must be >= 1")
        if isinstance(step, ExpectElement) and not step.css.strip():
            raise TableError(f"{at}: ExpectElement needs a CSS selector")
        if isinstance(step, Screenshot) and not _SCREENSHOT_NAME.match(step.name):
            raise TableError(f"{at}: screenshot name {step.name!r} must be [A-Za-z0-9_.-]+")
        if not getattr(step, "timeout", 1.0) > 0:
            raise TableError(f"{at}: timeout must be > 0")
        seen_expect |= isinstance(step, (ExpectText, ExpectImage, ExpectElement, ExpectWidget))
    if not seen_expect:
        raise TableError(f"{where}: no Expect* step: say what the person must see")


def check_table(table: dict) -> None:
    """Validate the whole table (every entry, see :func:`check_entry`)."""
    if not isinstance(table, dict):
        raise TableError("ci/browser/interactions.py: INTERACTIONS must be a dict")
    for notebook, entry in table.items():
        check_entry(notebook, entry)


def table_mismatch(notebooks: list[str], table: dict) -> list[str]:
    """Problems between the notebooks with an Explore section and the table's keys."""
    where = "ci/browser/interactions.py"
    return [
        f"notebook {n} has an Explore section but no entry in {where} (add INTERACTIONS[{n!r}] "
        "= Explore(steps=(...)); format in ci/README.md)"
        for n in notebooks
        if n not in table
    ] + [f"{where} has an entry for {n!r}, which is not a notebook with an Explore section"
         for n in table if n not in notebooks]  # fmt: skip


def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise TableError(f"{where}: bad regular expression {pattern!r}: {exc}") from None


INTERACTIONS: dict[str, Explore] = {
    # The reconstruction explorer (prototokens.harness.explore.reconstruction_explorer).
    "02_optimization": Explore(
        params={"study_methods": ["paper"]},  # one study method: Run All in fewer seconds
        steps=(
            ExpectWidget("Train"),
            Set("tokens", 3),  # slider; 3 < the smoke num_tokens (4): proves it reached Python
            Set("arrangement", "e*N"),  # dropdown: pick an arrangement
            Set("max steps", 12),  # != the batch max_steps, so Train really trains (no cache hit)
            Screenshot("before_train"),
            Click("Train"),
            ExpectText(r"after \d+ steps", "the final status line 'converged/... after N steps'"),
            ExpectText(r"\d+/3\s*tokens correct in one forward pass", "the reconstruction header"),
            ExpectElement("span[style*='background']", "coloured token spans", count=3),
            ExpectText(r"decoded:", "the decoded text"),
            ExpectImage("the loss/accuracy curves", count=1),
            ExpectWidget("Train", enabled=True),  # the callback has returned
            Screenshot("after_train"),
        ),
    ),
    # Figure 4 redrawn for one batch size / one model (ipywidgets.interact over this run's rows).
    "07_throughput": Explore(
        steps=(
            ExpectWidget("B"),
            ExpectImage("Figure 4 for the first batch size", count=1),
            Set("B", "2"),  # smoke batch sizes are [1, 2]
            Set("m", "all"),
            ExpectImage("Figure 4 redrawn for B=2", count=1),
            Screenshot("after_pick"),
        ),
    ),
    # The tau slider over one connected pair: the decoded point on the line and on the curve.
    "06_bezier_geometry": Explore(
        steps=(
            ExpectWidget("τ"),
            ExpectText(r"curve", "the texts on the line and the curve at tau = 0.5"),
            Set("τ", 0.0),  # an endpoint: the line and the curve decode the same point p1
            # at tau = 0 both paths are at p1: the line and the curve decode the same text
            ExpectText(r"line: (.+)\n+\s*curve: \1\s*(\n|$)", "the same text on line and curve"),
            Screenshot("tau_0"),
            Set("τ", 1.0),
            Screenshot("tau_1"),
        ),
    ),
    # The arrangement layout view (prototokens.harness.explore.arrangement_explorer).
    "04_arrangements": Explore(
        steps=(
            ExpectWidget("Train"),
            ExpectImage("the input layout of the default arrangement", count=1),
            Set("arrangement", "bos+e+m*(N-1)"),  # redraws the layout with the start token
            Set("N", 2),
            ExpectImage("the layout redrawn", count=1),
            Screenshot("layout"),
            Click("Train"),
            ExpectText(r"after \d+ steps", "the final status line"),
            ExpectElement("span[style*='background']", "coloured token spans", count=2),
            ExpectWidget("Train", enabled=True),
            Screenshot("after_train"),
        ),
    ),
    # Capacity per text: accuracy against prefix length and the reconstruction at each length.
    "03_metrics": Explore(
        steps=(
            ExpectWidget("text"),
            ExpectImage("accuracy against prefix length", count=1),
            ExpectText(r"N=\d+ seed \d+: accuracy", "the reconstructions per length"),
            ExpectElement("span[style*='background']", "coloured token spans", count=4),
            Screenshot("first_text"),
        ),
    ),
    # Per-text capacities of one loaded model and source.
    "05_model_families": Explore(
        steps=(
            ExpectWidget("model"),
            ExpectWidget("source"),
            ExpectText(r"per-text", "the per-text capacity table"),
            Screenshot("table"),
        ),
    ),
}
