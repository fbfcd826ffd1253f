"""The paper's published numbers, for display beside ours (always labelled as the paper's).

Nothing here feeds a computation of ours: tables and figures are computed from this run's rows,
and these values are drawn or printed next to them so that a reader can compare. Source:
``shared/reference/paper.md`` (Mezentsev & Oseledets, EMNLP 2025), section 5 (models, with the
input widths and vocabularies of Kuratov et al.'s ``models_list``), Tables 3 and 4. Beside a model
that is not one of the paper's six, the paper's model nearest in size is shown
(:func:`nearest_paper_model`), always under the paper's name with "(paper)".
"""

from __future__ import annotations

import math

import pandas as pd

# Paper Table 3 (v2): (model, dataset, share m) -> (C_tokens, H_LM mean, H_LM std); H_LM in nats
# as far as the paper's units can be told (see paper.md Section 4).
_T3 = {
    "random": {
        False: [(90, 507.5, 105.9), (92, 377.1, 133.1), (90, 470.7, 103.1),
                (256, 1551.3, 159.5), (362, 2193.4, 190.2), (512, 2974.4, 298.3)],
        True: [(45, 247.9, 32.0), (22, 91.1, 30.8), (45, 231.0, 37.9),
               (181, 947.7, 155.0), (256, 1292.2, 217.4), (256, 1309.4, 234.6)],
    },
    "fanfics": {
        False: [(128, 358.9, 73.3), (128, 395.4, 97.8), (131, 261.0, 56.4),
                (362, 1107.6, 129.1), (512, 1408.4, 179.5), (724, 1763.3, 280.2)],
        True: [(45, 145.0, 26.2), (45, 82.3, 28.1), (45, 147.9, 29.7),
               (181, 576.4, 90.4), (288, 835.9, 121.7), (362, 1112.8, 168.6)],
    },
    "pg19": {
        False: [(128, 388.4, 66.4), (167, 408.8, 96.3), (128, 298.4, 77.4),
                (362, 993.8, 183.4), (512, 1346.0, 218.4), (724, 1659.8, 344.5)],
        True: [(45, 156.0, 33.9), (32, 88.1, 30.3), (64, 156.0, 30.2),
               (181, 456.5, 56.5), (256, 826.1, 117.6), (362, 832.3, 171.0)],
    },
    "pg19_gen": {
        False: [(128, 354.1, 72.0), (181, 379.2, 82.6), (128, 277.6, 71.3),
                (362, 927.3, 103.4), (512, 1266.6, 125.9), (724, 1653.1, 211.4)],
        True: [(45, 153.0, 17.8), (32, 106.9, 38.5), (64, 197.1, 39.3),
               (181, 478.7, 85.7), (362, 788.6, 130.8), (362, 771.7, 143.0)],
    },
}  # fmt: skip
PAPER_MODELS = (  # hub ids, in Table 3's column order
    "EleutherAI/pythia-160m",
    "EleutherAI/pythia-410m",
    "EleutherAI/pythia-1.4b",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.1-8B",
)
PAPER_TABLE3 = pd.DataFrame(
    [
        {
            "model": m,
            "source": src,
            "setting": "shared m" if share else "per-text",
            "paper_c_tokens": c,
            "paper_h_lm_mean": h,
            "paper_h_lm_std": s,
        }
        for src, by_share in _T3.items()
        for share, vals in by_share.items()
        for m, (c, h, s) in zip(PAPER_MODELS, vals)
    ]
)
PAPER_FIG1 = dict(zip(PAPER_MODELS, (128, 181, 131, 362, 512, 724)))  # best over datasets
# Paper Table 4: training seconds per text (A100/H100, averaged over datasets); None = "-"
PAPER_TABLE4_LENGTHS = (32, 64, 128, 256, 512)
_T4 = {
    "EleutherAI/pythia-160m": (6, 25, 68, None, None),
    "EleutherAI/pythia-410m": (10, 21, 106, None, None),
    "EleutherAI/pythia-1.4b": (10, 66, 129, None, None),
    "meta-llama/Llama-3.2-1B": (11, 15, 27, 87, None),
    "meta-llama/Llama-3.2-3B": (14, 18, 28, 78, 261),
    "meta-llama/Llama-3.1-8B": (16, 20, 29, 60, 215),
}
PAPER_TABLE4 = pd.DataFrame(
    [
        {"paper_model": m, "num_tokens": n, "paper_seconds": float(s)}
        for m, secs in _T4.items()
        for n, s in zip(PAPER_TABLE4_LENGTHS, secs)
        if s is not None
    ]
)
PAPER_ARRANGEMENT = "e+m*(N-1)"  # the paper's Eq. 1 as fed to its models (no start token)
# parameter counts of the embedded models (``inputs.models.EMBEDDED``), for the nearest paper model
EMBEDDED_PARAMS = {"smollm2-135m": 134.5e6, "gemma3-270m": 268.1e6}


def paper_model(name: str) -> str | None:
    """The paper's model id matching ``name`` (case-insensitive, with or without the org)."""
    low = name.lower().rstrip("/")
    for m in PAPER_MODELS:
        if low == m.lower() or low == m.split("/")[1].lower() or low.endswith("/" + m.lower()):
            return m
    return None


# hub id -> (short name, family, parameters, d_model, vocabulary); parameters are the checkpoints'
PAPER_MODEL_FACTS: dict[str, tuple[str, str, float, int, int]] = {
    "EleutherAI/pythia-160m": ("Pythia-160M", "Pythia", 162.3e6, 768, 50304),
    "EleutherAI/pythia-410m": ("Pythia-410M", "Pythia", 405.3e6, 1024, 50304),
    "EleutherAI/pythia-1.4b": ("Pythia-1.4B", "Pythia", 1414.6e6, 2048, 50304),
    "meta-llama/Llama-3.2-1B": ("Llama-3.2-1B", "Llama", 1235.8e6, 2048, 128256),
    "meta-llama/Llama-3.2-3B": ("Llama-3.2-3B", "Llama", 3212.7e6, 3072, 128256),
    "meta-llama/Llama-3.1-8B": ("Llama-3.1-8B", "Llama", 8030.3e6, 4096, 128256),
}


def paper_table3() -> pd.DataFrame:
    """Table 3 in long form with each model's facts: one row per (model, source, setting) with
    ``c_tokens``, ``h_lm`` (mean), ``family``, ``params``, ``d_model``, ``vocab_size``,
    ``shared_m`` and ``origin`` = "paper"."""
    t = PAPER_TABLE3.rename(columns={"paper_c_tokens": "c_tokens", "paper_h_lm_mean": "h_lm"})
    facts = pd.DataFrame(
        [(k, *v) for k, v in PAPER_MODEL_FACTS.items()],
        columns=["hub_id", "name", "family", "params", "d_model", "vocab_size"],
    )
    t = t.merge(facts, left_on="model", right_on="hub_id").drop(columns=["hub_id", "model"])
    t = t.rename(columns={"name": "model"})
    t["shared_m"] = t["setting"] == "shared m"
    t["origin"] = "paper"
    return t


def nearest_paper_model(name: str, params: float | None = None) -> str | None:
    """The paper's model to show beside ``name``: the model itself when it is one of the paper's
    six, else the paper's model nearest in parameter count on a log scale (the smallest ratio
    max/min), from ``params`` or, for an embedded model, :data:`EMBEDDED_PARAMS`. SmolLM2-135M
    gets Pythia-160M (1.21x) and Gemma-3-270M Pythia-410M (1.51x, against 1.65x for 160M).
    None when the size is unknown."""
    own = paper_model(name)
    if own:
        return own
    if params is None:
        params = EMBEDDED_PARAMS.get(name.lower().rstrip("/"))
    if params is None or not params > 0:
        return None
    return min(PAPER_MODELS, key=lambda m: abs(math.log(PAPER_MODEL_FACTS[m][2] / params)))


def paper_name(hub_id: str) -> str:
    """The paper's short name of one of its models, labelled as the paper's: "Pythia-160M
    (paper)"."""
    return f"{PAPER_MODEL_FACTS[hub_id][0]} (paper)"
