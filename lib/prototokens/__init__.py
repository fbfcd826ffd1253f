"""prototokens: one-forward text reconstruction from two trained input vectors.

Companion library to Mezentsev & Oseledets, "Exploring the Hidden Capacity of LLMs for One-Step
Text Generation" (EMNLP 2025, arXiv 2505.21189). The layers, bottom up:

- :mod:`prototokens.engine`: arrangements, recipes, batched forward and optimiser, metrics, the
  row store and the cached ``reconstruct``;
- :mod:`prototokens.inputs`: models (embedded GGUFs, hub ids, tiny random-init) and text sources;
- :mod:`prototokens.studies`: one module per notebook topic (``run_*`` → DataFrame,
  ``plot_*`` → Figure);
- :mod:`prototokens.harness`: runner, session, artefacts, report, plots, widgets.

The calls a user needs first are offered here and imported lazily, so ``import prototokens`` stays
fast: ``load_model``, ``wrap_model``, ``load_texts``, ``reconstruct``, ``optimize``, ``predict``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_model": "prototokens.inputs.models",
    "wrap_model": "prototokens.inputs.models",
    "load_texts": "prototokens.inputs.data",
    "Text": "prototokens.inputs.data",
    "reconstruct": "prototokens.engine.experiments",
    "optimize": "prototokens.engine.train",
    "predict": "prototokens.engine.train",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prototokens' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
