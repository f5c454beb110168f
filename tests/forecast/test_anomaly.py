"""Anomalies: k consecutive observations above the one-step upper quantile, with evidence."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.forecast import ForecastEngine, make_forecaster
from forethought.forecast.anomaly import Anomaly, AnomalyDetector
from forethought.forecast.base import FloatArray


def warmed_up(rng: np.random.Generator, name: str = "median") -> tuple[ForecastEngine, FloatArray]:
    values = rng.normal(50.0, 2.0, (4, 200))
    engine = make_forecaster(name)
    engine.update(values)
    return engine, values


def test_a_run_of_three_far_above_fires_exactly_one_event(rng: np.random.Generator) -> None:
    engine, _ = warmed_up(rng)
    block = rng.normal(50.0, 2.0, (4, 10))
    block[2, 3:6] = [150.0, 300.0, 600.0]  # ever further above: the run survives calibration
    engine.update(block)
    assert len(engine.events) == 1
    event = engine.events[0]
    assert isinstance(event, Anomaly)
    assert event.series == 2
    assert event.step == 200 + 5  # the index of the sample that completed the run
    assert event.observed == (150.0, 300.0, 600.0)
    assert event.level == 0.99
    # The evidence: the one-step upper bounds each observation exceeded. Before the run
    # the bound sits a few standard deviations above the level of 50.
    assert all(np.isfinite(event.upper))
    assert all(o > u for o, u in zip(event.observed, event.upper, strict=True))
    assert 50.0 < event.upper[0] < 60.0
    assert all(u > 50.0 for u in event.upper)


def test_a_single_spike_fires_nothing(rng: np.random.Generator) -> None:
    engine, _ = warmed_up(rng)
    block = rng.normal(50.0, 2.0, (4, 10))
    block[1, 4] = 500.0
    block[3, 2] = 400.0
    block[3, 5] = 400.0  # two spikes, not consecutive
    engine.update(block)
    assert engine.events == []


def test_a_long_run_fires_once(rng: np.random.Generator) -> None:
    engine, _ = warmed_up(rng)
    block = rng.normal(50.0, 2.0, (4, 12))
    block[0, 2:9] = 100.0 * 2.0 ** np.arange(7)  # seven in a row, each far above the last
    engine.update(block)
    assert [e.series for e in engine.events] == [0]
    assert engine.events[0].observed == (100.0, 200.0, 400.0)


def test_nothing_fires_during_the_warm_up() -> None:
    engine = make_forecaster("median")
    engine.update(np.array([[1.0, 1.0, 100.0, 1000.0, 10000.0, 1e5]]))
    assert engine.events == []  # no calibrated bound yet


@pytest.mark.parametrize("name", ["median", "auto"])
def test_a_three_step_jump_to_a_level_fires_one_event_at_any_phase(name: str) -> None:
    """A jump 35 standard deviations up for three steps, starting at each of the 12 phases
    of the engine's refresh cycle: every one is an anomaly."""
    missed = []
    for phase in range(12):
        values = np.random.default_rng(1).normal(50.0, 2.0, (4, 210 + phase))
        values[2, 200 + phase : 203 + phase] = 120.0
        engine = make_forecaster(name)
        engine.update(values)
        if [(e.series, e.observed) for e in engine.events] != [(2, (120.0, 120.0, 120.0))]:
            missed.append(phase)
    assert missed == []


# -- the detector on its own --------------------------------------------------------------------


def test_detector_evidence_is_oldest_first_across_the_ring() -> None:
    detector = AnomalyDetector(n=2, run=3, level=0.9)
    upper = np.array([10.0, 10.0])
    seen = np.ones(2, dtype=bool)
    series0 = [1.0, 11.0, 12.0, 13.0, 14.0, 1.0, 20.0]
    fired_at = []
    for step, v in enumerate(series0):
        fired = detector.check(step, np.array([v, 5.0]), seen, upper)
        if fired.any():
            fired_at.append(step)
    assert fired_at == [3]
    (event,) = detector.events
    assert event == Anomaly(
        series=0, step=3, observed=(11.0, 12.0, 13.0), upper=(10.0, 10.0, 10.0), level=0.9
    )


def test_detector_flags_stay_up_while_the_run_lasts() -> None:
    detector = AnomalyDetector(n=1, run=2)
    seen, upper = np.array([True]), np.array([0.0])
    flags: list[bool] = []
    for v in (1.0, 1.0, 1.0, -1.0):
        detector.check(len(flags), np.array([v]), seen, upper)
        flags.append(bool(detector.flags[0]))
    assert flags == [False, True, True, False]
    assert len(detector.events) == 1


def test_detector_missing_samples_and_unknown_bounds_break_a_run() -> None:
    detector = AnomalyDetector(n=2, run=2)
    for step in range(4):
        observed = np.array([step != 1, True])
        upper = np.array([0.0, np.nan if step == 2 else 0.0])
        detector.check(step, np.array([5.0, 5.0]), observed, upper)
    # Series 0: above at 0, missing at 1, above at 2 and 3: fires at 3.
    # Series 1: above at 0 and 1 (fires at 1), unknown bound at 2, above at 3.
    assert [(e.series, e.step) for e in detector.events] == [(1, 1), (0, 3)]


def test_detector_rejects_a_zero_run() -> None:
    with pytest.raises(ValueError, match="at least one"):
        AnomalyDetector(n=1, run=0)


@pytest.mark.parametrize("name", ["auto", "holt", "arima", "median"])
def test_a_series_gone_idle_is_not_above_a_bound_below_its_range(name: str) -> None:
    # A decline to zero pulls trend and residual-offset bounds below zero; an idle VM
    # (exactly 0, the least it can use) must not lie "above" them for the run of three.
    idle = np.concatenate([np.linspace(60.0, 0.0, 80), np.zeros(30)])[None, :]
    engine = make_forecaster(name)  # bounded below at 0, as utilisation is
    engine.update(idle)
    assert engine.events == []
    unbounded = make_forecaster(name, lower=None)  # without the range, the bound is negative
    unbounded.update(idle)
    assert unbounded.events
    assert all(u < 0 for u in unbounded.events[0].upper)
