"""The engine: arrangements, recipes, the batched forward and optimiser, metrics and the row store.

``optimize`` trains proto-tokens for a batch of texts, ``predict`` decodes trained vectors in one
forward pass, and ``reconstruct`` (in :mod:`prototokens.engine.experiments`) is the cached call the
notebooks make. Everything here is independent of Jupyter.
"""

from __future__ import annotations

from prototokens.engine.train import Progress, RowResult, optimize, predict

__all__ = ["Progress", "RowResult", "optimize", "predict"]
