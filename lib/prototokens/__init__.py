"""prototokens: one-forward text reconstruction from two trained input vectors.

Companion library to Mezentsev & Oseledets, "Exploring the Hidden Capacity of LLMs for One-Step
Text Generation" (EMNLP 2025, arXiv 2505.21189).

The layers, bottom up. A module imports from its own layer and the layers listed before it, never
from one listed after it (``tests/test_house_rules.py`` reads this list and checks every import):

- the top-level modules (:mod:`prototokens.paths`, :mod:`prototokens.files`,
  :mod:`prototokens.identity`, :mod:`prototokens.records`, :mod:`prototokens.envcheck`): paths,
  atomic files, fingerprints, the shared :class:`~prototokens.records.Text` record, the environment
  check;
- :mod:`prototokens.engine`: arrangements, recipes, batched forward and optimiser, metrics, the
  row store and the cached ``reconstruct``;
- :mod:`prototokens.inputs`: models (embedded GGUFs, hub ids, random-init architectures) and text
  sources;
- :mod:`prototokens.studies`: one module per notebook topic (tables, figures, metrics);
- :mod:`prototokens.harness`: runner, session, artefacts, report, widgets.

The public API is this module: the calls a user needs first, imported lazily so that
``import prototokens`` stays fast: ``load_model``, ``wrap_model``, ``load_texts``, ``Text``,
``reconstruct``, ``optimize``, ``predict``. Subpackages do not re-export; everything else is
imported from the module that defines it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_model": "prototokens.inputs.models",
    "wrap_model": "prototokens.inputs.models",
    "load_texts": "prototokens.inputs.data.sources",
    "Text": "prototokens.records",
    "reconstruct": "prototokens.engine.reconstruction",
    "optimize": "prototokens.engine.train",
    "predict": "prototokens.engine.decoding",
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
