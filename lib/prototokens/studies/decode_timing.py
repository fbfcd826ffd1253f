"""Timing one forward pass against autoregressive decoding, honestly (paper section 11).

- :func:`time_call`: the project's one timer: warm-up calls, a device synchronisation around
  every timed call (a CUDA kernel launch returns before the work is done); the median of the
  repeats (``Timing.min_s``: the best, for peaks); :func:`random_ids`: the random token ids every
  timing decodes or trains on.
- :func:`one_forward_decode`: the one-pass reconstruction, a forward pass over Z = [e, m, ..., m]
  (B texts of N targets) and the argmax at every target position: the engine's own ``predict``
  path (:func:`prototokens.engine.decoding.forward_argmax`), batched.
- Autoregressive decoding of the same number of tokens from a learned prefix of K vectors (the
  Kuratov et al. [mem] scheme), three ways that must give the same greedy tokens:

  * :func:`prototokens.engine.decoding.greedy_generate`: ``transformers`` ``generate`` with its
    default (dynamic) cache: what the paper compares against;
  * :func:`static_greedy`: the strong baseline: a static KV cache, a hand-written greedy loop
    with no per-token host work, and on CUDA one decoding step captured as a CUDA graph
    (fallback: ``torch.compile``; on CPU the eager loop, the best torch offers there cheaply);
  * :func:`reference_greedy`: no cache at all, the full prefix re-run for every token (slow,
    for tests only: the ground truth of greedy decoding).

Speed does not depend on the vector values, so timings use random vectors at the embedding
scale (a trained prefix would cost the same); what is timed is never read from the optimisation
cache: a timing belongs to the machine that measured it.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field

import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, get_arrangement
from prototokens.engine.decoding import forward_argmax, start_token_for
from prototokens.engine.forward import auto_chunk_elements, plan_batch


def quiet_transformers() -> None:
    """Silence the deprecation notice of ``past_key_values`` (newer transformers call it
    ``cache``; the older name works on every version we run, including the GPU's 5.17)."""
    warnings.filterwarnings(
        "ignore", message=".*past_key_values.*deprecated", category=FutureWarning
    )


def sync(device: torch.device | str) -> None:
    """Wait for every queued kernel on ``device`` (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds per call: the median of ``times`` (each one synchronised call)."""

    median_s: float
    times: list[float] = field(default_factory=list)
    warmup: int = 0
    result: object = field(default=None, repr=False)  # what the last call returned

    @property
    def min_s(self) -> float:
        return min(self.times)


def time_call(fn, device: torch.device | str, repeats: int = 5, warmup: int = 1) -> Timing:
    """Run ``fn()`` ``warmup`` times untimed, then ``repeats`` times, each between two device
    synchronisations; returns the median (robust to one slow call on a shared machine)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    device = torch.device(device)
    result = None
    for _ in range(warmup):
        result = fn()
    sync(device)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), times, warmup, result)


def random_ids(
    batch_size: int, n_tokens: int, vocab_size: int, seed: int = 0, generator=None
) -> list[list[int]]:
    """(B, N) random token ids in ``[1, vocab_size)``: targets whose values do not change the time
    of a forward or a training step. ``generator``: draw from it instead of a fresh one."""
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab_size, (batch_size, n_tokens), generator=gen).tolist()


def embedding_scale(lm) -> float:
    """Standard deviation of the input embedding matrix: random vectors are drawn at this scale."""
    return float(lm.model.get_input_embeddings().weight.float().std())


def one_forward_inputs(
    lm, n_tokens: int, batch_size: int = 1, arrangement: str = DEFAULT_ARRANGEMENT, seed: int = 0
):
    """(plan, vectors) for B texts of N targets: random token targets, random (B, S, d) fp32
    vectors. Returns what :func:`one_forward_decode` takes."""
    arr = get_arrangement(arrangement)
    gen = torch.Generator().manual_seed(seed)
    ids = random_ids(batch_size, n_tokens, lm.vocab_size, generator=gen)
    # a random-init model has no tokenizer, so no start token: any id costs the same time
    start = start_token_for(lm, arr) if lm.tokenizer is not None else None
    if start is None and arr.needs_start_token:
        start = 0
    plan = plan_batch(arr, ids, lm.device, start)
    vec = torch.randn(batch_size, len(arr.slots), lm.d_model, generator=gen)
    return plan, (vec * embedding_scale(lm)).to(lm.device)


@torch.inference_mode()
def one_forward_decode(lm, plan, vectors, chunk_elements: int | None = None) -> torch.Tensor:
    """The one-pass reconstruction: (T,) greedy tokens at every target position of the batch."""
    chunk = chunk_elements or auto_chunk_elements(lm.device)
    return forward_argmax(lm, plan, vectors, chunk)[0]  # (T,)


def ar_prefix(lm, batch_size: int = 1, k: int = 1, seed: int = 0) -> torch.Tensor:
    """(B, K, d) prefix vectors in the model dtype, at the embedding scale (a learned [mem]
    prefix costs the same to decode from)."""
    gen = torch.Generator().manual_seed(seed)
    vec = torch.randn(batch_size, k, lm.d_model, generator=gen) * embedding_scale(lm)
    return vec.to(lm.device, lm.dtype)


@torch.inference_mode()
def reference_greedy(lm, prefix: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(B, n) greedy tokens with no cache: the whole sequence is re-run for every new token."""
    model = lm.model
    emb = model.get_input_embeddings()
    x = prefix
    out = []
    for _ in range(n_tokens):
        logits = model(inputs_embeds=x, use_cache=False).logits[:, -1]  # (B, V)
        tok = logits.argmax(-1)  # (B,)
        out.append(tok)
        x = torch.cat([x, emb(tok)[:, None].to(x.dtype)], dim=1)
    return torch.stack(out, dim=1)


def _static_cache(model, max_len: int):
    from transformers import StaticCache

    return StaticCache(config=model.config, max_cache_len=max_len)


class StaticDecoder:
    """The strong autoregressive baseline for one (model, batch, prefix length, n) shape.

    A static KV cache of K + n positions; the prefix in one forward; then n - 1 single-token
    steps with every input in a fixed buffer, no host work per token (no sync, no ``.item()``).
    ``mode``: ``"graph"`` captures one step as a CUDA graph (CUDA only), ``"compile"`` uses
    ``torch.compile`` of the model's forward, ``"eager"`` runs the loop as is, ``"auto"`` tries
    graph -> compile -> eager on CUDA and is eager on the CPU. ``self.mode`` says which ran.
    """

    def __init__(self, lm, batch_size: int, k: int, n_tokens: int, mode: str = "auto"):
        if mode not in ("auto", "graph", "compile", "eager"):
            raise ValueError(f"unknown mode {mode!r}: auto, graph, compile or eager")
        self.lm, self.B, self.K, self.n = lm, batch_size, k, n_tokens
        self.device = lm.device
        if mode == "auto":
            mode = "graph" if self.device.type == "cuda" else "eager"
        if mode == "graph" and self.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.mode = mode
        self.cache = _static_cache(lm.model, k + n_tokens)
        self.tok = torch.zeros(batch_size, 1, dtype=torch.long, device=self.device)  # (B, 1)
        self.pos = torch.zeros(1, dtype=torch.long, device=self.device)  # (1,)
        self.graph = None
        self.step_fn = lm.model.forward
        if mode == "compile":
            self.step_fn = torch.compile(lm.model.forward, mode="reduce-overhead")

    def _step(self) -> torch.Tensor:
        out = self.step_fn(
            input_ids=self.tok,
            position_ids=self.pos[None].expand(self.B, 1),
            cache_position=self.pos,
            past_key_values=self.cache,
            use_cache=True,
        )
        return out.logits[:, -1].argmax(-1)  # (B,)

    def _rewind(self, length: int) -> None:
        """Set every cache layer's write counter to ``length``, in place.

        transformers' static cache layers write at their own running counter
        (``cumulative_length``, a device tensor advanced by every forward), not at the
        ``cache_position`` passed in. The warm-up and capture forwards of :meth:`_capture` advance
        it three times; without this rewind the replays write past ``max_cache_len`` (seen on the
        H200: ``index_copy_(): index out of bounds``) and attend to the duplicated warm-up keys.
        In place, so the captured graph keeps the same tensor."""
        for layer in getattr(self.cache, "layers", ()):
            counter = getattr(layer, "cumulative_length", None)
            if isinstance(counter, torch.Tensor):
                counter.fill_(length)
            elif isinstance(counter, int):
                layer.cumulative_length = length

    def _capture(self) -> None:
        s = torch.cuda.Stream(self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(s):  # warm-up outside the graph (allocations, cuBLAS handles)
            for _ in range(2):
                self._step()
        torch.cuda.current_stream(self.device).wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out_tok = self._step()

    @torch.inference_mode()
    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        """(B, n) greedy tokens decoded from ``prefix`` (B, K, d)."""
        if tuple(prefix.shape[:2]) != (self.B, self.K):
            raise ValueError(
                f"prefix shape {tuple(prefix.shape)} != built for ({self.B}, {self.K})"
            )
        model = self.lm.model
        self.cache.reset() if hasattr(self.cache, "reset") else None
        pos0 = torch.arange(self.K, device=self.device)
        out = model(
            inputs_embeds=prefix,
            position_ids=pos0[None].expand(self.B, -1),
            cache_position=pos0,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        toks = torch.empty(self.B, self.n, dtype=torch.long, device=self.device)
        toks[:, 0] = out.logits[:, -1].argmax(-1)
        if self.n > 1 and self.mode == "graph" and self.graph is None:
            self.tok.copy_(toks[:, :1])
            self.pos.fill_(self.K)
            self._capture()
            self._rewind(self.K)  # the warm-up and capture advanced the cache's write counter
        for i in range(1, self.n):
            self.tok.copy_(toks[:, i - 1 : i])
            self.pos.fill_(self.K + i - 1)
            if self.graph is not None:
                self.graph.replay()
                toks[:, i] = self.out_tok
            else:
                toks[:, i] = self._step()
        return toks


def static_greedy(lm, prefix: torch.Tensor, n_tokens: int, mode: str = "auto") -> torch.Tensor:
    """(B, n) greedy tokens from the strong baseline (:class:`StaticDecoder`), built once."""
    B, K, _ = prefix.shape
    return StaticDecoder(lm, B, K, n_tokens, mode)(prefix)
