"""Named outputs (figures, tables, metrics) and the HTML report, on synthetic outputs."""

from __future__ import annotations

import json
import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402
from prototokens.harness.artifacts import (  # noqa: E402
    markdown_table,
    save_figure,
    save_table,
    write_metrics,
)
from prototokens.harness.report import build_report  # noqa: E402
from support import read_metrics  # noqa: E402


@pytest.fixture
def figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4], label="tokens")
    ax.set_title("Reconstruction")
    yield fig
    plt.close(fig)


def test_save_figure_writes_png_and_pdf_with_truetype_fonts(tmp_path, figure):
    png, pdf = save_figure(figure, "fig2_schematic", output_dir=tmp_path)
    assert png == tmp_path / "figures" / "fig2_schematic.png"
    assert pdf == tmp_path / "figures" / "fig2_schematic.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and b"/Type3" not in data  # fonttype 42: TrueType, not Type 3
    assert b"/CIDFontType2" in data or b"/TrueType" in data
    assert not list((tmp_path / "figures").glob(".*.tmp"))  # no temp files left behind


def test_output_dir_defaults_to_the_environment_override(tmp_path, figure, monkeypatch):
    monkeypatch.setenv("PROTOTOKENS_OUTPUT_DIR", str(tmp_path / "elsewhere"))
    paths = save_figure(figure, "fig7_bezier_connectivity")
    assert all(p.parent == tmp_path / "elsewhere" / "figures" and p.exists() for p in paths)


@pytest.mark.parametrize(
    "bad, hint",
    [
        ("figures/fig2", "not a path"),
        ("fig2_schematic.png", "extension"),
        ("Fig2", "pattern"),
        ("plot", "pattern"),
        ("", "pattern"),
    ],
)
def test_bad_artefact_names_are_rejected(tmp_path, figure, bad, hint):
    with pytest.raises(ValueError, match=hint):
        save_figure(figure, bad, output_dir=tmp_path)
    with pytest.raises(ValueError, match=hint):
        save_table(pd.DataFrame({"a": [1]}), bad, output_dir=tmp_path)
    assert not (tmp_path / "figures").exists() or not any((tmp_path / "figures").iterdir())


def test_save_table_writes_csv_and_markdown(tmp_path):
    df = pd.DataFrame(
        {
            "arrangement": ["[e, m×(N−1)]", "[e, e, m]"],
            "accuracy": [0.991234567, 0.5],
            "tokens": [256, 31],
        }
    )
    csv_path, md_path = save_table(df, "tab1_arrangements", output_dir=tmp_path)
    assert csv_path == tmp_path / "tables" / "tab1_arrangements.csv"
    back = pd.read_csv(csv_path)
    assert back["accuracy"].tolist() == [0.991234567, 0.5]  # CSV keeps full precision
    md = md_path.read_text().splitlines()
    assert md[0] == "| arrangement | accuracy | tokens |"
    assert md[1] == "|:---|---:|---:|"
    assert md[2] == "| [e, m×(N−1)] | 0.9912 | 256 |"


def test_markdown_table_keeps_a_named_index_and_escapes_pipes():
    df = pd.DataFrame(
        {"x": [1.0, float("nan")], "y": ["a|b", None]}, index=pd.Index(["p", "q"], name="model")
    )
    lines = markdown_table(df).splitlines()
    assert lines[0] == "| model | x | y |"
    assert lines[2] == "| p | 1 | a\\|b |"
    assert lines[3] == "| q |  |  |"


def test_write_metrics_round_trips_and_converts_numpy(tmp_path):
    metrics = {
        "accuracy": np.float32(0.75),
        "tokens": np.int64(12),
        "device": "cpu",
        "curve": np.array([1.0, 2.0]),
        "skipped": None,
        "nested": {"ok": True},
    }
    path = write_metrics("03_metrics", metrics, output_dir=tmp_path)
    assert path == tmp_path / "metrics" / "03_metrics.json"
    assert read_metrics("03_metrics", output_dir=tmp_path) == {
        "accuracy": 0.75,
        "tokens": 12,
        "device": "cpu",
        "curve": [1.0, 2.0],
        "skipped": None,
        "nested": {"ok": True},
    }


@pytest.mark.parametrize(
    "metrics, key",
    [
        ({"loss": float("nan")}, "'loss'"),
        ({"capacity": {"tokens": math.inf}}, "'capacity.tokens'"),
        ({"curve": [1.0, np.float64("nan")]}, r"'curve\[1\]'"),
    ],
)
def test_write_metrics_rejects_non_finite_values_naming_the_key(tmp_path, metrics, key):
    with pytest.raises(ValueError, match=key):
        write_metrics("03_metrics", metrics, output_dir=tmp_path)
    assert not (tmp_path / "metrics" / "03_metrics.json").exists()


def test_write_metrics_rejects_bad_notebook_names(tmp_path):
    with pytest.raises(ValueError, match="notebook name"):
        write_metrics("metrics/03", {"a": 1}, output_dir=tmp_path)


def test_report_links_notebooks_figures_and_tables(tmp_path, figure):
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 02 · Optimization"),
            new_code_cell(
                "print('hello')", execution_count=1, outputs=[new_output("stream", text="hello\n")]
            ),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "02_optimization.ipynb")
    save_figure(figure, "fig2_schematic", output_dir=tmp_path)
    save_table(
        pd.DataFrame({"model": ["smollm2-135m"], "tokens": [64]}),
        "tab1_arrangements",
        output_dir=tmp_path,
    )
    write_metrics("02_optimization", {"accuracy": 1.0, "device": "cpu"}, output_dir=tmp_path)
    (tmp_path / "metrics" / "02_optimization.manifest.json").write_text(
        json.dumps(
            {
                "status": "ok",
                "wall_time_s": 12.5,
                "git": {"commit": "a" * 40, "dirty": False},
                "parameters": {"profile": "smoke", "model": "smollm2-135m"},
                "device": {"device": "cpu", "gpu_name": None},
            }
        )
    )

    index_path = build_report(tmp_path)
    assert index_path == tmp_path / "report" / "index.html"
    index = index_path.read_text()
    page = tmp_path / "report" / "notebooks" / "02_optimization.html"
    assert page.exists() and "hello" in page.read_text()
    assert 'href="notebooks/02_optimization.html"' in index
    assert 'href="../notebooks/02_optimization.ipynb"' in index
    assert 'src="../figures/fig2_schematic.png"' in index
    assert 'href="../figures/fig2_schematic.pdf"' in index
    assert 'href="../tables/tab1_arrangements.csv"' in index
    assert "<td>smollm2-135m</td>" in index  # the table is shown inline
    assert "smoke" in index and "a" * 40 in index and ">cpu<" in index
    # every relative link points at a file that exists
    for link in re.findall(r'(?:href|src)="([^"#]+)"', index):
        assert (index_path.parent / link).exists(), link


def test_report_on_empty_outputs_still_renders(tmp_path):
    index = build_report(tmp_path).read_text()
    assert "No executed notebooks yet" in index and "No figures yet" in index
