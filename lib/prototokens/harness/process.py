"""Process control for one papermill run: timeouts, streaming the log, stopping a run (papermill
and its kernel), and telling a finished, failed, timed-out or dead-kernel run apart, with the
cell it stopped in.

papermill runs in a subprocess, so a whole-notebook timeout can kill it and a dead kernel
(papermill's exit code 138, typically out of memory) is seen as such. The partially saved output
notebook tells which cell was running.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

# (per-cell, whole-notebook) timeouts in seconds; CLI flags and
# PROTOTOKENS_CELL_TIMEOUT / PROTOTOKENS_NOTEBOOK_TIMEOUT override them.
TIMEOUTS = {
    "default": (1800, 3600),
    "smoke": (600, 1200),
    "paper": (6 * 3600, 48 * 3600),
    # one H200 device call lasts at most 10 minutes for the whole series (ci/gpu_run.sh passes
    # a tighter --notebook-timeout from its remaining budget)
    "gpu": (300, 420),
    # Table 3 in the paper's regime on the CPU (params/profile_cpu_paper.yaml): one capacity
    # cell runs most of the 90 minutes
    "cpu_paper": (3 * 3600, 4 * 3600),
}
START_TIMEOUT = 120  # seconds to wait for the kernel (slow CUDA init on GPU hosts)
DEAD_KERNEL_EXIT = 138  # papermill's exit code for nbclient's DeadKernelError
_STOP_GRACE_S = 15  # after SIGINT, how long papermill gets to save the notebook and stop the kernel


@dataclass
class Execution:
    """How a papermill subprocess ended: exit code, whether the whole-notebook timeout hit, the
    wall time and the last lines of its log."""

    returncode: int | None
    timed_out: bool
    wall_s: float
    log_tail: str


def resolve_timeouts(
    profile: str, cell_timeout: float | None, notebook_timeout: float | None
) -> tuple[float, float]:
    """(per-cell, whole-notebook) seconds: the argument, else the environment, else
    :data:`TIMEOUTS` for the profile."""
    cell_default, nb_default = TIMEOUTS.get(profile, TIMEOUTS["default"])
    cell = cell_timeout or os.environ.get("PROTOTOKENS_CELL_TIMEOUT") or cell_default
    whole = notebook_timeout or os.environ.get("PROTOTOKENS_NOTEBOOK_TIMEOUT") or nb_default
    return float(cell), float(whole)


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


def where(cell: dict | None) -> str:
    if cell is None:
        return "an unknown cell (the output notebook could not be read)"
    return f"cell {cell['number']}: `{cell['first_line']}`"


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


def execute(cmd: list[str], env: dict, log_file: Path, timeout_s: float, echo: bool) -> Execution:
    """Run ``cmd`` in its own session, streaming its output to ``log_file`` (and here if
    ``echo``); stop it and its kernel after ``timeout_s`` or on Ctrl-C."""
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
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop(proc)
        rc = proc.returncode
    except BaseException:  # Ctrl-C in the runner: take papermill and the kernel down with it
        _stop(proc)
        raise
    finally:
        pump.join(timeout=30)
    return Execution(rc, timed_out, time.monotonic() - t0, "".join(tail))


def classify(
    name: str, run: Execution, executed: Path, cell_s: float, whole_s: float
) -> tuple[str, str]:
    """``(status, message)`` of a run: ok | failed | cell_timeout | timeout | kernel_died, the
    message naming the notebook and the cell it stopped in."""
    rc, log_tail = run.returncode, run.log_tail
    if not run.timed_out and rc == 0:
        return "ok", ""
    cell = locate_cell(executed)
    at = where(cell)
    if run.timed_out:
        status = "timeout"
        message = f"{name} timed out after {whole_s:g} s (whole-notebook timeout) in {at}"
    elif rc == DEAD_KERNEL_EXIT:
        status = "kernel_died"
        message = (
            f"kernel died (papermill exit {DEAD_KERNEL_EXIT}, e.g. out of memory) in "
            f"notebook {name} at {at}"
        )
    elif "CellTimeoutError" in log_tail or "Cell execution timed out" in log_tail:
        status = "cell_timeout"
        message = f"{name}: {at} timed out after {cell_s:g} s (per-cell timeout)"
    else:
        status = "failed"
        error = f" raised {cell['error']}" if cell and cell.get("error") else " failed"
        message = f"{name}: {at}{error} (papermill exit {rc})"
        if cell is None or not cell.get("error"):
            message += "\n" + "\n".join(log_tail.splitlines()[-15:])
    return status, message
