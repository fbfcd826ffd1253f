"""Per-text metrics on hand examples, and H_LM against the model's own loss."""

from __future__ import annotations

import pytest
import torch
from prototokens.engine.metrics import (
    h_lm,
    start_token,
    start_token_id,
    theoretical_capacity,
    token_metrics,
)
from support import steps_to_threshold, tiny_tokenizer

TEXTS = ["Call me Ishmael.", "The quick brown fox jumps over the lazy dog.", "To be"]


@pytest.mark.parametrize(
    "pred,target,c,acc,exact,first",
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], 4, 1.0, True, None),
        ([1, 9, 3, 9], [1, 2, 3, 4], 2, 0.5, False, 1),
        ([9, 2, 3, 4], [1, 2, 3, 4], 3, 0.75, False, 0),
        ([0, 0, 0], [1, 2, 3], 0, 0.0, False, 0),
        ([7], [7], 1, 1.0, True, None),
        ((5, 6), [5, 7], 1, 0.5, False, 1),
    ],
)
def test_token_metrics(pred, target, c, acc, exact, first):
    m = token_metrics(pred, target)
    assert m == {
        "num_tokens": len(target),
        "c_tokens": c,
        "accuracy": acc,
        "exact_match": exact,
        "first_wrong": first,
    }


def test_token_metrics_length_mismatch():
    with pytest.raises(ValueError, match="prediction has 2 tokens, target 3"):
        token_metrics([1, 2], [1, 2, 3])


def test_token_metrics_accepts_tensors():
    m = token_metrics(torch.tensor([3, 4]), (3, 5))
    assert m["c_tokens"] == 1 and m["first_wrong"] == 1


def test_steps_to_threshold():
    curve = [0.0, 0.5, 0.95, 0.96, 1.0, 0.9, 1.0]
    assert steps_to_threshold(curve, 0.95) == 2
    assert steps_to_threshold(curve, 0.99) == 4
    assert steps_to_threshold(curve, 1.0) == 4
    assert steps_to_threshold([0.1, 0.2], 1.0) is None
    assert steps_to_threshold([], 0.5) is None
    assert steps_to_threshold([15 / 16], 0.9375) == 0  # float round-off tolerated


def test_theoretical_capacity():
    # d * 16 / log2|V|; the predecessor's models_list.csv: Pythia-160M ~787, Llama-3 8B ~3862
    assert theoretical_capacity(768, 50304) == pytest.approx(787.3, abs=0.6)
    assert theoretical_capacity(4096, 128256) == pytest.approx(3862, abs=0.5)


@pytest.mark.parametrize(
    "family,expected",
    [
        ("default", "<|endoftext|>"),  # GPT-NeoX-like: BOS = EOS = <|endoftext|>
        ("smollm2", "<|endoftext|>"),  # BOS is the chat token <|im_start|>; unk is <|endoftext|>
        ("pythia", "<|endoftext|>"),  # BOS = EOS = unk = <|endoftext|>, nothing prepended
        ("gemma3", "<bos>"),  # the tokenizer prepends <bos>
        ("llama3", "<|begin_of_text|>"),  # the tokenizer prepends <|begin_of_text|>
    ],
)
def test_start_token_is_the_document_boundary(family, expected):
    tok = tiny_tokenizer(family=family)
    assert start_token(tok) == (tok.convert_tokens_to_ids(expected), expected)
    assert start_token_id(tok) == start_token(tok)[0]


def test_start_token_without_endoftext():
    """No <|endoftext|> and no BOS prepended: BOS, else EOS, else a clear error."""
    tok = tiny_tokenizer(family="llama3")

    class NoAutoBos:  # the same vocabulary, but a tokenizer that prepends nothing
        bos_token_id, eos_token_id = tok.bos_token_id, tok.eos_token_id

        def __call__(self, text):
            return {"input_ids": tok(text, add_special_tokens=False)["input_ids"]}

        def get_vocab(self):
            return tok.get_vocab()

    plain = NoAutoBos()
    assert start_token_id(plain) == tok.bos_token_id
    plain.bos_token_id = None
    assert start_token_id(plain) == tok.eos_token_id
    plain.eos_token_id = None
    with pytest.raises(ValueError, match="no BOS, EOS or <|endoftext|>"):
        start_token_id(plain)


def test_h_lm_equals_model_loss(tiny_lm):
    tok = tiny_lm.tokenizer
    start = start_token_id(tok)
    texts = [tok(t)["input_ids"] for t in TEXTS]
    got = h_lm(tiny_lm, texts)
    for ids, h in zip(texts, got):
        x = torch.tensor([[start] + ids])
        with torch.no_grad():
            loss = tiny_lm.model(
                input_ids=x, labels=x
            ).loss.item()  # mean over the N shifted targets
        assert h == pytest.approx(loss * len(ids), rel=1e-4)
    # batch (padded, different lengths) == one at a time, in any batch size
    singles = [h_lm(tiny_lm, [ids])[0] for ids in texts]
    assert got == pytest.approx(singles, rel=1e-5)
    assert h_lm(tiny_lm, texts, batch_size=2) == pytest.approx(singles, rel=1e-5)


@pytest.mark.slow
def test_smollm2_h_lm_conditions_on_endoftext(smollm2):
    """The issue's check: H_LM of SmolLM2 equals the sum of -log p(t_i | t_<i) with <|endoftext|>
    (not the chat token <|im_start|>) in front."""
    tok = smollm2.tokenizer
    assert start_token(tok) == (0, "<|endoftext|>")
    texts = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    got = h_lm(smollm2, texts)
    for ids, h in zip(texts, got):
        x = torch.tensor([[0] + ids])
        with torch.no_grad():
            logp = torch.log_softmax(smollm2.model(input_ids=x).logits[0, :-1].float(), -1)
        direct = -float(logp[torch.arange(len(ids)), torch.tensor(ids)].sum())
        assert h == pytest.approx(direct, rel=1e-4, abs=1e-3)
