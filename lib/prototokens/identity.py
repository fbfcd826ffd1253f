"""Identity and hashing: the one place that says what makes two seeds, texts, tokenizers, models or
cached rows "the same".

- :func:`stable_seed`: a 63-bit seed from printable parts (vector inits, sampling seeds);
- :func:`text_fingerprint`: a token-id sequence;
- :func:`tokenizer_fingerprint`: vocabulary, merges and normalisation of a tokenizer;
- :func:`model_fingerprint`: a loaded model's config, a fixed sample of every weight, and its
  tokenizer (computed once per loaded model, see ``LoadedModel.fingerprint``);
- :func:`hash_json`: a short hash of JSON-serialisable inputs (the result store's cache keys).

Every hash here is independent of Python's hash randomisation and of the machine, so cache keys
and seeds are the same in every process. The engine's source hash (which also enters every cache
key) is :func:`prototokens.engine.store.engine_version`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

import numpy as np

# Weights sampled per parameter tensor by model_fingerprint: evenly spaced over the flattened
# tensor, so that two random inits (or a fine-tune that moved any layer) are told apart without a
# full pass over the weights.
WEIGHT_SAMPLES = 64

# Config fields that say where or with which library version a model was loaded, not what it is.
_CONFIG_NOISE = ("_name_or_path", "transformers_version", "_commit_hash")


def stable_seed(*parts) -> int:
    """A 63-bit seed from any printable parts; the same on every machine and Python run."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def text_fingerprint(token_ids: Sequence[int]) -> str:
    """Short content hash of a token sequence (used in seeds, text ids and cache keys)."""
    return hashlib.sha256(np.asarray(token_ids, dtype=np.int64).tobytes()).hexdigest()[:16]


def hash_json(obj: Any, length: int = 32) -> str:
    """Hex hash of a JSON-serialisable object (keys sorted; non-JSON values by ``str``)."""
    payload = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


_TOKENIZER_FPS: dict[int, tuple[object, str]] = {}  # id(tokenizer) -> (tokenizer, fingerprint)


def tokenizer_fingerprint(tokenizer) -> str:
    """A short stable hash of a tokenizer's vocabulary, merges, normalisation and special tokens
    (memoised per tokenizer object). ``None`` (a model wrapped without tokenizer) → ``"none"``."""
    if tokenizer is None:
        return "none"
    hit = _TOKENIZER_FPS.get(id(tokenizer))
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        payload = backend.to_str()
    else:  # slow tokenizer: its vocabulary is the best stable description at hand
        payload = repr(sorted(tokenizer.get_vocab().items()))
    fp = hashlib.sha256(payload.encode()).hexdigest()[:16]
    _TOKENIZER_FPS[id(tokenizer)] = (tokenizer, fp)
    return fp


def model_fingerprint(model, tokenizer=None) -> str:
    """A short hash of what a model computes: its config, a fixed sample of every weight tensor
    (:data:`WEIGHT_SAMPLES` values, evenly spaced, with the tensor's name, shape and dtype) and
    the tokenizer's fingerprint.

    Cheap for any size (a few hundred tiny reads, no pass over the weights), yet two random inits,
    two fine-tunes or one model in two precisions get different fingerprints, while reloading the
    same weights gives the same one. The device is *not* part of it: cache keys add the device
    type separately (``LoadedModel.fingerprint`` computes this once per loaded model).
    """
    import torch

    config = model.config.to_dict() if hasattr(model, "config") else {}
    for k in _CONFIG_NOISE:
        config.pop(k, None)
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
            if p.device.type == "meta" or p.numel() == 0:  # offloaded: shape and dtype only
                continue
            flat = p.detach().reshape(-1)
            n, k = flat.numel(), min(WEIGHT_SAMPLES, flat.numel())
            idx = torch.arange(k, dtype=torch.long) * (n - 1) // max(k - 1, 1)  # exact integers
            sample = flat[idx.to(flat.device)].float().cpu().numpy()  # (k,)
            h.update(sample.tobytes())
    return h.hexdigest()[:16]
