"""Season detection by autocorrelation and the seasonal profile model."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.forecast import make_forecaster
from forethought.forecast.base import FloatArray
from forethought.forecast.models.seasonal import (
    DAILY,
    HOURLY,
    NONE,
    SEASON_NAMES,
    WEEKLY,
    SeasonalProfile,
    autocorrelation,
    detect_season,
    phase_effect_f,
)

from .conftest import DAY, WEEK, daily_sine, feed


def weekend_effect(rng: np.random.Generator, steps: int) -> FloatArray:
    """High on weekdays, low on weekends, flat within each day: no intra-day cycle."""
    day_of_week = (np.arange(steps) // DAY) % 7
    return np.where(day_of_week >= 5, 10.0, 60.0) + rng.normal(0.0, 1.0, steps)


def weekly_profile(rng: np.random.Generator, steps: int) -> FloatArray:
    """A smooth random profile one week long, repeated, plus a little noise."""
    week = np.convolve(rng.normal(0.0, 10.0, WEEK + 11), np.ones(12) / 12.0, mode="valid")
    repeats = -(-steps // WEEK)
    return np.asarray(50.0 + np.tile(week, repeats)[:steps] + rng.normal(0.0, 1.0, steps))


HOUR = 12  # steps per hour at 300 s


def hourly_bump(rng: np.random.Generator, steps: int) -> FloatArray:
    """A cron job: one sample in every hour 3 higher, on noise of standard deviation 1."""
    bump = np.where(np.arange(steps) % HOUR == 5, 3.0, 0.0)
    return np.asarray(20.0 + bump + rng.normal(0.0, 1.0, steps))


def test_season_names() -> None:
    assert len({NONE, HOURLY, DAILY, WEEKLY}) == 4
    assert SEASON_NAMES == {NONE: "none", HOURLY: "hourly", DAILY: "daily", WEEKLY: "weekly"}


def test_autocorrelation_known_values(rng: np.random.Generator) -> None:
    x = np.vstack([daily_sine(3 * DAY), rng.normal(size=3 * DAY), np.full(3 * DAY, 4.0)])
    r_day = autocorrelation(x, DAY)
    # A sine's lag-one-period autocorrelation is the overlap (L - lag) / L.
    assert r_day[0] == pytest.approx(2.0 / 3.0, abs=1e-3)
    assert abs(r_day[1]) < 0.15
    assert r_day[2] == 0.0  # constant row: undefined, reported as 0
    assert autocorrelation(x, DAY // 2)[0] == pytest.approx(-(2.5 / 3.0), abs=1e-3)
    np.testing.assert_array_equal(autocorrelation(x, 0), 0.0)
    np.testing.assert_array_equal(autocorrelation(x, 3 * DAY), 0.0)


def test_detect_season_daily_for_a_daily_cycle(rng: np.random.Generator) -> None:
    clean = daily_sine(3 * DAY)
    noisy = clean + rng.normal(0.0, 5.0, 3 * DAY)
    assert detect_season(np.vstack([clean, noisy]), DAY).tolist() == [DAILY, DAILY]


def test_detect_season_none_for_white_noise(rng: np.random.Generator) -> None:
    noise = rng.normal(50.0, 5.0, (20, 3 * WEEK))
    assert (detect_season(noise, DAY) == NONE).all()


def test_detect_season_none_for_a_weekend_effect(rng: np.random.Generator) -> None:
    """Weekday-high/weekend-low correlates at one day as much as at half a day: not daily."""
    ten_days = weekend_effect(rng, 10 * DAY)
    assert detect_season(ten_days[None], DAY).tolist() == [NONE]
    # With three weeks the same series is (rightly) weekly, and still never daily.
    three_weeks = weekend_effect(rng, 3 * WEEK)
    assert detect_season(three_weeks[None], DAY).tolist() == [WEEKLY]


def test_detect_season_weekly_for_a_weekly_pattern(rng: np.random.Generator) -> None:
    x = np.vstack([weekly_profile(rng, 3 * WEEK) for _ in range(3)])
    assert (detect_season(x, DAY) == WEEKLY).all()


def test_detect_season_hourly_for_a_cron_bump(rng: np.random.Generator) -> None:
    x = np.vstack([hourly_bump(rng, 2 * DAY), rng.normal(20.0, 1.0, 2 * DAY)])
    assert detect_season(x, DAY, hour=HOUR).tolist() == [HOURLY, NONE]
    assert detect_season(x, DAY).tolist() == [NONE, NONE]  # hourly only when asked
    f = phase_effect_f(x, HOUR)
    assert f[0] > 6.0
    assert f[1] < 3.0


def test_daily_cycle_wins_over_hourly(rng: np.random.Generator) -> None:
    x = daily_sine(3 * DAY) + hourly_bump(rng, 3 * DAY)
    assert detect_season(x[None], DAY, hour=HOUR).tolist() == [DAILY]


def test_phase_effect_needs_three_cycles() -> None:
    np.testing.assert_array_equal(phase_effect_f(np.ones((2, 3 * HOUR - 1)), HOUR), 0.0)
    np.testing.assert_array_equal(phase_effect_f(np.ones((2, 10 * HOUR)), HOUR), 0.0)


def test_detect_season_needs_two_cycles() -> None:
    assert detect_season(daily_sine(2 * DAY - 1)[None], DAY).tolist() == [NONE]
    assert detect_season(daily_sine(2 * DAY)[None], DAY).tolist() == [DAILY]


def test_seasonal_profile_forecasts_a_daily_sine_after_three_days() -> None:
    steps = 3 * DAY + 40
    model = SeasonalProfile(step_seconds=300)
    assert model.periods[DAILY] == DAY
    history = feed(model, daily_sine(steps)[None])
    assert model.seasons.tolist() == [DAILY]
    pred = model.predict(12, history)
    assert pred.valid.all()
    truth = daily_sine(steps + 12)[steps:]
    np.testing.assert_allclose(pred.values[0], truth, atol=1e-6)


def test_seasonal_profile_relevels_to_the_recent_level(rng: np.random.Generator) -> None:
    steps = 3 * DAY + 40
    shifted = daily_sine(steps) + rng.normal(0.0, 0.2, steps)
    shifted[-30:] += 10.0  # the last 30 steps run 10 higher than the cycles before
    model = SeasonalProfile(step_seconds=300)
    history = feed(model, shifted[None])
    pred = model.predict(6, history)
    truth = daily_sine(steps + 6)[steps:] + 10.0
    np.testing.assert_allclose(pred.values[0], truth, atol=1.0)


def test_seasonal_profile_forecasts_a_weekly_pattern(rng: np.random.Generator) -> None:
    steps = 3 * WEEK + 40
    series = weekly_profile(rng, steps + 12)
    model = SeasonalProfile(step_seconds=300)
    history = feed(model, series[None, :steps])
    assert model.seasons.tolist() == [WEEKLY]
    pred = model.predict(12, history)
    assert pred.valid.all()
    assert np.abs(pred.values[0] - series[steps:]).mean() < 2.0


def test_seasonal_profile_without_a_cycle_is_invalid_with_a_reason(
    rng: np.random.Generator,
) -> None:
    model = SeasonalProfile(step_seconds=300)
    history = feed(model, np.vstack([rng.normal(size=3 * DAY), weekend_effect(rng, 3 * DAY)]))
    assert model.seasons.tolist() == [NONE, NONE]
    pred = model.predict(4, history)
    assert not pred.valid.any()
    assert "cycle" in pred.reason


def test_seasonal_profile_forecasts_an_hourly_cycle(rng: np.random.Generator) -> None:
    steps = 2 * DAY + 3
    series = hourly_bump(rng, steps + HOUR)
    model = SeasonalProfile(step_seconds=300)
    history = feed(model, series[None, :steps])
    assert model.seasons.tolist() == [HOURLY]
    pred = model.predict(HOUR, history)
    assert pred.valid.all()
    bump_at = int(np.flatnonzero(np.arange(steps, steps + HOUR) % HOUR == 5)[0])
    assert pred.values[0, bump_at] - np.delete(pred.values[0], bump_at).mean() > 2.0


def test_seasonal_profile_periods_follow_the_step() -> None:
    assert SeasonalProfile(step_seconds=300).periods == {HOURLY: 12, DAILY: 288, WEEKLY: 2016}
    assert SeasonalProfile(step_seconds=3600).periods[DAILY] == 24
    assert SeasonalProfile(step_seconds=60).periods[DAILY] == 1440
    assert SeasonalProfile(step_seconds=10**6).periods[DAILY] == 2


@pytest.mark.parametrize("name", ["seasonal", "auto"])
def test_engine_on_a_daily_sine_does_not_crash(name: str) -> None:
    """Regression: with cycles*period <= length < cycles*period + level_window the re-level
    window of the oldest cycle started before the buffer and np.stack raised (step 576)."""
    steps = 3 * DAY + 12
    series = daily_sine(steps + 12)
    engine = make_forecaster(name, lower=None)
    engine.update(np.vstack([series[:steps], series[:steps] + 5.0]))
    fc = engine.forecast()
    np.testing.assert_allclose(fc.median[0], series[steps:], atol=1.0)
