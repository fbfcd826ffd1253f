"""THE table of the browser check: per notebook with an Explore section, what a person does with
its widgets and what they must then see. The vocabulary is in :mod:`ci.browser.actions`; the
format, with an example, in ``ci/README.md``.

A notebook whose Explore section has no entry here fails the check (and the unit test
``tests/test_browser_check.py``), so new widgets cannot slip in untested.
"""

from __future__ import annotations

from ci.browser.actions import (
    Click,
    ExpectElement,
    ExpectImage,
    ExpectText,
    ExpectWidget,
    Explore,
    Screenshot,
    Set,
)

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
