"""Optimisation recipes: the paper's, and ours that aim to converge in fewer steps.

The paper (and its predecessor) use AdamW, lr 1e-2, betas (0.9, 0.9), weight decay 0.01, N(0, 1)
init, at most 5000 steps, stop when accuracy reaches 1.0, constant learning rate. Notebook 02
compares this against the alternatives on the same texts and seeds (the optimiser study,
:mod:`prototokens.studies.optimizers`); :data:`ADOPTED` names the one it adopted, the notebooks'
default recipe.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, replace

INITS = ("normal", "embedding_std", "uniform")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
OPTIMIZERS = ("adamw", "lion")
UNIFORM_INIT_HIGH = 0.02  # init "uniform": U[0, 0.02) (Progressive Cramming's init)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how proto-tokens are trained (and so part of every cache key)."""

    name: str = "paper"
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 0.01
    eps: float = 1e-8
    max_steps: int = 5000
    stop_accuracy: float = 1.0
    # "normal": N(0,1) (paper); "embedding_std": N(0,1)*std(E) (predecessor); "uniform":
    # U[0, 0.02) (Progressive Cramming)
    init: str = "normal"
    init_scale: float = 1.0  # multiplies the init
    schedule: str = "constant"  # "constant" | "cosine" | "warmup_cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # floor of the cosine schedules, as a fraction of lr
    # "adamw" (paper) or "lion" (sign of an interpolated momentum, Chen et al. 2023: every
    # coordinate moves by exactly lr, whatever the gradient's scale)
    optimizer: str = "adamw"
    # the training loss is CE(logits / temperature) (Progressive Cramming: 0.25 crams most);
    # argmax, and so accuracy and the stop rule, do not depend on it; rows report CE at T = 1
    temperature: float = 1.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Recipe.name must be a non-empty string, got {self.name!r}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {INITS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        for field_name in ("max_steps", "warmup_steps"):
            object.__setattr__(self, field_name, _count(self, field_name))
        _number(self, "lr", lambda x: x > 0, "> 0")
        _number(self, "weight_decay", lambda x: x >= 0, ">= 0")
        _number(self, "eps", lambda x: x > 0, "> 0")
        _number(self, "stop_accuracy", lambda x: 0 < x <= 1, "in (0, 1]")
        _number(self, "init_scale", lambda x: x > 0, "> 0")
        _number(self, "min_lr_ratio", lambda x: 0 <= x <= 1, "in [0, 1]")
        _number(self, "temperature", lambda x: x > 0, "> 0")
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"recipe {self.name!r}: betas must be two numbers, got {betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))
        if not all(math.isfinite(b) and 0 <= b < 1 for b in self.betas):
            raise ValueError(
                f"recipe {self.name!r}: betas must be finite and in [0, 1), got {self.betas}"
            )
        if self.schedule == "warmup_cosine" and not 0 < self.warmup_steps <= self.max_steps:
            raise ValueError(
                f"recipe {self.name!r}: schedule 'warmup_cosine' needs 0 < warmup_steps <= "
                f"max_steps, got warmup_steps={self.warmup_steps}, max_steps={self.max_steps}"
            )

    def lr_at(self, step: int) -> float:
        """Learning rate for the update made after the forward at ``step`` (0-based)."""
        if self.schedule == "constant":
            return self.lr
        warm = self.warmup_steps if self.schedule == "warmup_cosine" else 0
        if step < warm:
            return self.lr * (step + 1) / warm
        span = max(1, self.max_steps - warm)
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / span)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cos)

    def as_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "Recipe":
        return replace(self, **changes)

    def with_budget(self, max_steps: int) -> "Recipe":
        """This recipe at another budget: ``max_steps`` set, and a warm-up scaled with it (the
        same share of the budget, at least one step), so a schedule tuned at one budget keeps its
        shape at another. The same recipe when ``max_steps`` is its own."""
        if int(max_steps) == self.max_steps:
            return self
        if self.schedule != "warmup_cosine":
            return self.with_(max_steps=max_steps)
        share = self.warmup_steps / max(1, self.max_steps)
        warm = min(int(max_steps), max(1, round(share * int(max_steps))))
        return self.with_(max_steps=max_steps, warmup_steps=warm)


def _count(recipe: Recipe, name: str) -> int:
    """A non-negative whole number (an integral float such as 5e3 is accepted as 5000)."""
    value = getattr(recipe, name)
    ok = isinstance(value, numbers.Integral) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    )
    if isinstance(value, bool) or not ok or value < 0:
        raise ValueError(
            f"recipe {recipe.name!r}: {name} must be a whole number >= 0, got {value!r}"
        )
    return int(value)


def _number(recipe: Recipe, name: str, accept, rule: str) -> None:
    """Raise ValueError unless the field is a finite real number satisfying ``accept``."""
    value = getattr(recipe, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and accept(value)):
        raise ValueError(
            f"recipe {recipe.name!r}: {name} must be a finite number {rule}, got {value!r}"
        )


PAPER = Recipe()
# The optimiser study's adopted recipe (prototokens.studies.optimizers.adoption on the committed
# bench/results/optimizer_study*; tests/test_optimizers.py keeps the two in step): the paper's
# AdamW at a peak learning rate of 1.0, warmed up over the first 10 % of the budget and decayed by
# a cosine to 0.1 of it at the budget's end. Registered at the study's budget (300 evaluations);
# Recipe.with_budget moves it to another, the warm-up's share kept. The notebooks' default; the
# `paper` profile keeps "paper".
ADOPTED = "adamw_lr1_wc"
RECIPES: dict[str, Recipe] = {
    "paper": PAPER,
    ADOPTED: PAPER.with_(
        name=ADOPTED, lr=1.0, schedule="warmup_cosine", max_steps=299, warmup_steps=30
    ),
    # ours: a larger step with a cosine decay, and a smaller init so that e and m start at a
    # token-like scale; compared with the paper's recipe in notebook 02.
    "fast": Recipe(name="fast", lr=3e-2, betas=(0.9, 0.99), schedule="cosine", min_lr_ratio=0.1),
    "predecessor_init": Recipe(name="predecessor_init", init="embedding_std"),
}


def get_recipe(recipe: str | Recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(
            f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)} or pass a Recipe"
        )
    return RECIPES[recipe]
