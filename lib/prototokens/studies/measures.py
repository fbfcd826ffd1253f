"""Derived measurements that several tables report, each defined once here.

- :func:`trained_vectors_per_text`: how many trained vectors of width d one text owns. With e and
  m per text that is 2; with m shared by a group of S texts each text owns its e and 1/S of m,
  1 + 1/S (e shared likewise). The model is frozen, so these are all the numbers a text costs.
- :func:`utilisation`: C_tokens over the theoretical capacity of the vectors one text owns,
  ``vectors x d·16/log2|V|`` (``theoretical_capacity`` in a row is that bound for ONE vector,
  :func:`prototokens.engine.metrics.theoretical_capacity`). Counting only e, or e and m of a
  shared m as if per text, would overstate (or understate) what one text gets.
- :func:`seconds_per_text`: a row's ``wall_time_s`` runs from the start of its batch to the
  row's stop, and the rows of one batch train together, so one text costs that time divided by
  the rows in the batch (``batch_size``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHARED_SETTINGS = {"shared m": "m", "shared e": "e"}  # capacity-search ``setting`` -> shared slot


def trained_vectors_per_text(share: str | None, group_size: int | None = None) -> float:
    """2 when nothing is shared; 1 + 1/group_size when e or m is shared by ``group_size`` texts.

    ``share``: None / "none" / "per-text", "m" / "e", or a setting "shared m" / "shared e"."""
    share = SHARED_SETTINGS.get(share, share)
    if share in (None, "none", "per-text"):
        return 2.0
    if share not in ("m", "e"):
        raise ValueError(f"share must be None, 'm' or 'e' (or a setting name), got {share!r}")
    if group_size is None or int(group_size) < 1:
        raise ValueError(
            f"a shared {share} needs group_size >= 1 (texts sharing it), got {group_size!r}"
        )
    return 1.0 + 1.0 / int(group_size)


def utilisation(c_tokens: float, theoretical_capacity: float, vectors_per_text: float) -> float:
    """C_tokens / (vectors_per_text x theoretical capacity of one vector); NaN without a bound."""
    bound = float(theoretical_capacity) * float(vectors_per_text)
    return float(c_tokens) / bound if bound > 0 else float("nan")


def seconds_per_text(rows: pd.DataFrame) -> pd.Series:
    """(rows,) seconds one text cost: ``wall_time_s / batch_size`` (batch_size 1 when absent)."""
    if "wall_time_s" not in rows:
        raise ValueError("rows need a 'wall_time_s' column to give seconds per text")
    batch = rows["batch_size"] if "batch_size" in rows else pd.Series(1, index=rows.index)
    batch = pd.to_numeric(batch, errors="coerce").fillna(1).clip(lower=1)
    return rows["wall_time_s"].astype(float) / batch.astype(np.float64)
