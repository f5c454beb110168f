"""Models that refit a slice of the series per step give what a full refit gives them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forethought.forecast.base import FloatArray
from forethought.forecast.engine import make_forecaster
from forethought.forecast.history import History
from forethought.forecast.models.autoregressive import AutoRegressive
from forethought.forecast.models.base import ScheduledRefit
from forethought.forecast.models.markov import MarkovChain
from forethought.forecast.models.seasonal import SeasonalProfile


def test_refitting_a_slice_matches_a_full_refit_on_those_series() -> None:
    rng = np.random.default_rng(2)
    n = 30
    history = History(n, 300)
    full, sliced = MarkovChain(), MarkovChain()
    full.reset(n)
    sliced.reset(n)
    ok = np.ones(n, dtype=bool)
    for _ in range(60):
        y = rng.gamma(2.0, 5.0, n)
        history.append(y, ok)
        full.observe(y, ok, history)
        sliced.observe(y, ok, history)
    full.predict(6, history)
    sliced.predict(6, history)  # caches the median paths
    for _ in range(7):  # new data, then refit one slice only
        y = rng.gamma(2.0, 5.0, n)
        history.append(y, ok)
    rows = np.arange(0, n, 3)
    sliced._fit(history, rows)
    full._fit(history)
    np.testing.assert_allclose(sliced._matrix[rows], full._matrix[rows])
    np.testing.assert_allclose(sliced._edges[rows], full._edges[rows])
    a = sliced.predict(6, history).values[rows]
    b = full.predict(6, history).values[rows]
    np.testing.assert_allclose(a, b)


def _history(rng: np.random.Generator, n: int, steps: int) -> History:
    """Series with an hourly bump on half of them, noise on the rest, and AR(1) texture."""
    history = History(n, 4000)
    ok = np.ones(n, dtype=bool)
    state = np.zeros(n)
    for t in range(steps):
        state = 0.6 * state + rng.normal(0.0, 1.0, n)
        bump = np.where((np.arange(n) % 2 == 0) & (t % 12 < 2), 6.0, 0.0)
        history.append(20.0 + state + bump, ok)
    return history


def test_autoregressive_refit_of_a_slice_matches_a_full_refit_on_those_series() -> None:
    rng = np.random.default_rng(5)
    n = 40
    history = _history(rng, n, 300)
    for differenced in (False, True):
        full = AutoRegressive(order=3, differenced=differenced)
        sliced = AutoRegressive(order=3, differenced=differenced)
        full.reset(n)
        sliced.reset(n)
        full._fit(history)
        rows = np.arange(1, n, 4)
        sliced._fit(history, rows)
        np.testing.assert_allclose(sliced._coef[rows], full._coef[rows])
        np.testing.assert_allclose(sliced._mean[rows], full._mean[rows])
        others = np.setdiff1d(np.arange(n), rows)
        assert not sliced._fitted[others].any(), "series outside the slice are left alone"
        assert sliced._fitted[rows].all()


def _level(model: ScheduledRefit) -> FloatArray:
    """What each model learned of the top of a series: the top state's value, or the mean."""
    if isinstance(model, MarkovChain):
        return np.asarray(model._values.max(axis=1))
    assert isinstance(model, AutoRegressive)
    return np.asarray(model._mean)


MODELS = [lambda: MarkovChain(refit_every=6), lambda: AutoRegressive(2, refit_every=6)]


@pytest.mark.parametrize("make", MODELS, ids=["markov", "ar"])
def test_staggered_model_refits_every_series_within_a_period(
    make: Callable[[], ScheduledRefit],
) -> None:
    rng = np.random.default_rng(4)
    n = 30
    history = History(n, 400)
    model = make()
    model.stagger = True
    model.reset(n)
    ok = np.ones(n, dtype=bool)
    for _ in range(60):
        y = rng.gamma(2.0, 5.0, n)
        history.append(y, ok)
        model.observe(y, ok, history)
    before = _level(model).copy()
    for _ in range(6):  # one period: a level shift every series must pick up
        y = rng.gamma(2.0, 5.0, n) + 300.0
        history.append(y, ok)
        model.observe(y, ok, history)
    assert (_level(model) > before + 1.0).all()


def test_staggered_seasonal_test_matches_the_full_test_after_a_period() -> None:
    rng = np.random.default_rng(7)
    n = 48
    full, staggered = SeasonalProfile(300), SeasonalProfile(300)
    staggered.stagger = True
    full.reset(n)
    staggered.reset(n)
    history = History(n, full.history_needed)
    ok = np.ones(n, dtype=bool)
    state = np.zeros(n)
    cron = np.arange(n) % 2 == 0
    for t in range(240):
        state = 0.5 * state + rng.normal(0.0, 1.0, n)
        # The hourly bump starts half-way: both must notice it, within one test period.
        bump = np.where(cron & (t >= 120) & (t % 12 < 2), 8.0, 0.0)
        y = 20.0 + state + bump
        history.append(y, ok)
        full.observe(y, ok, history)
        staggered.observe(y, ok, history)
    assert staggered._fitted_once
    assert staggered._step == 240
    # 240 is a multiple of the full test's period (48 steps), so both are fresh now.
    np.testing.assert_array_equal(staggered.seasons[cron], full.seasons[cron])
    assert (full.seasons[cron] != 0).mean() > 0.9


def test_steady_engine_staggers_every_model_that_refits() -> None:
    engine = make_forecaster("auto")
    engine.steady()
    assert not engine.fresh_quantiles
    assert engine.stagger_refresh
    assert all(m.stagger for m in engine.models)
    rng = np.random.default_rng(8)
    values = 20.0 + rng.normal(0.0, 2.0, (50, 200))
    engine.update(values)
    fc = engine.forecast(6)
    assert np.isfinite(fc.quantiles).all()
