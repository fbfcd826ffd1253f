"""Identity: one definition of every seed and fingerprint, and cached rows that belong to the
model, precision and device type that made them (issue 7, section 1)."""

from __future__ import annotations

import pytest
import torch
from prototokens import identity
from prototokens.engine import train
from prototokens.engine.recipe import Recipe
from prototokens.engine.reconstruction import model_identity, reconstruct
from prototokens.engine.store import ResultStore, cache_key
from prototokens.inputs.data import base, generated, pools
from prototokens.inputs.models import load_model, wrap_model
from support import count_optimize, tiny_model, tiny_tokenizer

RECIPE = Recipe(name="test", lr=0.1, max_steps=3)
TEXT = ["The quick brown fox jumps over"]


def test_one_definition_per_helper():
    """Engine and data modules use the identity module's functions, not copies of their own."""
    assert train.stable_seed is identity.stable_seed
    assert train.text_fingerprint is identity.text_fingerprint
    assert generated.stable_seed is identity.stable_seed
    assert generated.model_fingerprint is identity.model_fingerprint
    assert (
        base.tokenizer_fingerprint is pools.tokenizer_fingerprint is identity.tokenizer_fingerprint
    )
    assert not hasattr(base, "stable_seed")


def test_stable_seed_keeps_the_engine_formula():
    """Pinned values: vector inits made before the identity module existed stay as they were."""
    assert identity.stable_seed("row", "e", "0123456789abcdef:0") == 3599726162434658173
    assert identity.text_fingerprint([1, 2, 3]) == "e2e2033ae7e19d68"
    assert 0 <= identity.stable_seed("x") < 2**63


def test_model_fingerprint_tells_models_apart():
    tok = tiny_tokenizer()
    a, a2, b = tiny_model(seed=0), tiny_model(seed=0), tiny_model(seed=1)
    fp = identity.model_fingerprint
    assert fp(a, tok) == fp(a2, tok)  # same weights, config and tokenizer
    assert fp(a, tok) != fp(b, tok)  # another random init
    assert fp(a, tok) != fp(tiny_model(seed=0, dtype=torch.bfloat16), tok)  # another precision
    assert fp(a, tok) != fp(a, tiny_tokenizer(family="smollm2"))  # another tokenizer
    assert fp(a, tok) != fp(a, None)
    with torch.no_grad():  # one weight of a middle layer moved: a fine-tune is another model
        a2.model.layers[1].mlp.down_proj.weight.view(-1)[0] += 1.0
    assert fp(a2, tok) != fp(a, tok)


def test_two_unnamed_models_do_not_share_rows(tmp_path, monkeypatch):
    """The issue's reproduction: two in-memory models under the default name, one store."""
    store = ResultStore(tmp_path)
    calls = count_optimize(monkeypatch)
    a = wrap_model(tiny_model(seed=0), tiny_tokenizer())
    b = wrap_model(tiny_model(seed=1), tiny_tokenizer())
    assert a.name != b.name and a.name.startswith("custom-")
    ra = reconstruct(a, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    rb = reconstruct(b, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    assert sum(calls) == 2, "the second model must optimise, not read the first model's row"
    assert ra.cache_key != rb.cache_key
    assert (ra.model_fingerprint, ra.model) == (a.fingerprint, a.name)
    assert rb.model_fingerprint == b.fingerprint != a.fingerprint
    assert ra.h_lm_nats != rb.h_lm_nats
    # the same weights under the same name hit the cache
    same = wrap_model(tiny_model(seed=0), tiny_tokenizer())
    assert same.name == a.name
    again = reconstruct(same, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    assert sum(calls) == 2 and again.cache_key == ra.cache_key


def test_precision_is_part_of_the_key(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    calls = count_optimize(monkeypatch)
    f32 = wrap_model(tiny_model(seed=0), tiny_tokenizer(), name="tiny")
    b16 = wrap_model(tiny_model(seed=0, dtype=torch.bfloat16), tiny_tokenizer(), name="tiny")
    assert model_identity(f32)["dtype"] == "float32" and model_identity(b16)["dtype"] == "bfloat16"
    r32 = reconstruct(f32, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    r16 = reconstruct(b16, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    assert sum(calls) == 2 and r32.cache_key != r16.cache_key
    assert (r32["dtype"], r16["dtype"]) == ("float32", "bfloat16")


def test_device_type_is_part_of_the_key(tiny_llama, monkeypatch):
    """The same model seen on a GPU: another key (a CPU row's wall time never lands in a GPU
    table). The device is faked; nothing runs on it."""
    cpu = model_identity(tiny_llama)
    monkeypatch.setattr(type(tiny_llama), "device", property(lambda self: torch.device("cuda", 0)))
    gpu = model_identity(tiny_llama)
    assert (cpu["device_type"], gpu["device_type"]) == ("cpu", "cuda")
    assert cache_key(**cpu) != cache_key(**gpu)


def test_reloading_the_same_spec_hits_the_cache(tmp_path, monkeypatch):
    """A model saved with save_pretrained and loaded twice from its directory: same fingerprint,
    same key, one optimisation; loaded in bf16 it is another key."""
    path = tmp_path / "tiny-model"
    tiny_model(seed=3).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    store = ResultStore(tmp_path / "store")
    calls = count_optimize(monkeypatch)
    first = load_model(str(path), device="cpu")
    r1 = reconstruct(first, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    second = load_model(str(path), device="cpu")
    assert second is not first and second.fingerprint == first.fingerprint
    r2 = reconstruct(second, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    assert sum(calls) == 1 and r2.cache_key == r1.cache_key
    half = load_model(str(path), device="cpu", dtype="bf16")
    assert half.fingerprint != first.fingerprint
    assert model_identity(half)["dtype"] == "bfloat16"
    r3 = reconstruct(half, TEXT, recipe=RECIPE, store=store, progress=False).iloc[0]
    assert sum(calls) == 2 and r3.cache_key != r1.cache_key


@pytest.mark.slow
def test_smollm2_fingerprint_is_stable(smollm2):
    again = load_model("smollm2-135m", device="cpu")
    assert again.fingerprint == smollm2.fingerprint
