"""The notebook runner on synthetic notebooks: parameter layering and checks, papermill runs,
failures (cell error, dead kernel, timeouts) reported with the cell, manifests, skip-execution.

Parameter tests run no kernel; each papermill run costs a few seconds (kernel start), so the
runs are few and each checks several things.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from prototokens import envcheck
from prototokens.harness import runner
from prototokens.harness.params import ParameterError
from prototokens.harness.runner import NotebookFailed

PARAMS_CELL = """\
model: str = "tiny"  # model name
seed: int = 0  # random seed
device: str = "cpu"  # torch device
profile: str = "default"  # parameter profile
interactive: bool = True  # build the widgets (false in every params file)
output_dir: str = ""  # outputs tree; empty means the repository's outputs folder
num_steps: int = 10  # optimisation steps
lr: float = 0.1  # learning rate"""

WRITE_METRICS = (
    "from prototokens.harness.artifacts import write_metrics\n"
    "write_metrics({name!r}, {{'num_steps': num_steps, 'lr': lr, 'model': model, "
    "'device': device}}, output_dir=output_dir)"
)


def make_notebook(
    folder: Path, name: str, *sources: str, params: str = PARAMS_CELL, skip: str | None = None
) -> Path:
    """A notebook like the real ones: title, tagged parameters cell, code cells, and optionally a
    final cell tagged ``skip-execution``."""
    cells = [
        new_markdown_cell(f"# {name}"),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
    ]
    cells += [new_code_cell(s) for s in sources]
    if skip is not None:
        cells.append(new_code_cell(skip, metadata={"tags": ["skip-execution"]}))
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def project(tmp_path):
    """A notebooks dir, a params dir with the three profiles, and an outputs dir."""
    nb_dir, p_dir, out = tmp_path / "notebooks", tmp_path / "params", tmp_path / "outputs"
    for profile, device in (("default", "cpu"), ("smoke", "cpu"), ("paper", "cuda")):
        write_yaml(
            p_dir / f"profile_{profile}.yaml",
            {
                "profile": profile,
                "model": f"model-{profile}",
                "device": device,
                "interactive": False,
            },
        )
    nb_dir.mkdir()

    class Project:
        notebooks, params, outputs = nb_dir, p_dir, out

        def resolve(self, name, profile="default", **kw):
            return runner.resolve_parameters(
                name, profile, params_dir=p_dir, output_dir=out, notebooks_dir=nb_dir, **kw
            )

        def run(self, name, profile="smoke", **kw):
            return runner.run_notebook(
                name, profile, out, notebooks_dir=nb_dir, params_dir=p_dir, echo=False, **kw
            )

    return Project()


# ----------------------------------------------------------------------------- parameters


def test_layering_order_profile_then_default_then_profile_section(project):
    make_notebook(project.notebooks, "01_alpha", "pass")
    write_yaml(
        project.params / "01_alpha.yaml",
        {
            "default": {"num_steps": 5, "lr": 0.5, "model": "model-from-nb-default"},
            "smoke": {"num_steps": 2},
        },
    )

    smoke = project.resolve("01", "smoke", extra_params={"lr": 0.25})
    assert smoke.values == {
        "profile": "smoke",
        "model": "model-from-nb-default",
        "device": "cpu",
        "interactive": False,
        "num_steps": 2,
        "lr": 0.25,
        "output_dir": str(project.outputs),
    }
    assert smoke.sources["device"].endswith("profile_smoke.yaml")
    assert smoke.sources["model"].endswith("01_alpha.yaml [default]")
    assert smoke.sources["num_steps"].endswith("01_alpha.yaml [smoke]")
    assert smoke.sources["lr"] == "extra_params"

    default = project.resolve("01_alpha", "default")
    assert default.values["num_steps"] == 5 and default.values["lr"] == 0.5
    assert default.values["profile"] == "default"
    paper = project.resolve("01", "paper")
    assert paper.values["device"] == "cuda" and paper.values["num_steps"] == 5


def test_unknown_key_names_key_notebook_file_and_closest_name(project):
    make_notebook(project.notebooks, "02_beta", "pass")
    write_yaml(
        project.params / "02_beta.yaml", {"default": {"num_steps": 3}, "smoke": {"num_step": 1}}
    )
    project.resolve("02", "default")  # the typo only lives in the smoke section
    with pytest.raises(ParameterError) as err:
        project.resolve("02", "smoke")
    message = str(err.value)
    assert "'num_step'" in message and "02_beta.ipynb" in message
    assert "02_beta.yaml [smoke]" in message
    assert "did you mean 'num_steps'?" in message


def test_unknown_section_and_wrong_type_are_errors(project):
    make_notebook(project.notebooks, "03_gamma", "pass")
    write_yaml(project.params / "03_gamma.yaml", {"default": {}, "smok": {"num_steps": 1}})
    with pytest.raises(ParameterError, match=r"unknown section 'smok'.*did you mean 'smoke'"):
        project.resolve("03", "smoke")
    (project.params / "03_gamma.yaml").write_text("default:\n  lr: 1e-2\n")  # a str to PyYAML
    with pytest.raises(ParameterError, match=r"'lr' of 03_gamma.ipynb is declared float.*1\.0e-2"):
        project.resolve("03", "default")


RANGE_CELL = (
    PARAMS_CELL
    + """
num_tokens: int = 16  # target length N
num_texts: int = 2  # texts
max_steps: int = 100  # optimisation budget
batch_size: int = 8  # rows per forward pass
recipes: list[str] = ["paper"]  # recipes compared"""
)


@pytest.mark.parametrize(
    "key, value, must",
    [
        ("max_steps", -5, "at least 0"),
        ("num_tokens", 0, "at least 1"),
        ("num_texts", -1, "at least 1"),
        ("batch_size", 0, "at least 1"),
        ("lr", float("nan"), "finite number above 0"),
        ("recipes", [], "empty list"),
    ],
)
def test_impossible_values_fail_before_running(project, key, value, must):
    make_notebook(project.notebooks, "10_kappa", "pass", params=RANGE_CELL)
    write_yaml(project.params / "10_kappa.yaml", {"default": {}, "smoke": {key: value}})
    assert project.resolve("10", "default").values  # the same file is fine under default
    with pytest.raises(ParameterError) as err:
        project.resolve("10", "smoke")
    message = str(err.value)
    assert "params/10_kappa.yaml [smoke]" in message.replace("\\", "/")
    assert f"parameter {key!r} of 10_kappa.ipynb" in message and must in message


def test_a_list_whose_default_is_empty_may_stay_empty(project):
    """An optional extra sweep (default ``[]``, like 03's ``other_models``) may be empty in a
    params file; a list with a non-empty default may not."""
    cell = RANGE_CELL + "\nextra_models: list[str] = []  # further models, none by default"
    make_notebook(project.notebooks, "10_kappa", "pass", params=cell)
    write_yaml(project.params / "10_kappa.yaml", {"default": {"extra_models": []}, "smoke": {}})
    assert project.resolve("10", "default").values["extra_models"] == []
    write_yaml(project.params / "10_kappa.yaml", {"default": {"recipes": []}, "smoke": {}})
    with pytest.raises(ParameterError, match="'recipes' of 10_kappa.ipynb is an empty list"):
        project.resolve("10", "default")


def test_an_optional_sweep_may_be_switched_off_with_an_empty_list(project):
    """03's grid-vs-progressive comparison (``compare_sources``, default ``["pg19"]``) may be
    ``[]`` in a profile that spends its time elsewhere (cpu_paper)."""
    cell = RANGE_CELL + '\ncompare_sources: list[str] = ["pg19"]  # comparison sweep'
    make_notebook(project.notebooks, "10_kappa", "pass", params=cell)
    write_yaml(project.params / "10_kappa.yaml", {"default": {"compare_sources": []}})
    assert project.resolve("10", "default").values["compare_sources"] == []


def test_check_cli_rejects_a_negative_max_steps_naming_file_key_notebook(project, capsys):
    make_notebook(project.notebooks, "10_kappa", "pass", params=RANGE_CELL)
    write_yaml(project.params / "10_kappa.yaml", {"default": {"max_steps": -1}})
    argv = ["--check", "--notebooks-dir", str(project.notebooks), "--params-dir"]
    argv += [str(project.params), "--output-dir", str(project.outputs)]
    assert runner.main(argv) == 2
    err = capsys.readouterr().err
    assert "10_kappa.yaml [default]: parameter 'max_steps' of 10_kappa.ipynb is -1" in err
    # a notebook whose own default is impossible is caught too
    make_notebook(project.notebooks, "11_lambda", "pass", params=RANGE_CELL.replace("= 16", "= 0"))
    with pytest.raises(ParameterError, match=r"11_lambda.ipynb \(parameters cell\).*'num_tokens'"):
        project.resolve("11", "default")


def test_missing_shared_key_names_notebook_and_key(project):
    no_model = "\n".join(ln for ln in PARAMS_CELL.splitlines() if not ln.startswith("model"))
    make_notebook(project.notebooks, "04_delta", "pass", params=no_model)
    with pytest.raises(ParameterError, match=r"04_delta.ipynb lacks the shared parameter 'model'"):
        project.resolve("04", "smoke")
    no_out = "\n".join(ln for ln in PARAMS_CELL.splitlines() if not ln.startswith("output_dir"))
    make_notebook(project.notebooks, "05_eps", "pass", params=no_out)
    with pytest.raises(
        ParameterError, match=r"05_eps.ipynb lacks the shared parameter 'output_dir'"
    ):
        project.resolve("05", "smoke")


def test_profile_only_keys_go_to_notebooks_that_declare_them(project):
    profile = yaml.safe_load((project.params / "profile_smoke.yaml").read_text())
    write_yaml(project.params / "profile_smoke.yaml", {**profile, "dtype": "float32"})
    make_notebook(project.notebooks, "06_zeta", "pass")
    make_notebook(
        project.notebooks,
        "07_eta",
        "pass",
        params=PARAMS_CELL + '\ndtype: str = "bfloat16"  # compute dtype',
    )
    assert "dtype" not in project.resolve("06", "smoke").values
    assert project.resolve("07", "smoke").values["dtype"] == "float32"


def test_parameters_cell_problems_are_reported(project):
    # papermill drops a line with a second '=' silently: the runner must not.
    make_notebook(
        project.notebooks,
        "08_theta",
        "pass",
        params=PARAMS_CELL + '\nmode: str = "a"  # one of a=b or c',
    )
    with pytest.raises(ParameterError, match=r"papermill cannot read parameter\(s\) mode"):
        project.resolve("08", "smoke")
    path = make_notebook(project.notebooks, "09_iota", "pass")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell("x: int = 1  # x", metadata={"tags": ["parameters"]}))
    nbformat.write(nb, path)
    with pytest.raises(ParameterError, match=r"2 cells tagged 'parameters'"):
        project.resolve("09", "smoke")


def test_unknown_profile_and_notebook_lookup(project):
    make_notebook(project.notebooks, "01_alpha", "pass")
    make_notebook(project.notebooks, "01_alps", "pass")
    with pytest.raises(ParameterError, match=r"unknown profile 'fast'"):
        project.resolve("01_alpha", "fast")
    with pytest.raises(runner.RunnerError, match="matches several notebooks"):
        runner.find_notebook("01", project.notebooks)
    with pytest.raises(runner.RunnerError, match="no notebook matches '42'"):
        runner.find_notebook("42", project.notebooks)
    assert runner.find_notebook("01_alps", project.notebooks).name == "01_alps.ipynb"


def test_kernel_mismatch_stops_before_running(project, monkeypatch):
    make_notebook(project.notebooks, "01_alpha", "pass")
    bad = envcheck.Check("kernel python3", "x", "/other/python", False, "starts /other/python")
    monkeypatch.setattr(runner, "kernel_check", lambda name: bad)
    with pytest.raises(runner.KernelMismatch, match="/other/python"):
        project.run("01")
    assert not (project.outputs / "notebooks" / "01_alpha.ipynb").exists()


def test_kernel_check_detects_a_foreign_python3_spec(tmp_path, monkeypatch):
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(tmp_path / "elsewhere" / "python"),
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Python 3",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    check = envcheck.kernel_check("python3")
    assert not check.ok and "make kernel" in check.message
    monkeypatch.delenv("JUPYTER_PATH")
    assert envcheck.kernel_check("python3").ok  # the venv's own spec


# ----------------------------------------------------------------------------- papermill runs


def test_successful_run_writes_notebook_params_manifest_and_skips_tagged_cell(project):
    marker = project.notebooks / "SKIPPED_CELL_RAN"
    make_notebook(
        project.notebooks,
        "01_alpha",
        "if interactive:\n    raise RuntimeError('interactive must be false in batch runs')",
        WRITE_METRICS.format(name="01_alpha"),
        skip=f"open({marker.name!r}, 'w').write('ran')\nraise SystemExit('should be skipped')",
    )
    write_yaml(
        project.params / "01_alpha.yaml", {"default": {"num_steps": 5}, "smoke": {"num_steps": 2}}
    )
    record = project.run("01")

    assert record.ok and record.status == "ok" and record.returncode == 0
    executed = project.outputs / "notebooks" / "01_alpha.ipynb"
    assert Path(record.output_notebook) == executed and executed.exists()
    # skip-execution: papermill (via nbclient) never ran the cell, even with --cwd notebooks.
    assert not marker.exists()
    nb = nbformat.read(executed, as_version=4)
    skipped = [c for c in nb.cells if "skip-execution" in c.metadata.get("tags", [])]
    assert len(skipped) == 1 and skipped[0].outputs == [] and skipped[0].execution_count is None
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)

    metrics = json.loads((project.outputs / "metrics" / "01_alpha.json").read_text())
    assert metrics == {"num_steps": 2, "lr": 0.1, "model": "model-smoke", "device": "cpu"}
    resolved = yaml.safe_load((project.outputs / "notebooks" / "01_alpha.params.yaml").read_text())
    assert resolved["num_steps"] == 2 and resolved["output_dir"] == str(project.outputs)

    manifest = json.loads((project.outputs / "metrics" / "01_alpha.manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["profile"] == "smoke"
    assert manifest["parameters"] == resolved
    assert set(manifest["git"]) >= {"commit", "dirty"}
    assert manifest["git"]["commit"] is None or re.fullmatch(
        r"[0-9a-f]{40}", manifest["git"]["commit"]
    )
    assert manifest["packages"]["papermill"] and manifest["packages"]["prototokens"]
    assert (
        manifest["device"]["device"] == "cpu" and manifest["device"]["source"] == "notebook metrics"
    )
    assert manifest["wall_time_s"] > 0 and manifest["python"]["executable"] == sys.executable


def test_cell_error_names_the_cell_and_the_exception(project):
    make_notebook(project.notebooks, "02_beta", "x = 1", "raise ValueError('boom')", "y = 2")
    with pytest.raises(NotebookFailed) as err:
        project.run("02")
    message = str(err.value)
    assert "02_beta" in message and "cell 4" in message
    assert "raise ValueError('boom')" in message and "ValueError: boom" in message
    assert err.value.record.status == "failed"
    manifest = json.loads((project.outputs / "metrics" / "02_beta.manifest.json").read_text())
    assert manifest["status"] == "failed" and "ValueError: boom" in manifest["message"]
    assert (project.outputs / "notebooks" / "02_beta.ipynb").exists()


def test_dead_kernel_is_reported_with_notebook_and_cell(project):
    make_notebook(project.notebooks, "03_gamma", "x = 1", "import os\nos._exit(1)", "y = 2")
    with pytest.raises(NotebookFailed) as err:
        project.run("03")
    message = str(err.value)
    assert "kernel died (papermill exit 138, e.g. out of memory)" in message
    assert "notebook 03_gamma at cell 4: `import os`" in message
    assert err.value.record.status == "kernel_died" and err.value.record.returncode == 138


def test_whole_notebook_timeout_stops_the_run_and_names_the_cell(project):
    make_notebook(project.notebooks, "04_delta", "x = 1", "import time\ntime.sleep(120)")
    t0 = time.monotonic()
    with pytest.raises(NotebookFailed) as err:
        project.run("04", notebook_timeout=45)  # time for a loaded machine to start the kernel
    assert time.monotonic() - t0 < 120
    message = str(err.value)
    assert (
        "04_delta timed out after 45 s (whole-notebook timeout) in cell 4: `import time`" in message
    )
    assert err.value.record.status == "timeout"


def test_per_cell_timeout_is_reported(project):
    make_notebook(project.notebooks, "05_eps", "import time\ntime.sleep(120)")
    with pytest.raises(NotebookFailed) as err:
        project.run("05", cell_timeout=2)
    assert "cell 3: `import time` timed out after 2 s (per-cell timeout)" in str(err.value)
    assert err.value.record.status == "cell_timeout"


def test_cli_runs_all_in_order_and_builds_the_report(project):
    for name in ("02_second", "01_first"):
        make_notebook(project.notebooks, name, WRITE_METRICS.format(name=name))
    base = [
        sys.executable,
        "-m",
        "prototokens.harness.runner",
        "--profile",
        "smoke",
        "--quiet",
        "--notebooks-dir",
        str(project.notebooks),
        "--params-dir",
        str(project.params),
        "--output-dir",
        str(project.outputs),
    ]
    # A typo fails fast, before any notebook runs, with exit code 2.
    write_yaml(project.params / "02_second.yaml", {"default": {"lr": 0.2, "num_stepz": 1}})
    bad = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "'num_stepz'" in bad.stderr
    assert not (project.outputs / "notebooks" / "01_first.ipynb").exists()

    write_yaml(project.params / "02_second.yaml", {"default": {"lr": 0.2}})
    done = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.index("=== 01_first") < done.stdout.index("=== 02_second")
    assert json.loads((project.outputs / "metrics" / "02_second.json").read_text())["lr"] == 0.2
    index = (project.outputs / "report" / "index.html").read_text()
    for stem in ("01_first", "02_second"):
        assert f'href="notebooks/{stem}.html"' in index
        assert (project.outputs / "report" / "notebooks" / f"{stem}.html").exists()
    assert "model-smoke" in index and "smoke" in index


# ----------------------------------------------------------------------------- envcheck


def test_environment_checks_cover_the_pinned_requirements():
    checks = {c.name: c for c in envcheck.check_environment()}
    assert {"python", "torch", "papermill", "nbconvert"} <= set(checks)
    assert checks["python"].ok and checks["papermill"].ok
    text = envcheck.format_checks(
        [checks["papermill"], envcheck.Check("x", "==1.2", None, False, "missing (need ==1.2)")]
    )
    assert text.splitlines()[0].startswith("[OK] papermill ")
    assert text.splitlines()[1] == "[FAIL] x: missing (need ==1.2)"
