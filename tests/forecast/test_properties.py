"""Properties over generated inputs (Hypothesis), kept small so the suite stays fast."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from forethought.evaluation.metrics import pinball
from forethought.forecast.base import FloatArray
from forethought.forecast.calibration import ResidualCalibrator
from forethought.forecast.engine import make_forecaster, native_model_names
from forethought.forecast.history import History

from .conftest import forward_filled

SMALL = settings(max_examples=40, deadline=None)

#: Utilisation-like samples on a grid of 1/64 (exact in binary, so scaling by powers of 2 is
#: exact), or missing. Subnormal magnitudes are left out: a naive scale of 1e-310 overflows
#: the engine's loss (err / scale) and nothing real is measured that finely.
sample = st.one_of(st.integers(0, 64 * 10_000).map(lambda i: i / 64.0), st.just(np.nan))


@st.composite
def panels(draw: st.DrawFn, max_series: int = 4, max_steps: int = 40) -> FloatArray:
    n = draw(st.integers(1, max_series))
    steps = draw(st.integers(1, max_steps))
    values: FloatArray = draw(arrays(np.float64, (n, steps), elements=sample))
    return values


@SMALL
@given(
    values=panels(),
    name=st.sampled_from(native_model_names()),
    upper=st.one_of(st.none(), st.floats(1.0, 500.0)),
    horizon=st.integers(1, 6),
)
def test_quantiles_are_monotone_bounded_and_finite_where_observed(
    values: FloatArray, name: str, upper: float | None, horizon: int
) -> None:
    engine = make_forecaster(name, horizon=horizon, upper=upper, levels=(0.1, 0.5, 0.9, 0.99))
    engine.update(values)
    fc = engine.forecast()
    n = values.shape[0]
    assert fc.quantiles.shape == (n, horizon, 4)
    assert len(fc.notes) == n
    seen = np.isfinite(values).any(axis=1)
    assert np.isfinite(fc.quantiles[seen]).all()
    assert np.isnan(fc.quantiles[~seen]).all()
    assert all("no observation" in fc.notes[i] for i in np.flatnonzero(~seen))
    q = fc.quantiles[seen]
    assert (np.diff(q, axis=2) >= 0.0).all()
    assert (q >= 0.0).all()
    if upper is not None:
        assert (q <= upper).all()


@SMALL
@given(
    values=panels(max_series=3, max_steps=60),
    max_length=st.integers(1, 20),
    w=st.integers(1, 25),
)
def test_history_window_is_the_tail_of_the_carried_forward_data(
    values: FloatArray, max_length: int, w: int
) -> None:
    n, steps = values.shape
    history = History(n, max_length)
    for t in range(steps):
        history.append(values[:, t], np.isfinite(values[:, t]))
    reference = forward_filled(values)
    keep = min(w, max_length, steps)
    window = history.window(w)
    assert window.shape == (n, keep)
    np.testing.assert_array_equal(window, reference[:, steps - keep :])
    assert history.observed_count.tolist() == np.isfinite(values).sum(axis=1).tolist()


@settings(max_examples=200, deadline=None)
@given(
    actual=st.integers(-(10**6), 10**6).map(lambda i: i / 1000.0),
    quantile=st.integers(-(10**6), 10**6).map(lambda i: i / 1000.0),
    level=st.floats(0.01, 0.99),
)
def test_pinball_is_non_negative_and_zero_only_at_the_actual(
    actual: float, quantile: float, level: float
) -> None:
    loss = float(pinball(np.array(actual), np.array(quantile), level))
    assert loss >= 0.0
    assert (loss == 0.0) == (actual == quantile)
    # Asymmetry: under-forecasting costs level, over-forecasting 1 - level, per unit.
    expected = (
        level * (actual - quantile) if actual >= quantile else (1 - level) * (quantile - actual)
    )
    assert np.isclose(loss, expected, rtol=1e-12, atol=1e-12)


@SMALL
@given(
    residuals=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=3, max_size=60),
    size=st.integers(3, 40),
    level=st.floats(0.05, 0.999),
)
def test_calibrator_quantiles_match_numpy(residuals: list[float], size: int, level: float) -> None:
    cal = ResidualCalibrator(1, 1, (level,), size=size, min_count=1, adapt_rate=0.0)
    for r in residuals:
        cal.add(np.array([[r]]), np.array([[True]]))
    held = np.array(residuals[-size:], dtype=np.float64)
    m = held.size
    quant, mean, pooled = cal.residual_quantiles(np.ones(1))
    stored = float(np.float32(level))  # levels are kept in float32
    expected = np.quantile(held, min(1.0, stored * (m + 1) / m))
    assert not pooled.any()
    spread = float(np.ptp(held)) + 1.0
    np.testing.assert_allclose(quant[0, 0, 0], expected, rtol=0.0, atol=1e-6 * spread)
    np.testing.assert_allclose(mean[0, 0], held.mean(), rtol=1e-6, atol=1e-6)


@SMALL
@given(
    values=panels(max_series=3, max_steps=60),
    name=st.sampled_from(["last", "mean", "median", "ewma", "holt", "markov"]),
    factor=st.sampled_from([0.25, 2.0, 8.0]),
)
def test_forecasts_scale_with_the_data(values: FloatArray, name: str, factor: float) -> None:
    """Units must not matter: percent or fraction, the same forecast (powers of 2: exact)."""
    one = make_forecaster(name)
    one.update(values)
    scaled = make_forecaster(name)
    scaled.update(factor * values)
    np.testing.assert_allclose(
        scaled.forecast().quantiles, factor * one.forecast().quantiles, rtol=1e-9, atol=1e-12
    )
