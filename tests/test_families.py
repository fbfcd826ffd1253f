"""Model-family sweep (notebook 05): loading one model at a time from saved folders, skipped
models, release between models, the family table, the claims and the figure."""

from __future__ import annotations

import gc
import weakref

import pandas as pd
import pytest
from prototokens.engine.recipe import get_recipe
from prototokens.inputs.data.base import exact_text
from prototokens.inputs.models import load_model
from prototokens.studies import families
from support import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A tiny random-init Llama and GPT-NeoX saved with save_pretrained: hub-style folders."""
    root = tmp_path_factory.mktemp("family_models")
    out = []
    for arch in ("llama", "gpt_neox"):
        path = root / f"tiny-{arch}"
        tiny_model(arch, seed=1).save_pretrained(path)
        tiny_tokenizer().save_pretrained(path)
        out.append(str(path))
    return out


def _texts_for(lm):
    ids = lm.tokenizer("The quick brown fox jumps over the lazy dog.", add_special_tokens=False)
    ids = ids["input_ids"][:8]
    texts = [
        exact_text(lm.tokenizer, ids, text_id="fox", source="custom", label="custom"),
        exact_text(lm.tokenizer, ids[::-1], text_id="xof", source="custom", label="custom"),
    ]
    return {"custom": texts}


def _kwargs(tmp_path):
    from prototokens.engine.store import ResultStore

    return dict(
        recipe=get_recipe("fast").with_(max_steps=3),
        seeds=[0],
        max_length=5,
        store=ResultStore(tmp_path / "runs"),
        device="cpu",
    )


def test_family_loop_on_saved_folders_with_a_skipped_model(saved_models, tmp_path):
    seen = []
    alive = []

    def loader(spec):
        # the previous model must be gone before the next one is loaded
        assert all(ref() is None for ref in alive), "previous model still in memory"
        lm = load_model(spec, device="cpu")
        alive.append(weakref.ref(lm.model))
        return lm

    runs = families.run_model_families(
        [saved_models[0], "no-such-model-spec", saved_models[1]],
        _texts_for,
        loader=loader,
        on_model=seen.append,
        **_kwargs(tmp_path),
    )
    gc.collect()
    assert [r.status for r in runs] == ["ok", "skipped", "ok"]
    assert "unknown model spec" in runs[1].reason
    assert [r.spec for r in seen] == [r.spec for r in runs]
    assert all(ref() is None for ref in alive)
    assert runs[0].facts["family"] == "Llama" and runs[2].facts["family"] == "Pythia (GPT-NeoX)"
    n_params = sum(p.numel() for p in tiny_model("llama", seed=1).parameters())
    assert runs[0].facts["params"] == n_params
    # both settings ran: m per text and one m shared by the source's texts
    assert set(runs[0].attempts["setting"]) == {"per-text", "shared m"}

    table = families.family_table(runs)
    skipped = table[table.status == "skipped"]
    assert list(skipped.model) == ["no-such-model-spec"] and skipped.reason.iloc[0]
    ok = table[table.status == "ok"]
    assert len(ok) == 4  # 2 models x 1 source x 2 settings
    assert (ok.theoretical_capacity > 0).all() and ok.utilisation.notna().all()
    seconds = families.seconds_per_length(runs)
    assert set(seconds.model) == {saved_models[0], saved_models[1]}
    assert (seconds.seconds_per_text >= 0).all()
    fig = families.plot_capacity_vs_model_size(table)
    assert len(fig.axes) == 2 and len(fig.axes[0].collections) >= 3  # paper families + ours


def test_no_model_loads_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="no model of .* could be loaded: nope-a: .*nope-b"):
        families.run_model_families(["nope-a", "nope-b"], _texts_for, **_kwargs(tmp_path))
    with pytest.raises(ValueError, match="non-empty list"):
        families.run_model_families("smollm2-135m", _texts_for)


def _row(model, family, params, cap, setting="per-text"):
    return {
        "model": model,
        "family": family,
        "params": params,
        "capacity_best": cap,
        "setting": setting,
        "status": "ok",
    }


def test_claims_on_the_papers_numbers():
    """The paper's own Table 3 numbers give the paper's verdicts (tests/test_claims.py has the
    three verdicts of each claim)."""
    table = pd.DataFrame(
        [
            _row("Pythia-160M", "Pythia", 162e6, 128),
            _row("Pythia-410M", "Pythia", 405e6, 181),
            _row("Pythia-1.4B", "Pythia", 1415e6, 131),
            _row("Llama-3.2-1B", "Llama", 1236e6, 362),
            _row("Llama-3.2-3B", "Llama", 3213e6, 512),
            _row("Llama-3.1-8B", "Llama", 8030e6, 724),
            _row("Llama-3.2-1B", "Llama", 1236e6, 181, setting="shared m"),
        ]
    ).assign(texts=50, censored_texts=0)
    claims = {c.id: c for c in families.family_claims(table)}
    assert claims["05.llama_grows"].verdict == "holds"
    assert claims["05.pythia_flat"].verdict == "holds"
    pair = claims["05.llama_vs_pythia"]
    assert pair.verdict == "holds" and "2.76x" in pair.ours


def test_claims_inconclusive_with_two_small_models():
    table = pd.DataFrame(
        [
            _row("smollm2-135m", "Llama", 134.5e6, 22),
            _row("gemma3-270m", "Gemma-3", 268e6, 16),
            {"model": "x", "status": "skipped", "reason": "hub unreachable"},
        ]
    ).assign(texts=3, censored_texts=0)
    claims = families.family_claims(table)
    assert [c.verdict for c in claims] == ["inconclusive"] * 3
    assert claims[0].reason.startswith("too few samples: one Llama model")
    assert claims[1].reason.startswith("not run here: no Pythia model")
    assert "no Llama / Pythia pair within 1.5x" in claims[2].reason
