"""What notebook 06 runs between its single studies, and the numbers it reports.

The solutions of the locality set (:func:`prototokens.studies.geometry.locality_rows`) feed three
studies; these functions pick each study's rows and vectors from them, so that the notebook only
orchestrates:

- :func:`run_text_control` (Fig. 5): one solution per text (its first seed) with the decoded
  texts' TF-IDF and MiniLM distances beside the proto-token distance;
- :func:`connected_solutions` (Fig. 7): every seed of the first seeded continuations;
- :func:`run_probe` (Section 10): the read-out probe on the first solutions;
- :func:`geometry_metrics`: the metrics dict of notebook 06.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prototokens.studies import geometry, readout
from prototokens.studies.claims import verdicts
from prototokens.studies.summaries import finite


def first_seed_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per text: its solution with the lowest seed, in row order (index kept, so that
    ``vectors[rows.index]`` are its vectors)."""
    return rows.sort_values("seed").drop_duplicates("text_id").sort_index()


def run_text_control(
    lm, rows: pd.DataFrame, vectors: np.ndarray, semantic: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Fig. 5 on one solution per text. ``vectors``: (n, S, d) aligned with ``rows``, slot 0 = e.
    ``semantic=False`` skips MiniLM. Returns ``(first-seed rows, text pairs with the three
    distances, a message: "" when every distance ran, else why one is missing)``."""
    seed0 = first_seed_rows(rows)
    decoded = [lm.tokenizer.decode(ids) for ids in seed0.token_ids]
    sim, message = geometry.run_text_similarity(
        seed0, vectors[seed0.index, 0], decoded, semantic=None if semantic else False
    )
    return seed0, sim, message


def connected_solutions(
    rows: pd.DataFrame, vectors: np.ndarray, first_seed: int, num_texts: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows (index reset) and (n, S, d) vectors of every seed of the first ``num_texts`` texts
    that have solutions beyond ``first_seed``: the endpoints Fig. 7 connects."""
    seeded = rows[rows.seed > first_seed].text_id.unique()[:num_texts]
    keep = rows.text_id.isin(seeded).to_numpy()
    return rows[keep].reset_index(drop=True), vectors[keep]


def describe_fit(fit, pairs: pd.DataFrame) -> str:
    """One line on the control-point training of Fig. 7: pairs and the loss before and after."""
    if not len(fit.loss_curve):
        return f"{len(pairs)} pairs; no training steps"
    return (
        f"{len(pairs)} pairs; control-point loss {fit.loss_curve[0]:.2f} -> "
        f"{fit.loss_curve[-1]:.2f} nats (sampled τ, mean per pair)"
    )


def run_probe(
    lm, rows: pd.DataFrame, vectors: np.ndarray, arrangement: str, num_texts: int
) -> pd.DataFrame:
    """The read-out probe (:func:`prototokens.studies.readout.run_readout`) on the first
    ``num_texts`` of ``rows`` (index into ``vectors``: (n, 2, d), slots e and m)."""
    import torch

    chosen = rows.head(num_texts)
    vecs = [
        {"e": torch.from_numpy(v[0]), "m": torch.from_numpy(v[1])} for v in vectors[chosen.index]
    ]
    return readout.run_readout(lm, chosen, vecs, arrangement)


def geometry_metrics(
    lm,
    *,
    source: str,
    num_tokens: int,
    rows: pd.DataFrame,
    tests: pd.DataFrame,
    pairs: pd.DataFrame,
    correlations: pd.DataFrame,
    semantic_message: str,
    path: pd.DataFrame,
    connections: pd.DataFrame,
    probe: pd.DataFrame,
    claims=(),
) -> dict:
    """Notebook 06's metrics: solutions, locality tests, distance medians, rank correlations,
    connectivity, the read-out probe and the claims' verdicts (None where not finite)."""
    return {
        "model": lm.name,
        "device": str(lm.device),
        "source": source,
        "num_tokens": num_tokens,
        "num_solutions": int(len(rows)),
        "solution_accuracy": float(rows.accuracy.mean()),
        "locality": {
            r.ordering: {
                "p_value": finite(r.p_value),
                "median_closer": finite(r.median_closer),
                "median_farther": finite(r.median_farther),
            }
            for r in tests.itertuples()
        },
        "distance_median": pairs.groupby("kind").distance.median().to_dict(),
        "spearman": {
            f"{r.text_distance}/{r.pairs}": r.spearman
            for r in correlations.itertuples()
            if np.isfinite(r.spearman)
        },
        "semantic_available": not semantic_message,
        "connectivity": {
            "n_pairs": int(len(connections)),
            "line_mean_ce_nats": float(path[path.path == "line"].ce_nats.mean()),
            "bezier_mean_ce_nats": float(path[path.path == "bezier"].ce_nats.mean()),
            "line_min_accuracy": float(connections.line_min_accuracy.mean()),
            "bezier_min_accuracy": float(connections.bezier_min_accuracy.mean()),
            "max_length_ratio": float(connections.length_ratio.max()),
        },
        "readout": {
            "generated_match_fraction": float(probe.generated_match_fraction.mean()),
            "one_pass_match_fraction": float(probe.one_pass_match_fraction.mean()),
        },
        "claims": verdicts(claims),
    }
