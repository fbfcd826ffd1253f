"""The paper's published numbers, for display beside ours (always labelled as the paper's).

Nothing here feeds a computation of ours: tables and figures are computed from this run's rows,
and these values are drawn or printed next to them so that a reader can compare. Source:
``shared/reference/paper.md`` (Mezentsev & Oseledets, EMNLP 2025), section 5 (models, with the
input widths and vocabularies of Kuratov et al.'s ``models_list``) and Table 3.
"""

from __future__ import annotations

import pandas as pd

# model -> (family, parameters, d_model, vocabulary). Parameter counts are the checkpoints' own.
PAPER_MODELS: dict[str, tuple[str, float, int, int]] = {
    "Pythia-160M": ("Pythia", 162.3e6, 768, 50304),
    "Pythia-410M": ("Pythia", 405.3e6, 1024, 50304),
    "Pythia-1.4B": ("Pythia", 1414.6e6, 2048, 50304),
    "Llama-3.2-1B": ("Llama", 1235.8e6, 2048, 128256),
    "Llama-3.2-3B": ("Llama", 3212.7e6, 3072, 128256),
    "Llama-3.1-8B": ("Llama", 8030.3e6, 4096, 128256),
}

# Table 3: C_tokens (longest length reconstructed at >= 0.99 accuracy, best over texts) and
# H_LM mean (the paper's unit; nats per its predecessor's code) by dataset and sharing of m.
_T3_MODELS = list(PAPER_MODELS)
_T3 = {
    ("random", False): ([90, 92, 90, 256, 362, 512], [507.5, 377.1, 470.7, 1551.3, 2193.4, 2974.4]),
    ("random", True): ([45, 22, 45, 181, 256, 256], [247.9, 91.1, 231.0, 947.7, 1292.2, 1309.4]),
    ("fanfics", False): (
        [128, 128, 131, 362, 512, 724],
        [358.9, 395.4, 261.0, 1107.6, 1408.4, 1763.3],
    ),
    ("fanfics", True): ([45, 45, 45, 181, 288, 362], [145.0, 82.3, 147.9, 576.4, 835.9, 1112.8]),
    ("pg19", False): ([128, 167, 128, 362, 512, 724], [388.4, 408.8, 298.4, 993.8, 1346.0, 1659.8]),
    ("pg19", True): ([45, 32, 64, 181, 256, 362], [156.0, 88.1, 156.0, 456.5, 826.1, 832.3]),
}


def paper_table3() -> pd.DataFrame:
    """Table 3 in long form: one row per (source, shared m, model) with ``c_tokens`` and the mean
    ``h_lm``, plus the model's family, parameters, width and vocabulary; ``origin`` = "paper"."""
    rows = []
    for (source, shared), (caps, hlms) in _T3.items():
        for model, cap, h in zip(_T3_MODELS, caps, hlms):
            family, params, d, vocab = PAPER_MODELS[model]
            rows.append(
                {
                    "origin": "paper",
                    "model": model,
                    "family": family,
                    "params": params,
                    "d_model": d,
                    "vocab_size": vocab,
                    "source": source,
                    "shared_m": shared,
                    "c_tokens": cap,
                    "h_lm": h,
                }
            )
    return pd.DataFrame(rows)
