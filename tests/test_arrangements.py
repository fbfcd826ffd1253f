"""Index arithmetic of every input arrangement (paper Table 1 and the ar-K baseline)."""

from __future__ import annotations

import pytest
import torch
from prototokens.engine.arrangements import (
    ARRANGEMENTS,
    DEFAULT_ARRANGEMENT,
    START,
    START_ARRANGEMENTS,
    TABLE1_ARRANGEMENTS,
    TOKEN,
    get_arrangement,
)
from prototokens.engine.forward import plan_batch

NS = (1, 2, 3, 4, 7, 16)
NAMES = list(ARRANGEMENTS) + ["ar-1", "ar-2"]


def expected(name: str, n: int):
    """Independent statement of each arrangement: (input names per position, target per
    position)."""
    if name.startswith("bos+"):  # the model's start token in front, its output unsupervised
        inputs, targets = expected(name[4:], n)
        return ["<s>"] + inputs, [-1] + targets
    if name == "e*N":
        return ["e"] * n, list(range(n))
    if name == "e*N/2+m*N/2":
        return ["e"] * ((n + 1) // 2) + ["m"] * (n // 2), list(range(n))
    if name == "(e,m)*N/2":
        return ["e" if i % 2 == 0 else "m" for i in range(n)], list(range(n))
    if name == "e+m*(N-1)":
        return ["e"] + ["m"] * (n - 1), list(range(n))
    if name == "e+m*N":
        return ["e"] + ["m"] * n, [-1] + list(range(n))
    if name.startswith("ar-"):
        k = int(name[3:])
        return [f"mem{i}" for i in range(k)] + [f"t{j}" for j in range(n - 1)], [-1] * (
            k - 1
        ) + list(range(n))
    raise AssertionError(name)


def expected_length(name: str, n: int) -> int:
    if name.startswith("bos+"):
        return 1 + expected_length(name[4:], n)
    if name == "e+m*N":
        return n + 1
    if name.startswith("ar-"):
        return int(name[3:]) + n - 1
    return n


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("name", NAMES)
def test_layout(name, n):
    arr = get_arrangement(name)
    layout = arr.build(n)
    inputs, targets = expected(name, n)
    assert layout.length == arr.input_length(n) == expected_length(name, n) == len(inputs)
    assert len(layout.token_index) == len(layout.target_index) == layout.length
    got_inputs = [
        arr.slots[s] if s != TOKEN else ("<s>" if j == START else f"t{j}")
        for s, j in zip(layout.slot, layout.token_index)
    ]
    assert got_inputs == inputs
    for s, j in zip(layout.slot, layout.token_index):
        assert (j >= 0 or j == START) == (s == TOKEN)  # token_index only at TOKEN positions
    assert arr.needs_start_token == name.startswith("bos+")
    assert list(layout.target_index) == targets
    supervised = sorted(t for t in layout.target_index if t >= 0)
    assert supervised == list(range(n))  # every target predicted exactly once
    # teacher forcing never shows a token at or after the position that predicts it
    for p, j in enumerate(layout.token_index):
        if j >= 0:
            assert layout.target_index.index(j) < p
    slot_t, tok_t, tgt_t = layout.tensors()
    assert slot_t.dtype == torch.long and slot_t.shape == (layout.length,)
    assert arr.autoregressive == name.startswith("ar-")


@pytest.mark.parametrize("n", NS)
def test_e_supervision(n):
    caption = get_arrangement("e+m*N").build(n)
    assert caption.slot[0] == 0 and caption.target_index[0] == -1  # e unsupervised
    assert caption.target_index[1] == 0  # first m predicts t_1
    eq1 = get_arrangement("e+m*(N-1)").build(n)
    assert eq1.slot[0] == 0 and eq1.target_index[0] == 0  # e predicts t_1
    # behind the start token: the same two readings, shifted by one position
    bos_default = get_arrangement("bos+e+m*N").build(n)
    assert bos_default.slot[:2] == (TOKEN, 0) and bos_default.token_index[0] == START
    assert bos_default.target_index[:3] == (-1, -1, 0)  # <s> and e unsupervised, first m -> t_1
    bos_eq1 = get_arrangement("bos+e+m*(N-1)").build(n)
    assert bos_eq1.slot[:2] == (TOKEN, 0) and bos_eq1.target_index[:2] == (-1, 0)  # e -> t_1


def test_registry():
    # notebook 04's verdict: Eq. 1 behind the model's start token (README, "choices")
    assert DEFAULT_ARRANGEMENT == "bos+e+m*(N-1)"
    assert get_arrangement(DEFAULT_ARRANGEMENT).needs_start_token
    assert set(TABLE1_ARRANGEMENTS) | set(START_ARRANGEMENTS) == set(ARRANGEMENTS)
    assert all(get_arrangement(a).needs_start_token for a in START_ARRANGEMENTS)
    assert not any(get_arrangement(a).needs_start_token for a in TABLE1_ARRANGEMENTS)
    assert get_arrangement("e*N").slots == ("e",)
    assert get_arrangement("e+m*N").slots == ("e", "m")
    assert get_arrangement("ar-3").slots == ("mem0", "mem1", "mem2")
    arr = get_arrangement("e+m*N")
    assert get_arrangement(arr) is arr


@pytest.mark.parametrize("bad", ["e+m", "E*N", "ar-0", "ar-", "ar-x", "", "m*N"])
def test_unknown_name_lists_choices(bad):
    with pytest.raises(ValueError) as info:
        get_arrangement(bad)
    msg = str(info.value)
    assert repr(bad) in msg
    for name in ARRANGEMENTS:
        assert name in msg
    assert "ar-K" in msg


@pytest.mark.parametrize("n", [0, -1, 2.0, "3"])
def test_bad_length(n):
    with pytest.raises(ValueError, match="n_tokens >= 1"):
        get_arrangement("e+m*N").build(n)


@pytest.mark.parametrize("name", NAMES)
def test_plan_batch_indices(name):
    """The padded batch plan puts every target token at the flat position its layout names."""
    arr = get_arrangement(name)
    texts = [[5, 6, 7], [9], [11, 12, 13, 14, 15, 16, 17]]
    plan = plan_batch(arr, texts, start_token=3)
    R, L = plan.shape
    assert R == 3 and L == max(arr.input_length(len(t)) for t in texts)
    assert plan.n_targets.tolist() == [3, 1, 7]
    assert len(plan.tgt_flat) == sum(map(len, texts))
    for r, ids in enumerate(texts):
        layout = arr.build(len(ids))
        for p, j in enumerate(layout.target_index):
            if j >= 0:
                k = plan.tgt_flat.tolist().index(r * L + p)
                assert plan.tgt_token[k] == ids[j] and plan.tgt_row[k] == r and plan.tgt_pos[k] == j
        for p, (s, j) in enumerate(zip(layout.slot, layout.token_index)):
            assert plan.slot[r, p] == s
            if s == TOKEN:
                assert plan.token[r, p] == (3 if j == START else ids[j])
        assert (plan.slot[r, layout.length :] == 0).all()  # right padding: slot 0
    sub = plan.subset(torch.tensor([2, 0]))
    assert sub.n_targets.tolist() == [7, 3]


def test_start_token_required_when_the_layout_feeds_it():
    with pytest.raises(ValueError, match=r"bos\+e\+m\*N.*start_token"):
        plan_batch(get_arrangement("bos+e+m*N"), [[5, 6]])
    plain = plan_batch(get_arrangement("e+m*N"), [[5, 6]])  # not needed: not asked for
    assert not plain.has_tokens
