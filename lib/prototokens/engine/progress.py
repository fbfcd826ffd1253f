"""Progress lines a batch log can follow: what is training, how far, how long still.

A notebook run by papermill shows nothing of a tqdm bar until its cell ends, so a 5-minute capacity
search looked frozen at ``0/6``. :class:`ProgressLog` writes one plain line at the start, then at
most every ``PROTOTOKENS_PROGRESS_EVERY_S`` seconds (default 60), then at the end of each
:func:`~prototokens.engine.reconstruction.reconstruct` call::

    [progress] Table 3 capacity, pg19 | bos+e+m*(N-1) paper N=23 | rows 4/12 | batch 1/2 step
    140/300 | 2m10s elapsed, at most 6m40s left

The lines go to the process's own stderr (``sys.__stderr__``), not to the cell's output: in a
papermill run that is the notebook's ``.log`` (the kernel inherits the runner's stderr), in
JupyterLab the server's console, in a script the terminal. Studies name what they are doing with
``with progress_label("Table 3 capacity, pg19"):`` around their calls; labels nest.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, TextIO

_LABELS: list[str] = []


def every_s() -> float:
    """Seconds between two progress lines (``PROTOTOKENS_PROGRESS_EVERY_S``, default 60)."""
    raw = os.environ.get("PROTOTOKENS_PROGRESS_EVERY_S", "60")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"PROTOTOKENS_PROGRESS_EVERY_S must be a number of seconds, got {raw!r}")
    if not value > 0:
        raise ValueError(f"PROTOTOKENS_PROGRESS_EVERY_S must be > 0, got {raw!r}")
    return value


@contextmanager
def progress_label(text: str):
    """Name the study (and length) of every progress line written inside the block."""
    _LABELS.append(str(text))
    try:
        yield
    finally:
        _LABELS.pop()


def current_label() -> str:
    """The labels of the enclosing :func:`progress_label` blocks, outermost first."""
    return " · ".join(_LABELS)


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class ProgressLog:
    """Progress of one ``reconstruct`` call: ``rows`` rows in ``batches`` batches of at most
    ``max_steps`` steps each. Call :meth:`start_batch` before each batch, pass the object as
    ``optimize(progress=)`` (it receives :class:`~prototokens.engine.train.Progress`), and call
    :meth:`close` at the end. The time left is an upper bound: every remaining batch is assumed
    to run all its steps at the seconds per step measured so far (rows stop early when exact)."""

    def __init__(
        self,
        what: str,
        rows: int,
        batches: int,
        max_steps: int,
        *,
        every: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self.rows, self.batches, self.max_steps = what, rows, batches, max_steps
        self.label = current_label()
        self.every = every_s() if every is None else every
        self.stream = stream
        self.clock = clock
        self.t0 = clock()
        self.last: float | None = None
        self.batch_no = 0
        self.batch_rows = 0
        self.rows_before = 0  # rows of finished batches
        self.steps_before = 0  # steps run by finished batches
        self.step = 0
        self.stopped = 0
        self.lengths: tuple[int, int] | None = None  # (min, max) tokens of the current batch
        self.lines = 0

    def start_batch(self, n_rows: int, lengths: tuple[int, int] | None = None) -> None:
        """A new batch of ``n_rows`` rows (token lengths ``(min, max)``) starts."""
        if self.batch_no:
            self.rows_before += self.batch_rows
            self.steps_before += self.step
        self.batch_no += 1
        self.batch_rows, self.step, self.stopped = n_rows, 0, 0
        self.lengths = lengths

    def __call__(self, p) -> None:
        self.step, self.stopped = min(p.step, self.max_steps), p.n_stopped
        now = self.clock()
        if self.last is None or now - self.last >= self.every:
            self._emit(now)

    def close(self) -> None:
        """The last line: every row done, and the time it took."""
        if self.batch_no:
            self.stopped = self.batch_rows
        self._emit(self.clock(), final=True)

    def _emit(self, now: float, final: bool = False) -> None:
        self.last = now
        elapsed = now - self.t0
        done = self.rows_before + self.stopped
        steps = self.steps_before + self.step
        where = f"{self.what}"
        if self.lengths:
            lo, hi = self.lengths
            where += f" N={lo}" if lo == hi else f" N={lo}-{hi}"
        parts = ([self.label] if self.label else []) + [where, f"rows {done}/{self.rows}"]
        if final:
            parts.append(f"done in {_clock(elapsed)} ({steps} steps)")
        else:
            parts.append(f"batch {self.batch_no}/{self.batches} step {self.step}/{self.max_steps}")
            left = "?"
            if steps:
                later = (self.batches - self.batch_no) * self.max_steps  # batches not started
                todo = (self.max_steps - self.step) + later
                left = _clock(todo * elapsed / steps)
            parts.append(f"{_clock(elapsed)} elapsed, at most {left} left")
        print("[progress] " + " | ".join(parts), file=self.stream or sys.__stderr__, flush=True)
        self.lines += 1
