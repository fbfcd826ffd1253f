"""Connectivity of solutions (paper Section 9, Fig. 7): straight lines and trained Bezier curves.

Two solutions p1, p2 of one text (different seeds) are joined by the straight line
(1 - tau) p1 + tau p2 and by a quadratic Bezier curve (paper Eq. 4)

    phi(tau) = (1 - tau)^2 p1 + 2 tau (1 - tau) pi + tau^2 p2,   tau in [0, 1],

whose control point pi is trained with Adam on the expected reconstruction CE over tau ~ U[0, 1]
(paper Eq. 5) through the frozen model. A "point" is the whole stack of trained slot vectors of
an arrangement, shape (S, d) ((e, m) for the default arrangement). A slot both solutions share
(m, shared across seeds as in the paper: :func:`prototokens.studies.geometry.locality_rows`) is
not a degree of freedom of the path: its control point stays at that vector, so the path moves
e alone, as the paper's does. When the solutions have their own m each (``m_per_seed``), every
slot is interpolated, since an e read against the wrong m means nothing. The control points of
many pairs train together: each step samples
``taus_per_step`` values of tau per pair and runs ONE batched forward over all (pair, tau) rows
(:func:`prototokens.engine.forward.batch_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from prototokens.engine.arrangements import DEFAULT_ARRANGEMENT, get_arrangement
from prototokens.engine.decoding import start_token_for
from prototokens.engine.forward import auto_chunk_elements, batch_loss, plan_batch
from prototokens.studies.plotting import mark_reference


def bezier_point(
    p1: torch.Tensor, control: torch.Tensor, p2: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """phi(tau) for (R, ...) endpoints and control, (R,) tau -> (R, ...)."""
    t = tau.reshape(-1, *([1] * (p1.dim() - 1))).to(p1.dtype)
    return (1 - t) ** 2 * p1 + 2 * t * (1 - t) * control + t**2 * p2


def line_point(p1: torch.Tensor, p2: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """(1 - tau) p1 + tau p2 for (R, ...) endpoints and (R,) tau."""
    t = tau.reshape(-1, *([1] * (p1.dim() - 1))).to(p1.dtype)
    return (1 - t) * p1 + t * p2


def midpoint_control(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """The control point that makes the curve the straight segment: (p1 + p2) / 2."""
    return (p1 + p2) / 2


def curve_length(
    p1: torch.Tensor, control: torch.Tensor, p2: torch.Tensor, segments: int = 1024
) -> torch.Tensor:
    """Arc length of each quadratic Bezier curve, (R, ...) -> (R,), by a fine polyline
    (exact to ~1e-6 relative at 1024 segments for these smooth curves)."""
    R = p1.shape[0]
    taus = torch.linspace(0, 1, segments + 1, dtype=p1.dtype, device=p1.device)  # (K,)
    pts = torch.stack(
        [bezier_point(p1, control, p2, t.expand(R)) for t in taus], dim=1
    )  # (R, K, ...)
    steps = (pts[:, 1:] - pts[:, :-1]).reshape(R, segments, -1)  # (R, K-1, S*d)
    return steps.norm(dim=-1).sum(dim=1)


def straight_distance(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the flattened endpoints, (R, ...) -> (R,)."""
    return (p2 - p1).reshape(p1.shape[0], -1).norm(dim=-1)


@dataclass
class ControlFit:
    """Trained control points and their optimisation record."""

    control: torch.Tensor  # (P, S, d) fp32, CPU
    loss_curve: np.ndarray  # (steps,) mean over pairs of the sampled CE sum per text (nats)


def _repeat(token_ids: Sequence[Sequence[int]], k: int) -> list[list[int]]:
    """Each pair's token ids k times, pair-major: rows p*k .. p*k+k-1 belong to pair p."""
    return [list(ids) for ids in token_ids for _ in range(k)]


def train_control_points(
    lm,
    arrangement: str,
    token_ids: Sequence[Sequence[int]],
    p1: torch.Tensor,
    p2: torch.Tensor,
    *,
    steps: int = 200,
    lr: float = 1e-2,
    taus_per_step: int = 4,
    seed: int = 0,
    init_noise: float = 0.0,
) -> ControlFit:
    """Train the control point of every pair (paper Eq. 5) in one batch.

    ``token_ids``: P texts (the text both endpoints encode); ``p1``, ``p2``: (P, S, d) endpoint
    vectors. pi starts at the midpoint (the straight segment; plus ``init_noise`` Gaussian noise),
    then Adam minimises sum_pairs mean_k CE(phi(tau_k)) with fresh tau_k ~ U[0, 1] every step,
    ``taus_per_step`` per pair. A slot equal in both endpoints of a pair (a shared m) keeps its
    control point at that vector (no noise, no update). Returns the control points (P, S, d)
    and the loss curve.
    """
    arr = get_arrangement(arrangement)
    P = len(token_ids)
    if p1.shape != p2.shape or p1.shape[0] != P or p1.dim() != 3:
        raise ValueError(
            f"endpoints must both be (P, S, d) with P = {P} texts; got {tuple(p1.shape)} "
            f"and {tuple(p2.shape)}"
        )
    if steps < 0 or taus_per_step < 1:
        raise ValueError(f"need steps >= 0 and taus_per_step >= 1, got {steps}, {taus_per_step}")
    device = lm.device
    k = taus_per_step
    gen = torch.Generator().manual_seed(seed)
    a = p1.to(device, torch.float32).repeat_interleave(k, 0)  # (P*k, S, d)
    b = p2.to(device, torch.float32).repeat_interleave(k, 0)
    init = midpoint_control(p1.float(), p2.float())
    fixed = torch.all(p1.float() == p2.float(), dim=-1)  # (P, S): a slot both endpoints share
    if init_noise:
        init = init + init_noise * torch.randn(init.shape, generator=gen) * ~fixed[..., None]
    control = init.to(device).clone().requires_grad_(True)  # (P, S, d)
    free = (~fixed).to(device, torch.float32)[..., None]  # (P, S, 1): 0 where the slot is shared
    opt = torch.optim.Adam([control], lr=lr)
    plan = plan_batch(arr, _repeat(token_ids, k), device, start_token_for(lm, arr))
    chunk = auto_chunk_elements(device)
    curve = []
    for _ in range(steps):
        tau = torch.rand(P * k, generator=gen).to(device)  # (P*k,)
        pts = bezier_point(a, control.repeat_interleave(k, 0), b, tau)  # (P*k, S, d)
        ce, _, _ = batch_loss(lm.model, plan, pts, chunk)  # (P*k,)
        loss = ce.sum() / k
        opt.zero_grad()
        loss.backward()
        control.grad.mul_(free)  # a zero gradient leaves Adam's moments, hence the slot, at rest
        opt.step()
        curve.append(float(loss.detach()) / P)
    return ControlFit(control.detach().float().cpu(), np.asarray(curve))


@torch.no_grad()
def path_metrics(
    lm,
    arrangement: str,
    token_ids: Sequence[Sequence[int]],
    p1: torch.Tensor,
    p2: torch.Tensor,
    taus: Sequence[float],
    control: torch.Tensor | None = None,
    batch_rows: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and CE sum (nats) of the one-forward decoding at each tau, (P, T) each.

    ``control`` None: the straight line; else the Bezier curve with these (P, S, d) controls.
    """
    arr = get_arrangement(arrangement)
    P, T = len(token_ids), len(taus)
    grid = torch.tensor(list(taus), dtype=torch.float32)
    pair = torch.arange(P).repeat_interleave(T)  # (P*T,)
    tau = grid.repeat(P)  # (P*T,)
    acc = np.zeros(P * T)
    ces = np.zeros(P * T)
    chunk = auto_chunk_elements(lm.device)
    for s in range(0, P * T, batch_rows):
        idx = torch.arange(s, min(s + batch_rows, P * T))
        rows = pair[idx]
        a, b, t = p1[rows].float(), p2[rows].float(), tau[idx]
        pts = (
            line_point(a, b, t) if control is None else bezier_point(a, control[rows].float(), b, t)
        )
        ids = [list(token_ids[r]) for r in rows.tolist()]
        plan = plan_batch(arr, ids, lm.device, start_token_for(lm, arr))
        ce, correct, _ = batch_loss(lm.model, plan, pts.to(lm.device), chunk)
        acc[idx.numpy()] = (correct / plan.n_targets).cpu().numpy()
        ces[idx.numpy()] = ce.cpu().numpy()
    return acc.reshape(P, T), ces.reshape(P, T)


def connectivity_pairs(rows: pd.DataFrame, max_pairs: int | None = None) -> pd.DataFrame:
    """Same-text pairs (two seeds of one text) among ``rows``: i, j positions, text_id.

    Texts in first-appearance order; at most ``max_pairs`` pairs (None: all)."""
    from prototokens.studies.geometry import enumerate_pairs

    pairs = enumerate_pairs(rows)
    pairs = pairs[pairs.kind == "same_text"].reset_index(drop=True)
    if max_pairs is not None:
        pairs = pairs.iloc[:max_pairs]
    return pairs[["i", "j", "text_i"]].rename(columns={"text_i": "text_id"})


def run_connectivity(
    lm,
    rows: pd.DataFrame,
    vectors: np.ndarray,
    *,
    arrangement: str = DEFAULT_ARRANGEMENT,
    steps: int = 200,
    lr: float = 1e-2,
    taus_per_step: int = 4,
    grid: int = 11,
    max_pairs: int | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, ControlFit]:
    """Fig. 7 for every same-text pair of ``rows`` (``vectors``: (n, S, d), aligned).

    Returns (path: one row per pair x path x tau with accuracy and CE; pairs: one row per pair
    with the straight distance, the curve length and their ratio, and the accuracies at the
    midpoint; the control-point fit).
    """
    pairs = connectivity_pairs(rows, max_pairs)
    if pairs.empty:
        raise ValueError("no text has two solutions (seeds): nothing to connect")
    v = torch.tensor(np.array(vectors, dtype=np.float32))  # (n, S, d), a copy
    p1, p2 = v[pairs.i.tolist()], v[pairs.j.tolist()]  # (P, S, d)
    token_ids = [list(rows.token_ids.iloc[i]) for i in pairs.i]
    fit = train_control_points(
        lm,
        arrangement,
        token_ids,
        p1,
        p2,
        steps=steps,
        lr=lr,
        taus_per_step=taus_per_step,
        seed=seed,
    )
    taus = np.linspace(0, 1, grid)
    path = []
    for name, control in (("line", None), ("bezier", fit.control)):
        acc, ce = path_metrics(lm, arrangement, token_ids, p1, p2, taus, control)
        for p in range(len(pairs)):
            for t, tau in enumerate(taus):
                path.append((p, pairs.text_id[p], name, float(tau), acc[p, t], ce[p, t]))
    path = pd.DataFrame(path, columns=["pair", "text_id", "path", "tau", "accuracy", "ce_nats"])
    straight = straight_distance(p1, p2).numpy()
    length = curve_length(p1, fit.control, p2).numpy()
    mid = path[np.isclose(path.tau, taus[len(taus) // 2])]
    out = pairs.assign(
        straight_distance=straight,
        curve_length=length,
        length_ratio=length / straight,
        line_mid_accuracy=mid[mid.path == "line"].accuracy.to_numpy(),
        bezier_mid_accuracy=mid[mid.path == "bezier"].accuracy.to_numpy(),
        line_min_accuracy=path[path.path == "line"].groupby("pair").accuracy.min().to_numpy(),
        bezier_min_accuracy=path[path.path == "bezier"].groupby("pair").accuracy.min().to_numpy(),
    )
    return path, out, fit


def plot_bezier_connectivity(path: pd.DataFrame, pairs: pd.DataFrame, title: str = ""):
    """Fig. 7: accuracy against tau along the line and the trained curve (mean and the
    min-max band over pairs), and the length ratio of each curve (right)."""
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2.2, 1]})
    colours = {"line": "#d95f02", "bezier": "#1b9e77"}
    labels = {"line": "linear interpolation", "bezier": "trained Bezier curve"}
    for name, g in path.groupby("path", sort=False):
        s = g.groupby("tau").accuracy.agg(["mean", "min", "max", "std"]).reset_index()
        ax.plot(s.tau, s["mean"], "o-", ms=3, color=colours[name], label=labels[name])
        ax.fill_between(s.tau, s["min"], s["max"], color=colours[name], alpha=0.15)
    ax.set_xlabel("interpolation parameter τ")
    ax.set_ylabel("reconstruction accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{pairs.shape[0]} pairs (mean; band: min-max over pairs)", fontsize=9)
    ax.legend(fontsize=8)
    top = max(1.3, float(pairs.length_ratio.max()) + 0.02)
    bx.hist(pairs.length_ratio, bins=np.linspace(1.0, top, 31), color="#7570b3")  # fixed width
    mark_reference(bx.axvline(1.2, color="k", ls="--", lw=1))
    bx.set_title("dashed: the paper's max ≈ 1.2", fontsize=9)  # a legend here sits on the bars
    bx.set_xlabel("curve length / straight distance")
    bx.set_ylabel("pairs")
    fig.suptitle(title or "Connectivity of same-text solutions (Fig. 7)")
    fig.tight_layout()
    return fig
