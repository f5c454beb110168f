"""Host overload tests of Beloglazov and Buyya (2012), vectorised over hosts.

Each test sees, for every host, its requested CPU as a fraction of capacity (``load``), its
utilisation history (``history[h, i]``: the sum over its VMs of their utilisation ``i``
intervals ago, weighted by VM MIPS over host MIPS; newest first, zero where none) and the
number of scheduling intervals its longest migration would take. The adaptive tests fall
back to a static threshold while a host's history is too short, as CloudSim does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray


class OverloadTest(Protocol):
    """Which hosts are overloaded, for many hosts at once."""

    @property
    def name(self) -> str: ...

    @property
    def parameter(self) -> float: ...

    def overloaded(
        self, load: FloatArray, history: FloatArray, migration_intervals: FloatArray
    ) -> BoolArray: ...


def trimmed_length(history: FloatArray) -> np.ndarray:
    """Length of each row once its trailing (oldest) zeros are cut, as CloudSim trims."""
    nonzero = history != 0
    last = history.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.asarray(np.where(nonzero.any(axis=1), last, 0))


def leading_nonzero(history: FloatArray) -> np.ndarray:
    """How many values each row holds before its first zero."""
    zero = history == 0
    return np.asarray(np.where(zero.any(axis=1), np.argmax(zero, axis=1), history.shape[1]))


@dataclass(frozen=True)
class StaticThreshold:
    """THR: overloaded when the requested load exceeds a fixed fraction of capacity."""

    parameter: float = 0.8
    name: str = "thr"

    def overloaded(
        self, load: FloatArray, history: FloatArray, migration_intervals: FloatArray
    ) -> BoolArray:
        return np.asarray(load > self.parameter)


def _sorted_valid(history: FloatArray, length: np.ndarray) -> FloatArray:
    """Rows sorted ascending with the cells past each row's length pushed to the end."""
    cols = np.arange(history.shape[1])[None, :]
    return np.sort(np.where(cols < length[:, None], history, np.inf), axis=1)


def _take(rows: FloatArray, index: np.ndarray) -> FloatArray:
    safe = np.clip(index, 0, rows.shape[1] - 1)
    picked = np.take_along_axis(rows, safe[:, None], axis=1)[:, 0]
    # Rows with no history hold only the +inf padding; they fall back anyway.
    return np.asarray(np.where(np.isfinite(picked), picked, 0.0))


def _median(ordered: FloatArray, length: np.ndarray) -> FloatArray:
    n = np.maximum(length, 1)
    return 0.5 * (_take(ordered, (n - 1) // 2) + _take(ordered, n // 2))


def _adaptive(
    load: FloatArray,
    history: FloatArray,
    migration_intervals: FloatArray,
    margin: FloatArray,
    fallback: StaticThreshold,
) -> BoolArray:
    """Overloaded above 1 - margin once 12 values lead the history, else the fallback."""
    ready = leading_nonzero(history) >= 12
    adaptive = load > 1.0 - margin
    return np.asarray(
        np.where(ready, adaptive, fallback.overloaded(load, history, migration_intervals))
    )


@dataclass(frozen=True)
class InterQuartileRange:
    """IQR: overloaded above 1 - s x IQR of the host's utilisation history."""

    parameter: float = 1.5
    fallback: StaticThreshold = StaticThreshold(0.7)
    name: str = "iqr"

    def overloaded(
        self, load: FloatArray, history: FloatArray, migration_intervals: FloatArray
    ) -> BoolArray:
        length = trimmed_length(history)
        ordered = _sorted_valid(history, length)
        # CloudSim's quartile positions: round(q (n + 1)) - 1 on the sorted history.
        q1 = np.floor(0.25 * (length + 1) + 0.5).astype(np.int64) - 1
        q3 = np.floor(0.75 * (length + 1) + 0.5).astype(np.int64) - 1
        iqr = _take(ordered, q3) - _take(ordered, q1)
        return _adaptive(load, history, migration_intervals, self.parameter * iqr, self.fallback)


@dataclass(frozen=True)
class MedianAbsoluteDeviation:
    """MAD: overloaded above 1 - s x MAD of the host's utilisation history."""

    parameter: float = 2.5
    fallback: StaticThreshold = StaticThreshold(0.7)
    name: str = "mad"

    def overloaded(
        self, load: FloatArray, history: FloatArray, migration_intervals: FloatArray
    ) -> BoolArray:
        length = trimmed_length(history)
        ordered = _sorted_valid(history, length)
        centre = _median(ordered, length)
        cols = np.arange(history.shape[1])[None, :]
        deviation = np.where(cols < length[:, None], np.abs(history - centre[:, None]), np.inf)
        mad = _median(np.sort(deviation, axis=1), length)
        return _adaptive(load, history, migration_intervals, self.parameter * mad, self.fallback)


@dataclass(frozen=True)
class LocalRegression:
    """LR: a line through the last 10 utilisation values, extrapolated past the longest
    migration; overloaded when s x the prediction reaches 1.

    CloudSim 3.0.3 computes but never applies the loess weights, so LR and LRR are the
    same ordinary least-squares fit; ``name`` tells them apart in reports.
    """

    parameter: float = 1.2
    fallback: StaticThreshold = StaticThreshold(0.7)
    name: str = "lr"
    window: int = 10

    def line(self, history: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        """(a, b, ready) per row: the forecast m intervals past the window is a + b m.

        a and b are linear in the history, so the line of a host plus a VM is the sum of
        their lines: placement tests thousands of what-ifs without refitting.
        """
        n = self.window
        if history.shape[1] < n:  # too short a history: never ready, fall back
            width = np.zeros((history.shape[0], n))
            width[:, : history.shape[1]] = history
            history = width
        recent = history[:, :n]
        x = np.arange(n, 0, -1, dtype=np.float64)  # x of history[:, 0], history[:, 1], ...
        xc = x - (n + 1) / 2.0
        slope = recent @ (xc / float(xc @ xc))
        level = recent.sum(axis=1) / n
        ready = (history[:, n - 1 :] != 0).any(axis=1)
        return np.asarray(level + slope * (n - 1) / 2.0), np.asarray(slope), np.asarray(ready)

    def decide(
        self,
        load: FloatArray,
        a: FloatArray,
        b: FloatArray,
        ready: BoolArray,
        migration_intervals: FloatArray,
    ) -> BoolArray:
        """The test from a host's line (see :meth:`line`), falling back while not ready."""
        adaptive = self.parameter * (a + b * migration_intervals) >= 1.0
        return np.asarray(np.where(ready, adaptive, load > self.fallback.parameter))

    def overloaded(
        self, load: FloatArray, history: FloatArray, migration_intervals: FloatArray
    ) -> BoolArray:
        return self.decide(load, *self.line(history), migration_intervals)


@dataclass(frozen=True)
class Oracle:
    """The oracle hook: the true load one interval ahead instead of a forecast of it.

    Overloaded when s x the host's actual requested load at the next interval reaches 1.
    No real policy can do this; it shows what a perfect forecast would reach with the same
    selection and placement. The simulator hands it the future (``future_load``); called
    without one it cannot decide and says so.
    """

    parameter: float = 1.0
    name: str = "oracle"

    def overloaded(
        self, load: FloatArray, history: FloatArray, migration_intervals: FloatArray
    ) -> BoolArray:
        raise ForethoughtError("the oracle needs the future: run it in the simulator")

    def decide(self, future_load: FloatArray) -> BoolArray:
        return np.asarray(self.parameter * future_load >= 1.0)


def make_test(name: str, parameter: float | None = None) -> OverloadTest:
    """The overload test of a policy name (thr, iqr, mad, lr, lrr) with its parameter."""
    defaults: dict[str, float] = {
        "thr": 0.8,
        "iqr": 1.5,
        "mad": 2.5,
        "lr": 1.2,
        "lrr": 1.2,
        "oracle": 1.0,
    }
    if name not in defaults:
        known = ", ".join(defaults)
        raise ForethoughtError(f"unknown overload test {name!r}; choose from {known}")
    p = defaults[name] if parameter is None else parameter
    if name == "thr":
        return StaticThreshold(p)
    if name == "iqr":
        return InterQuartileRange(p)
    if name == "mad":
        return MedianAbsoluteDeviation(p)
    if name == "oracle":
        return Oracle(p)
    return LocalRegression(p, name=name)
