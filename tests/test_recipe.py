"""Recipes: learning-rate schedules at hand-computed points, and every bad field rejected up front
with a message that names it."""

from __future__ import annotations

import math

import pytest
from prototokens.engine.recipe import RECIPES, Recipe, get_recipe


def test_constant_schedule():
    r = Recipe(lr=0.02, max_steps=10)
    assert [r.lr_at(s) for s in (0, 5, 10, 50)] == [0.02] * 4


def test_cosine_schedule():
    r = Recipe(lr=1.0, max_steps=100, schedule="cosine", min_lr_ratio=0.1)
    assert r.lr_at(0) == pytest.approx(1.0)
    assert r.lr_at(50) == pytest.approx(0.55)  # 0.1 + 0.9 * (1 + cos(pi/2)) / 2
    assert r.lr_at(25) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert r.lr_at(100) == pytest.approx(0.1) and r.lr_at(500) == pytest.approx(0.1)  # the floor
    lrs = [r.lr_at(s) for s in range(101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # never increases


def test_warmup_cosine_schedule():
    r = Recipe(lr=1.0, max_steps=110, schedule="warmup_cosine", warmup_steps=10, min_lr_ratio=0.0)
    # linear warm-up: the update after step s uses lr * (s+1) / warmup
    assert [r.lr_at(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert r.lr_at(10) == pytest.approx(1.0)  # cosine starts at the top
    assert r.lr_at(60) == pytest.approx(0.5)  # half-way through the 100 cosine steps
    assert r.lr_at(110) == pytest.approx(0.0)
    # the plain cosine schedule ignores warmup_steps
    plain = Recipe(lr=1.0, max_steps=110, schedule="cosine", warmup_steps=10, min_lr_ratio=0.0)
    assert plain.lr_at(0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("lr", float("nan"), "lr must be a finite number > 0, got nan"),
        ("lr", float("inf"), "lr must be a finite number > 0"),
        ("lr", 0.0, "lr must be a finite number > 0"),
        ("lr", -1e-3, "lr must be a finite number > 0"),
        ("lr", "0.01", "lr must be a finite number > 0"),
        ("weight_decay", -0.1, "weight_decay must be a finite number >= 0"),
        ("weight_decay", float("nan"), "weight_decay must be a finite number >= 0"),
        ("eps", 0.0, "eps must be a finite number > 0"),
        ("stop_accuracy", 0.0, r"stop_accuracy must be a finite number in \(0, 1\]"),
        ("stop_accuracy", 1.5, r"stop_accuracy must be a finite number in \(0, 1\]"),
        ("stop_accuracy", float("nan"), "stop_accuracy"),
        ("init_scale", float("inf"), "init_scale must be a finite number > 0"),
        ("init_scale", 0.0, "init_scale must be a finite number > 0"),
        ("min_lr_ratio", 1.5, r"min_lr_ratio must be a finite number in \[0, 1\]"),
        ("max_steps", -1, "max_steps must be a whole number >= 0, got -1"),
        ("max_steps", 2.5, "max_steps must be a whole number >= 0"),
        ("max_steps", float("nan"), "max_steps must be a whole number >= 0"),
        ("max_steps", True, "max_steps must be a whole number >= 0"),
        ("warmup_steps", -5, "warmup_steps must be a whole number >= 0"),
        ("betas", (0.9,), "betas must be two numbers"),
        ("betas", (0.9, 1.0), r"betas must be finite and in \[0, 1\)"),
        ("betas", (float("nan"), 0.9), r"betas must be finite and in \[0, 1\)"),
        ("init", "zeros", "unknown init 'zeros'"),
        ("schedule", "linear", "unknown schedule 'linear'"),
        ("name", "", "name must be a non-empty string"),
    ],
)
def test_bad_fields_are_rejected(field, value, match):
    with pytest.raises(ValueError, match=match):
        Recipe(**{field: value})


def test_warmup_needs_steps_within_the_budget():
    with pytest.raises(ValueError, match="0 < warmup_steps <= max_steps"):
        Recipe(schedule="warmup_cosine", warmup_steps=0)
    with pytest.raises(ValueError, match="warmup_steps=20, max_steps=10"):
        Recipe(schedule="warmup_cosine", warmup_steps=20, max_steps=10)


def test_with_validates_and_whole_floats_become_ints():
    with pytest.raises(ValueError, match="lr"):
        get_recipe("paper").with_(lr=float("nan"))
    r = Recipe(max_steps=5e3, betas=[0.9, 0.99])
    assert r.max_steps == 5000 and isinstance(r.max_steps, int)
    assert r.betas == (0.9, 0.99)  # a list (e.g. from YAML) becomes a tuple: hashable, one key
    assert r.as_dict() == Recipe(max_steps=5000, betas=(0.9, 0.99)).as_dict()


def test_registered_recipes_are_valid():
    for name, r in RECIPES.items():
        assert get_recipe(name) is r and r.name == name
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        get_recipe("nope")


def test_with_budget_keeps_the_warmup_share_and_is_identity_at_its_own_budget():
    wc = Recipe(name="wc", lr=1.0, schedule="warmup_cosine", max_steps=299, warmup_steps=30)
    assert wc.with_budget(299) is wc  # the same recipe, so the same cache key
    short = wc.with_budget(40)
    assert (short.max_steps, short.warmup_steps) == (40, 4)
    assert short.lr_at(3) == 1.0 and short.lr_at(39) < 0.2  # warm-up done, decayed by the end
    assert wc.with_budget(2).warmup_steps == 1  # at least one step, never past the budget
    assert Recipe().with_budget(40) == Recipe(max_steps=40)  # constant: only the budget moves
