"""The claims ledger: every notebook's claim records in one table, ``tables/claims.{csv,md}``.

A notebook's claims cell calls :func:`record_claims` once: it writes that notebook's records to
``tables/tab_claims_<notebook>.csv`` (and ``.md``), rebuilds the ledger from every
``tab_claims_NN_*.csv`` in the outputs folder, and returns the table to display. The report
(:mod:`prototokens.harness.report`) rebuilds the ledger too, so ``make report`` and every
``make reproduce`` leave it current; :mod:`prototokens.harness.compare` reads two ledgers and shows
where a verdict differs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from prototokens.files import write_text
from prototokens.harness import artifacts
from prototokens.studies.claims import COLUMNS, claims_table

LEDGER = "claims"  # tables/claims.csv and tables/claims.md (written here, not by save_table)
PREFIX = "tab_claims_"  # tables/tab_claims_<notebook>.csv: one notebook's records
LEDGER_COLUMNS = ["notebook", "id", "claim", "where", "paper", "ours", "n", "rule", "verdict",
                  "reason"]  # fmt: skip


def record_claims(session, records, notebook: str | None = None) -> pd.DataFrame:
    """Save one notebook's claim records and refresh the ledger; returns the records as a table
    (what the claims cell displays). ``session``: a :class:`~prototokens.harness.session.Session`
    (its ``notebook`` names the table unless ``notebook`` is given)."""
    name = notebook or getattr(session, "notebook", "")
    if not name:
        raise ValueError("record_claims needs the notebook's name (start(..., notebook='NN_x'))")
    table = claims_table(records).assign(notebook=name)
    artifacts.save_table(table, f"{PREFIX}{name}", output_dir=session.output_dir)
    write_ledger(session.output_dir)
    return table[[c for c in LEDGER_COLUMNS if c != "notebook"]]


def notebook_claims(folder: str | os.PathLike) -> list[Path]:
    """The per-notebook claims tables of an outputs folder, in notebook order."""
    return sorted(Path(folder, "tables").glob(f"{PREFIX}[0-9][0-9]_*.csv"))


def read_ledger(folder: str | os.PathLike) -> pd.DataFrame:
    """Every notebook's claims in ``folder`` (an outputs folder) as one table with
    :data:`LEDGER_COLUMNS`. A folder without per-notebook tables gives its ``claims.csv`` if it has
    one in this shape, else an empty table (older runs wrote claims in other shapes)."""
    frames = []
    for path in notebook_claims(folder):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if not {"id", "verdict"} <= set(df.columns):
            continue
        if "notebook" not in df or (df["notebook"] == "").all():
            df["notebook"] = path.stem.removeprefix(PREFIX)
        frames.append(df)
    if not frames:
        ledger = Path(folder, "tables", f"{LEDGER}.csv")
        if ledger.exists():
            df = pd.read_csv(ledger, dtype=str, keep_default_na=False)
            if {"id", "verdict"} <= set(df.columns):
                frames.append(df)
    if not frames:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    for col in LEDGER_COLUMNS:
        if col not in out:
            out[col] = ""
    return out[LEDGER_COLUMNS]


def write_ledger(folder: str | os.PathLike) -> list[Path]:
    """Write ``tables/claims.csv`` and ``.md`` from the per-notebook tables of ``folder``;
    returns the paths (none when no notebook has recorded claims)."""
    paths = notebook_claims(folder)
    if not paths:
        return []
    ledger = read_ledger(folder)
    tables = artifacts.tables_dir(folder)
    return [
        write_text(tables / f"{LEDGER}.csv", ledger.to_csv(index=False)),
        write_text(tables / f"{LEDGER}.md", artifacts.markdown_table(ledger)),
    ]


assert set(LEDGER_COLUMNS) <= set(COLUMNS)
