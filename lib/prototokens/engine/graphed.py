"""The training step at one fixed shape, compiled or captured as a CUDA graph (``compiled=``).

A small model on a large GPU is bound by kernel launches, not arithmetic: on an H200 a step of
SmolLM2-135M costs 80-115 ms whatever the batch or precision (30 layers forward and backward,
a few thousand kernels each launched from Python). Launch overhead goes away when the whole
forward + backward is one CUDA graph (replayed with one call) or compiled by ``torch.compile``.
Both need a shape that does not change from step to step, so in this mode:

- the batch keeps every row until the end: a finished text is frozen by the alive mask (its
  loss is masked out, ``MaskedAdamW`` leaves its vectors and state alone), never removed;
- the sequence length is padded on the right to a bucket (a multiple of :data:`BUCKET`), so that
  batches of nearby lengths share a compiled graph; right padding cannot change a causal
  model's outputs at the real positions (see ``forward``).

The optimiser step and the per-step bookkeeping stay eager in ``train.optimize`` (a few dozen
element-wise kernels): the update must come after the bookkeeping has copied the best vectors.
The loss of a unit that stops at this step still enters the gradient here (the alive mask is the
one from before the step's bookkeeping), but that unit's update is masked: vectors are the
eager ones up to float rounding.
"""

from __future__ import annotations

import math

import torch

from prototokens.engine.forward import BatchPlan, batch_loss

BUCKET = 16  # input lengths are padded up to a multiple of this
MODES = ("auto", "graph", "compile", "eager")
# torch.compile backend of mode "compile": "inductor" (real kernels); tests use "aot_eager"
# (the same traced forward + backward graphs without code generation: seconds, not minutes)
COMPILE_BACKEND = "inductor"


def bucket_length(length: int, multiple: int = BUCKET) -> int:
    """``length`` rounded up to a multiple of ``multiple``."""
    return int(math.ceil(length / multiple) * multiple)


def pad_plan(plan: BatchPlan, length: int) -> BatchPlan:
    """``plan`` with its positions padded on the right to ``length`` (slot 0, token 0 there);
    target indices are re-based to the new row stride."""
    R, L = plan.shape
    if length < L:
        raise ValueError(f"cannot pad a plan of length {L} down to {length}")
    if length == L:
        return plan
    pad = (0, length - L)
    pos = plan.tgt_flat - plan.tgt_row * L
    return BatchPlan(
        torch.nn.functional.pad(plan.slot, pad),
        torch.nn.functional.pad(plan.token, pad),
        plan.tgt_row * length + pos,
        plan.tgt_token,
        plan.tgt_row,
        plan.tgt_pos,
        plan.n_targets,
        plan.parts,
        plan.has_tokens,
    )


def resolve_mode(compiled, device: torch.device) -> str:
    """``True``/``"auto"``: a CUDA graph on CUDA, ``torch.compile`` elsewhere."""
    mode = "auto" if compiled is True else str(compiled)
    if mode not in MODES:
        raise ValueError(f"compiled must be True or one of {MODES}, got {compiled!r}")
    if mode == "auto":
        mode = "graph" if device.type == "cuda" else "compile"
    if mode == "graph" and device.type != "cuda":
        raise ValueError("compiled='graph' (CUDA graphs) needs a CUDA device; use 'compile'")
    return mode


class GraphedStep:
    """Forward + backward of the whole batch at one fixed shape; ``__call__`` returns the
    per-row CE sums and correct counts (R,), (R,) and leaves the gradients in ``p.grad``.

    ``params``: the slot parameters, (P_i, d) fp32 each; ``row_to_param``: per slot, (R,) the
    parameter row of every batch row; ``alive``: (U,) bool, read at every call (updated in place
    by the caller); ``units``: (R,) unit of every row.
    """

    def __init__(
        self, model, plan, params, row_to_param, alive, units, chunk_elements, mode,
        temperature: float = 1.0,
    ):  # fmt: skip
        self.model, self.params, self.row_to_param = model, params, row_to_param
        self.temperature = temperature
        self.plan = pad_plan(plan, bucket_length(plan.shape[1]))
        self.alive, self.units, self.chunk = alive, units, chunk_elements
        self.device = params[0].device
        self.mode = resolve_mode(mode, self.device)
        self.fn = self._forward
        if self.mode == "compile":
            if COMPILE_BACKEND == "inductor":
                kind = "reduce-overhead" if self.device.type == "cuda" else "default"
                self.fn = torch.compile(self._forward, mode=kind, dynamic=False)
            else:
                self.fn = torch.compile(self._forward, backend=COMPILE_BACKEND, dynamic=False)
        self.graph = None

    def _forward(self, *params):
        vec = torch.stack([p[idx] for p, idx in zip(params, self.row_to_param)], dim=1)  # (R,S,d)
        ce, correct, _ = batch_loss(
            self.model, self.plan, vec, self.chunk, self.temperature
        )  # (R,), (R,)
        loss = torch.where(self.alive[self.units], ce, torch.zeros_like(ce)).sum()
        return ce, correct, loss

    def _capture(self) -> None:
        dev = self.device
        s = torch.cuda.Stream(dev)
        s.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(s):  # warm-up outside the graph (allocator, cuBLAS workspaces)
            for _ in range(3):
                for p in self.params:
                    p.grad = None
                ce, correct, loss = self._forward(*self.params)
                loss.backward()
        torch.cuda.current_stream(dev).wait_stream(s)
        for p in self.params:
            p.grad = None
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out_ce, self.out_correct, loss = self._forward(*self.params)
            loss.backward()
        self.grads = [p.grad for p in self.params]  # static: refilled by every replay

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode != "graph":
            ce, correct, loss = self.fn(*self.params)
            loss.backward()
            return ce.detach(), correct.detach()
        if self.graph is None:
            self._capture()
        self.graph.replay()
        for p, g in zip(self.params, self.grads):
            p.grad = g
        return self.out_ce.clone(), self.out_correct.clone()
