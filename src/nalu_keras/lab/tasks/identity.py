"""The identity task of the NALU paper's Fig. 1: learn y = x on scalars."""

from __future__ import annotations

import numpy as np

from nalu_keras.lab.tasks.arithmetic import ValueRange

TRAIN_RANGE = "U[-5,5]"
TEST_INTERVAL = (-20.0, 20.0)


def sample(n, value_range=TRAIN_RANGE, seed=0, dtype=np.float32):
    """`n` scalars from `value_range` as inputs (n, 1) and identical targets."""
    x = ValueRange.parse(value_range).sample(np.random.default_rng(seed), (n, 1)).astype(dtype)
    return x, x.copy()


def grid(low=TEST_INTERVAL[0], high=TEST_INTERVAL[1], points=401, dtype=np.float32):
    """Evenly spaced test inputs over [low, high], shape (points, 1)."""
    if not low < high or points < 2:
        raise ValueError(f"need low < high and points >= 2, got {low}, {high}, {points}")
    return np.linspace(low, high, points).astype(dtype)[:, None]
