"""``python -m ci.browser``: the browser check (run by ``make browser-test``; see ``--help``).

1. Every notebook with an Explore section must have an entry in ``ci/browser/interactions.py``.
2. JupyterLab starts once (the project venv's ``jupyter``, a free port, a token); each notebook's
   copy (smoke parameters + the table's overrides + ``interactive=True``) is opened in headless
   Chromium, run with Run All Cells, and its widgets operated as the table says.
3. ``--self-test`` first proves the error channels work: a throw-away notebook whose button's
   callback raises must FAIL the check.
4. The report (``outputs/report/index.html``, built by a smoke run) is opened in the same browser.

Screenshots and ``summary.json`` go to ``--out`` (default ``outputs/browser``). Exit status 0:
all passed; 1: a check failed (each failure names the notebook, the widget and what was missing);
2: the browser or playwright is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from ci.browser.actions import Click, ExpectText, Explore, check_table
from ci.browser.driver import CHROMIUM, Browser, CheckFailed, check_notebook, check_report, log
from ci.browser.interactions import INTERACTIONS
from ci.browser.lab import JupyterLab, StaticServer
from ci.browser.notebooks import (
    explore_notebooks,
    prepare_copy,
    smoke_parameters,
    table_mismatch,
)

REPO = Path(__file__).resolve().parents[2]

SELFTEST_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": "interactive: bool = False  # build the widgets\n",
            "outputs": [],
            "execution_count": None,
        },
        {"cell_type": "markdown", "metadata": {}, "source": "## Explore\n"},
        {
            "cell_type": "code",
            "metadata": {"tags": ["skip-execution"]},
            "source": (
                "if interactive:\n"
                "    import ipywidgets as w\n"
                "    boom = w.Button(description='Boom')\n"
                "    def explode(_):\n"
                "        raise RuntimeError('self-test: this callback raises')\n"
                "    boom.on_click(explode)\n"
                "    display(boom)\n"
            ),
            "outputs": [],
            "execution_count": None,
        },
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 4,
}
SELFTEST_ENTRY = Explore(steps=(Click("Boom"), ExpectText(r"never shown", "nothing", timeout=30)))


def link_cache(src: Path, dst: Path) -> int:
    """Symlink every file of the result cache ``src`` into ``dst`` (same layout). The store writes
    atomically (a new file renamed over the key), so a row the widgets add lands in ``dst`` and
    the smoke runs' cache is never modified: each check trains its widget runs anew."""
    n = 0
    if src.is_dir():
        for f in src.rglob("*"):
            if f.is_file():
                target = dst / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(f.resolve())
                n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ci.browser",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--python",
        default=str(REPO / ".venv" / "bin" / "python"),
        help="the project venv's interpreter (resolves the smoke parameters)",
    )
    ap.add_argument("--jupyter", default=None, help="jupyter executable (default: beside --python)")
    ap.add_argument("--out", default=str(REPO / "outputs" / "browser"), help="screenshots folder")
    ap.add_argument(
        "--report",
        default=str(REPO / "outputs" / "report" / "index.html"),
        help="the report page to check; '' skips it",
    )
    ap.add_argument(
        "--notebook",
        action="append",
        default=None,
        metavar="NN",
        help="check only these notebooks (prefix such as 02); repeatable",
    )
    ap.add_argument(
        "--self-test",
        action="store_true",
        help="first prove that a raising widget callback fails the check",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the kernels")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)

    if not Path(CHROMIUM).exists():
        print(f"FAIL: {CHROMIUM} missing (make browser-test installs it)", file=sys.stderr)
        return 2
    try:
        import playwright  # noqa: F401
    except ImportError:
        print(
            "FAIL: playwright is not importable (run with .venv-browser/bin/python)",
            file=sys.stderr,
        )
        return 2
    # absolute (not resolved: the venv's python is a link out of the venv): the kernel and
    # JupyterLab start in other working directories
    python = str(Path(args.python).absolute())
    jupyter = str(Path(args.jupyter or Path(python).parent / "jupyter").absolute())
    shots = Path(args.out)
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)

    t_start = time.time()
    failures: list[str] = []
    summary: dict = {"notebooks": {}, "report": None}
    check_table(INTERACTIONS)
    explore = explore_notebooks(REPO / "notebooks")
    failures += table_mismatch([p.stem for p in explore], INTERACTIONS)
    if args.notebook:
        explore = [p for p in explore if any(p.stem.startswith(n) for n in args.notebook)]
    smoke_outputs = Path(args.report).parent.parent if args.report else REPO / "outputs"
    tmp = Path(tempfile.mkdtemp(prefix="browser-check-"))
    try:
        copies = {}
        lab_outputs = tmp / "outputs"
        for path in explore:
            if path.stem not in INTERACTIONS:
                continue
            params = smoke_parameters(python, path, lab_outputs)
            params.update(INTERACTIONS[path.stem].params)
            copies[path.stem] = prepare_copy(path, tmp, params).name
            log(f"{path.stem}: copy with {params}")
        if args.self_test:
            (tmp / "src").mkdir()
            (tmp / "src" / "99_selftest.ipynb").write_text(json.dumps(SELFTEST_NOTEBOOK))
            prepare_copy(tmp / "src" / "99_selftest.ipynb", tmp, {})
        # The batch cells find the rows of the smoke run (same parameters) in its result cache,
        # so Run All spends its time on what the browser shows, not on re-optimising.
        linked = link_cache(smoke_outputs / "cache", lab_outputs / "cache")
        if linked:
            log(f"{linked} cached files of {smoke_outputs / 'cache'} linked (read-only use)")
        env = {"PROTOTOKENS_OUTPUT_DIR": str(lab_outputs)}
        need_lab = bool(copies) or args.self_test
        with (
            JupyterLab(jupyter, tmp, env, threads=args.threads)
            if need_lab
            else nullcontext() as lab,
            Browser(tmp / "chromium") as browser,
        ):
            log(f"browser{' and jupyter lab' * need_lab} up ({time.time() - t_start:.1f} s)")
            if args.self_test:
                t = time.time()
                try:
                    check_notebook(
                        browser, lab, "99_selftest", "99_selftest.ipynb", SELFTEST_ENTRY, tmp
                    )
                    failures.append("self-test: a raising widget callback did NOT fail the check")
                except CheckFailed as exc:
                    ok = "self-test: this callback raises" in str(exc)
                    log(
                        f"self-test {'ok' if ok else 'FAILED'} ({time.time() - t:.1f} s): "
                        f"{str(exc).splitlines()[0][:200]}"
                    )
                    if not ok:
                        failures.append(f"self-test failed for another reason: {exc}")
                summary["self_test_s"] = round(time.time() - t, 1)
                lab.shutdown_kernels()
            for name, copy in copies.items():
                t = time.time()
                if INTERACTIONS[name].pending:
                    log(f"{name}: PENDING, not checked: {INTERACTIONS[name].pending}")
                    summary["notebooks"][name] = {"pending": INTERACTIONS[name].pending}
                    continue
                log(f"{name}: Run All Cells, then {len(INTERACTIONS[name].steps)} steps")
                try:
                    timings = check_notebook(browser, lab, name, copy, INTERACTIONS[name], shots)
                    timings["total_s"] = round(time.time() - t, 1)
                    summary["notebooks"][name] = timings
                    log(f"{name}: PASS {timings}")
                except CheckFailed as exc:
                    failures.append(str(exc))
                    summary["notebooks"][name] = {"failed": str(exc)}
                    log(f"{name}: FAIL")
                lab.shutdown_kernels()
            if args.report:
                index = Path(args.report)
                t = time.time()
                if not index.is_file():
                    failures.append(f"report: {index} does not exist (run a smoke run first)")
                else:
                    with StaticServer(index.parent.parent) as base:
                        try:
                            summary["report"] = check_report(browser, index, base, shots)
                            summary["report"]["s"] = round(time.time() - t, 1)
                            log(f"report: PASS {summary['report']}")
                        except CheckFailed as exc:
                            failures.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - any server/browser error is a failed check
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary["total_s"] = round(time.time() - t_start, 1)
    summary["failures"] = failures
    (shots / "summary.json").write_text(json.dumps(summary, indent=1))
    shots_list = sorted(p.name for p in shots.glob("*.png"))
    log(f"screenshots in {shots}: {shots_list}")
    if failures:
        print("\nBROWSER CHECK FAILED:\n- " + "\n- ".join(failures), file=sys.stderr)
        return 1
    log(f"BROWSER CHECK PASSED in {summary['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
