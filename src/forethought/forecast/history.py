"""A growable, bounded buffer of the recent samples of every series."""

from __future__ import annotations

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray


class History:
    """The last ``max_length`` samples of ``n`` series, missing samples carried forward.

    Models read windows from it; it never holds more than it must, so memory stays bounded
    for long-running services. ``observed_count`` counts real (not carried) samples.
    """

    def __init__(self, n: int, max_length: int) -> None:
        self.n = n
        self.max_length = max_length
        self._buf = np.full((n, min(max_length, 64)), np.nan)
        self._len = 0  # samples held
        self.steps = 0  # samples ever appended
        self.observed_count = np.zeros(n, dtype=np.int64)
        self.last = np.full(n, np.nan)  # last observed value per series
        # Running one-step naive scale (mean absolute difference), the unit of error.
        self._absdiff_sum = np.zeros(n)
        self._absdiff_count = np.zeros(n)
        # Window statistics shared by the models within one step, cleared on append.
        self._cache: dict[tuple[str, int], FloatArray] = {}

    def append(self, y: FloatArray, observed: BoolArray) -> FloatArray:
        """Append one step; returns the stored (carried-forward) values."""
        self._cache.clear()
        had = np.isfinite(self.last)
        both = observed & had
        diff = np.abs(y - np.where(had, self.last, 0.0))
        self._absdiff_sum += np.where(both, diff, 0.0)
        self._absdiff_count += both
        first = observed & ~had
        if first.any() and self._len:
            # Series seen for the first time: backfill so windows hold no NaN.
            self._buf[first, : self._len] = y[first, None]
        filled = np.where(observed, y, self.last)
        self.last = filled
        self.observed_count += observed
        capacity = self._buf.shape[1]
        # Room beyond max_length so the shift below happens once every `slack` appends.
        slack = max(64, self.max_length // 8)
        if self._len == capacity:
            if capacity < self.max_length + slack:
                grown = np.full((self.n, min(self.max_length + slack, 2 * capacity)), np.nan)
                grown[:, : self._len] = self._buf
                self._buf = grown
            else:
                # Keep the newest max_length samples: every window up to max_length stays
                # whole, and the copy is amortised over `slack` appends.
                self._buf[:, : self.max_length] = self._buf[:, self._len - self.max_length :]
                self._len = self.max_length
        self._buf[:, self._len] = filled
        self._len += 1
        self.steps += 1
        return filled

    @property
    def length(self) -> int:
        return min(self._len, self.max_length)

    def window(self, w: int) -> FloatArray:
        """A view of the last ``min(w, length)`` samples, shape (n, w')."""
        w = min(w, self.length)
        return self._buf[:, self._len - w : self._len]

    def scale(self) -> FloatArray:
        """Mean absolute one-step change per series; NaN where not yet known."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self._absdiff_count > 0,
                self._absdiff_sum / np.maximum(self._absdiff_count, 1),
                np.nan,
            )

    def median(self, w: int) -> FloatArray:
        """Median of the last ``w`` samples per series, computed once per step."""
        key = ("median", w)
        if key not in self._cache:
            # Sorting short rows is several times faster than np.median's partition.
            ordered = np.sort(self.window(w), axis=1)
            k = ordered.shape[1]
            self._cache[key] = 0.5 * (ordered[:, (k - 1) // 2] + ordered[:, k // 2])
        return self._cache[key]

    def mean(self, w: int) -> FloatArray:
        """Mean of the last ``w`` samples per series, computed once per step."""
        key = ("mean", w)
        if key not in self._cache:
            self._cache[key] = np.mean(self.window(w), axis=1)
        return self._cache[key]
