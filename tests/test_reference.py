"""The committed reference run (outputs/reference/h200/) parses and names what the notebooks
produce today; ci/gpu_reference.py (from returned files and from a local outputs folder),
``prototokens.harness.compare`` and the report's reference columns work on synthetic runs."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from prototokens.harness import compare, runner
from prototokens.harness.ledger import LEDGER_COLUMNS
from prototokens.harness.references import list_references
from prototokens.harness.report import build_report

REPO = Path(__file__).resolve().parent.parent
# the committed references, and what each needs before it exists
HOW = {
    "h200": "a run on the GPU machine (ci/README.md), then "
    "`python ci/gpu_reference.py <returned files>`",
    "cpu": "the cpu_paper run on the CPU machine, then `python ci/gpu_reference.py --from-outputs "
    "outputs/cpu_paper --dest outputs/reference/cpu` (outputs/reference/README.md)",
}
PNG = b"\x89PNG\r\n\x1a\n"

spec = importlib.util.spec_from_file_location("gpu_reference", REPO / "ci" / "gpu_reference.py")
gpu_reference = importlib.util.module_from_spec(spec)
sys.modules["gpu_reference"] = gpu_reference
spec.loader.exec_module(gpu_reference)


@pytest.fixture(params=sorted(HOW))
def reference(request) -> Path:
    """Each committed reference folder in turn (skipped until it has been written)."""
    folder = REPO / "outputs" / "reference" / request.param
    if not (folder / "runs.json").exists():
        pytest.skip(f"no {request.param} reference yet: it needs {HOW[request.param]}")
    return folder


def test_every_committed_reference_is_checked_here():
    names = [r.name for r in list_references(REPO / "outputs")]
    assert set(names) <= set(HOW), f"add {sorted(set(names) - set(HOW))} to HOW"


def promised_by_notebooks() -> dict[str, set[str]]:
    """Artefact names each notebook promises in its "Outputs" markdown (as the smoke test reads)."""
    from test_notebooks_smoke import promised_artefacts

    return {p.stem: set(promised_artefacts(p)) for p in runner.list_notebooks()}


def test_reference_files_parse(reference):
    runs = json.loads((reference / "runs.json").read_text())
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
    for path in (reference / "metrics").glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path
    for path in (reference / "tables").glob("*.csv"):
        assert len(pd.read_csv(path).columns) >= 1, path
    for path in (reference / "figures").glob("*.png"):
        assert path.read_bytes()[:8] == PNG, path
    big = [p for p in reference.rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert not big, f"reference files above 1 MiB: {big}"


# artefacts of the committed reference that the notebooks no longer write; they go when the
# reference is next regenerated: old-shape claims tables, written before the claims ledger (issue
# 18; now tab_claims_NN_name), and 02's recipe comparison (now the optimiser study, issue 20)
LEGACY_REFERENCE_ARTEFACTS = {
    "tab_geometry_claims", "tab_model_families_claims", "fig_opt_recipes", "tab_opt_recipes",
}  # fmt: skip


def test_reference_names_artefacts_the_notebooks_produce_today(reference):
    promised = promised_by_notebooks()
    everything = set().union(*promised.values()) | {"claims"}  # the run's claims ledger
    for path in (reference / "metrics").glob("*.json"):
        assert path.stem in promised, f"{path.name}: no notebook {path.stem} today"
    stale = sorted(
        p.stem
        for kind, ext in (("tables", "*.csv"), ("figures", "*.png"))
        for p in (reference / kind).glob(ext)
        if p.stem not in everything and p.stem not in LEGACY_REFERENCE_ARTEFACTS
    )
    assert not stale, f"reference artefacts no notebook promises any more: {stale}"


# --------------------------------------------------------------------------- synthetic run


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder``, as sorted relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


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
    assert files_in(dest) == [
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


# --------------------------------------------------------------------------- a local outputs folder


# a cpu_paper run's notebooks: (device as provenance.device_of_run records it, wall time); 05's
# metrics record a list of devices, so the runner asked torch itself
CPU_RUNS = {
    "03_metrics": ({"device": "cpu", "gpu_name": None, "source": "notebook metrics"}, 900.0),
    "05_model_families": (
        {"device": "cpu", "gpu_name": None, "cpu_count": 2, "torch_threads": 2, "source": "torch"},
        1500.0,
    ),
    "07_throughput": ({"device": "cpu (2 threads), float32", "gpu_name": None}, 700.0),
}


def _cpu_manifest(notebook: str, device: dict, wall: float) -> dict:
    return {
        "notebook": notebook,
        "profile": "cpu_paper",
        "status": "ok",
        "wall_time_s": wall,
        "device": device,
        "parameters": {"profile": "cpu_paper", "output_dir": "/work/main/outputs/cpu_paper"},
        "git": {"commit": "c" * 40, "dirty": False},
        "packages": {"torch": "2.11.0"},
        "python": {"version": "3.11.7", "executable": "/work/main/.venv/bin/python"},
        "platform": "Linux-6.1-x86_64-with-glibc2.36",
    }


def fake_cpu_outputs(root: Path) -> Path:
    """An outputs tree as ``runner --profile cpu_paper --notebook 03 --notebook 05 --notebook 07``
    leaves it (:data:`CPU_RUNS`), with what the compact reference must leave out."""
    files = {
        "metrics/03_metrics.json": json.dumps({"capacity": {"median": 48}, "device": "cpu"}),
        "metrics/05_model_families.json": json.dumps({"device": ["cpu"]}),
        "metrics/07_throughput.json": json.dumps({"device": "cpu (2 threads), float32"}),
        "tables/tab3_capacity.csv": "model,c_tokens\nsmollm2-135m,48\n",
        "tables/tab3_capacity.md": "| model | c_tokens |\n",
        "figures/fig1_capacity.png": PNG + b"0" * 100,
        "figures/fig1_capacity.pdf": "%PDF",
        "figures/fig_huge.png": PNG + b"0" * 600_000,
        "notebooks/03_metrics.ipynb": "{}",
        "notebooks/03_metrics.log": "log",
        "cache/capacity/abc.json": "{}",
        "report/index.html": "<html></html>",
        "tables/old/tab_nested.csv": "a\n1\n",
        "tables/tab_capacity_search.csv": "\n",  # an empty frame without columns, and its twin
        "tables/tab_capacity_search.md": "|  |\n||\n",
    }
    for nb, (device, wall) in CPU_RUNS.items():
        files[f"metrics/{nb}.manifest.json"] = json.dumps(_cpu_manifest(nb, device, wall))
    for name, data in files.items():
        (path := root / name).parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def test_extract_from_a_local_outputs_folder(tmp_path, capsys):
    outputs = fake_cpu_outputs(tmp_path / "outputs" / "cpu_paper")
    dest = tmp_path / "outputs" / "reference" / "cpu"
    argv = ["--from-outputs", str(outputs), "--dest", str(dest)]
    assert gpu_reference.main(argv) == 0
    assert "files" in capsys.readouterr().out
    kept = "figures/fig1_capacity.png runs.json tables/tab3_capacity.csv tables/tab3_capacity.md"
    assert files_in(dest) == sorted(kept.split() + [f"metrics/{nb}.json" for nb in CPU_RUNS])
    runs = json.loads((dest / "runs.json").read_text())
    assert runs["profile"] == "cpu_paper" and runs["commit"] == "c" * 40
    assert runs["device"] == "cpu (2 threads), float32; 2 CPUs"
    assert runs["parallel"] is None and runs["series_total_s"] is None  # the runner keeps none
    assert sorted(runs["notebooks"]) == list(CPU_RUNS)
    assert runs["notebooks"]["05_model_families"]["wall_time_s"] == 1500.0
    assert "/work/main" not in json.dumps(runs["notebooks"])  # no output_dir, no executable

    # a run of our own against the CPU reference
    ours = tmp_path / "ours"
    (ours / "metrics").mkdir(parents=True)
    (ours / "metrics" / "03_metrics.json").write_text(json.dumps({"capacity": {"median": 24}}))
    out = io.StringIO()
    rows = compare.compare(ours, dest, out=out)
    assert rows["03_metrics"][0] == ("capacity.median", 48, 24, "-24 (-50%)")
    text = out.getvalue()
    assert "reference: cpu (2 threads), float32; 2 CPUs, profile cpu_paper" in text
    assert "05_model_families" in text and "1500 s" in text
    assert compare.main([str(ours), str(dest)]) == 0


def test_extract_from_outputs_refuses_what_would_lose_data(tmp_path):
    outputs = fake_cpu_outputs(tmp_path / "outputs" / "cpu_paper")
    with pytest.raises(SystemExit, match="delete the source"):
        gpu_reference.extract_outputs(outputs, tmp_path / "outputs")
    assert (outputs / "metrics" / "03_metrics.json").exists()
    with pytest.raises(SystemExit, match="manifest"):
        gpu_reference.extract_outputs(tmp_path / "empty", tmp_path / "ref")
    with pytest.raises(SystemExit):  # argparse: --from-outputs without --dest
        gpu_reference.main(["--from-outputs", str(outputs)])
    with pytest.raises(SystemExit):  # argparse: both sources at once
        gpu_reference.main([str(tmp_path), "--from-outputs", str(outputs), "--dest", "x"])


# --------------------------------------------------------------------------- the report


def _ledger(folder: Path, name: str, verdicts: dict[str, str]) -> None:
    rows = [
        {c: "" for c in LEDGER_COLUMNS} | {"notebook": "03_metrics", "id": cid, "verdict": v}
        for cid, v in verdicts.items()
    ]
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=LEDGER_COLUMNS).to_csv(folder / "tables" / name, index=False)


def test_report_shows_every_reference_beside_the_run(tmp_path):
    out = tmp_path / "outputs"
    _ledger(out, "tab_claims_03_metrics.csv", {"03.a": "holds", "03.b": "inconclusive"})
    (out / "tables" / "tab3_capacity.csv").write_text("model,c_tokens\nours,32\n")
    for name, device, profile, verdicts, c in (
        ("h200", "NVIDIA H200", "gpu", {"03.a": "holds", "03.b": "holds"}, 512),
        ("cpu", "cpu (2 threads), float32; 2 CPUs", "cpu_paper", {"03.a": "does not hold"}, 48),
    ):
        ref = out / "reference" / name
        _ledger(ref, "claims.csv", verdicts)
        (ref / "tables" / "tab3_capacity.csv").write_text(f"model,c_tokens\n{name}-model,{c}\n")
        (ref / "runs.json").write_text(json.dumps({"device": device, "profile": profile}))
    (out / "reference" / "partial" / "tables").mkdir(parents=True)  # no runs.json: not one
    assert [r.name for r in list_references(out)] == ["cpu", "h200"]

    index = build_report(out)
    page = index.read_text()
    claims = page[page.index('id="claims"') : page.index('id="paper"')]
    head = claims[claims.index("<tr>") : claims.index("</tr>")]
    assert head.count("<th>reference ") == 2
    assert head.index("reference cpu") < head.index("reference h200")
    assert "cpu (2 threads), float32; 2 CPUs, profile cpu_paper" in head
    assert "NVIDIA H200, profile gpu" in head
    row_a = claims[claims.index("<code>03.a</code>") :].split("</tr>")[0]
    assert row_a.count('class="holds">holds') == 2 and 'class="fails">does not hold' in row_a
    row_b = claims[claims.index("<code>03.b</code>") :].split("</tr>")[0]
    assert row_b.index("inconclusive") < row_b.index("<td>-</td>") < row_b.index(">holds<")

    tab3 = page[page.index('id="tab3_capacity"') :].split("<h3")[0]
    assert tab3.count("<h4>") == 3 and "partial" not in page
    assert tab3.index("this run") < tab3.index("reference cpu") < tab3.index("reference h200")
    assert "cpu-model" in tab3 and "h200-model" in tab3 and ">ours<" in tab3
    for link in re.findall(r'(?:href|src)="([^"#]+)"', page):  # relative, and they resolve
        assert not link.startswith("/") and (index.parent / link).exists(), link
    assert 'href="../reference/cpu/tables/tab3_capacity.csv"' in tab3
