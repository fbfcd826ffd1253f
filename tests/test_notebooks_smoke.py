"""Every notebook runs through the runner with ``PROFILE=smoke`` and leaves what it promises.

The notebooks run in order into one shared outputs tree, because a later notebook may read an
earlier one's artefacts (as in ``make reproduce``). For each: the executed notebook and its
manifest exist, its metrics JSON exists with finite numbers in range, and every figure and table
named (in backticks) in its "Outputs" markdown exists, both formats.

Range conventions for metric keys (the last part of a nested key): ``*accuracy*`` and
``*fraction*`` lie in [0, 1]; ``num_*``, ``n_*``, ``*_s`` and ``*_seconds`` are >= 0.
"""

from __future__ import annotations

import json
import math
import re

import nbformat
import pytest
from prototokens.harness import runner
from prototokens.harness.artifacts import ARTEFACT_NAME

NOTEBOOKS = runner.list_notebooks()
BACKTICKED = re.compile(r"`([^`\s]+)`")


@pytest.fixture(scope="module")
def smoke_outputs(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke_outputs")


def promised_artefacts(path) -> list[str]:
    """Artefact names listed after the word "Outputs" in the notebook's markdown cells."""
    names = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        at = cell.source.find("Outputs")
        if at < 0:
            continue
        for token in BACKTICKED.findall(cell.source[at:]):
            stem = token.rsplit("/", 1)[-1].split(".", 1)[0]  # `figures/fig2_x.pdf` -> fig2_x
            if ARTEFACT_NAME.match(stem) and stem not in names:
                names.append(stem)
    return names


def check_metric(key: str, value, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            check_metric(f"{key}.{k}" if key else str(k), v, where)
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            check_metric(f"{key}[{i}]", v, where)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    assert math.isfinite(value), f"{where}: metric {key} = {value}"
    leaf = re.sub(r"\[\d+\]", "", key).rsplit(".", 1)[-1]
    if "accuracy" in leaf or "fraction" in leaf:
        assert 0.0 <= value <= 1.0, f"{where}: metric {key} = {value} outside [0, 1]"
    if leaf.startswith(("num_", "n_")) or leaf.endswith(("_s", "_seconds")):
        assert value >= 0, f"{where}: metric {key} = {value} is negative"


def test_there_are_notebooks_to_smoke():
    assert NOTEBOOKS, f"no notebooks in {runner.notebook_folder()}"


@pytest.mark.smoke
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_smoke_profile(path, smoke_outputs):
    record = runner.run_notebook(path, profile="smoke", output_dir=smoke_outputs, echo=False)
    name = path.stem
    assert record.ok
    assert (smoke_outputs / "notebooks" / f"{name}.ipynb").exists()
    manifest = json.loads((smoke_outputs / "metrics" / f"{name}.manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["parameters"]["profile"] == "smoke"

    metrics_file = smoke_outputs / "metrics" / f"{name}.json"
    assert metrics_file.exists(), (
        f"{name} wrote no metrics (prototokens.harness.artifacts.write_metrics)"
    )
    metrics = json.loads(metrics_file.read_text())
    assert metrics, f"{name}: empty metrics"
    check_metric("", metrics, name)

    missing = []
    for stem in promised_artefacts(path):
        figure = [smoke_outputs / "figures" / f"{stem}.{ext}" for ext in ("png", "pdf")]
        table = [smoke_outputs / "tables" / f"{stem}.{ext}" for ext in ("csv", "md")]
        if not (all(p.exists() for p in figure) or all(p.exists() for p in table)):
            missing.append(stem)
    assert not missing, f"{name} lists outputs it did not write: {missing}"


@pytest.mark.smoke
@pytest.mark.slow
def test_03_metrics_smoke_searches_and_warm_starts(smoke_outputs):
    """03 under the smoke profile: both settings searched, the progressive search warm-started
    every length after the first, the sweep cut at the profile's lengths, claims answered."""
    path = smoke_outputs / "metrics" / "03_metrics.json"
    if not path.exists():  # run alone (-k): run the notebook here
        nb = runner.find_notebook("03")
        assert runner.run_notebook(nb, profile="smoke", output_dir=smoke_outputs, echo=False).ok
    m = json.loads(path.read_text())
    assert {"random/per-text", "random/shared m"} <= set(m["capacity"])
    assert m["lengths"] == [4, 5] and m["lengths_tried_max"] <= 2
    assert m["progressive_warm_started_fraction"] == pytest.approx(0.5)  # lengths 4 (fresh), 5
    assert len(m["claims"]) == 3
    assert all(v in ("holds", "does not hold", "not measurable here") for v in m["claims"].values())
