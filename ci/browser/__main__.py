"""python -m ci.browser: the browser check that `make browser-test` runs (see ci/README.md).

Here: which notebooks have an Explore section, the copy of each that the browser runs (the
committed notebook is never touched), the self-test, and the order of the checks. Exit status 0:
all passed; 1: a check failed (each failure names the notebook, the step and what was missing;
screenshots and summary.json in --out); 2: chromium or playwright is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from ci.browser import interactions as A  # the table
from ci.browser.driver import CHROMIUM, CheckFailed, browser, check_notebook, check_report, log
from ci.browser.lab import JupyterLab, static_server

REPO = Path(__file__).resolve().parents[2]
EXPLORE_HEADING = re.compile(r"^#{1,6}\s*Explore\b", re.MULTILINE)
# Run by the project's python, which has the library and papermill (the browser venv has neither):
# per notebook, its smoke parameters with the entry's overrides and interactive=True, checked and
# injected by papermill after the `parameters` cell as in a batch run, into a copy without
# `skip-execution` tags or stored outputs (so Run All Cells builds the widgets).
PREPARE = """\
import json, sys
from pathlib import Path
import nbformat, papermill
from prototokens.harness.runner import resolve_parameters
dest, outputs, todo, done = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), {}
for path, extra in todo.items():
    nb, copy = nbformat.read(path, as_version=4), dest / Path(path).name
    for cell in nb.cells:
        if "skip-execution" in cell.metadata.get("tags", []):
            cell.metadata.tags.remove("skip-execution")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    extra = {**extra, "interactive": True}
    values = resolve_parameters(path, "smoke", output_dir=outputs, extra_params=extra).values
    nbformat.write(nb, str(copy))
    papermill.execute_notebook(copy, copy, values, prepare_only=True, progress_bar=False)
    done[copy.stem] = values
print(json.dumps(done))
"""

# The self-test: a notebook whose button's callback raises must FAIL the check, with that error.
SELFTEST, SELFTEST_ERROR = "99_selftest", "self-test: this callback raises"
SELFTEST_CODE = f"""\
import ipywidgets as w
boom = w.Button(description='Boom')
def explode(_):
    raise RuntimeError('{SELFTEST_ERROR}')
boom.on_click(explode)
display(boom)
"""
SELFTEST_NOTEBOOK = {
    "cells": [
        dict(cell_type="markdown", metadata={}, source="## Explore\n"),
        dict(cell_type="code", metadata={}, source=SELFTEST_CODE, outputs=[], execution_count=None),
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 4,
}
SELFTEST_ENTRY = A.Explore(steps=(A.Click("Boom"), A.ExpectText("never shown", timeout=30)))


def explore_notebooks(nb_dir: str | Path) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks of ``nb_dir`` with an ``Explore`` markdown heading."""
    found = []
    for path in sorted(Path(nb_dir).glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        markdown = ("".join(c.get("source", "")) for c in cells if c["cell_type"] == "markdown")
        found += [path] if any(EXPLORE_HEADING.search(text) for text in markdown) else []
    return found


def prepare_copies(python: str, entries: dict[Path, dict], dest: Path, outputs: Path) -> dict:
    """Write the browser copy of each notebook (its path -> the entry's overrides) into ``dest``,
    same file name, with :data:`PREPARE` run by ``python``; returns each one's parameters."""
    if not entries:
        return {}
    todo = json.dumps({str(path): params for path, params in entries.items()})
    args = [python, "-c", PREPARE, str(dest), str(outputs), todo]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the notebook copies could not be prepared:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def link_cache(src: Path, dst: Path) -> int:
    """Link every file of the result cache ``src`` into ``dst`` (``cp -rs``: same layout, each
    file a symlink); the number linked. The store writes atomically (a new file renamed over the
    key), so a row the widgets add lands in ``dst`` and the smoke runs' cache is never modified:
    each check trains its widget runs anew."""
    if not src.is_dir():
        return 0
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-rs", f"{src.resolve()}/.", str(dst)], check=True)
    return sum(f.is_symlink() for f in dst.rglob("*"))


def check_all(args, python: str, tmp: Path, shots: Path, summary: dict, failures: list) -> None:
    """Prepare the copies, start JupyterLab and the browser, run the self-test, each notebook's
    entry and the report; every failure is appended to ``failures``."""
    explore = explore_notebooks(REPO / "notebooks")
    failures += A.table_mismatch([p.stem for p in explore], A.INTERACTIONS)
    if args.notebook:
        explore = [p for p in explore if any(p.stem.startswith(n) for n in args.notebook)]
    copies, lab_outputs = {}, tmp / "outputs"
    if args.self_test:
        copies[SELFTEST] = f"{SELFTEST}.ipynb"
        (tmp / copies[SELFTEST]).write_text(json.dumps(SELFTEST_NOTEBOOK))
    todo = {p: A.INTERACTIONS[p.stem].params for p in explore if p.stem in A.INTERACTIONS}
    for stem, params in prepare_copies(python, todo, tmp, lab_outputs).items():
        copies[stem] = f"{stem}.ipynb"
        log(f"{stem}: copy with {params}")
    # The batch cells find the rows of the smoke run (same parameters) in its result cache, so
    # Run All spends its time on what the browser shows, not on re-optimising.
    smoke_outputs = Path(args.report).parent.parent if args.report else REPO / "outputs"
    if linked := link_cache(smoke_outputs / "cache", lab_outputs / "cache"):
        log(f"{linked} cached files of {smoke_outputs / 'cache'} linked (read-only use)")
    env = {"PROTOTOKENS_OUTPUT_DIR": str(lab_outputs)}
    lab = JupyterLab(str(Path(python).parent / "jupyter"), tmp, env) if copies else nullcontext()
    t_start = time.time()
    with lab, browser() as ctx:
        log(f"browser{' and jupyter lab' * bool(copies)} up ({time.time() - t_start:.1f} s)")
        for name, copy in copies.items():
            entry, t = SELFTEST_ENTRY if name == SELFTEST else A.INTERACTIONS[name], time.time()
            log(f"{name}: Run All Cells, then {len(entry.steps)} steps")
            folder = tmp if name == SELFTEST else shots  # the self-test's screenshots: not kept
            try:
                timings, failed = check_notebook(ctx, lab, name, copy, entry, folder), ""
            except CheckFailed as exc:
                timings, failed = {}, str(exc)
            seconds = round(time.time() - t, 1)
            lab.shutdown_kernels()
            if name == SELFTEST:  # it must fail, and with its own error
                log(f"self-test {'ok' if SELFTEST_ERROR in failed else 'FAILED'}: {failed[:200]}")
                if not failed:
                    failures.append("self-test: a raising widget callback did NOT fail the check")
                elif SELFTEST_ERROR not in failed:
                    failures.append(f"self-test failed for another reason: {failed}")
                summary["self_test_s"] = seconds
            elif failed:
                failures.append(failed)
                summary["notebooks"][name] = {"failed": failed}
                log(f"{name}: FAIL")
            else:
                summary["notebooks"][name] = timings | {"total_s": seconds}
                log(f"{name}: PASS {summary['notebooks'][name]}")
        if args.report:
            index, t = Path(args.report), time.time()
            if not index.is_file():
                failures.append(f"report: {index} does not exist (run a smoke run first)")
                return
            with static_server(index.parent.parent) as base:
                try:
                    summary["report"] = check_report(ctx, index, base, shots)
                    summary["report"]["s"] = round(time.time() - t, 1)
                    log(f"report: PASS {summary['report']}")
                except CheckFailed as exc:
                    failures.append(str(exc))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ci.browser", description=__doc__)
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="the project's python")
    ap.add_argument("--out", default=str(REPO / "outputs/browser"), help="screenshots folder")
    ap.add_argument("--report", default=str(REPO / "outputs/report/index.html"), help="'' skips it")
    ap.add_argument("--notebook", action="append", metavar="NN", help="only these (02...)")
    ap.add_argument("--self-test", action="store_true", help="first prove a raising callback fails")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None:
        print(f"FAIL: {CHROMIUM} and playwright (.venv-browser) are needed: make browser-test "
              "installs them", file=sys.stderr)  # fmt: skip
        return 2
    # absolute, not resolved (the venv's python is a link out of the venv): JupyterLab and the
    # kernels start in other working directories
    python = str(Path(args.python).absolute())
    shots = Path(args.out)
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    t_start, failures = time.time(), []
    summary: dict = {"notebooks": {}, "report": None}
    A.check_table(A.INTERACTIONS)
    tmp = Path(tempfile.mkdtemp(prefix="browser-check-"))
    try:
        check_all(args, python, tmp, shots, summary, failures)
    except Exception as exc:  # noqa: BLE001 - any server/browser error is a failed check
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary |= {"total_s": round(time.time() - t_start, 1), "failures": failures}
    (shots / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"screenshots in {shots}: {sorted(p.name for p in shots.glob('*.png'))}")
    if failures:
        print("\nBROWSER CHECK FAILED:\n- " + "\n- ".join(failures), file=sys.stderr)
        return 1
    log(f"BROWSER CHECK PASSED in {summary['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
