"""The engine's contract, for every model ``make_forecaster`` knows, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.core.errors import ForecastError
from forethought.forecast import (
    DEFAULT_LEVELS,
    Forecast,
    ForecastEngine,
    make_forecaster,
    model_names,
    native_model_names,
)
from forethought.forecast.base import FloatArray
from forethought.forecast.models.simple import LastValue, MovingMedian

from .conftest import random_walks, run

ALL_MODELS = native_model_names()


def bounded_panel(rng: np.random.Generator, n: int = 10, steps: int = 120) -> FloatArray:
    """Reflected random walks in [0, 100] with a few spiky and a few flat-ish series."""
    walks = random_walks(rng, n, steps, start=50.0) * 2.0 - 50.0
    panel = np.abs(walks) % 200.0
    panel = np.where(panel > 100.0, 200.0 - panel, panel)
    panel[0] = 30.0 + rng.normal(0.0, 2.0, steps)
    panel[1, ::17] = 95.0
    return np.asarray(panel)


def test_model_names_lists_auto_and_every_single_model() -> None:
    names = model_names()
    assert names[0] == "auto"
    assert set(names) == {
        "auto",
        "last",
        "mean",
        "median",
        "ewma",
        "holt",
        "seasonal",
        "ar",
        "arima",
        "markov",
        "global",
        "autoets",
        "autoarima",
        "autotheta",
        "lstm",
    }
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forecast_shapes_levels_notes(name: str, rng: np.random.Generator) -> None:
    panel = bounded_panel(rng)
    engine, fc = run(name, panel, horizon=6)
    assert isinstance(fc, Forecast)
    assert fc.levels == DEFAULT_LEVELS
    assert fc.quantiles.shape == (10, 6, len(DEFAULT_LEVELS))
    assert fc.mean.shape == (10, 6)
    assert (fc.n_series, fc.horizon) == (10, 6)
    assert len(fc.notes) == 10
    assert all(isinstance(note, str) for note in fc.notes)
    assert engine.n_series == 10
    assert fc.model_names == engine.model_names
    # A shorter horizon than configured is the head of the same forecast.
    short = engine.forecast(2)
    assert short.quantiles.shape == (10, 2, len(DEFAULT_LEVELS))
    np.testing.assert_allclose(short.quantiles, fc.quantiles[:, :2])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_quantiles_monotone_finite_and_within_bounds(name: str, rng: np.random.Generator) -> None:
    panel = bounded_panel(rng)
    _, fc = run(name, panel, lower=10.0, upper=60.0, levels=(0.05, 0.5, 0.9, 0.99))
    assert np.isfinite(fc.quantiles).all(), fc.notes
    assert np.isfinite(fc.mean).all()
    assert (np.diff(fc.quantiles, axis=2) >= 0.0).all()
    assert fc.quantiles.min() >= 10.0
    assert fc.quantiles.max() <= 60.0
    assert fc.mean.min() >= 10.0
    assert fc.mean.max() <= 60.0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_default_lower_bound_is_zero_and_upper_is_open(name: str, rng: np.random.Generator) -> None:
    panel = np.abs(rng.normal(0.0, 3.0, (6, 80)))  # near zero: unbounded quantiles go negative
    panel[1] = 1e6 + rng.normal(0.0, 1e3, 80)
    _, fc = run(name, panel)
    assert np.isfinite(fc.quantiles).all()
    assert fc.quantiles.min() >= 0.0
    assert fc.quantiles[1].max() > 1e6 * 0.9


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_weights_rows_sum_to_one(name: str, rng: np.random.Generator) -> None:
    _, fc = run(name, bounded_panel(rng))
    assert fc.model_weights is not None
    assert fc.model_weights.shape == (10, len(fc.model_names))
    assert (fc.model_weights >= 0.0).all()
    # Where the single model is itself invalid the engine's fallback answers, and the
    # weight row is empty: only rows whose note does not report a fallback must sum to 1.
    answered = np.array(["fell back" not in note for note in fc.notes])
    np.testing.assert_allclose(fc.model_weights[answered].sum(axis=1), 1.0, rtol=1e-12)


def test_auto_weights_sum_to_one_at_every_step(rng: np.random.Generator) -> None:
    panel = bounded_panel(rng, n=6, steps=60)
    engine = make_forecaster("auto")
    for t in range(panel.shape[1]):
        engine.update(panel[:, t : t + 1])
        fc = engine.forecast()
        assert fc.model_weights is not None
        np.testing.assert_allclose(fc.model_weights.sum(axis=1), 1.0, rtol=1e-12)


def test_auto_median_is_the_weighted_combination_of_its_models(rng: np.random.Generator) -> None:
    """The engine defines the 0.5 level as the combined point path itself (then bounded)."""
    panel = 20.0 + rng.normal(0.0, 3.0, (8, 150))
    engine, fc = run("auto", panel)
    assert fc.model_weights is not None
    combined = np.zeros((8, engine.horizon))
    for m, model in enumerate(engine.models):
        pred = model.predict(engine.horizon, engine.history)
        w = fc.model_weights[:, m]
        combined += np.where(w[:, None] > 0, w[:, None] * np.nan_to_num(pred.values), 0.0)
    # Equal up to the float32 in which the engine keeps the paths it issued (and serves).
    np.testing.assert_allclose(fc.median, combined, rtol=1e-7)
    # The mean is the median shifted by the mean calibration residual: finite, near it.
    assert np.isfinite(fc.mean).all()
    assert np.abs(fc.mean - fc.median).max() < 3.0 * 3.0


def test_last_value_median_is_the_last_value_on_a_step_series() -> None:
    step = np.concatenate([np.full(50, 1.0), np.full(50, 5.0)])
    panel = np.vstack([step, step[::-1]])
    _, fc = run("last", panel)
    np.testing.assert_array_equal(fc.median[0], 5.0)
    np.testing.assert_array_equal(fc.median[1], 1.0)
    # One-step persistence errors were 0 except once, at the step: the p90 is the level.
    assert fc.quantile(0.9)[0, 0] == pytest.approx(5.0)
    assert fc.quantile(0.9)[1, 0] == pytest.approx(1.0)


def test_last_value_carries_the_last_observation_over_missing_samples() -> None:
    panel = np.array([[1.0, 2.0, 3.0, np.nan, np.nan], [4.0, 5.0, 6.0, 7.0, 8.0]])
    _, fc = run("last", panel)
    np.testing.assert_array_equal(fc.median[:, 0], [3.0, 8.0])


def test_moving_average_is_the_mean_of_the_last_12(rng: np.random.Generator) -> None:
    panel = rng.uniform(0.0, 100.0, (5, 40))
    _, fc = run("mean", panel)
    expected = panel[:, -12:].mean(axis=1)
    # Exact to the float32 in which the engine keeps the paths it issued.
    np.testing.assert_allclose(fc.median, np.repeat(expected[:, None], 12, axis=1), rtol=1e-7)


def test_moving_median_ignores_a_single_spike(rng: np.random.Generator) -> None:
    panel = 10.0 + rng.normal(0.0, 0.5, (3, 60))
    panel[0, -1] = 1000.0  # newest sample
    panel[1, -20] = 1000.0  # inside the window
    _, fc = run("median", panel)
    expected = np.median(panel[:, -36:], axis=1)
    np.testing.assert_allclose(fc.median[:, 0], expected)
    assert np.abs(fc.median - 10.0).max() < 1.0


def test_levels_are_sorted_deduplicated_and_include_the_median() -> None:
    engine = make_forecaster("last", levels=(0.99, 0.9, 0.9))
    assert engine.levels == (0.5, 0.9, 0.99)
    engine.update(np.ones((2, 3)))
    fc = engine.forecast()
    assert fc.levels == (0.5, 0.9, 0.99)
    np.testing.assert_array_equal(fc.quantile(0.5), fc.median)
    with pytest.raises(ForecastError, match="not forecast"):
        fc.quantile(0.95)


def test_one_dimensional_update_is_one_step_of_every_series() -> None:
    engine = make_forecaster("last")
    engine.update(np.array([1.0, 2.0, 3.0]))
    engine.update(np.array([4.0, 5.0, 6.0]))
    assert engine.n_series == 3
    np.testing.assert_array_equal(engine.forecast(1).median[:, 0], [4.0, 5.0, 6.0])


def test_update_in_blocks_equals_update_step_by_step(rng: np.random.Generator) -> None:
    panel = rng.uniform(0.0, 50.0, (4, 90))
    whole = make_forecaster("auto")
    whole.update(panel)
    pieces = make_forecaster("auto")
    for start in range(0, 90, 13):
        pieces.update(panel[:, start : start + 13])
    np.testing.assert_allclose(whole.forecast().quantiles, pieces.forecast().quantiles)


def test_fit_returns_the_forecaster() -> None:
    engine = make_forecaster("mean")
    assert engine.fit(np.ones((2, 5))) is engine


def test_hedge_weights_follow_the_process(rng: np.random.Generator) -> None:
    """On random walks persistence earns weight; on white noise the long median does."""
    walks = random_walks(rng, 20, 300, start=200.0)
    noise = 50.0 + rng.normal(0.0, 5.0, (20, 300))
    engine, fc = run("auto", np.vstack([walks, noise]))
    assert fc.model_weights is not None
    last = fc.model_names.index("last")
    long_median = next(
        m
        for m, model in enumerate(engine.models)
        if isinstance(model, MovingMedian) and model.window == 144
    )
    w = fc.model_weights
    assert w[:20, last].mean() > w[:20, long_median].mean()
    assert w[20:, long_median].mean() > w[20:, last].mean()


@pytest.mark.parametrize("name", ["median", "auto"])
def test_forecast_is_a_pure_query(name: str, rng: np.random.Generator) -> None:
    values = rng.normal(50.0, 5.0, (20, 300))
    quiet = make_forecaster(name)
    quiet.update(values)
    chatty = make_forecaster(name)
    for t in range(values.shape[1]):
        chatty.update(values[:, t : t + 1])
        chatty.forecast()
    np.testing.assert_allclose(chatty.forecast().quantiles, quiet.forecast().quantiles)
    assert chatty.events == quiet.events


def test_auto_model_names_are_unique() -> None:
    engine = make_forecaster("auto")
    assert len(set(engine.model_names)) == len(engine.model_names)


# -- errors -----------------------------------------------------------------------------------


def test_forecast_before_update_is_an_error() -> None:
    engine = make_forecaster("auto")
    with pytest.raises(ForecastError, match="before any update"):
        engine.forecast()
    with pytest.raises(ForecastError):
        _ = engine.n_series
    assert engine.events == []


def test_forecast_after_an_empty_update_is_an_error() -> None:
    engine = make_forecaster("last")
    engine.update(np.empty((3, 0)))
    with pytest.raises(ForecastError, match="before any update"):
        engine.forecast()


def test_wrong_number_of_series_is_an_error() -> None:
    engine = make_forecaster("median")
    engine.update(np.ones((4, 3)))
    with pytest.raises(ForecastError, match="expected 4 series, got 5"):
        engine.update(np.ones((5, 3)))


def test_three_dimensional_update_is_an_error() -> None:
    with pytest.raises(ForecastError, match="series, steps"):
        make_forecaster("last").update(np.ones((2, 3, 4)))


@pytest.mark.parametrize("horizon", [0, -1, 13])
def test_horizon_outside_the_configured_range_is_an_error(horizon: int) -> None:
    engine = make_forecaster("last", horizon=12)
    engine.update(np.ones((2, 3)))
    with pytest.raises(ForecastError, match="horizon"):
        engine.forecast(horizon)


def test_unknown_model_name_is_an_error() -> None:
    with pytest.raises(ForecastError, match="unknown model 'prophet'"):
        make_forecaster("prophet")


@pytest.mark.parametrize("levels", [(0.0, 0.5), (0.5, 1.0), (-0.1,), (1.5,), (0.5, float("nan"))])
def test_levels_outside_zero_one_are_an_error(levels: tuple[float, ...]) -> None:
    with pytest.raises(ForecastError, match="strictly between 0 and 1"):
        make_forecaster("auto", levels=levels)


def test_engine_constructor_errors() -> None:
    with pytest.raises(ForecastError, match="at least one model"):
        ForecastEngine([])
    with pytest.raises(ForecastError, match="horizon"):
        ForecastEngine([LastValue()], horizon=0)
    with pytest.raises(ForecastError, match="horizon"):
        make_forecaster("auto", horizon=0)


def test_forecast_value_checks_its_shapes() -> None:
    q = np.zeros((2, 3, 2))
    with pytest.raises(ForecastError, match="quantiles"):
        Forecast(levels=(0.5,), quantiles=q, mean=np.zeros((2, 3)), notes=("", ""))
    with pytest.raises(ForecastError, match="mean"):
        Forecast(levels=(0.5, 0.9), quantiles=q, mean=np.zeros((2, 4)), notes=("", ""))
    with pytest.raises(ForecastError, match="one note per series"):
        Forecast(levels=(0.5, 0.9), quantiles=q, mean=np.zeros((2, 3)), notes=("",))
    with pytest.raises(ForecastError, match="quantiles"):
        Forecast(levels=(0.5,), quantiles=np.zeros((2, 3)), mean=np.zeros((2, 3)), notes=("", ""))


def test_a_horizon_that_cannot_fit_in_memory_is_refused_with_a_message() -> None:
    from forethought.forecast.engine import _physical_memory

    if _physical_memory() is None:
        pytest.skip("this platform does not report its physical memory")
    engine = make_forecaster("last", horizon=10**6)  # (H, series, H) paths: terabytes
    with pytest.raises(ForecastError, match=r"a horizon of 1000000 steps for 2 series needs"):
        engine.update(np.ones((2, 3)))


@pytest.mark.parametrize("value", [0.0, 0.1, 5.0, 33.3, 99.9, 123456.7])
def test_a_constant_series_is_covered_and_never_anomalous(value: float) -> None:
    # Paths are kept in float32; a constant series must not sit a rounding step above its
    # own upper quantiles, or every observation would be short and anomalous.
    engine = make_forecaster("auto", upper=None)
    for _ in range(400):
        engine.update(np.array([value, value]))
        upper = engine.forecast(12).quantiles[:, :, 1:]
        assert np.all(value <= upper + 1e-6 * abs(value))
    assert engine.events == []


def test_a_value_beyond_any_reading_is_refused_before_the_state_moves() -> None:
    engine = make_forecaster("auto")
    engine.update(np.full((2, 20), 5.0))
    before = engine.forecast(3).quantiles.copy()
    with pytest.raises(ForecastError, match=r"series 1, step 2: 4e\+38 is beyond"):
        engine.update(np.array([[5.0, 5.0, 5.0], [5.0, 5.0, 4e38]]))
    assert engine.steps == 20
    np.testing.assert_array_equal(engine.forecast(3).quantiles, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"anomaly_run": 0}, "an anomaly run must be a whole number of steps >= 1"),
        ({"step_seconds": 0}, "step_seconds must be a whole number of seconds >= 1"),
        ({"step_seconds": 2.5}, "step_seconds must be a whole number"),
        ({"horizon": 2.5}, "the horizon must be a whole number of steps >= 1"),
        ({"lower": float("nan")}, "lower must be a number or None"),
        ({"lower": 10.0, "upper": 5.0}, r"lower \(10\) is above upper \(5\)"),
    ],
)
def test_bad_engine_arguments_are_refused_at_construction(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        make_forecaster("auto", **kwargs)  # type: ignore[arg-type]


def test_a_refused_update_leaves_the_engine_as_it_was() -> None:
    engine = make_forecaster("auto", horizon=3)
    with pytest.raises(ForecastError, match="observed must have the shape"):
        engine.update(np.ones((4, 3)), np.ones((4, 2), dtype=bool))
    with pytest.raises(ForecastError, match="observed must be booleans"):
        engine.update(np.ones((4, 3)), np.full((4, 3), 0.5))
    with pytest.raises(ForecastError, match="at least one series"):
        engine.update(np.ones((0, 3)))
    engine.update(np.full((4, 30), 5.0))  # sized by the first update that is accepted
    assert engine.n_series == 4
    with pytest.raises(ForecastError, match="whole number of steps"):
        engine.forecast(2.5)  # type: ignore[arg-type]


def test_observations_outside_the_bounds_are_said_in_the_note() -> None:
    engine = make_forecaster("auto", horizon=3, upper=100.0)
    panel = np.full((3, 60), 50.0)
    panel[0] = 150.0
    panel[1] = -20.0
    engine.update(panel)
    notes = engine.forecast(3).notes
    assert "observed outside the bounds [0.0, 100.0]: forecasts are clipped" in notes[0]
    assert "observed outside the bounds" in notes[1]
    assert "outside the bounds" not in notes[2]


@pytest.mark.parametrize("name", ["global", "auto"])
def test_forecasts_do_not_depend_on_the_order_of_the_series(name: str) -> None:
    # The global model trains on the same (row, horizon) pairs of every series, so a
    # permuted panel gives the same forecasts (up to the order of floating-point sums).
    rng = np.random.default_rng(3)
    steps, n = 500, 30
    phase = rng.uniform(0, 6, (n, 1))
    panel = 40 + 20 * np.sin(np.arange(steps)[None] * 2 * np.pi / 12 + phase)
    panel = np.clip(panel + rng.gamma(2, 5, (n, steps)), 0, None)
    order = np.roll(np.arange(n), 1)
    straight = make_forecaster(name, horizon=6)
    straight.update(panel)
    permuted = make_forecaster(name, horizon=6)
    permuted.update(panel[order])
    back = permuted.forecast(6).quantiles[np.argsort(order)]
    np.testing.assert_allclose(back, straight.forecast(6).quantiles, atol=1e-2)
