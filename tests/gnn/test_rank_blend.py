"""blend_on_validation: the weight follows the better model on validation."""

from __future__ import annotations

import numpy as np

from gnn import blend_on_validation


def test_weight_follows_the_better_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = y + rng.normal(scale=0.3, size=400)
    noise = rng.normal(size=400)
    val = np.arange(400) < 200
    _, w = blend_on_validation(good, noise, y, val)
    assert w >= 0.9
    blended, w = blend_on_validation(noise, good, y, val)
    assert w <= 0.1
    assert blended.min() >= 0 and blended.max() <= 1
