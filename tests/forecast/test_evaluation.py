"""Metrics on hand-computed arrays, the backtest protocol, and an end-to-end backtest."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from forethought.core.errors import ForecastError
from forethought.evaluation.backtest import BacktestConfig, BacktestResult, backtest
from forethought.evaluation.metrics import METRIC_NAMES, naive_scale, pinball, score
from forethought.forecast import Forecast, Forecaster, make_forecaster
from forethought.forecast.base import BoolArray, FloatArray

nan = np.nan

# Two series, two origins, two horizon steps; one actual missing.
ACTUAL = np.array([[[10.0, 12.0], [8.0, nan]], [[0.0, 4.0], [5.0, 5.0]]])
POINT = np.array([[[9.0, 15.0], [8.0, 10.0]], [[2.0, 2.0], [5.0, 1.0]]])
P95 = np.array([[[11.0, 12.0], [7.0, 20.0]], [[1.0, 3.0], [9.0, 5.0]]])
SCALE = np.array([[1.0, 2.0], [2.0, 4.0]])


def test_pinball_by_hand() -> None:
    assert pinball(np.array(10.0), np.array(8.0), 0.9) == pytest.approx(1.8)
    assert pinball(np.array(8.0), np.array(10.0), 0.9) == pytest.approx(0.2)
    assert pinball(np.array(3.0), np.array(3.0), 0.95) == 0.0
    np.testing.assert_allclose(pinball(np.array([1.0, 3.0]), np.array([2.0, 2.0]), 0.5), 0.5)


def test_naive_scale_by_hand() -> None:
    history = np.array(
        [
            [1.0, 3.0, 2.0, 6.0],
            [1.0, 3.0, nan, 6.0],  # differences touching the gap are left out
            [4.0, nan, nan, nan],
            [2.0, 2.0, 2.0, 2.0],
        ]
    )
    scale = naive_scale(history)
    assert scale[0] == pytest.approx(7.0 / 3.0)
    assert scale[1] == pytest.approx(2.0)
    assert np.isnan(scale[2])
    assert scale[3] == 0.0


def test_score_overall_by_hand() -> None:
    s = score(ACTUAL, POINT, P95, SCALE)
    assert s.points == 7
    assert s.series_without_scale == 0
    assert set(s.overall) == set(METRIC_NAMES)
    # |errors| 1 3 0 2 2 0 4; squared 1 9 0 4 4 0 16.
    assert s.overall["mae"] == pytest.approx(12.0 / 7.0)
    assert s.overall["rmse"] == pytest.approx(math.sqrt(34.0 / 7.0))
    # MASE: scaled errors averaged over h per (series, origin) first: (2, 0, 1, 0.5) -> 0.875
    # (a flat mean of the seven scaled errors would be 1.0).
    assert s.overall["mase"] == pytest.approx(0.875)
    # actual - p95: -1 0 1 -1 1 -4 0 -> losses .05 0 .95 .05 .95 .2 0.
    assert s.overall["pinball_95"] == pytest.approx(2.2 / 7.0)
    assert s.overall["coverage_95"] == pytest.approx(5.0 / 7.0)  # 12 <= 12 counts as covered
    assert s.overall["under_provisioning"] == pytest.approx(2.0 / 7.0)
    assert s.overall["over_provisioning"] == pytest.approx(6.0 / 7.0)


def test_score_per_horizon_by_hand() -> None:
    h1, h2 = score(ACTUAL, POINT, P95, SCALE).per_horizon
    expected_h1 = {
        "h": 1.0,
        "mae": 0.75,
        "rmse": math.sqrt(1.25),
        "mase": 0.5,
        "pinball_95": 0.3125,
        "coverage_95": 0.75,
        "under_provisioning": 0.25,
        "over_provisioning": 1.5,
    }
    expected_h2 = {
        "h": 2.0,
        "mae": 3.0,
        "rmse": math.sqrt(29.0 / 3.0),
        "mase": 5.0 / 3.0,
        "pinball_95": 0.95 / 3.0,
        "coverage_95": 2.0 / 3.0,
        "under_provisioning": 1.0 / 3.0,
        "over_provisioning": 0.0,
    }
    assert h1 == pytest.approx(expected_h1)
    assert h2 == pytest.approx(expected_h2)


def test_score_excludes_zero_and_unknown_scale_from_mase_only() -> None:
    scale = SCALE.copy()
    scale[1, 1] = 0.0
    s = score(ACTUAL, POINT, P95, scale)
    assert s.series_without_scale == 1
    assert s.overall["mase"] == pytest.approx(1.0)  # mean of (2, 0, 1)
    assert [h["mase"] for h in s.per_horizon] == pytest.approx([2.0 / 3.0, 2.0])
    assert s.overall["mae"] == pytest.approx(12.0 / 7.0)  # every other metric keeps the points
    scale[0, 0] = nan
    assert score(ACTUAL, POINT, P95, scale).series_without_scale == 2


def test_score_ignores_missing_actuals() -> None:
    actual = ACTUAL.copy()
    actual[1, 1] = nan  # a whole (series, origin) missing
    s = score(actual, POINT, P95, SCALE)
    assert s.points == 5
    assert s.overall["mae"] == pytest.approx(8.0 / 5.0)  # |errors| 1 3 0 2 2
    assert s.overall["mase"] == pytest.approx(1.0)  # (2, 0, 1)
    assert s.overall["coverage_95"] == pytest.approx(3.0 / 5.0)


def test_score_emits_no_warning_for_a_zero_scale() -> None:
    """Regression: the per-(series, origin) MASE mean warned 'Mean of empty slice', which
    the project's filterwarnings=error turns into an exception."""
    scale = SCALE.copy()
    scale[1, 1] = 0.0
    assert score(ACTUAL, POINT, P95, scale).overall["mase"] == pytest.approx(1.0)


def test_score_emits_no_warning_for_a_fully_missing_origin() -> None:
    """Regression: likewise when every actual of a (series, origin) is missing."""
    actual = ACTUAL.copy()
    actual[1, 1] = nan
    assert score(actual, POINT, P95, SCALE).overall["mase"] == pytest.approx(1.0)


def test_score_emits_no_warning_for_a_horizon_step_missing_everywhere() -> None:
    actual = ACTUAL.copy()
    actual[:, :, 1] = nan
    s = score(actual, POINT, P95, SCALE)
    assert np.isnan(s.per_horizon[1]["mae"])
    assert s.per_horizon[0]["mae"] == pytest.approx(0.75)


# -- the protocol -------------------------------------------------------------------------------


def test_reference_protocol_origins() -> None:
    cfg = BacktestConfig()
    assert (cfg.horizon, cfg.first_origin, cfg.every) == (12, 144, 12)
    origins = cfg.origins(288)
    assert origins == list(range(144, 277, 12))
    assert origins[0] == 144
    assert origins[-1] == 276
    assert len(origins) == 12
    assert cfg.origins(156) == [144]
    assert cfg.origins(287) == list(range(144, 265, 12))


def test_too_short_a_trace_is_an_error() -> None:
    with pytest.raises(ForecastError, match="155 steps: too short"):
        BacktestConfig().origins(155)


@pytest.mark.parametrize(
    "cfg",
    [
        BacktestConfig(horizon=0),
        BacktestConfig(every=0),
        BacktestConfig(first_origin=1),
    ],
)
def test_bad_protocol_is_an_error(cfg: BacktestConfig) -> None:
    with pytest.raises(ForecastError):
        cfg.origins(1000)


# -- end to end ---------------------------------------------------------------------------------


def ramps() -> np.ndarray:
    """Three lines through 0 with slopes 1, 2, 3: persistence misses by slope * h, always."""
    return np.arange(1.0, 4.0)[:, None] * np.arange(200.0)[None, :]


def test_backtest_of_persistence_on_ramps_by_hand() -> None:
    cfg = BacktestConfig(horizon=4, first_origin=100, every=10)
    result = backtest(lambda: make_forecaster("last", horizon=4), ramps(), config=cfg)
    assert isinstance(result, BacktestResult)
    assert (result.n_series, result.n_origins) == (3, 10)
    assert result.scores.points == 3 * 10 * 4
    overall = result.scores.overall
    assert overall["mae"] == pytest.approx(2.0 * 2.5)  # mean slope * mean h
    assert overall["rmse"] == pytest.approx(math.sqrt(14.0 / 3.0 * 7.5))
    assert overall["mase"] == pytest.approx(2.5)  # the naive scale is the slope
    # Every residual at horizon h is slope * h. Horizons 1 and 4 each have a residual ring
    # of their own, so their p95 is exactly the actual: no loss, no over-provisioning.
    h1, h2, h3, h4 = result.scores.per_horizon
    for h in (h1, h4):
        assert h["pinball_95"] == pytest.approx(0.0, abs=1e-9)
        assert h["over_provisioning"] == pytest.approx(0.0, abs=1e-9)
    # Horizons 2 and 3 share a ring (one band): the band's p95 covers both, so h=2 is
    # over-provisioned, by at most one slope.
    assert [h["coverage_95"] for h in (h1, h2, h3, h4)] == [1.0] * 4
    assert h2["over_provisioning"] <= 2.0 + 1e-9
    assert overall["coverage_95"] == 1.0
    assert result.notes == {}
    assert result.anomalies == 0
    assert result.cpu_seconds >= 0.0
    assert result.wall_seconds >= 0.0
    d = result.to_dict()
    assert d["n_series"] == 3
    assert d["n_origins"] == 10
    assert d["points"] == 120
    assert d["mase"] == pytest.approx(2.5)
    assert len(d["per_horizon"]) == 4  # type: ignore[arg-type]
    assert d["cpu_seconds_per_1k_series_per_origin"] == pytest.approx(
        result.cpu_seconds / 0.003 / 10
    )


def test_backtest_feeds_only_the_past(rng: np.random.Generator) -> None:
    """A forecaster that peeked at the future would show up in what it was fed."""
    values = rng.uniform(0.0, 10.0, (2, 60))
    fed: list[int] = []

    class Recorder(Forecaster):
        def __init__(self) -> None:
            self.inner = make_forecaster("last", horizon=5)

        def update(self, values: FloatArray, observed: BoolArray | None = None) -> None:
            fed.append(values.shape[1])
            self.inner.update(values, observed)

        def forecast(self, horizon: int) -> Forecast:
            return self.inner.forecast(horizon)

    cfg = BacktestConfig(horizon=5, first_origin=20, every=7)
    progress: list[tuple[int, int]] = []
    result = backtest(Recorder, values, config=cfg, progress=lambda j, k: progress.append((j, k)))
    origins = cfg.origins(60)
    assert fed == [origins[0]] + [b - a for a, b in pairwise(origins)]
    assert progress == [(j + 1, len(origins)) for j in range(len(origins))]
    assert result.n_origins == len(origins)


def test_backtest_on_a_noisy_panel_with_missing_samples(rng: np.random.Generator) -> None:
    values = rng.normal(50.0, 5.0, (30, 288))
    observed = rng.random(values.shape) > 0.05
    values[:, ::50] = nan
    result = backtest(lambda: make_forecaster("median"), values, observed)
    seen = observed & np.isfinite(values)
    expected_points = sum(int(seen[:, t : t + 12].sum()) for t in BacktestConfig().origins(288))
    assert result.scores.points == expected_points
    assert result.n_origins == 12
    overall = result.scores.overall
    assert 0.85 <= overall["coverage_95"] <= 1.0
    assert overall["mae"] == pytest.approx(5.0 * math.sqrt(2.0 / math.pi), rel=0.15)
    assert overall["mase"] < 1.0  # a level beats persistence on white noise


def test_backtest_rejects_a_bad_panel() -> None:
    with pytest.raises(ForecastError, match="series, steps"):
        backtest(lambda: make_forecaster("last"), np.ones((2, 3, 300)))
    with pytest.raises(ForecastError, match="too short"):
        backtest(lambda: make_forecaster("last"), np.ones((2, 100)))


def test_backtest_with_a_constant_series_does_not_warn(rng: np.random.Generator) -> None:
    """Regression: a zero naive scale made score() warn, which the test settings raise."""
    values = rng.normal(50.0, 5.0, (3, 200))
    values[1] = 7.0
    result = backtest(
        lambda: make_forecaster("median"),
        values,
        config=BacktestConfig(first_origin=150),
    )
    assert result.scores.series_without_scale == len(BacktestConfig(first_origin=150).origins(200))


def test_an_actual_equal_to_p95_up_to_rounding_is_covered() -> None:
    actual = np.array([[[5.0, 5.0]]])
    p95 = np.array([[[np.nextafter(5.0, 0.0), 4.9]]])  # one rounding step below; clearly below
    s = score(actual, actual, p95, np.ones((1, 1)))
    assert s.per_horizon[0]["coverage_95"] == 1.0
    assert s.per_horizon[1]["coverage_95"] == 0.0


def test_an_observed_actual_without_a_forecast_is_counted_not_scored() -> None:
    actual = np.full((2, 1, 3), 10.0)
    point = actual.copy()
    point[0] = np.nan  # no forecast for series 0
    s = score(actual, point, actual + 1.0, np.ones((2, 1)))
    assert s.points == 3
    assert s.missing_forecasts == 3
    assert s.overall["mae"] == 0.0
    assert s.overall["coverage_95"] == 1.0  # scored on the same three points as the MAE


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 3), (2, 3), (2, 3), (2,)), "one \\(series, origins, horizon\\) shape"),
        (((2, 1, 3), (2, 1, 2), (2, 1, 3), (2, 1)), "one \\(series, origins, horizon\\) shape"),
        (((2, 1, 3), (2, 1, 3), (2, 1, 3), (1, 1)), "scale must have shape \\(2, 1\\)"),
    ],
)
def test_score_refuses_arrays_of_the_wrong_shape(
    shapes: tuple[tuple[int, ...], ...], message: str
) -> None:
    a, p, q, s = (np.ones(shape) for shape in shapes)
    with pytest.raises(ForecastError, match=message):
        score(a, p, q, s)
