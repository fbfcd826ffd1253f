"""The paper's claims about model size and family (Sec. 5, Table 3, Fig. 1), judged on notebook
05's family table (:func:`prototokens.studies.families.family_table`).

The paper gives a direction per family: Llama's capacity grows with size (362, 512, 724 tokens
from 1B to 8B), Pythia's stays flat (128, 181, 131; 90, 92, 90 on random text); and at similar
size Llama-3.2-1B holds about 3x the tokens of Pythia-1.4B. Each is judged only where this run
loaded the models it is about; a model's capacity is its best over sources and texts (the
paper's Fig. 1 aggregation) with m per text.
"""

from __future__ import annotations

import math

import pandas as pd

from prototokens.studies.claims import (
    BUDGET,
    CENSORED,
    NOT_RUN,
    TOO_FEW,
    Claim,
    ClaimSpec,
    n_of,
    sig,
)

SIMILAR_SIZE = 1.5  # two models are "of similar size" when their parameter counts differ < 1.5x
MIN_TEXTS = 3  # texts per model and source behind a best capacity
GRID_STEP = math.sqrt(2)  # one step of the paper's length grid
GROWS = 2.0  # "grows": largest / smallest model's capacity >= two grid steps (Llama 1B->8B: 2.0)
FLAT = GRID_STEP * 1.01  # "flat": max / min capacity within one grid step (Pythia: 181 / 128)
FACTOR = 2.0  # "about 3x": Llama's capacity >= this multiple of a Pythia of similar size

LLAMA_GROWS = ClaimSpec(
    id="05.llama_grows",
    claim="Llama's capacity grows with model size",
    where="Sec. 5, Table 3, Fig. 1",
    paper="Llama-3.2-1B / 3.2-3B / 3.1-8B: 362, 512, 724 tokens",
    rule=(
        "over the Llama models loaded, by size: best capacity never falls and the largest has >= "
        f"{GROWS}x the smallest's (two sqrt(2) grid steps); needs >= 2 models, >= {MIN_TEXTS} "
        "texts each, no best capacity censored at the longest length"
    ),
)
PYTHIA_FLAT = ClaimSpec(
    id="05.pythia_flat",
    claim="Pythia's capacity does not grow with model size",
    where="Sec. 5, Table 3, Fig. 1",
    paper="Pythia-160M / 410M / 1.4B: 128, 181, 131 tokens (random text: 90, 92, 90)",
    rule=(
        "over the Pythia models loaded: largest / smallest best capacity <= sqrt(2) (within one "
        f"grid step); needs >= 2 models, >= {MIN_TEXTS} texts each, no best capacity censored"
    ),
)
LLAMA_VS_PYTHIA = ClaimSpec(
    id="05.llama_vs_pythia",
    claim="at similar size a Llama model holds about 3x the tokens of a Pythia model",
    where="Sec. 5, Table 3",
    paper="Llama-3.2-1B 362 vs Pythia-1.4B 131 tokens (2.8x)",
    rule=(
        f"every Llama / Pythia pair within {SIMILAR_SIZE}x in parameters: Llama's best capacity "
        f">= {FACTOR}x Pythia's; needs >= {MIN_TEXTS} texts per model, Pythia not censored"
    ),
)


def per_model(table: pd.DataFrame, setting: str = "per-text") -> pd.DataFrame:
    """One row per loaded model: family, params, best capacity over sources, whether that best
    is censored, and the fewest texts behind a source."""
    cols = ["model", "family", "params", "capacity", "censored", "texts"]
    if table.empty or "status" not in table:
        return pd.DataFrame(columns=cols)
    ok = table[(table["status"] == "ok") & (table["setting"] == setting)]
    if "primary" in ok:  # each model on its own arrangement (the paper's: plain Eq. 1)
        ok = ok[ok["primary"].astype(bool)]
    out = []
    for model, g in ok.groupby("model", sort=False):
        best = g.loc[g["capacity_best"].idxmax()]
        out.append(
            {
                "model": model,
                "family": str(best["family"]),
                "params": float(best["params"]),
                "capacity": int(best["capacity_best"]),
                "censored": bool(best.get("censored_texts", 0) or 0),
                "texts": int(g["texts"].min()) if "texts" in g else 0,
            }
        )
    return pd.DataFrame(out, columns=cols).sort_values("params").reset_index(drop=True)


def _of(models: pd.DataFrame, family: str) -> pd.DataFrame:
    return models[models["family"].str.startswith(family)]


def _ours(g: pd.DataFrame) -> str:
    return ", ".join(
        f"{r.model} {r.capacity}{' (censored)' if r.censored else ''}" for r in g.itertuples()
    )


def _gates(spec: ClaimSpec, g: pd.DataFrame, family: str, ours: str, n: str) -> Claim | None:
    if g.empty:
        return spec.inconclusive(NOT_RUN, f"no {family} model loaded", ours, n)
    if len(g) < 2:
        return spec.inconclusive(TOO_FEW, f"one {family} model loaded", ours, n)
    if int(g["texts"].min()) < MIN_TEXTS:
        return spec.inconclusive(TOO_FEW, f"{int(g['texts'].min())} texts < {MIN_TEXTS}", ours, n)
    if (g["capacity"] == 0).all():
        return spec.inconclusive(BUDGET, "no model reached any length", ours, n)
    if g["censored"].any():
        return spec.inconclusive(CENSORED, "a model's best is the longest length tried", ours, n)
    return None


def _n(g: pd.DataFrame) -> str:
    texts = int(g["texts"].min()) if len(g) else 0
    return n_of(models=len(g), texts=texts)


def growth_claims(models: pd.DataFrame) -> list[Claim]:
    """Llama grows, Pythia stays flat (each judged on its own family's models)."""
    out = []
    for spec, family in ((LLAMA_GROWS, "Llama"), (PYTHIA_FLAT, "Pythia")):
        g = _of(models, family)
        caps = g["capacity"].to_numpy(float)
        ratio = caps.max() / max(caps.min(), 1.0) if len(caps) else float("nan")
        ours = _ours(g) + (f"; largest/smallest {sig(caps[-1] / max(caps[0], 1.0))}"
                           if len(caps) > 1 else "")  # fmt: skip
        n = _n(g)
        failed = _gates(spec, g, family, ours or "-", n)
        if failed:
            out.append(failed)
        elif family == "Llama":
            grows = bool((caps[1:] >= caps[:-1]).all() and caps[-1] >= GROWS * caps[0])
            out.append(spec.judge(grows, ours, n))
        else:
            out.append(spec.judge(bool(ratio <= FLAT), ours, n))
    return out


def llama_vs_pythia_claim(models: pd.DataFrame) -> Claim:
    spec = LLAMA_VS_PYTHIA
    llama, pythia = _of(models, "Llama"), _of(models, "Pythia")
    pairs = [
        (a, b)
        for a in llama.itertuples()
        for b in pythia.itertuples()
        if max(a.params, b.params) / max(min(a.params, b.params), 1.0) < SIMILAR_SIZE
    ]
    both = pd.concat([llama, pythia])
    n = _n(both)
    if not pairs:
        sizes = ", ".join(f"{r.model} {sig(r.params / 1e6)}M" for r in both.itertuples()) or "-"
        return spec.inconclusive(NOT_RUN, f"no Llama / Pythia pair within {SIMILAR_SIZE}x "
                                 "in size", sizes, n)  # fmt: skip
    ours = "; ".join(
        f"{a.model} {a.capacity} vs {b.model} {b.capacity} "
        f"({sig(a.capacity / max(b.capacity, 1))}x)"
        for a, b in pairs
    )
    if min(min(a.texts, b.texts) for a, b in pairs) < MIN_TEXTS:
        return spec.inconclusive(TOO_FEW, f"< {MIN_TEXTS} texts per model", ours, n)
    ok = [a.capacity >= FACTOR * b.capacity for a, b in pairs]
    if any(b.censored for _, b in pairs) or (not all(ok) and any(a.censored for a, _ in pairs)):
        return spec.inconclusive(CENSORED, "a model's best is the longest length tried", ours, n)
    return spec.judge(all(ok), ours, n)


def family_claims(table: pd.DataFrame, setting: str = "per-text") -> list[Claim]:
    """Notebook 05's three claims from its family table (skipped models are left out)."""
    if len(table) and "status" not in table:
        raise ValueError("family_claims needs family_table rows (a 'status' column)")
    models = per_model(table, setting)
    return [*growth_claims(models), llama_vs_pythia_claim(models)]
