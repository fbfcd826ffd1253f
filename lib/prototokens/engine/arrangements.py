"""Input arrangements of paper Table 1: which trained vector sits at each input position, and which
target token the output at each position must predict.

For a target text T = [t_1 .. t_N] an arrangement builds a :class:`Layout` of L input positions:

=================  ==================================  =====  ===================================
name               inputs Z                             L      output at position p predicts
=================  ==================================  =====  ===================================
``e*N``            [e] x N                              N      t_{p+1}
``e*N/2+m*N/2``    [e] x ceil(N/2), [m] x floor(N/2)    N      t_{p+1}
``(e,m)*N/2``      e, m, e, m, ...                      N      t_{p+1}
``e+m*(N-1)``      e, [m] x (N-1)       (paper Eq. 1)   N      t_{p+1}: e predicts t_1
``e+m*N``          e, [m] x N                           N+1    e: nothing; the p-th m predicts t_p
``bos+e+m*N``      <s>, e, [m] x N                      N+2    <s>, e: nothing; p-th m predicts t_p
``bos+e+m*(N-1)``  <s>, e, [m] x (N-1)  (**default**)   N+1    <s>: nothing; e predicts t_1
``ar-K``           mem_1..mem_K, t_1 .. t_{N-1}         K+N-1  mem_K predicts t_1; t_p, t_{p+1}
=================  ==================================  =====  ===================================

``<s>`` is the model's own document-boundary token (``engine.metrics.start_token_id``: BOS for
Llama 3, ``<|endoftext|>`` for GPT-NeoX and SmolLM2), fed as its frozen embedding: a ``TOKEN``
slot whose ``token_index`` is :data:`START`. Llama-style models use the first position as an
attention sink; the prefixed variants give them a real one. Which tokenizers put a BOS in front
of ordinary text by themselves (what a model saw at position 0 in training):

- Pythia / GPT-NeoX: no (its ``<|endoftext|>`` is a separator, never prepended), so the paper's
  Pythia runs fed plain Eq. 1, ``e+m*(N-1)``, with nothing in front;
- Llama 3: yes, ``<|begin_of_text|>``;
- Gemma (2 and 3): yes, ``<bos>``;
- SmolLM2: no by default (its BOS ``<|im_start|>`` opens a chat turn and is not added).

Whether the paper's code kept the BOS for Llama is not stated. The ``paper`` profile therefore
feeds the paper's models plain Eq. 1 with ours, ``bos+e+m*(N-1)``, beside it, and notebook 04
measures both readings of Eq. 1 with and without the start token.

Why ``bos+e+m*(N-1)`` is the default. The paper's Eq. 1 lets the output at e predict t_1; its
Table 1 caption says that in the winning scheme e's output is "not guided" and t_1 is the target
of the first m. On SmolLM2-135M plain Eq. 1 leaves position 0 wrong (8 texts x 4 seeds stuck at
31/32 tokens after 2000 GPU steps; at N=16 always exactly position 0), and with e's output
unsupervised (``e+m*N``) the same 16-token text is reconstructed in 80 steps. With the model's
start token in front, Eq. 1 works as written (``bos+e+m*(N-1)``: 12/12 exact against 0/12 on
SmolLM2 at N = 4 and 8; README, "Choices where the paper is ambiguous"), so that is the default
and ``e+m*(N-1)``, ``e+m*N`` stay available.
``ar-K`` is the autoregressive baseline of the predecessor (Kuratov et al.): K trained vectors in
front of the teacher-forced text; unlike the predecessor, t_1 is predicted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch

TOKEN = -1  # Layout.slot value: the input at this position is the embedding of a text token
START = -2  # Layout.token_index value at a TOKEN slot: the model's start token, not a text token


@dataclass(frozen=True)
class Layout:
    """Per-position plan for one text of ``n_tokens`` targets; every field has length L.

    slot[p]          index into ``Arrangement.slots`` of the vector fed at p, or ``TOKEN``
    token_index[p]   for ``TOKEN`` positions, which text token (0-based) is embedded at p, or
                     ``START`` for the model's start token; else -1
    target_index[p]  which text token (0-based) the output at p predicts; -1 = unsupervised
    """

    slot: tuple[int, ...]
    token_index: tuple[int, ...]
    target_index: tuple[int, ...]

    @property
    def length(self) -> int:
        return len(self.slot)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(slot, token_index, target_index) as int64 tensors of shape (L,)."""
        return (
            torch.tensor(self.slot),
            torch.tensor(self.token_index),
            torch.tensor(self.target_index),
        )


@dataclass(frozen=True)
class Arrangement:
    """A named input arrangement: its trained slots and a builder ``n_tokens -> Layout``."""

    name: str
    slots: tuple[str, ...]  # names of the trained vectors, e.g. ("e", "m")
    description: str
    build_fn: Callable[[int], Layout]
    autoregressive: bool = (
        False  # True: text tokens are inputs (teacher forcing), decode with generate
    )

    def build(self, n_tokens: int) -> Layout:
        if not isinstance(n_tokens, int) or n_tokens < 1:
            raise ValueError(f"arrangement {self.name!r} needs n_tokens >= 1, got {n_tokens!r}")
        layout = self.build_fn(n_tokens)
        covered = sorted(i for i in layout.target_index if i >= 0)
        assert covered == list(range(n_tokens)), f"{self.name}: every target predicted exactly once"
        return layout

    def input_length(self, n_tokens: int) -> int:
        return self.build(n_tokens).length

    @property
    def needs_start_token(self) -> bool:
        """True when the layout feeds the model's start token (``START``) somewhere."""
        return START in self.build(1).token_index


def _shifted(slots: list[int]) -> Layout:
    """Position p predicts t_{p+1} (0-based target p): the plain next-token reading."""
    n = len(slots)
    return Layout(tuple(slots), (-1,) * n, tuple(range(n)))


def _e_unsupervised(n: int) -> Layout:
    return Layout((0,) + (1,) * n, (-1,) * (n + 1), (-1,) + tuple(range(n)))


def _with_start(build: Callable[[int], Layout]) -> Callable[[int], Layout]:
    """``build`` behind one more position 0 holding the model's start token (unsupervised)."""

    def prefixed(n: int) -> Layout:
        lay = build(n)
        return Layout((TOKEN,) + lay.slot, (START,) + lay.token_index, (-1,) + lay.target_index)

    return prefixed


def _ar(k: int) -> Callable[[int], Layout]:
    def build(n: int) -> Layout:
        slot = tuple(range(k)) + (TOKEN,) * (n - 1)
        token_index = (-1,) * k + tuple(range(n - 1))
        target_index = (-1,) * (k - 1) + tuple(range(n))
        return Layout(slot, token_index, target_index)

    return build


ARRANGEMENTS: dict[str, Arrangement] = {
    a.name: a
    for a in [
        Arrangement("e*N", ("e",), "one vector repeated N times", lambda n: _shifted([0] * n)),
        Arrangement(
            "e*N/2+m*N/2",
            ("e", "m"),
            "block halves: e then m",
            lambda n: _shifted([0] * ((n + 1) // 2) + [1] * (n // 2)),
        ),
        Arrangement(
            "(e,m)*N/2",
            ("e", "m"),
            "alternating e, m",
            lambda n: _shifted([i % 2 for i in range(n)]),
        ),
        Arrangement(
            "e+m*(N-1)",
            ("e", "m"),
            "paper Eq. 1: e then N-1 copies of m; e predicts t_1",
            lambda n: _shifted([0] + [1] * (n - 1)),
        ),
        Arrangement(
            "e+m*N",
            ("e", "m"),
            "default: e then N copies of m; e's output unsupervised, the first m predicts t_1",
            _e_unsupervised,
        ),
        Arrangement(
            "bos+e+m*N",
            ("e", "m"),
            "start token, e, then N copies of m; the p-th m predicts t_p",
            _with_start(_e_unsupervised),
        ),
        Arrangement(
            "bos+e+m*(N-1)",
            ("e", "m"),
            "start token, then Eq. 1: e predicts t_1, N-1 copies of m",
            _with_start(lambda n: _shifted([0] + [1] * (n - 1))),
        ),
    ]
}
DEFAULT_ARRANGEMENT = "bos+e+m*(N-1)"
TABLE1_ARRANGEMENTS = ("e*N", "e*N/2+m*N/2", "(e,m)*N/2", "e+m*(N-1)", "e+m*N")
START_ARRANGEMENTS = ("bos+e+m*(N-1)", "bos+e+m*N")  # the two readings of Eq. 1 behind <s>
_AR_RE = re.compile(r"^ar-(\d+)$")


def get_arrangement(name: str | Arrangement) -> Arrangement:
    """Look up an arrangement by name; ``ar-K`` (K >= 1) builds the autoregressive baseline."""
    if isinstance(name, Arrangement):
        return name
    if name in ARRANGEMENTS:
        return ARRANGEMENTS[name]
    match = _AR_RE.match(str(name))
    if match and int(match.group(1)) >= 1:
        k = int(match.group(1))
        return Arrangement(
            name,
            tuple(f"mem{i}" for i in range(k)),
            f"autoregressive baseline: {k} trained vector(s) before the teacher-forced text",
            _ar(k),
            autoregressive=True,
        )
    raise ValueError(
        f"unknown arrangement {name!r}; choose one of {list(ARRANGEMENTS)} or 'ar-K' (K >= 1)"
    )
