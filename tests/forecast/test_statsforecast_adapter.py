"""The statsforecast adapter: an optional point model behind the engine."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from forethought.core.errors import ForecastError
from forethought.forecast.engine import make_forecaster, model_names
from forethought.forecast.history import History

needs_statsforecast = pytest.mark.skipif(
    importlib.util.find_spec("statsforecast") is None,
    reason="statsforecast is not installed (forethought[statsforecast])",
)


def test_the_names_are_listed_and_a_missing_extra_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {"autoets", "autoarima", "autotheta"} <= set(model_names())
    monkeypatch.setitem(sys.modules, "statsforecast", None)
    with pytest.raises(ForecastError, match=r"forethought\[statsforecast\]"):
        make_forecaster("autoets")


@needs_statsforecast
def test_adapter_refits_on_its_cadence_and_serves_the_path_in_between() -> None:
    from forethought.forecast.models.statsforecast_adapter import StatsForecastModel

    rng = np.random.default_rng(0)
    model = StatsForecastModel("autoets", window=60, refit_every=4, min_history=10)
    n = 3
    history = History(n, 60)
    model.reset(n)
    y = 50 + rng.normal(0, 1, (n, 40))
    y[2, :] = np.nan  # a series with no data: invalid, with a reason
    paths, ages = [], []
    for t in range(30):
        filled = history.append(y[:, t], np.isfinite(y[:, t]))
        model.observe(filled, np.isfinite(y[:, t]), history)
        paths.append(model.predict(5, history))
        ages.append(model._age)
    assert max(ages) == 3  # refitted every fourth step
    last = paths[-1]
    assert last.values.shape == (3, 5)
    assert last.valid.tolist() == [True, True, False]
    assert "fewer than 10 observations" in last.reason
    assert np.allclose(last.values[:2], 50, atol=3)
    # Between refits the path advances: step k serves the refit's path from k on.
    shifted = [t for t in range(20, 30) if ages[t] > 0]
    assert shifted
    for t in shifted:
        np.testing.assert_allclose(paths[t - 1].values[:2, 1:], paths[t].values[:2, :-1])


@needs_statsforecast
def test_engine_runs_it_by_name_with_calibrated_quantiles() -> None:
    rng = np.random.default_rng(1)
    engine = make_forecaster("autoets", horizon=4, upper=100.0)
    engine.update(np.clip(30 + rng.normal(0, 3, (5, 80)), 0, 100))
    fc = engine.forecast(4)
    assert fc.quantiles.shape == (5, 4, len(fc.levels))
    assert (np.diff(fc.quantiles, axis=2) >= -1e-9).all()  # monotone in the level
    from forethought.forecast.models.statsforecast_adapter import StatsForecastModel

    with pytest.raises(ForecastError, match="unknown statsforecast model"):
        StatsForecastModel("prophet")
