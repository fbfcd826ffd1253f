"""The predecessor's chunks on the Hugging Face hub, loaded only when the hub answers quickly.

``datasets.load_dataset`` retries for minutes when the network is down, so it is called only
after :func:`hub_reachable` has seen the hub answer within a few seconds (and never when
``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` is set). The answer is remembered for the process;
``load_model`` asks the same question before it loads a hub id.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

_REACHABLE: dict[str, bool] = {}  # endpoint -> answer, for this process
_TRUE = {"1", "true", "yes", "on"}


def hub_offline_by_env() -> bool:
    """Whether the environment asks the Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers an HTTP request within ``timeout`` seconds (cached per process)."""
    if hub_offline_by_env():
        return False
    endpoint = hub_endpoint()
    if endpoint not in _REACHABLE:
        try:
            req = urllib.request.Request(f"{endpoint}/api/datasets?limit=1", method="HEAD")
            urllib.request.urlopen(req, timeout=timeout).close()
            ok = True
        except urllib.error.HTTPError:
            ok = True  # the server answered (rate limit, auth...): it is reachable
        except (OSError, ValueError):
            ok = False
        _REACHABLE[endpoint] = ok
    return _REACHABLE[endpoint]


def load_hub_texts(dataset_id: str) -> list[str]:
    """The ``text`` column of every split of ``dataset_id`` (the chunks in stored order).

    The predecessor's CSVs have a single ``text`` column; splits are concatenated in name order.
    """
    import datasets

    dsd = datasets.load_dataset(dataset_id)
    texts: list[str] = []
    for split in sorted(dsd):
        texts.extend(str(t) for t in dsd[split]["text"])
    return texts
