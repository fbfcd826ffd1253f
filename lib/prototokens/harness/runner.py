"""Run the notebooks in batch: ``run_notebook``, ``run_all`` and the command line.

``make reproduce`` calls :func:`run_all` through the CLI (``python -m prototokens.harness.runner``).
Each notebook ``notebooks/NN_name.ipynb`` runs in a fresh ``python3`` kernel of this venv, with
``--cwd notebooks`` so a batch run sees the same working directory as JupyterLab. The parts:

- :mod:`~prototokens.harness.params`: discovery, parameter layering, type and range checks;
- :mod:`~prototokens.harness.process`: the papermill subprocess, timeouts, dead kernels;
- :mod:`~prototokens.harness.provenance`: the run record and its manifest (git, versions).

Each run leaves in the outputs tree:

- ``notebooks/NN_name.ipynb`` (executed), ``NN_name.params.yaml`` (resolved), ``NN_name.log``;
- ``metrics/NN_name.manifest.json``: parameters, git commit, package versions, device, wall time,
  status; next to the notebook's own ``metrics/NN_name.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from typing import Any, Iterable, Mapping

import yaml

from prototokens.envcheck import kernel_check
from prototokens.files import write_text
from prototokens.harness.artifacts import metrics_dir
from prototokens.harness.params import (
    RunnerError,
    _show,
    find_notebook,
    list_notebooks,
    notebook_folder,
    resolve_parameters,
)
from prototokens.harness.process import (
    DEAD_KERNEL_EXIT,
    START_TIMEOUT,
    classify,
    execute,
    resolve_timeouts,
)
from prototokens.harness.provenance import RunRecord, device_of_run, write_manifest
from prototokens.paths import output_dir as _output_dir

KERNEL = "python3"


class KernelMismatch(RunnerError):
    """The ``python3`` kernel would start another interpreter than this venv's."""


class NotebookFailed(RunnerError):
    """A notebook did not finish; ``record`` (a :class:`RunRecord`) says how and where."""

    def __init__(self, message: str, record: RunRecord | None = None):
        super().__init__(message)
        self.record = record


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
    cell_s, whole_s = resolve_timeouts(profile, cell_timeout, notebook_timeout)

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
    run = execute(cmd, env, log_file, whole_s, echo)
    status, message = classify(name, run, executed, cell_s, whole_s)
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
        wall_time_s=round(run.wall_s, 3),
        returncode=run.returncode,
        message=message,
        device=device_of_run(metrics_file),
    )
    write_manifest(
        record,
        sources=resolved.sources,
        timeouts_s={"cell": cell_s, "notebook": whole_s},
        started_at=started_at,
        command=cmd,
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
