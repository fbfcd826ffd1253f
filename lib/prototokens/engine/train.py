"""Batched proto-token optimisation: many texts, one forward pass per step, a frozen model.

``optimize(lm, token_ids, ...)`` trains, for each row (a text, or a text-seed pair), the vectors of
an arrangement (e and m for the paper's scheme) so that one forward pass of the frozen model
outputs the text. Rows are independent except through a shared slot:

- ``share=None``: every row has its own vectors.
- ``share="m"`` (or ``"e"``): rows with the same ``groups`` id use one common m (or e); its
  gradient is the sum over the group, since the loss is the sum of per-text CE sums.

Freezing unit = a row (no sharing) or a whole group (sharing). A unit stops when every row in it
reaches ``recipe.stop_accuracy`` (1.0 by default) or its loss becomes non-finite (``diverged``);
its vectors and optimiser state then stay exactly as they were while the rest trains on, and
it leaves the forward batch at the next host sync. The vectors returned are the unit's best
(most correct tokens, strictly improving), which is the final state for converged units.
Accuracies reported in results are re-measured at the deployment shape (one text, one forward).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, Arrangement, get_arrangement
from prototokens.engine.decoding import evaluate_row, start_token_for
from prototokens.engine.forward import (
    BatchPlan,
    auto_chunk_elements,
    batch_loss,
    plan_batch,
)
from prototokens.engine.metrics import THRESHOLDS
from prototokens.engine.optim import MaskedAdamW, MaskedLion
from prototokens.engine.recipe import UNIFORM_INIT_HIGH, Recipe, get_recipe
from prototokens.identity import stable_seed, text_fingerprint

SHARE_MODES = (None, "e", "m")


@dataclass
class RowResult:
    """Outcome for one row. Curves are indexed by step (the forward after ``step`` updates)."""

    row: int
    token_ids: tuple[int, ...]
    seed: int
    group: int
    vectors: dict[str, torch.Tensor]  # slot name -> (d,) fp32, CPU
    loss_curve: np.ndarray  # (steps+1,) CE sum in nats
    accuracy_curve: np.ndarray  # (steps+1,)
    steps: int  # updates made before the unit stopped
    converged: bool
    diverged: bool
    steps_to: dict[float, int | None]  # threshold -> first step reaching it
    wall_time_s: float  # from the start of the batch to this unit's stop
    predicted_ids: tuple[int, ...] = ()  # one-forward greedy decoding at deployment shape
    metrics: dict = field(default_factory=dict)  # token metrics at deployment shape + CE
    # slot -> {"param": final (d,), "exp_avg": (d,), "exp_avg_sq": (d,), "step": ()} at the stop;
    # what a warm start (``optimize(init_vectors=, init_state=)``) continues from
    opt_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "diverged" if self.diverged else ("converged" if self.converged else "max_steps")


@dataclass
class Progress:
    """What a progress callback sees at each host sync."""

    step: int
    max_steps: int
    n_rows: int
    n_stopped: int
    mean_accuracy: float  # over rows still training
    elapsed_s: float


class _Slots:
    """Trainable fp32 vectors of every slot: per-row or per-group parameter rows."""

    def __init__(
        self, arrangement: Arrangement, token_ids, seeds, groups, share, recipe, d, init_std, device
    ):
        R = len(token_ids)
        self.names = arrangement.slots
        self.params: list[torch.Tensor] = []
        self.row_to_param: list[torch.Tensor] = []  # per slot: (R,) index of the param row
        self.param_unit: list[torch.Tensor] = []  # per slot: (P,) unit id of each param row
        row_keys = [f"{text_fingerprint(t)}:{s}" for t, s in zip(token_ids, seeds)]
        group_ids = sorted(set(groups))
        gpos = {g: i for i, g in enumerate(group_ids)}
        self.units = torch.tensor(
            [gpos[g] for g in groups] if share else list(range(R)), device=device
        )
        for name in self.names:
            if name == share:
                members = {
                    g: sorted(row_keys[r] for r in range(R) if groups[r] == g) for g in group_ids
                }
                seeds_ = [stable_seed("shared", name, *members[g]) for g in group_ids]
                r2p = [gpos[g] for g in groups]
                punit = list(range(len(group_ids)))
            else:
                seeds_ = [stable_seed("row", name, k) for k in row_keys]
                r2p = list(range(R))
                punit = self.units.tolist()
            rows = []
            for s in seeds_:
                gen = torch.Generator().manual_seed(s)
                if recipe.init == "uniform":  # U[0, 0.02) * init_scale
                    draw = torch.rand(d, generator=gen) * UNIFORM_INIT_HIGH
                else:  # N(0, 1) * init_std
                    draw = torch.randn(d, generator=gen) * init_std
                rows.append(draw * recipe.init_scale)
            self.params.append(torch.stack(rows).to(device).requires_grad_(True))
            self.row_to_param.append(torch.tensor(r2p, device=device))
            self.param_unit.append(torch.tensor(punit, device=device))

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """(len(rows), S, d) vectors of the given rows, differentiable."""
        return torch.stack([p[idx[rows]] for p, idx in zip(self.params, self.row_to_param)], dim=1)

    def warm_start(self, opt, init_vectors, init_state) -> None:
        """Overwrite the random init (and the optimiser's zero state) of rows that have a warm
        start; a shared parameter row takes the values of its first member row."""
        done: set[tuple[int, int]] = set()
        for r in range(len(self.units)):
            vecs = init_vectors[r] if init_vectors else None
            state = init_state[r] if init_state else None
            for i, name in enumerate(self.names):
                p = int(self.row_to_param[i][r])
                if (i, p) in done or (vecs is None and state is None):
                    continue
                done.add((i, p))
                with torch.no_grad():
                    if vecs is not None:
                        self.params[i][p] = vecs[name].to(self.params[i])
                    if state is not None:
                        st = state[name]
                        opt.exp_avg[i][p] = st["exp_avg"].to(self.params[i])
                        opt.exp_avg_sq[i][p] = st["exp_avg_sq"].to(self.params[i])
                        opt.steps[i][p] = float(st["step"])

    def row_state(self, opt, row: int) -> dict[str, dict[str, torch.Tensor]]:
        """Final vectors and optimiser state of one row (for a later warm start)."""
        out = {}
        for i, name in enumerate(self.names):
            p = self.row_to_param[i][row]
            out[name] = {
                "param": self.params[i][p].detach().float().cpu().clone(),
                "exp_avg": opt.exp_avg[i][p].float().cpu().clone(),
                "exp_avg_sq": opt.exp_avg_sq[i][p].float().cpu().clone(),
                "step": opt.steps[i][p].float().cpu().clone(),
            }
        return out

    def row_vectors(self, source: list[torch.Tensor], row: int) -> dict[str, torch.Tensor]:
        return {
            n: src[idx[row]].detach().float().cpu().clone()
            for n, src, idx in zip(self.names, source, self.row_to_param)
        }


def _check_inputs(lm, token_ids, arrangement: Arrangement):
    if len(token_ids) == 0:
        raise ValueError("no texts to optimise (token_ids is empty)")
    limit = lm.max_positions
    for i, ids in enumerate(token_ids):
        if len(ids) == 0:
            raise ValueError(f"text {i} is empty: a target needs at least one token")
        length = arrangement.input_length(len(ids))
        if length > limit:
            raise ValueError(
                f"text {i} has {len(ids)} tokens, so {length} input positions under "
                f"{arrangement.name!r}: longer than the model's context ({limit})"
            )
        bad = [t for t in ids if not 0 <= int(t) < lm.vocab_size]
        if bad:
            raise ValueError(
                f"text {i} has token ids outside the vocabulary (size {lm.vocab_size}): {bad[:5]}"
            )


def optimize(
    lm,
    token_ids: Sequence[Sequence[int]],
    *,
    arrangement: str | Arrangement = DEFAULT_ARRANGEMENT,
    recipe: str | Recipe = "paper",
    seeds: int | Sequence[int] = 0,
    share: str | None = None,
    groups: Sequence[int] | None = None,
    sync_every: int | None = None,
    chunk_elements: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_unit_done: Callable[[list[RowResult]], None] | None = None,
    compiled: bool | str = False,
    init_vectors: Sequence[dict[str, torch.Tensor] | None] | None = None,
    init_state: Sequence[dict[str, dict[str, torch.Tensor]] | None] | None = None,
) -> list[RowResult]:
    """Train proto-tokens for every row of ``token_ids`` in one batch; returns one result per row.

    ``lm``: a :class:`prototokens.inputs.models.LoadedModel`. ``seeds``: one per row (or one for
    all); a row's init depends only on (its tokens, its seed, the slot), so a batched call gives
    the same start as one-at-a-time calls. ``groups``: ids for ``share``; default: all rows one
    group. ``chunk_elements``: logits computed at once (default
    :func:`forward.auto_chunk_elements`).
    ``on_unit_done`` receives finished rows as soon as their unit stops, so that a caller can
    persist them before a Ctrl-C. ``sync_every``: host syncs (stop checks, compaction) every k
    steps; default 1 on CPU, 8 on CUDA. Frozen rows are masked on the device in between.
    ``compiled``: False (eager), True/"auto", "graph", "compile" or "eager": forward + backward
    at a fixed shape (rows frozen by mask, never removed; length padded to a bucket), captured as
    a CUDA graph or compiled; see :mod:`prototokens.engine.graphed`. Same vectors up to rounding.
    ``init_vectors`` / ``init_state`` (one entry per row, None = fresh): warm start from a
    previous solution, ``{slot: (d,) tensor}`` and ``{slot: {"exp_avg", "exp_avg_sq", "step"}}``
    (a :attr:`RowResult.opt_state`); used by the progressive capacity search.
    """
    arrangement = get_arrangement(arrangement)
    recipe = get_recipe(recipe)
    token_ids = [tuple(int(t) for t in ids) for ids in token_ids]
    _check_inputs(lm, token_ids, arrangement)
    R = len(token_ids)
    seeds = [int(seeds)] * R if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if len(seeds) != R:
        raise ValueError(f"got {len(seeds)} seeds for {R} texts")
    if share not in SHARE_MODES or (share and share not in arrangement.slots):
        raise ValueError(
            f"share must be one of {SHARE_MODES} and a slot of {arrangement.name!r} "
            f"{arrangement.slots}; got {share!r}"
        )
    groups = [0] * R if groups is None else [int(g) for g in groups]
    if len(groups) != R:
        raise ValueError(f"got {len(groups)} group ids for {R} texts")

    model = lm.model
    device = lm.device
    sync_every = sync_every or (8 if device.type == "cuda" else 1)
    chunk_elements = chunk_elements or auto_chunk_elements(device)
    emb_w = model.get_input_embeddings().weight
    init_std = 1.0 if recipe.init == "normal" else float(emb_w.float().std())
    slots = _Slots(
        arrangement, token_ids, seeds, groups, share, recipe, lm.d_model, init_std, device
    )
    opt_class = MaskedLion if recipe.optimizer == "lion" else MaskedAdamW
    opt = opt_class(slots.params, recipe.betas, recipe.weight_decay, recipe.eps)
    for name, given in (("init_vectors", init_vectors), ("init_state", init_state)):
        if given is not None and len(given) != R:
            raise ValueError(f"got {len(given)} {name} entries for {R} texts")
    if init_vectors is not None or init_state is not None:
        slots.warm_start(opt, init_vectors, init_state)
    best = [p.detach().clone() for p in slots.params]

    units = slots.units  # (R,) unit id per row
    units_host = units.tolist()
    U = max(units_host) + 1
    alive = torch.ones(U, dtype=torch.bool, device=device)
    converged = torch.zeros(U, dtype=torch.bool, device=device)
    diverged = torch.zeros(U, dtype=torch.bool, device=device)
    stop_step = torch.full((U,), recipe.max_steps, dtype=torch.long, device=device)
    best_correct = torch.full((U,), -1.0, device=device)
    T1 = recipe.max_steps + 1
    loss_curve = torch.full((R, T1), float("nan"), device=device)
    acc_curve = torch.full((R, T1), float("nan"), device=device)
    steps_to = {thr: torch.full((R,), -1, dtype=torch.long, device=device) for thr in THRESHOLDS}
    full_plan = plan_batch(arrangement, token_ids, device, start_token_for(lm, arrangement))
    rows = torch.arange(R, device=device)
    plan: BatchPlan = full_plan
    reported = torch.zeros(U, dtype=torch.bool)  # host-side: units handed to on_unit_done
    unit_time = np.zeros(U)
    results: dict[int, RowResult] = {}
    graphed = None
    if compiled:
        from prototokens.engine.graphed import GraphedStep

        graphed = GraphedStep(
            model, full_plan, slots.params, slots.row_to_param, alive, units, chunk_elements,
            compiled, recipe.temperature,
        )  # fmt: skip
    t0 = time.perf_counter()

    def finish(unit_ids: list[int]):
        """Build results for newly stopped units (host side) and hand them to the callback."""
        wanted = set(unit_ids)
        done_rows = [r for r in range(R) if units_host[r] in wanted]
        batch = []
        stop_host = stop_step.tolist()
        lc, ac = loss_curve[done_rows].cpu().numpy(), acc_curve[done_rows].cpu().numpy()
        st = {thr: steps_to[thr][done_rows].cpu().tolist() for thr in THRESHOLDS}
        for k, r in enumerate(done_rows):
            u = units_host[r]
            n = int(stop_host[u])
            res = RowResult(
                row=r,
                token_ids=token_ids[r],
                seed=seeds[r],
                group=groups[r],
                vectors=slots.row_vectors(best, r),
                loss_curve=lc[k, : n + 1].copy(),
                accuracy_curve=ac[k, : n + 1].copy(),
                steps=n,
                converged=bool(converged[u]),
                diverged=bool(diverged[u]),
                steps_to={
                    thr: (v if v >= 0 else None)
                    for thr, v in ((thr, st[thr][k]) for thr in THRESHOLDS)
                },
                wall_time_s=float(unit_time[u]),
                opt_state=slots.row_state(opt, r),
            )
            evaluate_row(lm, arrangement, res, chunk_elements)
            results[r] = res
            batch.append(res)
        if on_unit_done and batch:
            on_unit_done(batch)

    for step in range(T1):
        if graphed is None:
            vec = slots.gather(rows)  # (b, S, d)
            ce, correct, _ = batch_loss(model, plan, vec, chunk_elements, recipe.temperature)
        else:  # fixed shape: all rows, gradients already in p.grad
            ce, correct = graphed()
        with torch.no_grad():
            acc = correct / plan.n_targets
            finite = torch.isfinite(ce)
            loss_curve[rows, step] = ce.detach()
            acc_curve[rows, step] = acc
            urows = units[rows]
            for thr, st in steps_to.items():
                hit = (acc >= thr - 1e-9) & (st[rows] < 0) & alive[urows]
                st[rows] = torch.where(hit, step, st[rows])
            n_ok = torch.zeros(U, device=device).index_add(
                0, urows, (acc >= recipe.stop_accuracy - 1e-9).float()
            )
            n_in = torch.zeros(U, device=device).index_add(0, urows, torch.ones_like(acc))
            bad = torch.zeros(U, device=device).index_add(0, urows, (~finite).float()) > 0
            ucorrect = torch.zeros(U, device=device).index_add(
                0, urows, torch.where(finite, correct, 0.0)
            )
            present = torch.zeros(U, dtype=torch.bool, device=device)
            present[urows] = True
            live = alive & present
            improved = live & ~bad & (ucorrect > best_correct)
            best_correct = torch.where(improved, ucorrect, best_correct)
            for b, p, pu in zip(best, slots.params, slots.param_unit):
                b.copy_(torch.where(improved[pu][:, None], p.detach(), b))
            new_conv = live & ~bad & (n_ok == n_in)
            new_div = live & bad
            stopped = new_conv | new_div
            converged |= new_conv
            diverged |= new_div
            stop_step = torch.where(stopped, step, stop_step)
            alive &= ~stopped
        if step == recipe.max_steps:
            break
        if graphed is None:
            row_alive = alive[urows]
            loss = torch.where(row_alive, ce, torch.zeros_like(ce)).sum()
            loss.backward()
        opt.step(recipe.lr_at(step), [alive[pu] for pu in slots.param_unit])
        opt.zero_grad()
        if (step + 1) % sync_every == 0:
            alive_host = alive.cpu()
            newly = [u for u in range(U) if not alive_host[u] and not reported[u]]
            if newly:
                unit_time[newly] = time.perf_counter() - t0
                reported[newly] = True
                finish(newly)
            if not bool(alive_host.any()):
                break
            if newly and graphed is None:  # rows left: re-plan without them (padding may shrink)
                rows = torch.arange(R, device=device)[alive[units]]
                plan = full_plan.subset(rows)
            if progress:
                progress(
                    Progress(
                        step + 1,
                        recipe.max_steps,
                        R,
                        int((~alive_host).sum()),
                        float(acc_curve[rows, step].mean()),
                        time.perf_counter() - t0,
                    )
                )
    remaining = [u for u in range(U) if not reported[u]]
    if remaining:
        unit_time[remaining] = time.perf_counter() - t0
        finish(remaining)
    if progress:
        progress(
            Progress(
                recipe.max_steps, recipe.max_steps, R, R, float("nan"), time.perf_counter() - t0
            )
        )
    return [results[r] for r in range(R)]
