"""The committed reference run (outputs/reference/h200/) parses and names what the notebooks
produce today; ci/gpu_reference.py and ``prototokens.harness.compare`` work on a synthetic run."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from prototokens.harness import compare, runner

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "outputs" / "reference" / "h200"
PNG = b"\x89PNG\r\n\x1a\n"

spec = importlib.util.spec_from_file_location("gpu_reference", REPO / "ci" / "gpu_reference.py")
gpu_reference = importlib.util.module_from_spec(spec)
sys.modules["gpu_reference"] = gpu_reference
spec.loader.exec_module(gpu_reference)

needs_reference = pytest.mark.skipif(
    not (REFERENCE / "runs.json").exists(),
    reason="no H200 reference yet: it needs a run on the GPU machine (ci/README.md), then "
    "`python ci/gpu_reference.py <returned files>`",
)


def promised_by_notebooks() -> dict[str, set[str]]:
    """Artefact names each notebook promises in its "Outputs" markdown (as the smoke test reads)."""
    from test_notebooks_smoke import promised_artefacts

    return {p.stem: set(promised_artefacts(p)) for p in runner.list_notebooks()}


@needs_reference
def test_reference_files_parse():
    runs = json.loads((REFERENCE / "runs.json").read_text())
    assert runs["profile"] and runs["notebooks"]
    for nb, info in runs["notebooks"].items():
        assert info["status"] in {
            "ok",
            "failed",
            "timeout",
            "cell_timeout",
            "kernel_died",
            "skipped",
        }
    for path in (REFERENCE / "metrics").glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path
    for path in (REFERENCE / "tables").glob("*.csv"):
        assert len(pd.read_csv(path).columns) >= 1, path
    for path in (REFERENCE / "figures").glob("*.png"):
        assert path.read_bytes()[:8] == PNG, path
    big = [p for p in REFERENCE.rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert not big, f"reference files above 1 MiB: {big}"


# artefacts of the committed reference that the notebooks no longer write; they go when the
# reference is next regenerated: old-shape claims tables, written before the claims ledger (issue
# 18; now tab_claims_NN_name), and 02's recipe comparison (now the optimiser study, issue 20)
LEGACY_REFERENCE_ARTEFACTS = {
    "tab_geometry_claims", "tab_model_families_claims", "fig_opt_recipes", "tab_opt_recipes",
}  # fmt: skip


@needs_reference
def test_reference_names_artefacts_the_notebooks_produce_today():
    promised = promised_by_notebooks()
    everything = set().union(*promised.values()) | {"claims"}  # the run's claims ledger
    for path in (REFERENCE / "metrics").glob("*.json"):
        assert path.stem in promised, f"{path.name}: no notebook {path.stem} today"
    stale = sorted(
        p.stem
        for kind, ext in (("tables", "*.csv"), ("figures", "*.png"))
        for p in (REFERENCE / kind).glob(ext)
        if p.stem not in everything and p.stem not in LEGACY_REFERENCE_ARTEFACTS
    )
    assert not stale, f"reference artefacts no notebook promises any more: {stale}"


# --------------------------------------------------------------------------- synthetic run


def _outputs_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_extract_keeps_only_the_compact_reference(tmp_path):
    manifest = {
        "notebook": "02_optimization",
        "profile": "gpu",
        "status": "ok",
        "wall_time_s": 61.5,
        "device": {"device": "cuda", "gpu_name": "NVIDIA H200"},
        "parameters": {"num_tokens": 32, "output_dir": "/tmp/gpuwork/outputs"},
        "git": {"commit": None},
        "packages": {"torch": "2.11.0"},
        "python": {"version": "3.12.3", "executable": "/opt/torch/.venv/bin/python3"},
    }
    files = {
        "metrics/02_optimization.json": json.dumps({"batch": {"mean_accuracy": 0.9}}).encode(),
        "metrics/02_optimization.manifest.json": json.dumps(manifest).encode(),
        "tables/tab_opt_batch.csv": b"a,b\n1,2\n",
        "tables/tab_opt_batch.md": b"| a | b |\n",
        "figures/fig2_schematic.png": PNG + b"0" * 100,
        "figures/fig2_schematic.pdf": b"%PDF",
        "figures/fig_big.png": PNG + b"0" * 600_000,
        "notebooks/02_optimization.ipynb": b"{}",
        "bench/smollm2_step.json": b"{}",
        "series.json": json.dumps({"parallel": 3, "total_s": 300.0, "notebooks": []}).encode(),
    }
    data = _outputs_tar(files)
    (tmp_path / "back").mkdir()
    (tmp_path / "back" / "outputs.tar.gz.00").write_bytes(data[:1000])
    (tmp_path / "back" / "outputs.tar.gz.01").write_bytes(data[1000:])
    (tmp_path / "back" / "manifest.json").write_text(json.dumps({"commit": "abc123", "wheels": {}}))
    dest = tmp_path / "ref"
    gpu_reference.extract(tmp_path / "back", dest, max_png_kib=400)
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == [
        "bench/smollm2_step.json",
        "figures/fig2_schematic.png",
        "metrics/02_optimization.json",
        "runs.json",
        "tables/tab_opt_batch.csv",
        "tables/tab_opt_batch.md",
    ]
    runs = json.loads((dest / "runs.json").read_text())
    assert runs["device"] == "NVIDIA H200" and runs["commit"] == "abc123"
    assert runs["notebooks"]["02_optimization"]["wall_time_s"] == 61.5
    assert "output_dir" not in runs["notebooks"]["02_optimization"]["parameters"]
    assert runs["parallel"] == 3

    # compare a run of our own against it
    ours = tmp_path / "ours"
    (ours / "metrics").mkdir(parents=True)
    (ours / "metrics" / "02_optimization.json").write_text(
        json.dumps({"batch": {"mean_accuracy": 0.45}})
    )
    out = io.StringIO()
    rows = compare.compare(ours, dest, out=out)
    assert rows["02_optimization"] == [("batch.mean_accuracy", 0.9, 0.45, "-0.45 (-50%)")]
    text = out.getvalue()
    assert "NVIDIA H200" in text and "not in yours: tab_opt_batch" in text


def test_compare_flags_missing_and_non_numeric_keys():
    rows = compare.compare_metrics({"a": 1, "s": "x"}, {"a": 2, "s": "y", "gone": 3})
    assert rows == [
        ("a", 2, 1, "-1 (-50%)"),
        ("s", "y", "x", "differs"),
        ("gone", 3, None, "missing"),
    ]
