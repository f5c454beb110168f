"""Anomalies: observations above the forecast distribution for k consecutive steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray


@dataclass(frozen=True)
class Anomaly:
    """Evidence of one anomaly: where, when, what was seen and what was expected."""

    series: int
    step: int  # index of the step at which the run reached k
    observed: tuple[float, ...]  # the k observations of the run
    upper: tuple[float, ...]  # the one-step upper quantiles they exceeded
    level: float


class AnomalyDetector:
    """Flags a series when ``run`` observations in a row exceed its one-step ``level`` quantile."""

    def __init__(self, n: int, run: int = 3, level: float = 0.99) -> None:
        if run < 1:
            raise ValueError("an anomaly run must be at least one step")
        self.run, self.level = run, level
        self._length = np.zeros(n, dtype=np.int64)
        self._seen = np.full((n, run), np.nan)
        self._bound = np.full((n, run), np.nan)
        self.events: list[Anomaly] = []
        self.flags = np.zeros(n, dtype=bool)  # series currently in an anomalous run
        self._frozen = np.full(n, np.nan)  # the bound in force when the current run began

    def check(self, step: int, y: FloatArray, observed: BoolArray, upper: FloatArray) -> BoolArray:
        """Score one step; returns the series whose run reached ``run`` at this step.

        During a run the bound stays the one in force when the run began: an adaptive
        forecaster partly follows a jump after one step, and a run must not escape the
        bar it is measured against by dragging it along.
        """
        in_run = self._length > 0
        bound = np.where(in_run, self._frozen, upper)
        above = observed & np.isfinite(bound) & (y > bound)
        self._frozen = np.where(above & ~in_run, upper, np.where(above, self._frozen, np.nan))
        upper = bound
        slot = step % self.run
        self._seen[:, slot] = y
        self._bound[:, slot] = upper
        self._length = np.where(above, self._length + 1, 0)
        self.flags = self._length >= self.run
        fired = self._length == self.run
        order = [(slot - k) % self.run for k in range(self.run - 1, -1, -1)]  # oldest first
        for i in np.flatnonzero(fired):  # only the few series that fire, never all of them
            self.events.append(
                Anomaly(
                    series=int(i),
                    step=step,
                    observed=tuple(float(v) for v in self._seen[i, order]),
                    upper=tuple(float(v) for v in self._bound[i, order]),
                    level=self.level,
                )
            )
        return np.asarray(fired)
