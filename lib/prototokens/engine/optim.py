"""AdamW with a per-row freeze mask, for batches of independent proto-token vectors.

A text that reaches accuracy 1.0 must keep its vectors *and* optimiser state exactly as they were
while the rest of the batch trains on. ``torch.optim.AdamW`` keeps one step counter per tensor and
applies weight decay to every element, so it cannot freeze rows. This is the same update
(decoupled weight decay, bias correction, ``denom = sqrt(v)/sqrt(1-b2^t) + eps``; tested against
``torch.optim.AdamW``) with a step counter per row and ``torch.where`` on a row mask: no host sync.
"""

from __future__ import annotations

import torch


class MaskedAdamW:
    """AdamW over a list of (P_i, d) parameters; ``step(lr, masks)`` updates only rows where mask
    is True."""

    def __init__(self, params: list[torch.Tensor], betas=(0.9, 0.9), weight_decay=0.01, eps=1e-8):
        self.params = params
        self.b1, self.b2 = betas
        self.wd, self.eps = weight_decay, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros(p.shape[0], device=p.device, dtype=torch.float32) for p in params]

    @torch.no_grad()
    def step(self, lr: float, masks: list[torch.Tensor]) -> None:
        """One update. ``masks[i]``: (P_i,) bool, True = row i trains this step."""
        for p, m, v, t, active in zip(
            self.params, self.exp_avg, self.exp_avg_sq, self.steps, masks
        ):
            if p.grad is None:
                continue
            g = p.grad
            a = active[:, None]
            t.add_(active.float())
            m.copy_(torch.where(a, self.b1 * m + (1 - self.b1) * g, m))
            v.copy_(torch.where(a, self.b2 * v + (1 - self.b2) * g * g, v))
            tt = t.clamp(min=1)[:, None]
            bc1 = 1 - self.b1**tt
            bc2 = 1 - self.b2**tt
            denom = v.sqrt() / bc2.sqrt() + self.eps
            new = p * (1 - lr * self.wd) - (lr / bc1) * m / denom
            p.copy_(torch.where(a, new, p))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_rows(self, i: int, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Snapshot of the optimiser state of parameter ``i`` at ``rows`` (for tests and
        checkpoints)."""
        return {
            "exp_avg": self.exp_avg[i][rows].clone(),
            "exp_avg_sq": self.exp_avg_sq[i][rows].clone(),
            "step": self.steps[i][rows].clone(),
        }


class MaskedLion(MaskedAdamW):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms") with the same
    per-row freeze mask and state layout as :class:`MaskedAdamW` (``exp_avg_sq`` stays zero), so
    warm starts and snapshots work unchanged.

    Update: ``c = b1*m + (1-b1)*g``; ``p <- p*(1 - lr*wd) - lr*sign(c)``; ``m <- b2*m + (1-b2)*g``.
    Every coordinate moves by exactly ``lr``: a normalised step whose size does not depend on the
    gradient's scale (which spans orders of magnitude between short and long texts).
    """

    @torch.no_grad()
    def step(self, lr: float, masks: list[torch.Tensor]) -> None:
        for p, m, t, active in zip(self.params, self.exp_avg, self.steps, masks):
            if p.grad is None:
                continue
            g = p.grad
            a = active[:, None]
            t.add_(active.float())
            update = torch.sign(self.b1 * m + (1 - self.b1) * g)
            p.copy_(torch.where(a, p * (1 - lr * self.wd) - lr * update, p))
            m.copy_(torch.where(a, self.b2 * m + (1 - self.b2) * g, m))
