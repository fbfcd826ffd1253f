"""Every notebook runs through the runner with ``PROFILE=smoke`` and leaves what it promises.

The notebooks run in order into one shared outputs tree, because a later notebook may read an
earlier one's artefacts (as in ``make reproduce``). For each: the executed notebook and its
manifest exist, its metrics JSON exists with finite numbers in range, the effect listed for it in
:data:`EFFECTS` shows (02: at least one text reconstructed exactly), and every figure and table
named (in backticks) in its "Outputs" markdown exists, both formats.

Range conventions for metric keys (the last part of a nested key): ``*accuracy*`` and
``*fraction*`` lie in [0, 1]; ``num_*``, ``n_*``, ``*_s`` and ``*_seconds`` are >= 0.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import nbformat
import pytest
from prototokens.harness import runner
from prototokens.harness.artifacts import ARTEFACT_NAME

NOTEBOOKS = runner.list_notebooks()
BACKTICKED = re.compile(r"`([^`\s]+)`")

# The effect each notebook's smoke profile must show, beyond finite numbers: (test, what failed).
EFFECTS = {
    "02_optimization": (
        lambda m: m["batch"]["num_exact"] >= 1 and m["batch"]["max_accuracy"] == 1.0,
        "no text of the batch reached accuracy 1.0 in the smoke profile",
    ),
}


@pytest.fixture(scope="module")
def smoke_outputs(tmp_path_factory):
    # .ci/run sets PROTOTOKENS_SMOKE_OUTPUTS=<repo>/outputs, so that `make browser-test` opens the
    # report of these very runs instead of running every notebook a second time.
    keep = os.environ.get("PROTOTOKENS_SMOKE_OUTPUTS")
    if keep:
        path = Path(keep).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("smoke_outputs")


@pytest.fixture(scope="module", autouse=True)
def _kernel_threads():
    """The notebook kernels inherit the tests' thread count (see conftest): OpenMP reads it."""
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = old or os.environ.get("PROTOTOKENS_TEST_THREADS", "1")
    yield
    if old is None:
        os.environ.pop("OMP_NUM_THREADS", None)


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
    if name in EFFECTS:
        effect, failure = EFFECTS[name]
        assert effect(metrics), f"{name}: {failure}: {metrics}"

    missing = []
    for stem in promised_artefacts(path):
        figure = [smoke_outputs / "figures" / f"{stem}.{ext}" for ext in ("png", "pdf")]
        table = [smoke_outputs / "tables" / f"{stem}.{ext}" for ext in ("csv", "md")]
        if not (all(p.exists() for p in figure) or all(p.exists() for p in table)):
            missing.append(stem)
    assert not missing, f"{name} lists outputs it did not write: {missing}"


@pytest.mark.smoke
@pytest.mark.slow
def test_throughput_notebook_smoke_measures_on_this_device(smoke_outputs):
    """07 under smoke: timings measured here (rows carry this device), baselines agree.
    Reads the outputs of the run above (or runs 07 when selected alone)."""
    import pandas as pd

    tmp_path = smoke_outputs
    if not (tmp_path / "metrics" / "07_throughput.json").exists():
        path = next(p for p in NOTEBOOKS if p.stem == "07_throughput")
        assert runner.run_notebook(path, profile="smoke", output_dir=tmp_path, echo=False).ok
    metrics = json.loads((tmp_path / "metrics" / "07_throughput.json").read_text())
    assert metrics["strong_tokens_match_generate"] is True
    assert metrics["n_errors"] == 0 and metrics["n_measurements"] >= 3
    assert metrics["random_init_models"] == metrics["models"]  # smoke times a random-init model
    tab = pd.read_csv(tmp_path / "tables" / "tab_throughput_bounds.csv")
    assert (tab.device_name.str.startswith("cpu")).all() and (tab.tok_s > 0).all()
    assert tab.title.str.contains("random init").all()


@pytest.mark.smoke
@pytest.mark.slow
def test_06_geometry_smoke_shows_its_effects(smoke_outputs):
    """06 in the smoke profile: the trained Bezier curves have a lower mean CE than the straight
    lines between the same endpoints (the batched control-point training works on SmolLM2).
    Reads the run of the parametrised test above when it ran, else runs 06 itself."""
    name = "06_bezier_geometry"
    metrics_file = smoke_outputs / "metrics" / f"{name}.json"
    if not metrics_file.exists():
        path = next(p for p in NOTEBOOKS if p.stem == name)
        assert runner.run_notebook(path, profile="smoke", output_dir=smoke_outputs, echo=False).ok
    m = json.loads(metrics_file.read_text())
    conn = m["connectivity"]
    assert conn["n_pairs"] >= 1
    assert conn["bezier_mean_ce_nats"] < conn["line_mean_ce_nats"], conn


@pytest.mark.smoke
@pytest.mark.slow
def test_04_arrangements_smoke_effects(smoke_outputs):
    """04 under smoke (3 steps): training lowers the target's CE, the Table 1 rows cover every
    arrangement and length, the start-token variant ran, and restarts never lower Table 2's
    best-over-seeds accuracy below the mean."""
    path = runner.notebook_folder() / "04_arrangements.ipynb"
    metrics_file = smoke_outputs / "metrics" / "04_arrangements.json"
    if not metrics_file.exists():  # run alone (e.g. -k 04): run the notebook here
        assert runner.run_notebook(path, profile="smoke", output_dir=smoke_outputs, echo=False).ok
    m = json.loads(metrics_file.read_text())
    assert m["tab1_ce_reduced_fraction"] > 0.5  # measured 5/6 on CPU fp32
    assert {k.split("@")[0] for k in m["tab1"]} == {"e*N", "e+m*(N-1)", "bos+e+m*N"}
    assert {int(k.split("@")[1]) for k in m["tab1"]} == set(m["lengths"]) == {1, 2}
    assert "bos+e+m*N" in m["eq1_variants"] and m["start_token"]
    for key, v in m["tab2"].items():
        if key.endswith("@max"):
            assert v["mean_accuracy"] >= m["tab2"][key[: -len("max")] + "avg"]["mean_accuracy"]


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
    assert len(m["claims"]) == 5 and all(k.startswith("03.") for k in m["claims"])
    assert all(v in ("holds", "does not hold", "inconclusive") for v in m["claims"].values())
