"""The vocabulary of the interaction tables: what a person does with a widget, and what they see.

A notebook's entry in :mod:`ci.browser.interactions` is an :class:`Explore`: optional parameter
overrides for the browser run and steps run in order after "Run All Cells" (``Set``, ``Click``,
``Expect*``, ``Screenshot``; their meaning is tabled in ci/README.md). Every ``Expect*`` waits up
to its ``timeout`` (seconds); after every step the driver looks for errors and fails naming the
step. :func:`check_entry` rejects a malformed entry with a message naming the notebook and step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

# Text a widget shows when its callback caught an exception and printed it (e.g. 02's status
# line "ValueError: type a text ..."): CamelCase name ending in Error/Exception, then ": ".
DEFAULT_ERRORS = r"\b[A-Z]\w*(?:Error|Exception): "
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Set:
    widget: str  # the control's description (its label on screen)
    value: Any  # option label, number, text or bool

    def describe(self) -> str:
        return f"set {self.widget!r} to {self.value!r}"


@dataclass(frozen=True)
class Click:
    widget: str  # the button's text (its description)

    def describe(self) -> str:
        return f"click {self.widget!r}"


@dataclass(frozen=True)
class ExpectText:
    pattern: str  # regular expression searched in the widgets' visible text
    what: str = ""  # what the person must see, for failure messages
    timeout: float = DEFAULT_TIMEOUT

    def describe(self) -> str:
        return f"expect {self.what or 'text'} /{self.pattern}/"


@dataclass(frozen=True)
class ExpectImage:
    what: str = "image"
    count: int = 1
    timeout: float = DEFAULT_TIMEOUT

    def describe(self) -> str:
        return f"expect {self.count} loaded image(s): {self.what}"


@dataclass(frozen=True)
class ExpectElement:
    css: str  # selector inside the Explore widgets
    what: str = ""
    count: int = 1
    timeout: float = DEFAULT_TIMEOUT

    def describe(self) -> str:
        return f"expect {self.count}+ {self.what or self.css!r}"


@dataclass(frozen=True)
class ExpectWidget:
    widget: str
    enabled: bool = False  # also wait until it can be used (e.g. Train again after a run)
    timeout: float = DEFAULT_TIMEOUT

    def describe(self) -> str:
        return f"expect {'enabled ' if self.enabled else ''}widget {self.widget!r}"


@dataclass(frozen=True)
class Screenshot:
    name: str

    def describe(self) -> str:
        return f"screenshot {self.name!r}"


Step = Union[Set, Click, ExpectText, ExpectImage, ExpectElement, ExpectWidget, Screenshot]
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
    # Non-empty: the steps are declared but not run yet, for this reason (printed, and written to
    # summary.json as "pending"); the check passes over it. Only for widgets still being brought
    # up in the browser: a pending entry is reported on every run, never silently.
    pending: str = ""


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
        if isinstance(step, (Set, Click, ExpectWidget)) and not (
            isinstance(step.widget, str) and step.widget.strip()
        ):
            raise TableError(f"{at}: {type(step).__name__} needs the widget's description")
        if isinstance(step, ExpectText):
            _compile(step.pattern, at)
        if isinstance(step, (ExpectImage, ExpectElement)) and step.count < 1:
            raise TableError(f"{at}: count must be >= 1")
        if isinstance(step, ExpectElement) and not step.css.strip():
            raise TableError(f"{at}: ExpectElement needs a CSS selector")
        if isinstance(step, Screenshot) and not _SCREENSHOT_NAME.match(step.name):
            raise TableError(f"{at}: screenshot name {step.name!r} must be [A-Za-z0-9_.-]+")
        timeout = getattr(step, "timeout", 1.0)
        if not timeout > 0:
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


def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise TableError(f"{where}: bad regular expression {pattern!r}: {exc}") from None
