"""The engine: arrangements, recipes, the batched forward and optimiser, metrics and the row store.

``train.optimize`` trains proto-tokens for a batch of texts, ``decoding.predict`` decodes trained
vectors in one forward pass, and ``reconstruction.reconstruct`` is the cached call the notebooks
make. Everything here is independent of Jupyter. Nothing is re-exported here: import from the
module that defines a name, or use the lazy top-level API (:mod:`prototokens`).
"""
