"""Known answers of every point model, fed directly through a History or via the engine."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.forecast.base import horizon_bands
from forethought.forecast.history import History
from forethought.forecast.models.autoregressive import AutoRegressive
from forethought.forecast.models.base import flat, has_data
from forethought.forecast.models.global_linear import (
    FEATURES,
    GlobalLinear,
    median_regression,
    quantile_regression,
)
from forethought.forecast.models.markov import MarkovChain
from forethought.forecast.models.simple import LastValue, MovingAverage, MovingMedian
from forethought.forecast.models.smoothing import EWMA, HoltDamped

from .conftest import ar1_panel, feed, random_walks, run

# -- simple -----------------------------------------------------------------------------------


def test_simple_models_direct() -> None:
    values = np.array([[1.0, 2.0, 3.0, 10.0], [4.0, np.nan, 4.0, 4.0]])
    for model, expected in (
        (LastValue(), [10.0, 4.0]),
        (MovingAverage(3), [5.0, 4.0]),
        (MovingMedian(3), [3.0, 4.0]),
    ):
        history = feed(model, values, max_length=8)
        pred = model.predict(3, history)
        np.testing.assert_allclose(pred.values, np.repeat(np.array(expected)[:, None], 3, axis=1))
        assert pred.valid.all()


def test_simple_models_are_invalid_without_an_observation() -> None:
    history = History(2, 4)
    history.append(np.array([1.0, np.nan]), np.array([True, False]))
    for model in (LastValue(), MovingAverage(3), MovingMedian(3)):
        pred = model.predict(2, history)
        assert pred.valid.tolist() == [True, False]
        assert pred.reason


def test_flat_and_has_data() -> None:
    np.testing.assert_array_equal(flat(np.array([1.0, 2.0]), 3), [[1, 1, 1], [2, 2, 2]])
    history = History(3, 4)
    history.append(np.array([1.0, 1.0, np.nan]), np.array([True, True, False]))
    history.append(np.array([1.0, np.nan, np.nan]), np.array([True, False, False]))
    assert has_data(history).tolist() == [True, True, False]
    assert has_data(history, 2).tolist() == [True, False, False]


# -- exponential smoothing ----------------------------------------------------------------------


def test_ewma_on_a_constant_series_forecasts_the_constant() -> None:
    model = EWMA()
    history = feed(model, np.full((2, 50), 7.0))
    pred = model.predict(5, history)
    np.testing.assert_array_equal(pred.values, 7.0)
    assert pred.valid.all()
    np.testing.assert_array_equal(model.alphas, 0.3)  # no error, no gradient


def test_ewma_without_learning_is_textbook_exponential_smoothing(
    rng: np.random.Generator,
) -> None:
    values = rng.normal(10.0, 2.0, (3, 40))
    model = EWMA(alpha=0.4, learning_rate=0.0)
    history = feed(model, values)
    level = values[:, 0].copy()
    for t in range(1, 40):
        level = level + 0.4 * (values[:, t] - level)
    np.testing.assert_allclose(model.predict(4, history).values[:, 0], level, rtol=1e-12)


def test_ewma_alpha_falls_on_noise_and_rises_on_a_random_walk(rng: np.random.Generator) -> None:
    noise = 50.0 + rng.normal(0.0, 5.0, (20, 800))
    walk = random_walks(rng, 20, 800, start=50.0)
    on_noise, on_walk = EWMA(), EWMA()
    feed(on_noise, noise)
    feed(on_walk, walk)
    assert (on_noise.alphas < 0.3).all()
    assert on_noise.alphas.mean() < 0.2
    assert (on_walk.alphas > 0.3).all()
    assert on_walk.alphas.mean() > 0.6
    assert ((on_walk.alphas >= 0.01) & (on_walk.alphas <= 1.0)).all()


def test_ewma_skips_missing_samples() -> None:
    values = np.array([[5.0, np.nan, np.nan, 5.0]])
    model = EWMA()
    history = feed(model, values)
    np.testing.assert_array_equal(model.predict(2, history).values, 5.0)


def test_holt_damped_follows_a_linear_trend_with_a_damped_extrapolation() -> None:
    t = np.arange(300.0)
    slope = np.array([0.5, -0.2])
    values = np.array([10.0, 100.0])[:, None] + slope[:, None] * t
    model = HoltDamped()
    history = feed(model, values)
    path = model.predict(12, history).values
    last = values[:, -1:]
    steps = np.diff(np.concatenate([last, path], axis=1), axis=1)
    # The trend extrapolation goes the trend's way, with increments shrinking by phi each step.
    assert (np.sign(steps) == np.sign(slope)[:, None]).all()
    np.testing.assert_allclose(steps[:, 1:] / steps[:, :-1], 0.9, rtol=1e-9)
    # Steady state of the damped error-correction recursion on a line of slope s:
    # trend T = s / (phi + (1 - phi) / beta), so the first step adds phi * T.
    trend = slope / (0.9 + 0.1 / 0.05)
    np.testing.assert_allclose(steps[:, 0], 0.9 * trend, rtol=1e-3)
    # Damped: always short of the straight-line extrapolation, and bounded.
    straight = last + slope[:, None] * np.arange(1, 13)
    assert (np.abs(path - last) < np.abs(straight - last)).all()


def test_holt_undamped_extrapolates_a_line_exactly() -> None:
    t = np.arange(400.0)
    values = np.vstack([10.0 + 0.5 * t, 100.0 - 0.2 * t])
    model = HoltDamped(phi=1.0)
    history = feed(model, values)
    expected = values[:, -1:] + np.array([[0.5], [-0.2]]) * np.arange(1, 7)
    np.testing.assert_allclose(model.predict(6, history).values, expected, atol=1e-6)


def test_holt_needs_two_observations() -> None:
    model = HoltDamped()
    history = feed(model, np.array([[1.0, np.nan, np.nan], [1.0, 2.0, 3.0]]))
    pred = model.predict(2, history)
    assert pred.valid.tolist() == [False, True]
    assert "2 observations" in pred.reason


@pytest.mark.parametrize("phi", [0.0, -0.5, 1.5])
def test_holt_rejects_a_bad_damping(phi: float) -> None:
    with pytest.raises(ValueError, match="phi"):
        HoltDamped(phi=phi)


# -- autoregressive ---------------------------------------------------------------------------


def test_ar1_recovers_phi_and_decays_towards_the_mean(rng: np.random.Generator) -> None:
    phi = 0.7
    # 604 steps: the last step is a refit (first fit at step 15, then every 12).
    values = ar1_panel(rng, 100, 604, phi=phi, mean=20.0)
    model = AutoRegressive(order=1)
    history = feed(model, values)
    pred = model.predict(24, history)
    assert pred.valid.all()
    path = pred.values
    # On an AR(1) path p[h+1] - m = phi (p[h] - m), so successive increments have ratio phi.
    estimate = (path[:, 2] - path[:, 1]) / (path[:, 1] - path[:, 0])
    assert estimate.mean() == pytest.approx(phi, abs=0.05)
    mean = history.window(288).mean(axis=1)
    gap = np.abs(path - mean[:, None])
    assert (np.diff(gap, axis=1) <= 1e-12).all()  # monotone decay towards the mean
    assert gap[:, -1].max() < 0.05 * gap[:, 0].max() + 1e-9
    np.testing.assert_allclose(path[:, 0] - mean, estimate * (values[:, -1] - mean), rtol=1e-6)


def test_ar1_on_one_long_series_is_accurate(rng: np.random.Generator) -> None:
    values = ar1_panel(rng, 1, 4100, phi=0.7, mean=0.0)
    model = AutoRegressive(order=1, window=4000)
    history = feed(model, values)
    path = model.predict(3, history).values[0]
    assert (path[2] - path[1]) / (path[1] - path[0]) == pytest.approx(0.7, abs=0.03)


def test_ar_engine_forecasts_revert_to_the_mean(rng: np.random.Generator) -> None:
    values = ar1_panel(rng, 40, 400, phi=0.7, mean=20.0)
    _, fc = run("ar", values, horizon=12)
    # AR(3) keeps only fits with sum |coef| < 0.98, a sufficient stationarity test that
    # rejects a few genuine AR(1) fits at phi = 0.7; those fall back, and say so.
    fitted = np.array([note == "" for note in fc.notes])
    assert fitted.mean() >= 0.9
    assert all("fell back" in note for note in np.array(fc.notes)[~fitted])
    mean = values[:, -288:].mean(axis=1)  # the level the fit reverts to
    first = np.abs(fc.median[fitted, 0] - mean[fitted])
    last = np.abs(fc.median[fitted, -1] - mean[fitted])
    assert last.mean() < 0.2 * first.mean()
    assert last.max() < 0.3


def test_arima_on_a_random_walk_with_drift_extrapolates_the_drift(
    rng: np.random.Generator,
) -> None:
    walks = random_walks(rng, 50, 400, start=100.0, drift=0.5)
    _, fc = run("arima", walks, lower=None)
    assert fc.notes == ("",) * 50
    steps = np.diff(np.concatenate([walks[:, -1:], fc.median], axis=1), axis=1)
    assert steps.mean() == pytest.approx(0.5, abs=0.05)
    assert np.abs(steps.mean(axis=1) - 0.5).max() < 0.4
    # The bands of a random walk widen with the horizon.
    width = fc.quantile(0.95) - fc.median
    assert width[:, -1].mean() > 2.0 * width[:, 0].mean()


def test_ar_needs_history_and_a_stable_fit() -> None:
    model = AutoRegressive(order=3)
    assert model.name == "ar"
    assert AutoRegressive(order=2, differenced=True).name == "arima"
    history = feed(model, np.tile(np.arange(10.0), (2, 1)))
    pred = model.predict(4, history)
    assert not pred.valid.any()
    assert "24 samples" in pred.reason
    with pytest.raises(ValueError, match="order"):
        AutoRegressive(order=0)


def test_ar_leaves_constant_and_explosive_series_invalid(rng: np.random.Generator) -> None:
    values = np.vstack(
        [
            np.full(100, 5.0),  # constant: nothing to fit
            1.05 ** np.arange(100.0),  # explosive: coefficient above one
            ar1_panel(rng, 1, 100, phi=0.5, mean=10.0)[0],
        ]
    )
    model = AutoRegressive(order=1)
    history = feed(model, values)
    pred = model.predict(3, history)
    assert pred.valid.tolist() == [False, False, True]
    assert pred.reason


# -- Markov chain -----------------------------------------------------------------------------


def alternating(length: int = 200) -> np.ndarray:
    one = np.tile([5.0, 40.0], length // 2)
    return np.vstack([one, one[::-1]])


def test_markov_predicts_the_alternation() -> None:
    model = MarkovChain()
    history = feed(model, alternating())
    pred = model.predict(6, history)
    assert pred.valid.all()
    np.testing.assert_allclose(pred.values[0], [5.0, 40.0] * 3)
    np.testing.assert_allclose(pred.values[1], [40.0, 5.0] * 3)


def test_markov_distribution_rows_sum_to_one() -> None:
    model = MarkovChain(states=8)
    history = feed(model, alternating())
    dist = model.distribution(7, history)
    assert dist.shape == (2, 7, 8)
    assert (dist >= 0.0).all()
    np.testing.assert_allclose(dist.sum(axis=2), 1.0, rtol=1e-12)
    # Almost surely the other state at odd steps, the same at even ones.
    values = model.state_values
    low, high = int(np.argmin(np.abs(values[0] - 5.0))), int(np.argmin(np.abs(values[0] - 40.0)))
    assert dist[0, 0, low] > 0.95  # series 0 ended on 40: next is 5
    assert dist[0, 1, high] > 0.95
    # Another horizon after the first is served correctly from the cache.
    assert model.distribution(3, history).shape == (2, 3, 8)
    np.testing.assert_allclose(model.distribution(3, history), dist[:, :3])


def test_markov_engine_predicts_the_alternation() -> None:
    _, fc = run("markov", alternating(), horizon=6)
    np.testing.assert_allclose(fc.median[0], [5.0, 40.0] * 3)
    np.testing.assert_allclose(fc.median[1], [40.0, 5.0] * 3)
    assert fc.notes == ("", "")


def test_markov_states_count_the_edges_strictly_below_each_value(
    rng: np.random.Generator,
) -> None:
    model = MarkovChain(states=4)
    model.reset(2)
    model._edges = np.array([[1.0, 2.0, 2.0], [0.0, 5.0, 9.0]])
    x = np.array([[0.5, 1.0, 1.5, 2.0, 2.5], [0.0, 5.0, 5.5, 9.0, 10.0]])
    # A value equal to an edge stays below it: the bins are (-inf, e1], (e1, e2] ...
    assert model.state_of(x).tolist() == [[0, 0, 1, 1, 3], [0, 1, 2, 2, 3]]
    values = rng.normal(size=(50, 9)) * 10
    model._edges = np.sort(rng.normal(size=(50, 3)) * 10, axis=1)
    expected = (values[:, :, None] > model._edges[:, None, :]).sum(axis=2)
    assert (model.state_of(values) == expected).all()


def test_markov_median_state_is_where_the_cumulative_share_reaches_one_half(
    rng: np.random.Generator,
) -> None:
    from forethought.forecast.models.markov import _median_state

    p = rng.random((20, 6, 6))
    p /= p.sum(axis=2, keepdims=True)
    expected = np.minimum((np.cumsum(p, axis=2) < 0.5).sum(axis=2), 5)
    assert (_median_state(p) == expected).all()
    # [0.5, 0.5]: the first state already holds half of the mass.
    assert _median_state(np.array([[0.5, 0.5], [0.2, 0.8]])).tolist() == [0, 1]


def test_markov_needs_history_and_variation() -> None:
    model = MarkovChain()
    history = feed(model, np.full((2, 10), 3.0))
    assert not model.predict(2, history).valid.any()
    history = feed(model, np.vstack([np.full(60, 3.0), np.arange(60.0)]))
    pred = model.predict(2, history)
    assert pred.valid.tolist() == [False, True]
    assert "constant" in pred.reason
    with pytest.raises(ValueError, match="2 states"):
        MarkovChain(states=1)
    # Enough history but nothing but constants: the note says so, not "too short".
    model = MarkovChain()
    history = feed(model, np.full((2, 60), 3.0))
    pred = model.predict(2, history)
    assert not pred.valid.any()
    assert pred.reason == "constant series: a single state"


# -- global linear ----------------------------------------------------------------------------


def test_horizon_bands_double() -> None:
    assert horizon_bands(1) == [(1, 1)]
    assert horizon_bands(12) == [(1, 1), (2, 3), (4, 7), (8, 12)]
    assert horizon_bands(8) == [(1, 1), (2, 3), (4, 7), (8, 8)]
    for h in range(1, 40):
        bands = horizon_bands(h)
        covered = [k for lo, hi in bands for k in range(lo, hi + 1)]
        assert covered == list(range(1, h + 1))


def test_median_regression_recovers_coefficients_under_laplace_noise(
    rng: np.random.Generator,
) -> None:
    n = 4000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(0.0, 5.0, n)])
    beta = np.array([2.0, -1.5, 0.7])
    y = X @ beta + rng.laplace(0.0, 1.0, n)
    # A few gross outliers: least squares would be pulled, least absolute deviations not.
    y[:40] += 500.0
    coef = median_regression(X, y, np.ones(n), np.zeros(3), 60)
    np.testing.assert_allclose(coef, beta, atol=0.08)


def test_median_regression_weights_rows(rng: np.random.Generator) -> None:
    n = 600
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = np.where(np.arange(n) < 300, X @ [1.0, 1.0], X @ [5.0, -1.0])
    weight = np.where(np.arange(n) < 300, 1.0, 1e-4)
    coef = median_regression(X, y, weight, np.zeros(2), 60)
    np.testing.assert_allclose(coef, [1.0, 1.0], atol=1e-3)


@pytest.mark.parametrize("level", [0.1, 0.5, 0.9, 0.95])
def test_quantile_regression_finds_the_conditional_quantile(
    rng: np.random.Generator, level: float
) -> None:
    # Noise whose spread grows with x: the q-quantile line is intercept 1 + q-quantile of
    # the unit exponential times the slope of the spread, known in closed form.
    n = 20000
    x = rng.uniform(1.0, 3.0, n)
    X = np.column_stack([np.ones(n), x])
    y = 1.0 + 2.0 * x + x * rng.exponential(1.0, n)
    coef = quantile_regression(X, y, np.ones(n), np.zeros(2), 80, level=level)
    true = np.array([1.0, 2.0 + -np.log(1.0 - level)])  # Exp(1)'s q-quantile is -log(1-q)

    def loss(c: np.ndarray) -> float:
        r = y - X @ c
        return float(np.mean(np.maximum(level * r, (level - 1.0) * r)))

    # The fit minimises the sample's pinball loss, so it does at least as well as the true
    # line on it; the two lines agree across the data's range; coverage is the level.
    assert loss(coef) <= loss(true) + 1e-4
    grid = np.column_stack([np.ones(3), [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(grid @ coef, grid @ true, rtol=0.06)
    assert abs(np.mean(y <= X @ coef) - level) < 0.01


def test_quantile_regression_refuses_a_level_outside_0_1() -> None:
    X = np.ones((4, 1))
    with pytest.raises(ValueError, match="level"):
        quantile_regression(X, np.ones(4), np.ones(4), np.zeros(1), 3, level=1.0)


def test_global_trains_on_many_series(rng: np.random.Generator) -> None:
    walks = random_walks(rng, 200, 200, start=100.0)
    engine, fc = run("global", walks)
    model = engine.models[0]
    assert isinstance(model, GlobalLinear)
    coef = model.coefficients
    assert coef.shape == (len(horizon_bands(12)), len(FEATURES))
    # The median of a random walk's future is its last value: level-preserving weights that
    # lean on the newest samples.
    np.testing.assert_allclose(coef.sum(axis=1), 1.0, atol=0.1)
    assert coef[0, FEATURES.index(("last", 1))] > 0.6
    assert fc.notes == ("",) * 200
    assert np.abs(fc.median[:, 0] - walks[:, -1]).mean() < 0.5


def test_global_is_untrained_at_first_and_says_so() -> None:
    model = GlobalLinear()
    history = feed(model, np.ones((3, 10)))
    pred = model.predict(4, history)
    assert not pred.valid.any()
    assert "not trained" in pred.reason


@pytest.mark.parametrize(("level", "sd", "n"), [(200.0, 1.0, 50), (1000.0, 1.0, 5)])
def test_global_survives_nearly_collinear_features(
    level: float, sd: float, n: int, rng: np.random.Generator
) -> None:
    """A high level with little noise makes the lag features almost identical."""
    values = level + sd * rng.normal(size=(n, 60))
    _, fc = run("global", values)
    assert np.isfinite(fc.quantiles).all()
    assert np.abs(fc.median - level).max() < 10.0 * sd
