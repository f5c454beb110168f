"""A seasonal profile, daily or weekly, used only where the series shows the cycle."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel, Prediction

NONE, DAILY, WEEKLY = 0, 1, 2
SEASON_NAMES = {NONE: "none", DAILY: "daily", WEEKLY: "weekly"}


def autocorrelation(x: FloatArray, lag: int) -> FloatArray:
    """Lag-``lag`` autocorrelation of every row of ``x`` (0 where undefined)."""
    if lag <= 0 or lag >= x.shape[1]:
        return np.zeros(x.shape[0])
    centred = x - x.mean(axis=1, keepdims=True)
    denom = np.einsum("ij,ij->i", centred, centred)
    num = np.einsum("ij,ij->i", centred[:, lag:], centred[:, :-lag])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    return np.asarray(r)


def detect_season(
    x: FloatArray, day: int, *, min_strength: float = 0.3, margin: float = 0.15
) -> npt.NDArray[np.int8]:
    """Per row: DAILY, WEEKLY or NONE, by an autocorrelation test.

    A daily cycle must correlate at one day *and* clearly more than at half a day: a series
    that merely stays high on weekdays and low on weekends (or shifts level) correlates about
    as much at both lags, so a weekend effect is not mistaken for a daily cycle. A weekly
    pattern needs two weeks of history and must correlate at one week clearly more than at
    one day and at half a week.
    """
    n, length = x.shape
    out = np.zeros(n, dtype=np.int8)
    if length < 2 * day:
        return out
    threshold = max(min_strength, 2.58 / np.sqrt(length))
    r_day = autocorrelation(x, day)
    r_half = autocorrelation(x, day // 2)
    daily = (r_day > threshold) & (r_day - r_half > margin)
    out[daily] = DAILY
    week = 7 * day
    if length >= 2 * week:
        r_week = autocorrelation(x, week)
        r_half_week = autocorrelation(x, week // 2)
        weekly = (
            (r_week > threshold)
            & (r_week - np.maximum(r_day, 0.0) > margin)
            & (r_week - r_half_week > margin)
        )
        out[weekly] = WEEKLY
    return out


class SeasonalProfile(PointModel):
    """The median of the same phase over the last ``periods`` cycles, re-levelled.

    The cycle (daily or weekly) is chosen per series by :func:`detect_season` and re-tested
    every quarter day; series without a supported cycle are left to the other models, with
    the reason recorded.
    """

    name = "seasonal"

    def __init__(self, step_seconds: int = 300, periods: int = 3, level_window: int = 12) -> None:
        self.day = max(2, round(86400 / step_seconds))
        self.periods = periods
        self.level_window = level_window
        self.history_needed = periods * 7 * self.day + level_window

    def reset(self, n: int) -> None:
        self._season = np.zeros(n, dtype=np.int8)
        self._since_test = 0

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:
        self._since_test += 1
        if history.length >= 2 * self.day and self._since_test >= max(1, self.day // 4):
            self._since_test = 0
            window = history.window(min(history.length, 4 * 7 * self.day))
            self._season = detect_season(window, self.day)

    @property
    def seasons(self) -> npt.NDArray[np.int8]:
        return self._season

    def _profile(self, history: History, period: int, horizon: int) -> FloatArray:
        length = history.length
        w = self.level_window
        cycles = min(self.periods, (length - w) // period)  # whole cycles behind the window
        x = history.window(length)
        steps = np.arange(1, horizon + 1)
        # Same phase k cycles back, for k = 1..cycles; steps beyond one period wrap a cycle.
        back = [length - 1 + steps - k * period for k in range(1, cycles + 1)]
        idx = np.stack([np.where(b < length, b, b - period) for b in back])  # (cycles, H)
        path = np.median(x[:, idx], axis=1)  # (n, H)
        recent = np.median(x[:, length - w :], axis=1)
        past = np.median(
            np.stack(
                [x[:, length - w - k * period : length - k * period] for k in range(1, cycles + 1)]
            ),
            axis=(0, 2),
        )
        return np.asarray(path + (recent - past)[:, None])

    def predict(self, horizon: int, history: History) -> Prediction:
        n = history.n
        values = np.full((n, horizon), np.nan)
        for season, period in ((DAILY, self.day), (WEEKLY, 7 * self.day)):
            rows = self._season == season
            if rows.any() and history.length >= period + self.level_window:
                values[rows] = self._profile(history, period, horizon)[rows]
        valid = (self._season != NONE) & np.isfinite(values).all(axis=1)
        return Prediction(
            values, valid, "no significant daily or weekly cycle, or under two cycles of history"
        )
