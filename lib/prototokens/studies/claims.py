"""One record for every claim of the paper that a notebook checks, and the verdict words.

A :class:`Claim` carries the paper's statement (with its section, table or figure), the paper's
number where it gives one, ours, ``n`` (texts x seeds x lengths behind ours), the rule in words
with its thresholds, and a verdict from exactly three: ``holds``, ``does not hold`` or
``inconclusive``. An inconclusive verdict names its reason (one of :data:`REASONS`, then
details), so that a reader knows what a run would need to decide it.

Each study module has a ``*_claims`` function that returns a list of these records; a
:class:`ClaimSpec` holds what is fixed about a claim (id, statement, paper, rule) and makes the
record, so that the same words appear in every run. Rules check their gates first (minimum n,
solutions where solutions are compared, no censoring at the longest length, a trained curve): a
failed gate gives ``inconclusive``, never ``holds`` or ``does not hold``.

:func:`one_pass_claims` (notebook 02, the paper's headline claim) lives here; the other claims
live beside the numbers they judge (``capacity_tables``, ``arrangement_study``, ``families``,
``geometry_claims``, ``throughput``). ``prototokens.harness.ledger`` writes them to
``tables/claims_<notebook>.csv`` and gathers every notebook's into ``tables/claims.{csv,md}``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import pandas as pd

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

# why a claim is inconclusive (the record's ``reason`` starts with one of these)
TOO_FEW = "too few samples"
NOT_SOLUTIONS = "not solutions"
CENSORED = "censored at the longest length"
BUDGET = "budget too small"
NOT_RUN = "not run here"  # the run lacks what the claim is about (a family, a search)
REASONS = (TOO_FEW, NOT_SOLUTIONS, CENSORED, BUDGET, NOT_RUN)

SOLUTION_ACCURACY = 0.99  # the paper's success threshold: a vector is a solution at >= 0.99
PAPER_STEPS = 5000  # the paper's budget per optimisation


@dataclass(frozen=True)
class Claim:
    """One verdict on one claim of the paper, with everything a reader needs to check it."""

    id: str  # "03.sharing_halves": notebook number and a short name
    claim: str  # the paper's statement
    where: str  # "Sec. 5, Table 3"
    paper: str  # the paper's number ("" where it gives none)
    ours: str  # our numbers behind the verdict
    n: str  # "6 texts × 1 seed × 7 lengths"
    rule: str  # the rule in words, with its thresholds
    verdict: str  # one of VERDICTS
    reason: str = ""  # inconclusive only: one of REASONS, then details
    notebook: str = ""  # "03_metrics", filled in by the ledger

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict {self.verdict!r} is not one of {VERDICTS}")
        if self.verdict == INCONCLUSIVE and not self.reason.startswith(REASONS):
            raise ValueError(
                f"claim {self.id}: an inconclusive verdict needs a reason starting with one of "
                f"{REASONS}, got {self.reason!r}"
            )
        if self.verdict != INCONCLUSIVE and self.reason:
            raise ValueError(f"claim {self.id}: only an inconclusive verdict has a reason")


COLUMNS = [f.name for f in fields(Claim)]


@dataclass(frozen=True)
class ClaimSpec:
    """What is fixed about a claim: its id, the paper's words and number, and the rule."""

    id: str
    claim: str
    where: str
    paper: str
    rule: str

    def judge(self, ok: bool, ours: str, n: str) -> Claim:
        """``holds`` when ``ok`` else ``does not hold`` (call only after the gates passed)."""
        return self._make(HOLDS if ok else FAILS, ours, n)

    def inconclusive(self, reason: str, detail: str, ours: str, n: str) -> Claim:
        """A failed gate: ``reason`` is one of :data:`REASONS`, ``detail`` says which numbers."""
        return self._make(INCONCLUSIVE, ours, n, f"{reason}: {detail}" if detail else reason)

    def _make(self, verdict: str, ours: str, n: str, reason: str = "") -> Claim:
        return Claim(
            id=self.id,
            claim=self.claim,
            where=self.where,
            paper=self.paper,
            ours=ours,
            n=n,
            rule=self.rule,
            verdict=verdict,
            reason=reason,
        )


def sig(x, digits: int = 3) -> str:
    """A number at ``digits`` significant digits (integers as they are; '-' for missing)."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == int(v) and abs(v) < 10 ** (digits + 3):
        return str(int(v))
    if abs(v) >= 10**digits:  # 1234.5 -> '1230', not '1.23e+03'
        return f"{round(v, digits - 1 - int(math.floor(math.log10(abs(v))))):.0f}"
    return f"{v:.{digits}g}" if abs(v) >= 1e-4 else f"{v:.{digits - 1}e}"


def count(k: int, noun: str) -> str:
    """``count(1, "seed")`` -> '1 seed'; ``count(3, "seed")`` -> '3 seeds'."""
    return f"{k} {noun}" + ("" if k == 1 else "s")


def n_of(texts: int | None = None, seeds: int | None = None, lengths: int | None = None,
         **more: int) -> str:  # fmt: skip
    """'6 texts × 1 seed × 7 lengths' (parts left out when None; ``more``: other units)."""
    parts = [(texts, "text"), (seeds, "seed"), (lengths, "length")]
    parts += [(v, k.rstrip("s").replace("_", " ")) for k, v in more.items()]
    return " × ".join(count(int(v), noun) for v, noun in parts if v is not None) or "0"


def claims_table(records) -> pd.DataFrame:
    """The records as a DataFrame with :data:`COLUMNS` (empty input: an empty frame)."""
    rows = [asdict(r) if isinstance(r, Claim) else dict(r) for r in records]
    return pd.DataFrame(rows, columns=COLUMNS)


def verdicts(records) -> dict[str, str]:
    """``{id: verdict}`` (for a notebook's metrics)."""
    df = records if isinstance(records, pd.DataFrame) else claims_table(records)
    return dict(zip(df["id"], df["verdict"]))


# ---- notebook 02: the paper's headline claim ---------------------------------------------------

ONE_PASS = ClaimSpec(
    id="02.one_pass_whole_text",
    claim="two trained input vectors let a frozen LM output a whole text in one forward pass",
    where="Sec. 3, Fig. 2",
    paper="accuracy 1.0 on texts below capacity (5000 steps)",
    rule=(
        "holds when at least half the texts are exact (accuracy 1.0) in one pass; does not "
        f"hold when fewer are and every text had the paper's {PAPER_STEPS} steps; needs >= 3 texts"
    ),
)


def one_pass_claims(batch: pd.DataFrame, max_steps: int, min_texts: int = 3) -> list[Claim]:
    """Notebook 02: ``batch`` rows of one ``reconstruct`` (one seed per text; columns
    ``exact_match``, ``accuracy``, ``num_tokens``); ``max_steps`` the budget each row had.
    Fewer than half exact within a budget below the paper's is inconclusive (budget too small):
    more steps may still get there, which is what the paper's 5000 steps are for."""
    if "exact_match" not in batch or "accuracy" not in batch:
        raise ValueError("batch needs exact_match and accuracy columns (rows of reconstruct)")
    k, exact = len(batch), int(batch["exact_match"].astype(bool).sum())
    lengths = sorted(set(batch["num_tokens"])) if "num_tokens" in batch else []
    at = f" at N = {', '.join(map(str, lengths))}" if lengths else ""
    ours = f"{exact} of {k} texts exact{at}; mean accuracy {sig(batch['accuracy'].mean())}"
    ours += f"; {max_steps} steps"
    n = n_of(texts=k, seeds=1, lengths=max(len(lengths), 1))
    if k < min_texts:
        return [ONE_PASS.inconclusive(TOO_FEW, f"{k} texts < {min_texts}", ours, n)]
    if 2 * exact >= k:
        return [ONE_PASS.judge(True, ours, n)]
    if max_steps < PAPER_STEPS:
        detail = f"{exact} of {k} exact after {max_steps} < {PAPER_STEPS} steps"
        return [ONE_PASS.inconclusive(BUDGET, detail, ours, n)]
    return [ONE_PASS.judge(False, ours, n)]
