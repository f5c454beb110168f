"""Shared helpers for the forecasting tests: synthetic panels and model feeding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from forethought.forecast import Forecast, ForecastEngine, make_forecaster
from forethought.forecast.base import FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel

#: Steps per day at the reference 300 s step.
DAY = 288
#: Steps per week at the reference 300 s step.
WEEK = 7 * DAY


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test, so every test is reproducible on its own."""
    return np.random.default_rng(20240601)


def run(
    name: str, values: FloatArray, observed: Any = None, **kwargs: Any
) -> tuple[ForecastEngine, Forecast]:
    """An engine named ``name`` fed ``values`` (series, steps), and its full-horizon forecast."""
    engine = make_forecaster(name, **kwargs)
    engine.update(values, observed)
    return engine, engine.forecast()


def feed(model: PointModel, values: FloatArray, max_length: int | None = None) -> History:
    """Reset ``model`` and show it ``values`` one step at a time, as the engine does.

    Returns the history it read, so the test can call ``model.predict`` on it.
    """
    n, steps = values.shape
    history = History(n, max_length or max(model.history_needed, 2))
    model.reset(n)
    for t in range(steps):
        seen = np.isfinite(values[:, t])
        history.append(values[:, t], seen)
        model.observe(values[:, t], seen, history)
    return history


def ar1_panel(
    rng: np.random.Generator, n: int, steps: int, phi: float, mean: float, sd: float = 1.0
) -> FloatArray:
    """``n`` independent stationary AR(1) series with coefficient ``phi`` around ``mean``."""
    x = np.empty((n, steps))
    x[:, 0] = rng.normal(0.0, sd / np.sqrt(1.0 - phi**2), n)
    noise = rng.normal(0.0, sd, (n, steps))
    for t in range(1, steps):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x + mean


def random_walks(
    rng: np.random.Generator, n: int, steps: int, start: float = 100.0, drift: float = 0.0
) -> FloatArray:
    """``n`` Gaussian random walks with unit steps and the given drift."""
    return start + np.cumsum(drift + rng.normal(0.0, 1.0, (n, steps)), axis=1)


def daily_sine(steps: int, level: float = 50.0, amplitude: float = 20.0) -> FloatArray:
    """One clean daily sine (period ``DAY`` steps) of ``steps`` samples, shape (steps,)."""
    t = np.arange(steps)
    return np.asarray(level + amplitude * np.sin(2.0 * np.pi * t / DAY))


def forward_filled(values: FloatArray) -> FloatArray:
    """Reference for History: NaN carried forward, leading NaN back-filled from the first value."""
    out = np.array(values, dtype=np.float64)
    for row in out:
        seen = np.flatnonzero(np.isfinite(row))
        if seen.size == 0:
            continue
        row[: seen[0]] = row[seen[0]]
        for t in range(seen[0] + 1, row.size):
            if not np.isfinite(row[t]):
                row[t] = row[t - 1]
    return out


def observed_rows(values: FloatArray) -> np.ndarray:
    """Series with at least one finite sample."""
    return np.asarray(np.isfinite(values).any(axis=1))
