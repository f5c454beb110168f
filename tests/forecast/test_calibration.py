"""Conformal calibration: the residual rings, and coverage of the engine on known laws."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forethought.core.errors import ForecastError
from forethought.forecast import make_forecaster
from forethought.forecast.base import FloatArray, horizon_bands
from forethought.forecast.calibration import DEFAULT_ADAPT_RATES, ResidualCalibrator, adapt_rates
from forethought.forecast.engine import ForecastEngine
from forethought.forecast.models.simple import LastValue

from .conftest import run

LEVELS = (0.5, 0.9, 0.95, 0.99)


def conformal(residuals: FloatArray, level: float) -> float:
    """The reference: numpy's linear quantile at the finite-sample corrected level."""
    m = residuals.size
    return float(np.quantile(residuals, min(1.0, level * (m + 1) / m)))


# -- the calibrator on known residuals -----------------------------------------------------------


def plain(
    n: int, horizon: int, size: int, min_count: int, levels: tuple[float, ...] = LEVELS
) -> ResidualCalibrator:
    """A calibrator without level adaptation: plain split-conformal quantiles."""
    return ResidualCalibrator(n, horizon, levels, size=size, min_count=min_count, adapt_rate=0.0)


def add_one(cal: ResidualCalibrator, residual: FloatArray, valid: np.ndarray) -> None:
    """Record one step of one-step-ahead residuals (series,)."""
    cal.add(np.asarray(residual, dtype=np.float64)[:, None], np.asarray(valid)[:, None])


def test_residual_quantiles_match_numpy(rng: np.random.Generator) -> None:
    cal = plain(n=3, horizon=2, size=50, min_count=5)
    residuals = rng.normal(0.0, 3.0, (3, 2, 40)).astype(np.float32).astype(np.float64)
    for t in range(40):  # 40 > the first ring allocation: the ring grows on demand
        cal.add(residuals[:, :, t], np.ones((3, 2), dtype=bool))
    assert cal.counts.tolist() == [[40, 40]] * 3
    quant, mean, pooled = cal.residual_quantiles(np.ones(3))
    assert quant.shape == (3, 2, 4)
    assert not pooled.any()
    for i in range(3):
        for k in range(2):
            expected = [conformal(residuals[i, k], q) for q in LEVELS]
            np.testing.assert_allclose(quant[i, k], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mean, residuals.mean(axis=2), rtol=1e-6)
    np.testing.assert_allclose(cal.adjusted_levels, np.broadcast_to(LEVELS, (3, 2, 4)), rtol=1e-6)


def test_residual_quantiles_keep_only_the_newest_window() -> None:
    cal = plain(n=1, horizon=1, size=10, min_count=2, levels=(0.5, 0.8))
    for v in range(25):  # 0..24: the ring keeps 15..24
        add_one(cal, np.array([float(v)]), np.array([True]))
    assert cal.counts.tolist() == [[10]]
    quant, mean, _ = cal.residual_quantiles(np.ones(1))
    window = np.arange(15.0, 25.0)
    np.testing.assert_allclose(quant[0, 0], [conformal(window, 0.5), conformal(window, 0.8)])
    assert mean[0, 0] == pytest.approx(19.5)


def test_horizons_of_a_band_share_one_ring() -> None:
    """Horizon bands [1], [2, 3], [4]: the band [2, 3] records h=2 and h=3 in turn."""
    cal = plain(n=1, horizon=4, size=50, min_count=1, levels=(0.5,))
    assert cal.bands == horizon_bands(4)
    for _ in range(10):
        cal.add(np.array([[1.0, 20.0, 30.0, 400.0]]), np.ones((1, 4), dtype=bool))
    assert cal.counts.tolist() == [[10, 10, 10, 10]]
    quant, mean, _ = cal.residual_quantiles(np.ones(1))
    assert quant[0, 0, 0] == pytest.approx(1.0)
    assert quant[0, 3, 0] == pytest.approx(400.0)
    assert quant[0, 1, 0] == quant[0, 2, 0]  # one distribution for the band
    np.testing.assert_allclose(mean[0], [1.0, 25.0, 25.0, 400.0])
    # Only the first two horizons asked for.
    assert cal.residual_quantiles(np.ones(1), horizons=2)[0].shape == (1, 2, 1)


def test_early_steps_fill_only_the_horizons_that_exist() -> None:
    cal = plain(n=2, horizon=4, size=8, min_count=1, levels=(0.5,))
    cal.add(np.array([[1.0], [-1.0]]), np.ones((2, 1), dtype=bool))  # step 1: h=1 only
    assert cal.counts.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0]]
    quant, mean, pooled = cal.residual_quantiles(np.ones(2), horizons=2)
    assert quant.shape == (2, 2, 1)
    np.testing.assert_allclose(quant[:, 0, 0], [1.0, -1.0])
    np.testing.assert_allclose(mean[:, 0], [1.0, -1.0])
    assert pooled[:, 1].all()  # nothing of their own at h=2 yet


def test_invalid_residuals_are_not_counted() -> None:
    cal = plain(n=2, horizon=1, size=10, min_count=3, levels=(0.5,))
    for v in range(6):
        add_one(cal, np.array([float(v), 1e9]), np.array([True, v % 2 == 0]))
    assert cal.counts.tolist() == [[6], [3]]
    quant, _, pooled = cal.residual_quantiles(np.ones(2))
    assert not pooled.any()
    assert quant[1, 0, 0] == pytest.approx(1e9)


def test_missing_residual_after_the_ring_wrapped_keeps_quantiles_finite() -> None:
    """Regression: a NaN overwriting an old residual once the ring had wrapped was still
    counted, so the quantiles indexed into the NaN tail of the sorted ring."""
    cal = plain(n=1, horizon=1, size=8, min_count=2, levels=(0.5, 0.99))
    for v in range(8):
        add_one(cal, np.array([float(v)]), np.array([True]))
    add_one(cal, np.array([np.nan]), np.array([False]))  # overwrites the residual 0.0
    quant, mean, _ = cal.residual_quantiles(np.ones(1))
    held = np.arange(1.0, 8.0)
    assert np.isfinite(quant).all()
    np.testing.assert_allclose(quant[0, 0], [conformal(held, 0.5), conformal(held, 0.99)])
    assert mean[0, 0] == pytest.approx(held.mean())
    assert cal.counts[0, 0] == 7
    for _ in range(8):  # the ring turns over with only missing residuals: nothing left
        add_one(cal, np.array([np.nan]), np.array([False]))
    assert cal.counts[0, 0] == 0


def test_pooled_fallback_borrows_scaled_residuals_of_all_series() -> None:
    cal = plain(n=3, horizon=1, size=20, min_count=5, levels=(0.5, 0.9))
    scale = np.array([1.0, 2.0, 10.0])
    base = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    for t, v in enumerate(base):
        # Series 0 and 1 hold six residuals each (in their own units); series 2 only two.
        add_one(cal, scale * v, np.array([True, True, t < 2]))
    quant, mean, pooled = cal.residual_quantiles(scale)
    assert pooled[:, 0].tolist() == [False, False, True]
    z = np.concatenate([base, base, base[:2]])  # every residual, standardised by its scale
    expected = [np.quantile(z, min(1.0, q * (1 + 1 / z.size))) * 10.0 for q in (0.5, 0.9)]
    np.testing.assert_allclose(quant[2, 0], expected)
    assert mean[2, 0] == 0.0
    np.testing.assert_allclose(quant[0, 0], [conformal(base, 0.5), conformal(base, 0.9)])


def test_upper_one_step_is_the_top_level_once_a_series_has_enough() -> None:
    cal = plain(n=2, horizon=2, size=30, min_count=4, levels=(0.5, 0.9))
    assert np.isnan(cal.upper_one_step()).all()
    for v in range(4):
        cal.add(np.array([[float(v), 0.0], [float(v), 0.0]]), np.array([[True] * 2, [v < 3] * 2]))
    cal.refresh(np.ones(2))
    upper = cal.upper_one_step()
    assert upper[0] == pytest.approx(conformal(np.arange(4.0), 0.9))
    assert np.isnan(upper[1])  # three residuals: under min_count
    assert not cal.stale


def test_calibrator_rejects_a_tiny_window() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        ResidualCalibrator(1, 1, LEVELS, size=1)
    with pytest.raises(ValueError, match="at least 2"):
        ResidualCalibrator(1, 1, LEVELS, size=10, min_count=0)
    assert ResidualCalibrator(1, 1, LEVELS, size=10, min_count=50).min_count == 10


def test_adapted_quantiles_use_the_adjusted_level(rng: np.random.Generator) -> None:
    cal = ResidualCalibrator(2, 1, (0.5, 0.9), size=100, min_count=10, adapt_rate=0.01)
    residuals = rng.normal(size=(2, 80)).astype(np.float32).astype(np.float64)
    for t in range(80):
        add_one(cal, residuals[:, t], np.ones(2, dtype=bool))
        cal.refresh(np.ones(2))  # the engine's schedule puts quantiles in force
    quant, _, _ = cal.residual_quantiles(np.ones(2))
    adjusted = cal.adjusted_levels
    assert not np.allclose(adjusted, np.broadcast_to((0.5, 0.9), adjusted.shape))
    for i in range(2):
        # No finite-sample correction once the level adapts: numpy's linear quantile.
        expected = np.quantile(residuals[i], adjusted[i, 0])
        np.testing.assert_allclose(quant[i, 0], expected, rtol=1e-5, atol=1e-5)


def test_adaptation_raises_levels_that_miss_and_lowers_levels_that_never_do() -> None:
    cal = ResidualCalibrator(2, 1, (0.9,), size=50, min_count=5, adapt_rate=0.01)
    for t in range(60):
        # Series 0 always beats everything held (a miss); series 1 never does.
        add_one(cal, np.array([float(t), -float(t)]), np.ones(2, dtype=bool))
        cal.refresh(np.ones(2))
    level = cal.adjusted_levels[:, 0, 0]
    assert level[0] == pytest.approx(1.0)  # clipped at 1
    assert 0.5 < level[1] < 0.9 - 0.01


def test_adaptation_restores_coverage_after_a_change_of_regime(
    rng: np.random.Generator,
) -> None:
    """Bursty residuals (calm and loud spells of 200 steps) are not exchangeable."""
    n, steps = 100, 1200
    sd = np.where((np.arange(steps) // 200) % 2 == 0, 1.0, 3.0)
    residuals = rng.normal(size=(n, steps)) * sd
    miss: dict[float | tuple[float, ...], float] = {}
    for rate in (0.0, 0.005, DEFAULT_ADAPT_RATES):
        cal = ResidualCalibrator(n, 1, (0.5, 0.95), size=288, min_count=24, adapt_rate=rate)
        misses = []
        for t in range(steps):
            cal.refresh(np.ones(n))  # quantiles in force, as a forecast issued now uses
            q = cal.residual_quantiles(np.ones(n))[0][:, 0, 1]
            if t >= 300:
                misses.append(float((residuals[:, t] > q).mean()))
            add_one(cal, residuals[:, t], np.ones(n, dtype=bool))
        miss[rate] = float(np.mean(misses))
    assert miss[0.0] > 0.058  # the plain window under-covers after each quiet spell
    assert 0.043 <= miss[0.005] <= 0.057
    assert 0.043 <= miss[DEFAULT_ADAPT_RATES] <= 0.057  # the mixture of rates as well


def feed(cal: ResidualCalibrator, residuals: FloatArray, refresh_every: int = 12) -> None:
    """Residuals (series, steps) through the calibrator on the engine's refresh schedule."""
    n, steps = residuals.shape
    for t in range(steps):
        add_one(cal, residuals[:, t], np.ones(n, dtype=bool))
        if cal.adds_since_refresh >= refresh_every:
            cal.refresh(np.ones(n))


def test_the_mixed_level_is_a_weighted_mean_of_the_experts(rng: np.random.Generator) -> None:
    cal = ResidualCalibrator(30, 3, (0.5, 0.95), size=100, min_count=10)
    feed(cal, rng.standard_t(3, size=(30, 400)))
    weights = cal.expert_weights
    assert weights.shape == (30, 3, 2, len(DEFAULT_ADAPT_RATES))
    np.testing.assert_allclose(weights.sum(axis=3), 1.0, rtol=1e-5)
    assert (weights > 0).all()
    experts = cal.expert_levels
    np.testing.assert_allclose(
        cal.adjusted_levels, (weights * experts).sum(axis=3), rtol=1e-5, atol=1e-6
    )
    assert (cal.adjusted_levels >= experts.min(axis=3) - 1e-6).all()
    assert (cal.adjusted_levels <= experts.max(axis=3) + 1e-6).all()


def test_calm_residuals_favour_the_slow_expert(rng: np.random.Generator) -> None:
    """On exchangeable residuals a fast rate only shakes the band: its loss is higher."""
    cal = ResidualCalibrator(200, 1, (0.9,), size=288, min_count=24, adapt_rate=(0.001, 0.05))
    feed(cal, rng.normal(size=(200, 1500)), refresh_every=1)
    weights = cal.expert_weights[:, 0, 0]
    assert float(np.median(weights[:, 0])) > 0.5
    levels = cal.expert_levels[:, 0, 0]
    assert float(levels[:, 1].std()) > 2 * float(levels[:, 0].std())  # the fast one wanders


def test_a_shifting_regime_favours_the_fast_expert(rng: np.random.Generator) -> None:
    """When the spread keeps changing, the slow expert lags: the weight moves to the fast one."""
    steps = 1500
    sd = np.where((np.arange(steps) // 60) % 2 == 0, 1.0, 4.0)
    cal = ResidualCalibrator(200, 1, (0.9,), size=288, min_count=24, adapt_rate=(0.001, 0.05))
    feed(cal, rng.normal(size=(200, steps)) * sd, refresh_every=1)
    assert float(np.median(cal.expert_weights[:, 0, 0, 1])) > 0.5


def test_a_series_flat_at_zero_keeps_finite_weights() -> None:
    """Quantiles of almost nothing must not turn a residual into an infinite loss."""
    residuals = np.zeros((2, 300))
    residuals[0, ::7] = 1e-44  # denormal in float32: the experts' width is next to nothing
    residuals[0, 150] = 50.0
    cal = ResidualCalibrator(2, 1, (0.9, 0.99), size=100, min_count=10)
    with np.errstate(invalid="raise"):  # no inf - inf, no NaN made along the way
        feed(cal, residuals, refresh_every=1)
    assert np.isfinite(cal.expert_weights).all()
    assert np.isfinite(cal.adjusted_levels).all()
    assert np.isfinite(cal.residual_quantiles(np.ones(2))[0]).all()


def test_a_single_rate_is_plain_adaptive_conformal() -> None:
    cal = ResidualCalibrator(1, 1, (0.9,), size=50, min_count=5, adapt_rate=0.01)
    feed(cal, np.arange(10.0)[None, :], refresh_every=1)  # every residual a miss
    # Adapting from the 6th residual on (5 are its own): 5 misses, each 0.01 x (1 - 0.1) up.
    assert cal.adjusted_levels[0, 0, 0] == pytest.approx(0.9 + 5 * 0.01 * 0.9, abs=1e-5)
    assert cal.rates == (0.01,)


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (-0.01, "in \\[0, 1\\)"),
        (1.5, "in \\[0, 1\\)"),
        (float("nan"), "in \\[0, 1\\)"),
        ((0.0, 0.01), "turns adaptation off"),
        ((0.01, 0.01), "twice"),
    ],
)
def test_bad_adapt_rates_are_refused(rate: float | tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        adapt_rates(rate)
    with pytest.raises(ForecastError, match=message):
        ForecastEngine([LastValue()], adapt_rate=rate)


def test_no_rate_means_no_adaptation() -> None:
    assert adapt_rates(0.0) == ()
    assert adapt_rates(()) == ()
    assert adapt_rates([0.002, 0.02]) == (0.002, 0.02)


# -- the engine's calibration on synthetic laws --------------------------------------------------

N_SERIES, WARM_UP, DRAWS = 400, 200, 100
Sampler = Callable[[np.random.Generator, tuple[int, ...]], FloatArray]


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    return rng.normal(50.0, 5.0, shape)


def laplace(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    return rng.laplace(50.0, 5.0 / np.sqrt(2.0), shape)  # standard deviation 5


#: The true 0.95 quantile of each law.
TRUE_P95: dict[Sampler, float] = {
    normal: 50.0 + 1.6449 * 5.0,
    laplace: 50.0 + 5.0 / np.sqrt(2.0) * np.log(10.0),
}


def coverage_by_horizon(quantile: FloatArray, fresh: FloatArray) -> FloatArray:
    """Share of fresh draws (series, horizon, draws) at or below the (series, horizon) bound."""
    return np.asarray((fresh <= quantile[:, :, None]).mean(axis=(0, 2)))


@pytest.mark.parametrize(
    ("name", "law"), [("median", normal), ("median", laplace), ("auto", normal)]
)
def test_p95_is_calibrated_at_every_horizon(
    name: str, law: Sampler, rng: np.random.Generator
) -> None:
    history = law(rng, (N_SERIES, WARM_UP))
    _, fc = run(name, history, levels=LEVELS)
    # After the warm-up every series has its own residuals at every horizon.
    assert not any("residuals" in note for note in fc.notes)
    p95 = fc.quantile(0.95)
    assert float(p95.mean()) == pytest.approx(TRUE_P95[law], abs=0.6)
    assert float(fc.median.mean()) == pytest.approx(50.0, abs=0.3)
    fresh = law(rng, (N_SERIES, fc.horizon, DRAWS))
    for level in (0.9, 0.95, 0.99):
        cov = coverage_by_horizon(fc.quantile(level), fresh)
        assert cov.shape == (fc.horizon,)
        lo, hi = (0.93, 0.97) if level == 0.95 else (level - 0.025, min(level + 0.025, 0.999))
        assert ((cov >= lo) & (cov <= hi)).all(), (level, cov)


@pytest.mark.parametrize("name", ["median", "auto"])
def test_coverage_holds_per_scale_group(name: str, rng: np.random.Generator) -> None:
    scales = np.repeat([1.0, 5.0, 25.0], [134, 133, 133])
    history = 200.0 + scales[:, None] * rng.normal(size=(N_SERIES, WARM_UP))
    _, fc = run(name, history, levels=LEVELS)
    p95 = fc.quantile(0.95)
    fresh = 200.0 + scales[:, None, None] * rng.normal(size=(N_SERIES, fc.horizon, DRAWS))
    for s in (1.0, 5.0, 25.0):
        group = scales == s
        cov = coverage_by_horizon(p95[group], fresh[group])
        assert ((cov >= 0.93) & (cov <= 0.97)).all(), (s, cov)
        # The width is each series' own: proportional to its scale.
        width = float((p95[group] - fc.median[group]).mean())
        assert width == pytest.approx(1.6449 * s, rel=0.2)


def test_pooled_calibration_note_appears_early_then_goes(rng: np.random.Generator) -> None:
    engine = make_forecaster("median", horizon=4)
    history = rng.normal(50.0, 5.0, (5, 80))
    engine.update(history[:, :3])
    early = engine.forecast()
    assert all("too few residuals" in note for note in early.notes)
    assert np.isfinite(early.quantiles).all()
    engine.update(history[:, 3:])
    assert engine.forecast().notes == ("",) * 5


def test_pooled_note_for_a_series_that_appears_late(rng: np.random.Generator) -> None:
    history = rng.normal(50.0, 5.0, (3, 120))
    history[2, :110] = np.nan  # a new VM: ten samples of its own
    _, fc = run("median", history)
    assert fc.notes[:2] == ("", "")
    assert "too few residuals" in fc.notes[2]
    assert np.isfinite(fc.quantiles[2]).all()


def test_pooled_bands_scale_with_each_series(rng: np.random.Generator) -> None:
    quiet = 50.0 + rng.normal(0.0, 0.5, (5, 15))
    loud = 50.0 + rng.normal(0.0, 20.0, (5, 15))
    _, fc = run("median", np.vstack([quiet, loud]), lower=None)
    assert all("too few residuals" in note for note in fc.notes)
    width = fc.quantile(0.95)[:, 0] - fc.median[:, 0]
    assert width[5:].mean() > 10.0 * width[:5].mean()
