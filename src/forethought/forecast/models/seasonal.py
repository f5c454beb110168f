"""A seasonal profile (hourly, daily or weekly), used only where the series shows the cycle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import IntArray, Prediction, ScheduledRefit

NONE, HOURLY, DAILY, WEEKLY = 0, 1, 2, 3
SEASON_NAMES = {NONE: "none", HOURLY: "hourly", DAILY: "daily", WEEKLY: "weekly"}


@dataclass(frozen=True)
class Cycle:
    """A candidate cycle: its code, its length in seconds, and how many cycles to average."""

    code: int
    seconds: int
    cycles: int


#: Cron-driven jobs make hourly cycles common; office hours make daily ones; weekends weekly.
CYCLES = (Cycle(HOURLY, 3600, 12), Cycle(DAILY, 86400, 3), Cycle(WEEKLY, 7 * 86400, 3))


def autocorrelation(x: FloatArray, lag: int) -> FloatArray:
    """Lag-``lag`` autocorrelation of every row of ``x`` (0 where undefined)."""
    if lag <= 0 or lag >= x.shape[1]:
        return np.zeros(x.shape[0])
    centred = x - x.mean(axis=1, keepdims=True)
    denom = np.einsum("ij,ij->i", centred, centred)
    num = np.einsum("ij,ij->i", centred[:, lag:], centred[:, :-lag])
    safe = np.where(denom > 0, denom, 1.0)
    return np.asarray(np.where(denom > 0, num / safe, 0.0))


def phase_effect_f(x: FloatArray, period: int, max_cycles: int = 168) -> FloatArray:
    """F statistic of a phase effect, with each cycle as a block (two-way ANOVA).

    Subtracting each cycle's own mean removes slow level drift, so what remains is the
    recurring shape within the cycle: a small hourly bump from a cron job, repeated over
    many hours, is detected even where it is too small to show in the autocorrelation.
    """
    cycles = min(x.shape[1] // period, max_cycles)
    if cycles < 3 or period < 2:
        return np.zeros(x.shape[0])
    blocks = x[:, x.shape[1] - cycles * period :].reshape(x.shape[0], cycles, period)
    centred = blocks - blocks.mean(axis=2, keepdims=True)
    effect = centred.mean(axis=1)  # (n, period)
    resid = centred - effect[:, None, :]
    between = cycles * (effect**2).sum(axis=1) / (period - 1)
    within = (resid**2).sum(axis=1).sum(axis=1) / ((cycles - 1) * (period - 1))
    return np.asarray(np.where(within > 0, between / np.where(within > 0, within, 1.0), 0.0))


def detect_season(
    x: FloatArray,
    day: int,
    *,
    hour: int | None = None,
    min_strength: float = 0.3,
    margin: float = 0.15,
    min_f: float = 6.0,
) -> npt.NDArray[np.int8]:
    """Per row: HOURLY, DAILY, WEEKLY or NONE, by an autocorrelation test.

    A cycle of length P must correlate at lag P *and* clearly more than at P/2: a series
    that merely stays high on weekdays and low on weekends (or shifts level) correlates about
    as much at both lags, so a weekend effect is not mistaken for a daily cycle. A weekly
    pattern needs two weeks of history and must also beat the daily correlation. Longer
    cycles win over shorter ones when both pass (a daily cycle implies nothing hourly).
    """
    n, length = x.shape
    out = np.zeros(n, dtype=np.int8)
    threshold = max(min_strength, 2.58 / np.sqrt(max(length, 1)))

    def passes(period: int) -> BoolArray:
        r = autocorrelation(x, period)
        return np.asarray((r > threshold) & (r - autocorrelation(x, period // 2) > margin))

    if hour is not None and hour >= 4 and length >= 4 * hour:
        out[phase_effect_f(x, hour) > min_f] = HOURLY
    if length >= 2 * day:
        out[passes(day)] = DAILY
    week = 7 * day
    if length >= 2 * week:
        r_day = np.maximum(autocorrelation(x, day), 0.0)
        weekly = passes(week) & (autocorrelation(x, week) - r_day > margin)
        out[weekly] = WEEKLY
    return out


class SeasonalProfile(ScheduledRefit):
    """The median of the same phase over recent cycles, re-levelled to the current level.

    The cycle (hourly, daily or weekly) is chosen per series by :func:`detect_season` and
    re-tested regularly; series without a supported cycle are left to the other models, with
    the reason recorded.
    """

    name = "seasonal"

    def __init__(self, step_seconds: int = 300, level_window: int = 12) -> None:
        self.periods = {c.code: max(2, round(c.seconds / step_seconds)) for c in CYCLES}
        self.cycles = {c.code: c.cycles for c in CYCLES}
        self.level_window = level_window
        # The test needs four hours; it is redone every four hours (or quarter day).
        hour, day = self.periods[HOURLY], self.periods[DAILY]
        self.min_history = 4 * hour
        self.refit_every = max(1, min(day // 4, 4 * hour))
        self.history_needed = max(self.periods[c] * self.cycles[c] for c in self.periods) + (
            level_window
        )

    def reset(self, n: int) -> None:
        self._season = np.zeros(n, dtype=np.int8)
        self.reset_schedule()

    def _fit(self, history: History, rows: IntArray | None) -> None:
        window = history.window(min(history.length, 4 * 7 * self.periods[DAILY]))
        if rows is None:
            self._season = detect_season(window, self.periods[DAILY], hour=self.periods[HOURLY])
        else:
            self._season[rows] = detect_season(
                window[rows], self.periods[DAILY], hour=self.periods[HOURLY]
            )

    @property
    def seasons(self) -> npt.NDArray[np.int8]:
        return self._season

    def _profile(self, x: FloatArray, period: int, cycles: int, horizon: int) -> FloatArray:
        length = x.shape[1]
        w = min(self.level_window, period)
        cycles = min(cycles, (length - w) // period)  # whole cycles behind the level window
        steps = np.arange(1, horizon + 1)
        # Same phase k cycles back, for k = 1..cycles, folded into the last cycle when the
        # horizon reaches beyond one period.
        back = [length - 1 + ((steps - 1) % period) + 1 - k * period for k in range(1, cycles + 1)]
        idx = np.stack(back)  # (cycles, H)
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
        for code, period in self.periods.items():
            rows = self._season == code
            need = period + min(self.level_window, period)
            if rows.any() and history.length >= need:
                x = history.window(min(history.length, period * self.cycles[code] + need))
                values[rows] = self._profile(x[rows], period, self.cycles[code], horizon)
        valid = (self._season != NONE) & np.isfinite(values).all(axis=1)
        return Prediction(
            values, valid, "no significant hourly, daily or weekly cycle in its history"
        )
