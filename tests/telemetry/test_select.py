"""Choosing the series a report draws: the ones whose hourly level moves most."""

from __future__ import annotations

import numpy as np

from forethought.telemetry.select import hourly_level_spread, top_rows


def test_a_moving_level_outranks_fast_flicker_and_flat_series() -> None:
    steps = 288  # a day of five-minute samples
    t = np.arange(steps)
    flicker = np.where(t % 2 == 0, 0.0, 100.0)  # 0 / 100 % every sample: flat hourly means
    daily = 50.0 + 40.0 * np.sin(2 * np.pi * t / steps)  # the level rises and falls
    flat = np.full(steps, 30.0)
    values = np.stack([flicker, daily, flat])
    spread = hourly_level_spread(values, np.ones_like(values, dtype=bool), 300)
    assert spread[1] > 20.0
    assert spread[0] == 0.0
    assert spread[2] == 0.0
    assert top_rows(spread, 1).tolist() == [1]
    assert top_rows(spread, 2).tolist() == [0, 1]  # ties keep the row order, rows sorted


def test_missing_samples_and_short_traces_give_zero_not_nan() -> None:
    values = np.array([[1.0, 2.0, 3.0] * 20, [5.0] * 60])
    mask = np.ones_like(values, dtype=bool)
    mask[0] = False  # a series never observed
    assert hourly_level_spread(values, mask, 300).tolist() == [0.0, 0.0]
    assert hourly_level_spread(values[:, :20], mask[:, :20], 300).tolist() == [0.0, 0.0]
    assert top_rows(np.array([1.0, 2.0]), 0).size == 0
