"""The global LSTM: an optional point model behind the engine (``forethought[lstm]``)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from forethought.core.errors import ForecastError
from forethought.forecast.engine import make_forecaster, model_names, native_model_names
from forethought.forecast.history import History
from forethought.forecast.models.simple import LastValue

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch is not installed (forethought[lstm])",
)


def test_the_name_is_listed_as_optional_and_a_missing_extra_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "lstm" in model_names()
    assert "lstm" not in native_model_names()
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ForecastError, match=r"forethought\[lstm\]"):
        make_forecaster("lstm")


def _feed(model: object, y: np.ndarray, history: History) -> None:
    from forethought.forecast.models.lstm import GlobalLSTM

    assert isinstance(model, GlobalLSTM)
    for t in range(y.shape[1]):
        obs = np.isfinite(y[:, t])
        filled = history.append(y[:, t], obs)
        model.observe(filled, obs, history)


@needs_torch
def test_normalise_is_scale_free_and_safe_on_constant_windows() -> None:
    from forethought.forecast.models.lstm import normalise

    rng = np.random.default_rng(0)
    w = 10 + rng.normal(0, 1, (4, 30))
    loc, scale = normalise(w)
    loc10, scale10 = normalise(10 * w)
    np.testing.assert_allclose(loc10, 10 * loc)
    np.testing.assert_allclose(scale10, 10 * scale)
    loc0, scale0 = normalise(np.full((2, 30), 7.0))
    assert (loc0 == 7.0).all()
    assert (scale0 > 0).all()


@needs_torch
def test_invalid_with_a_reason_until_trained_then_learns_a_cycle() -> None:
    from forethought.forecast.models.lstm import GlobalLSTM

    # Series on a 12-step cycle, each at its own level and amplitude: the last value and
    # the recent median are both wrong half a cycle ahead; the network must learn the phase.
    n, steps, period = 40, 240, 12
    rng = np.random.default_rng(3)
    t = np.arange(steps)
    level = rng.uniform(20, 60, n)[:, None]
    amp = rng.uniform(5, 15, n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    y = level + amp * np.sin(2 * np.pi * t / period + phase) + rng.normal(0, 0.3, (n, steps))
    model = GlobalLSTM(
        max_horizon=6, window=24, hidden=16, memory=150, refit_every=50, train_steps=300
    )
    history = History(n, model.history_needed)
    model.reset(n)
    first = model.predict(6, history)
    assert not first.valid.any()
    assert "not trained yet" in first.reason
    _feed(model, y[:, :200], history)
    assert model.training_loss, "the model fitted at least once"
    pred = model.predict(6, history)
    assert pred.values.shape == (n, 6)
    assert pred.valid.all()
    actual = y[:, 200:206]
    lstm_err = np.mean(np.abs(pred.values - actual))
    naive_err = np.mean(np.abs(LastValue().predict(6, history).values - actual))
    assert lstm_err < 0.5 * naive_err, (lstm_err, naive_err)


@needs_torch
def test_same_seed_same_forecast_and_the_callers_rng_is_untouched() -> None:
    import torch

    from forethought.forecast.models.lstm import GlobalLSTM

    rng = np.random.default_rng(5)
    y = np.clip(30 + np.cumsum(rng.normal(0, 1, (8, 120)), axis=1), 0, 100)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = GlobalLSTM(max_horizon=3, window=12, memory=60, train_steps=20)
        history = History(8, model.history_needed)
        model.reset(8)
        _feed(model, y, history)
        outs.append(model.predict(3, history).values)
        after = torch.rand(1).item()
    np.testing.assert_array_equal(outs[0], outs[1])
    torch.manual_seed(123)
    assert torch.rand(1).item() == after  # building the model did not consume the RNG


@needs_torch
def test_short_or_missing_series_are_invalid_and_the_engine_falls_back_with_a_note() -> None:
    rng = np.random.default_rng(2)
    values = np.clip(40 + rng.normal(0, 4, (6, 200)), 0, 100)
    values[5, :190] = np.nan  # a VM that appeared ten samples ago
    engine = make_forecaster("lstm", horizon=4, upper=100.0)
    engine.update(values)
    fc = engine.forecast(4)
    assert fc.quantiles.shape == (6, 4, len(fc.levels))
    assert (np.diff(fc.quantiles, axis=2) >= -1e-9).all()
    assert np.isfinite(fc.quantiles).all()
    assert "fewer than 24 observations" in fc.notes[5]
    assert "lstm" not in fc.notes[0]


@needs_torch
def test_bad_parameters_are_refused() -> None:
    from forethought.forecast.models.lstm import GlobalLSTM

    with pytest.raises(ForecastError, match="window"):
        GlobalLSTM(window=1)
    with pytest.raises(ForecastError, match="learning_rate"):
        GlobalLSTM(learning_rate=0.0)
    model = GlobalLSTM(max_horizon=3, window=12, memory=40, train_steps=5)
    history = History(2, model.history_needed)
    model.reset(2)
    _feed(model, np.full((2, 80), 10.0), history)
    with pytest.raises(ForecastError, match="built for 3 steps"):
        model.predict(5, history)
