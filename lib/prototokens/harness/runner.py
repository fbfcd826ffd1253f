"""Run the notebooks in batch: layered parameter files, papermill, timeouts, run manifests.

``make reproduce`` calls :func:`run_all` through the CLI (``python -m prototokens.harness.runner``). Each
notebook ``notebooks/NN_name.ipynb`` runs in a fresh ``python3`` kernel of this venv, with
``--cwd notebooks`` so a batch run sees the same working directory as JupyterLab.

Parameters are layered, later wins, flat keys:

1. ``params/profile_<profile>.yaml``: keys shared by every notebook under that profile
   (``model``, ``device``, ``profile``, ``interactive``...). Keys in :data:`SHARED_NAMES` must be
   declared by every notebook; other keys are passed only to notebooks that declare them.
2. ``params/NN_name.yaml`` section ``default:``, then its section named after the profile
   (``smoke:`` or ``paper:``), if any.
3. ``output_dir``, injected by the runner (absolute), and ``extra_params`` from the caller.

Every resolved key is checked against the notebook's ``parameters`` cell before anything runs:
papermill itself only warns about an unknown name, so a typo would silently run the defaults.

papermill runs in a subprocess, so a whole-notebook timeout can kill it and a dead kernel
(papermill's exit code 138, typically out of memory) is seen as such. The partially saved output
notebook tells which cell was running. Each run leaves in the outputs tree:

- ``notebooks/NN_name.ipynb`` (executed), ``NN_name.params.yaml`` (resolved), ``NN_name.log``;
- ``metrics/NN_name.manifest.json``: parameters, git commit, package versions, device, wall time,
  status; next to the notebook's own ``metrics/NN_name.json``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import difflib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from prototokens.harness.artifacts import metrics_dir
from prototokens.harness.envcheck import device_report, kernel_check, package_versions
from prototokens.io import write_json, write_text
from prototokens.paths import output_dir as _output_dir
from prototokens.paths import repo_root

SHARED_NAMES = ("model", "seed", "device", "profile", "interactive", "output_dir")
PROFILES = ("default", "smoke", "paper", "gpu")
KERNEL = "python3"
NOTEBOOK_FILE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
# (per-cell, whole-notebook) timeouts in seconds; CLI flags and
# PROTOTOKENS_CELL_TIMEOUT / PROTOTOKENS_NOTEBOOK_TIMEOUT override them.
TIMEOUTS = {
    "default": (1800, 3600),
    "smoke": (600, 1200),
    "paper": (6 * 3600, 48 * 3600),
    # one H200 device call lasts at most 10 minutes for the whole series (ci/gpu_run.sh passes
    # a tighter --notebook-timeout from its remaining budget)
    "gpu": (300, 420),
}
START_TIMEOUT = 120  # seconds to wait for the kernel (slow CUDA init on GPU hosts)
DEAD_KERNEL_EXIT = 138  # papermill's exit code for nbclient's DeadKernelError
_STOP_GRACE_S = 15  # after SIGINT, how long papermill gets to save the notebook and stop the kernel


class RunnerError(RuntimeError):
    """Base class: the runner could not run, or a notebook did not finish."""


class ParameterError(RunnerError):
    """A parameter file or key does not match the notebook's ``parameters`` cell."""


class KernelMismatch(RunnerError):
    """The ``python3`` kernel would start another interpreter than this venv's."""


@dataclass
class RunRecord:
    """What one notebook run did; the same content is written as the run manifest."""

    notebook: str
    profile: str
    status: str  # ok | failed | cell_timeout | timeout | kernel_died
    parameters: dict
    input_path: str
    output_notebook: str
    params_file: str
    manifest: str
    log_file: str
    metrics: str | None = None
    wall_time_s: float = 0.0
    returncode: int | None = None
    message: str = ""
    device: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class NotebookFailed(RunnerError):
    """A notebook did not finish; ``record`` (a :class:`RunRecord`) says how and where."""

    def __init__(self, message: str, record: RunRecord | None = None):
        super().__init__(message)
        self.record = record


@dataclass
class ResolvedParameters:
    """Final parameters of one notebook run, with the file (and section) each value came from."""

    notebook: Path
    profile: str
    values: dict
    sources: dict


# --------------------------------------------------------------------------- locations


def notebook_folder(override: str | os.PathLike | None = None) -> Path:
    """Where the notebooks are: ``override``, ``$PROTOTOKENS_NOTEBOOKS_DIR`` or ``<repo>/notebooks``."""
    raw = override or os.environ.get("PROTOTOKENS_NOTEBOOKS_DIR")
    return Path(raw).expanduser().resolve() if raw else repo_root() / "notebooks"


def params_folder(override: str | os.PathLike | None = None) -> Path:
    """Where the parameter files are: ``override``, ``$PROTOTOKENS_PARAMS_DIR`` or ``<repo>/params``."""
    raw = override or os.environ.get("PROTOTOKENS_PARAMS_DIR")
    return Path(raw).expanduser().resolve() if raw else repo_root() / "params"


def list_notebooks(nb_dir: str | os.PathLike | None = None) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks in run order."""
    folder = notebook_folder(nb_dir)
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_FILE.match(p.name))


def find_notebook(name_or_path: str | os.PathLike, nb_dir: str | os.PathLike | None = None) -> Path:
    """A notebook by path, by stem (``03_metrics``) or by prefix (``03``)."""
    path = Path(name_or_path)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    key = str(name_or_path).removesuffix(".ipynb")
    candidates = list_notebooks(nb_dir)
    exact = [p for p in candidates if p.stem == key]
    matches = exact or [p for p in candidates if p.stem.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.stem for p in candidates) or "none"
    if not matches:
        raise RunnerError(
            f"no notebook matches {str(name_or_path)!r} in {notebook_folder(nb_dir)} "
            f"(known: {known})"
        )
    raise RunnerError(
        f"{str(name_or_path)!r} matches several notebooks: " + ", ".join(p.stem for p in matches)
    )


def _show(path: Path) -> str:
    """A path as written in messages: relative to the repo when inside it."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except (ValueError, RuntimeError):
        return str(path)


# --------------------------------------------------------------------------- parameters


def parameters_cells(notebook: str | os.PathLike) -> list[int]:
    """Indices of the cells tagged ``parameters`` (a well-formed notebook has exactly one)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return [
        i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])
    ]


def declared_parameters(notebook: str | os.PathLike) -> dict[str, dict]:
    """The notebook's ``parameters`` cell as papermill reads it:
    ``{name: {name, inferred_type_name, default, help}}``. Raises if the cell is missing or doubled."""
    import papermill

    cells = parameters_cells(notebook)
    if len(cells) != 1:
        raise ParameterError(
            f"{_show(Path(notebook))} has {len(cells)} cells tagged 'parameters'; "
            "it needs exactly one"
        )
    declared = papermill.inspect_notebook(str(notebook))
    # papermill silently drops a line with a second '=' (even inside the comment or a string):
    # such a parameter could never be overridden, so say so instead.
    lost = [n for n in assigned_names(notebook) if n not in declared]
    if lost:
        raise ParameterError(
            f"{_show(Path(notebook))}: papermill cannot read parameter(s) {', '.join(lost)} in the "
            "parameters cell; write each as one line `name: type = value  # help` with a single "
            "'=' (none in the value or the comment)"
        )
    return declared


def assigned_names(notebook: str | os.PathLike) -> list[str]:
    """Names assigned in the ``parameters`` cell, read with :mod:`ast` (not papermill's regex)."""
    import ast

    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    names = []
    for cell in nb.cells:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            raise ParameterError(
                f"{_show(Path(notebook))}: parameters cell is not valid Python: {exc}"
            ) from exc
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.append(node.target.id)
            elif isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def load_params_file(path: str | os.PathLike) -> dict:
    """A YAML mapping (an empty file is ``{}``); anything else is a :class:`ParameterError`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParameterError(f"{_show(path)} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{_show(path)} must hold a mapping, not {type(data).__name__}")
    return data


def known_profiles(p_dir: str | os.PathLike | None = None) -> list[str]:
    """Profiles with a ``params/profile_<name>.yaml`` file (plus the three standard names)."""
    found = {p.stem.removeprefix("profile_") for p in params_folder(p_dir).glob("profile_*.yaml")}
    return sorted(found | set(PROFILES))


def _close_name(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_YAML_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _type_ok(value: Any, expected: tuple) -> bool:
    if isinstance(value, bool) and bool not in expected:
        return False  # PyYAML reads `no` as False: not an int
    return isinstance(value, expected)


def _check_type(key: str, value: Any, declared: dict, source: str, nb_name: str) -> None:
    """Catch YAML surprises before a run: ``1e-2`` is a string to PyYAML, ``no`` is a bool.

    Scalars (``int``, ``float``, ``str``, ``bool``) and lists of them (``list[str]``) are checked;
    other annotations are passed through unchecked.
    """
    type_name = str(declared.get("inferred_type_name", "")).replace(" ", "")
    if value is None:
        return
    if type_name.startswith("list[") and type_name.endswith("]"):
        inner = _YAML_TYPES.get(type_name[5:-1])
        if not isinstance(value, list):
            raise ParameterError(
                f"{source}: parameter {key!r} of {nb_name} is declared {type_name} "
                f"but the value is {value!r} ({type(value).__name__}); write a YAML "
                "list, e.g. [a, b]"
            )
        bad = [v for v in value if inner is not None and not _type_ok(v, inner)]
        if bad:
            raise ParameterError(
                f"{source}: parameter {key!r} of {nb_name} is declared {type_name} "
                f"but holds {bad[0]!r} ({type(bad[0]).__name__})"
            )
        return
    expected = _YAML_TYPES.get(type_name)
    if expected is None:
        return
    if not _type_ok(value, expected):
        hint = " (PyYAML reads 1e-2 as a string: write 1.0e-2)" if isinstance(value, str) else ""
        raise ParameterError(
            f"{source}: parameter {key!r} of {nb_name} is declared "
            f"{declared['inferred_type_name']} but the value is {value!r} "
            f"({type(value).__name__}){hint}"
        )


def resolve_parameters(
    notebook: str | os.PathLike,
    profile: str = "default",
    *,
    params_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    extra_params: Mapping[str, Any] | None = None,
    notebooks_dir: str | os.PathLike | None = None,
) -> ResolvedParameters:
    """Layer profile file → ``NN.default`` → ``NN[profile]`` → ``output_dir`` → ``extra_params``
    and check every key against the notebook's ``parameters`` cell.

    Raises :class:`ParameterError` naming the key, the notebook, the file it came from and the
    closest declared name; or naming a shared key (:data:`SHARED_NAMES`) the notebook lacks.
    """
    nb_path = find_notebook(notebook, notebooks_dir)
    nb_name = nb_path.name
    p_dir = params_folder(params_dir)
    declared = declared_parameters(nb_path)

    profile_file = p_dir / f"profile_{profile}.yaml"
    if not profile_file.exists():
        raise ParameterError(
            f"unknown profile {profile!r}: {_show(profile_file)} does not exist "
            f"(known: {', '.join(known_profiles(p_dir))})"
        )
    shared = load_params_file(profile_file)
    if shared.get("profile", profile) != profile:
        raise ParameterError(
            f"{_show(profile_file)} sets profile: {shared['profile']!r}, expected {profile!r}"
        )

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in shared.items():
        if isinstance(value, (dict, list)) and key in SHARED_NAMES:
            raise ParameterError(f"{_show(profile_file)}: shared key {key!r} must be a scalar")
        if key in declared:
            values[key], sources[key] = value, _show(profile_file)
        elif key in SHARED_NAMES:
            raise ParameterError(
                f"notebook {nb_name} lacks the shared parameter {key!r} (set by "
                f"{_show(profile_file)}); add `{key}: <type> = <value>  # <help>` to its "
                "parameters cell"
            )

    nb_file = p_dir / f"{nb_path.stem}.yaml"
    layered: list[tuple[str, dict]] = []
    if nb_file.exists():
        sections = load_params_file(nb_file)
        allowed = {"default", *known_profiles(p_dir)}
        for section, body in sections.items():
            if section not in allowed:
                profiles = ", ".join(sorted(allowed - {"default"}))
                raise ParameterError(
                    f"{_show(nb_file)}: unknown section {section!r}"
                    f"{_close_name(str(section), allowed)}; expected 'default:' and optional "
                    f"profile sections ({profiles})"
                )
            if body is not None and not isinstance(body, dict):
                raise ParameterError(f"{_show(nb_file)}: section {section!r} must be a mapping")
        layered.append((f"{_show(nb_file)} [default]", sections.get("default") or {}))
        if profile != "default":
            layered.append((f"{_show(nb_file)} [{profile}]", sections.get(profile) or {}))
    layered.append(("runner (output_dir)", {"output_dir": str(_output_dir(output_dir))}))
    if extra_params:
        layered.append(("extra_params", dict(extra_params)))

    for source, mapping in layered:
        unknown = [k for k in mapping if k not in declared]
        if unknown:
            if unknown == ["output_dir"] and source.startswith("runner"):
                raise ParameterError(
                    f"notebook {nb_name} lacks the shared parameter 'output_dir' (injected by the "
                    'runner); add `output_dir: str = ""  # outputs tree; empty = <repo>/outputs` '
                    "to its parameters cell"
                )
            lines = [
                f"{source}: unknown parameter {k!r} for notebook {nb_name}"
                f"{_close_name(str(k), declared)}"
                for k in unknown
            ]
            raise ParameterError(
                "\n".join(lines) + f"\n  {nb_name} declares: " + ", ".join(sorted(declared))
            )
        for key, value in mapping.items():
            values[key], sources[key] = value, source

    for key, value in values.items():
        _check_type(key, value, declared[key], sources[key], nb_name)
    return ResolvedParameters(nb_path, profile, values, sources)


# --------------------------------------------------------------------------- run records


def git_info(root: str | os.PathLike | None = None) -> dict:
    """``{commit, dirty, note}`` of the checkout; ``commit`` is None outside git or before a commit."""
    try:
        root = Path(root) if root else repo_root()
    except RuntimeError:
        return {"commit": None, "dirty": None, "note": "not installed from a checkout"}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
        )

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "note": "git is not available"}
    if inside.returncode != 0:
        return {"commit": None, "dirty": None, "note": "not a git repository"}
    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {
        "commit": head.stdout.strip() if head.returncode == 0 else None,
        "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None,
        "note": "" if head.returncode == 0 else "no commits yet",
    }


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return "<empty cell>"


def locate_cell(executed: str | os.PathLike) -> dict | None:
    """Which cell a (partially) executed notebook stopped in, from papermill's cell metadata.

    Returns ``{number, first_line, error}``: ``number`` counts the cells of the source notebook
    from 1 (papermill's injected-parameters and error-banner cells excluded); ``error`` is
    ``"Name: value"`` from the cell's error output, if any. None if nothing can be read.
    """
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 - a notebook killed mid-save is unreadable; say "unknown"
        return None
    started = []
    number = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "papermill-error-cell-tag" in tags:
            continue
        injected = "injected-parameters" in tags
        if not injected:
            number += 1
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("start_time"):
            error = next(
                (
                    f"{o.get('ename')}: {o.get('evalue')}"
                    for o in cell.get("outputs", [])
                    if o.get("output_type") == "error"
                ),
                None,
            )
            started.append(
                {
                    "number": "injected parameters" if injected else number,
                    "first_line": _first_line(cell.get("source", "")),
                    "status": meta.get("status"),
                    "error": error,
                }
            )
    if not started:
        return None
    failed = [c for c in started if c["status"] == "failed"]
    return failed[-1] if failed else started[-1]


def _where(cell: dict | None) -> str:
    if cell is None:
        return "an unknown cell (the output notebook could not be read)"
    return f"cell {cell['number']}: `{cell['first_line']}`"


def _device_of_run(metrics_file: Path) -> dict:
    """The device the notebook says it used (its metrics JSON), else what torch sees here."""
    if metrics_file.exists():
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metrics = {}
        if isinstance(metrics, dict) and isinstance(metrics.get("device"), str):
            return {
                "device": metrics["device"],
                "gpu_name": metrics.get("gpu_name"),
                "source": "notebook metrics",
            }
    try:
        report = device_report()
    except ImportError:
        return {"device": "unknown", "source": "torch not importable"}
    return {**report, "source": "runner (torch)"}


def _resolve_timeouts(
    profile: str, cell_timeout: float | None, notebook_timeout: float | None
) -> tuple[float, float]:
    cell_default, nb_default = TIMEOUTS.get(profile, TIMEOUTS["default"])
    cell = cell_timeout or os.environ.get("PROTOTOKENS_CELL_TIMEOUT") or cell_default
    whole = notebook_timeout or os.environ.get("PROTOTOKENS_NOTEBOOK_TIMEOUT") or nb_default
    return float(cell), float(whole)


# --------------------------------------------------------------------------- execution


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (Linux ``/proc``): the kernel runs in its own session, so killing
    papermill's process group does not reach it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _stop(proc: subprocess.Popen) -> None:
    """Stop papermill after a whole-notebook timeout: SIGINT first (it then saves the notebook and
    shuts the kernel down), SIGKILL for whatever is left."""
    tree = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    _signal_all(tree, signal.SIGKILL)


def _pump(stream, log_path: Path, tail: collections.deque, echo: bool) -> None:
    with open(log_path, "w", encoding="utf-8") as log:
        for line in stream:
            log.write(line)
            log.flush()
            tail.append(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()


def run_notebook(
    name_or_path: str | os.PathLike,
    profile: str = "default",
    output_dir: str | os.PathLike | None = None,
    *,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    extra_params: Mapping[str, Any] | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    params_dir: str | os.PathLike | None = None,
    echo: bool = True,
) -> RunRecord:
    """Run one notebook through papermill and write its run manifest.

    ``name_or_path``: a path, a stem (``03_metrics``) or a prefix (``03``) under ``notebooks_dir``.
    Timeouts default per profile (:data:`TIMEOUTS`). ``echo`` streams the cell output here.
    Raises :class:`ParameterError` / :class:`KernelMismatch` before running, and
    :class:`NotebookFailed` (message names the notebook and cell) if the run does not finish;
    the manifest is written in every case.
    """
    resolved = resolve_parameters(
        name_or_path,
        profile,
        params_dir=params_dir,
        output_dir=output_dir,
        extra_params=extra_params,
        notebooks_dir=notebooks_dir,
    )
    check = kernel_check(KERNEL)
    if not check.ok:
        raise KernelMismatch(check.message)
    cell_s, whole_s = _resolve_timeouts(profile, cell_timeout, notebook_timeout)

    out = _output_dir(output_dir)
    name = resolved.notebook.stem
    nb_out = out / "notebooks"
    nb_out.mkdir(parents=True, exist_ok=True)
    executed = nb_out / f"{name}.ipynb"
    params_file = nb_out / f"{name}.params.yaml"
    log_file = nb_out / f"{name}.log"
    manifest = metrics_dir(out) / f"{name}.manifest.json"
    metrics_file = metrics_dir(out) / f"{name}.json"
    metrics_file.unlink(missing_ok=True)  # a failed run must not be credited with old metrics

    header = "".join(f"# {k}: {v}\n" for k, v in resolved.sources.items())
    write_text(
        params_file,
        f"# Resolved parameters of {name} (profile {profile}); sources:\n"
        + header
        + yaml.safe_dump(resolved.values, sort_keys=False),
    )

    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(resolved.notebook),
        str(executed),
        "-f",
        str(params_file),
        "-k",
        KERNEL,
        "--cwd",
        str(resolved.notebook.parent),
        "--execution-timeout",
        str(int(cell_s)),
        "--start-timeout",
        str(START_TIMEOUT),
        "--log-output",
        "--no-progress-bar",
    ]
    env = {**os.environ, "PROTOTOKENS_OUTPUT_DIR": str(out), "PYTHONUNBUFFERED": "1"}
    env.setdefault("TQDM_MININTERVAL", "5")

    started_at = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.monotonic()
    tail: collections.deque = collections.deque(maxlen=80)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
    )
    pump = threading.Thread(target=_pump, args=(proc.stdout, log_file, tail, echo), daemon=True)
    pump.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=whole_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop(proc)
        rc = proc.returncode
    except BaseException:  # Ctrl-C in the runner: take papermill and the kernel down with it
        _stop(proc)
        raise
    finally:
        pump.join(timeout=30)
    wall = time.monotonic() - t0
    log_tail = "".join(tail)

    where = _where(locate_cell(executed)) if (timed_out or rc != 0) else ""
    if timed_out:
        status = "timeout"
        message = f"{name} timed out after {whole_s:g} s (whole-notebook timeout) in {where}"
    elif rc == 0:
        status, message = "ok", ""
    elif rc == DEAD_KERNEL_EXIT:
        status = "kernel_died"
        message = (
            f"kernel died (papermill exit {DEAD_KERNEL_EXIT}, e.g. out of memory) in "
            f"notebook {name} at {where}"
        )
    elif "CellTimeoutError" in log_tail or "Cell execution timed out" in log_tail:
        status = "cell_timeout"
        message = f"{name}: {where} timed out after {cell_s:g} s (per-cell timeout)"
    else:
        status = "failed"
        cell = locate_cell(executed)
        error = f" raised {cell['error']}" if cell and cell.get("error") else " failed"
        message = f"{name}: {where}{error} (papermill exit {rc})"
        if cell is None or not cell.get("error"):
            message += "\n" + "\n".join(log_tail.splitlines()[-15:])
    if status != "ok":
        message += f"\n  executed notebook: {executed}\n  log: {log_file}"

    record = RunRecord(
        notebook=name,
        profile=profile,
        status=status,
        parameters=resolved.values,
        input_path=_show(resolved.notebook),
        output_notebook=str(executed),
        params_file=str(params_file),
        manifest=str(manifest),
        log_file=str(log_file),
        metrics=str(metrics_file) if metrics_file.exists() else None,
        wall_time_s=round(wall, 3),
        returncode=rc,
        message=message,
        device=_device_of_run(metrics_file),
    )
    write_json(
        manifest,
        {
            **asdict(record),
            "parameter_sources": resolved.sources,
            "timeouts_s": {"cell": cell_s, "notebook": whole_s},
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git": git_info(),
            "packages": package_versions(),
            "python": {"version": platform.python_version(), "executable": sys.executable},
            "platform": platform.platform(),
            "command": cmd,
        },
    )
    if status != "ok":
        raise NotebookFailed(message, record)
    return record


def run_all(
    profile: str = "default",
    notebooks: Iterable[str] | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    params_dir: str | os.PathLike | None = None,
    report: bool = True,
    keep_going: bool = False,
    echo: bool = True,
) -> list[RunRecord]:
    """Run the selected notebooks (prefixes such as ``["03"]``; default all) in order.

    Every selected notebook's parameters are checked before the first one runs, so a typo in
    ``params/07_*.yaml`` fails in seconds, not after an hour. Stops at the first failure unless
    ``keep_going``; builds the HTML report at the end (also after a failure) unless ``report`` is
    False; then raises :class:`NotebookFailed` if any notebook failed. Progress lines are always
    printed; ``echo`` also streams each notebook's cell output.
    """
    if notebooks:
        paths = sorted({find_notebook(n, notebooks_dir) for n in notebooks})
    else:
        paths = list_notebooks(notebooks_dir)
        if not paths:
            raise RunnerError(f"no NN_name.ipynb notebooks in {notebook_folder(notebooks_dir)}")
    for path in paths:
        resolve_parameters(path, profile, params_dir=params_dir, output_dir=output_dir)

    records: list[RunRecord] = []
    failures: list[NotebookFailed] = []
    try:
        for path in paths:
            print(f"=== {path.stem} (profile {profile})", flush=True)
            try:
                record = run_notebook(
                    path,
                    profile,
                    output_dir,
                    cell_timeout=cell_timeout,
                    notebook_timeout=notebook_timeout,
                    params_dir=params_dir,
                    echo=echo,
                )
                records.append(record)
                print(f"=== {path.stem}: ok in {record.wall_time_s:.0f} s", flush=True)
            except NotebookFailed as exc:
                print(
                    f"=== {path.stem}: {exc.record.status if exc.record else 'failed'}", flush=True
                )
                failures.append(exc)
                if exc.record is not None:
                    records.append(exc.record)
                if not keep_going:
                    break
    finally:
        if report:
            from prototokens.harness.report import build_report

            try:
                print(f"report: {build_report(output_dir)}", flush=True)
            except Exception as exc:  # noqa: BLE001 - never hide the notebook failure behind it
                if not failures:
                    raise
                print(f"report could not be built: {type(exc).__name__}: {exc}", flush=True)
    if failures:
        message = "\n".join(str(f) for f in failures)
        raise NotebookFailed(message, failures[0].record)
    return records


# --------------------------------------------------------------------------- CLI

_EXIT_CODES = {"kernel_died": DEAD_KERNEL_EXIT, "timeout": 124, "cell_timeout": 124}


def main(argv: list[str] | None = None) -> int:
    """``python -m prototokens.harness.runner --profile smoke --notebook 03``; see ``--help``."""
    parser = argparse.ArgumentParser(
        prog="python -m prototokens.harness.runner",
        description="Run the notebooks through papermill with layered parameter files.",
    )
    parser.add_argument(
        "--profile",
        default=os.environ.get("PROFILE") or "default",
        help="default (CPU, embedded model), smoke (CI), gpu (one H200, embedded model) or paper "
        "(GPU, hub models)",
    )
    parser.add_argument(
        "--notebook",
        action="append",
        default=None,
        metavar="NN",
        help="run only this notebook (prefix such as 03, or stem); repeatable",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        metavar="S",
        help="per-cell timeout in seconds (default per profile)",
    )
    parser.add_argument(
        "--notebook-timeout",
        type=float,
        default=None,
        metavar="S",
        help="whole-notebook timeout in seconds (default per profile)",
    )
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.add_argument(
        "--keep-going", action="store_true", help="run the remaining notebooks after a failure"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only resolve and check the parameters, print them, run nothing",
    )
    parser.add_argument("--output-dir", default=None, help="outputs tree (default <repo>/outputs)")
    parser.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--params-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="do not stream cell output")
    args = parser.parse_args(argv)

    try:
        if args.check:
            names = args.notebook or [p.stem for p in list_notebooks(args.notebooks_dir)]
            for name in names:
                resolved = resolve_parameters(
                    name,
                    args.profile,
                    params_dir=args.params_dir,
                    output_dir=args.output_dir,
                    notebooks_dir=args.notebooks_dir,
                )
                print(f"{resolved.notebook.stem}: {json.dumps(resolved.values)}")
            return 0
        run_all(
            args.profile,
            args.notebook,
            output_dir=args.output_dir,
            cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout,
            notebooks_dir=args.notebooks_dir,
            params_dir=args.params_dir,
            report=not args.no_report,
            keep_going=args.keep_going,
            echo=not args.quiet,
        )
    except NotebookFailed as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        status = exc.record.status if exc.record else "failed"
        return _EXIT_CODES.get(status, 1)
    except RunnerError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
