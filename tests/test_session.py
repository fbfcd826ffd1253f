"""The session a notebook starts: it owns the outputs folder, and its save_* calls write there."""

from __future__ import annotations

import json

import matplotlib
import pandas as pd
import pytest
from prototokens.harness.session import start

matplotlib.use("Agg")


def test_session_writes_figures_tables_and_metrics_under_its_folder(tmp_path):
    import matplotlib.pyplot as plt

    session = start(None, device="cpu", output_dir=str(tmp_path), seed=3, notebook="09_demo")
    assert session.output_dir == tmp_path and session.lm is None
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    written = session.save_figure(fig, "fig9_demo")
    assert sorted(p.name for p in written) == ["fig9_demo.pdf", "fig9_demo.png"]
    assert all(p.parent == tmp_path / "figures" and p.stat().st_size > 0 for p in written)
    session.save_table(pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}), "tab9_demo")
    assert (tmp_path / "tables" / "tab9_demo.csv").read_text().splitlines()[0] == "a,b"
    assert (tmp_path / "tables" / "tab9_demo.md").read_text().lstrip().startswith("|")
    path = session.write_metrics({"num_texts": 2, "accuracy": 1.0})
    assert path == tmp_path / "metrics" / "09_demo.json"
    assert json.loads(path.read_text()) == {"num_texts": 2, "accuracy": 1.0}
    assert session.store.root == tmp_path / "cache" / "runs" and session.store.root.is_dir()


def test_session_without_a_notebook_name_refuses_to_guess(tmp_path):
    session = start(None, device="cpu", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="notebook='NN_name'"):
        session.write_metrics({"x": 1})
    assert session.write_metrics({"x": 1}, notebook="09_demo").exists()
