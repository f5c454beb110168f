"""Conformal calibration: quantiles from each series' own recent residuals, per horizon.

Every step the engine scores the point paths it issued 1..H steps earlier against the new
sample; the residuals go into a ring per (series, horizon). A quantile at level q is the
empirical quantile of that ring (with the finite-sample conformal correction), added to
the point path. Because each horizon has its own ring, coverage holds at every horizon,
not only on average.

Real VM load is bursty, so residuals are not exchangeable and a plain empirical quantile
under-covers after a quiet spell. The level used for each (series, horizon, level) is
therefore adapted online (adaptive conformal inference, Gibbs and Candes 2021): each new
residual that lands above the current quantile raises the level a little, each one below
lowers it, so the long-run miss rate is driven to 1 - q whatever the data do.

Until a series has ``min_count`` residuals at a horizon, it borrows the pooled residuals of
all series at that horizon, standardised by each series' scale, and its note says so.
"""

from __future__ import annotations

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray


class ResidualCalibrator:
    """Rings of recent residuals per series and horizon (float32, grown on demand)."""

    def __init__(
        self,
        n: int,
        horizon: int,
        levels: tuple[float, ...],
        size: int = 288,
        min_count: int = 24,
        adapt_rate: float = 0.005,
    ) -> None:
        if size < 2 or min_count < 1:
            raise ValueError("the calibration window needs at least 2 residuals")
        self.n, self.horizon, self.size = n, horizon, size
        self.min_count = min(min_count, size)
        self.levels = np.asarray(levels, dtype=np.float64)
        self.adapt_rate = adapt_rate
        self._ring = np.full((n, horizon, min(size, 32)), np.nan, dtype=np.float32)
        self._pos = np.zeros(horizon, dtype=np.int64)
        self._count = np.zeros((n, horizon), dtype=np.int64)
        self._adjusted = np.tile(self.levels.astype(np.float32), (n, horizon, 1))
        # Residual quantiles at the adjusted levels, as last computed by refresh().
        self._quantiles: FloatArray | None = None
        self._mean = np.zeros((n, horizon))
        self._pooled = np.ones((n, horizon), dtype=bool)
        self._stale = True
        self._sum = np.zeros((n, horizon))  # running sum of each ring, for the mean residual
        self.adds_since_refresh = 0

    def add(self, residuals: FloatArray, valid: BoolArray) -> None:
        """Record one step's residuals of the 1..k-step-ahead forecasts, shape (series, k)."""
        k = residuals.shape[1]
        hs = np.arange(k)
        held = self._ring.shape[2]
        if self._pos[:k].max() >= held and held < self.size:
            grown = np.full((self.n, self.horizon, min(self.size, 2 * held)), np.nan, np.float32)
            grown[:, :, :held] = self._ring
            self._ring = grown
        if self.adapt_rate > 0 and self._quantiles is not None:
            self._adapt(k, residuals, valid)
        self._stale = True
        slots = self._pos[:k] % self.size
        new = np.where(valid, residuals, np.nan).astype(np.float32)
        old = self._ring[:, hs, slots]  # NaN until the ring is full: nothing leaves then
        self._sum[:, :k] += np.where(valid, new, 0.0) - np.where(np.isfinite(old), old, 0.0)
        self._ring[:, hs, slots] = new
        self._pos[:k] += 1
        self._count[:, :k] = np.minimum(self._count[:, :k] + valid, self.size)
        self.adds_since_refresh += 1

    def _adapt(self, k: int, residuals: FloatArray, valid: BoolArray) -> None:
        """Move each level toward the miss rate it should have (adaptive conformal).

        A miss is a residual above the quantile in force (the last refresh), which is the
        quantile a forecast issued meanwhile would have used.
        """
        assert self._quantiles is not None
        ready = valid & ~self._pooled[:, :k]
        missed = residuals[:, :, None] > self._quantiles[:, :k]
        step = self.adapt_rate * (missed - (1.0 - self.levels[None, None, :]))
        self._adjusted[:, :k] = np.clip(
            self._adjusted[:, :k] + np.where(ready[:, :, None], step, 0.0), 0.0, 1.0
        )

    @property
    def counts(self) -> np.ndarray:
        """Residuals held per (series, horizon)."""
        return self._count

    @property
    def adjusted_levels(self) -> FloatArray:
        """The adapted level used for each (series, horizon, level)."""
        return self._adjusted.astype(np.float64)

    def refresh(self, scale: FloatArray) -> None:
        """Recompute the residual quantiles at the adjusted levels from the rings.

        ``scale`` (per series) standardises residuals for the pooled fallback.
        """
        ring = self._ring
        H = self.horizon
        ordered = np.sort(ring, axis=2)  # NaN sort last; sorting beats partition here
        count = self._count
        # With adaptive levels the long-run miss rate is already driven to 1 - q, so the
        # finite-sample correction would only make the quantiles conservative.
        quant = _from_sorted(
            ordered, count, self._adjusted.astype(np.float64), self.adapt_rate <= 0
        )
        mean = np.where(count > 0, self._sum / np.maximum(count, 1), 0.0)
        pooled = count < self.min_count
        if pooled.any():
            lv = self.levels
            unit = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
            z = ring / unit[:, None, None]
            zq = np.full((H, len(lv)), 0.0)
            for k in range(H):  # loop over horizons: each pools all series at once
                zk = z[:, k][np.isfinite(z[:, k])]
                if zk.size:
                    zq[k] = np.quantile(zk, np.minimum(1.0, lv * (1 + 1 / zk.size)))
            fallback = zq[None, :, :] * unit[:, None, None]
            quant = np.where(pooled[:, :, None], fallback, quant)
            mean = np.where(pooled, 0.0, mean)
        self._quantiles = quant.astype(np.float64)
        self._mean = mean.astype(np.float64)
        self._pooled = pooled
        self._stale = False
        self.adds_since_refresh = 0

    @property
    def stale(self) -> bool:
        """True when residuals arrived since the last :meth:`refresh`."""
        return self._stale

    def residual_quantiles(
        self, scale: FloatArray, horizons: int | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Residual quantiles (series, horizon, levels), mean residual, and pooled-use mask."""
        if self._stale or self._quantiles is None:
            self.refresh(scale)
        assert self._quantiles is not None
        H = self.horizon if horizons is None else min(horizons, self.horizon)
        return self._quantiles[:, :H], self._mean[:, :H], self._pooled[:, :H]

    def upper_one_step(self, level_index: int = -1) -> FloatArray:
        """The one-step residual quantile at a level (NaN until the series has enough)."""
        if self._quantiles is None:
            return np.full(self.n, np.nan)
        return np.where(self._pooled[:, 0], np.nan, self._quantiles[:, 0, level_index])


def _from_sorted(
    ordered: np.ndarray, count: np.ndarray, levels: FloatArray, finite_sample: bool = True
) -> FloatArray:
    """Conformal quantiles from rows sorted along the last axis, of which ``count`` are finite.

    ``levels`` has shape (series, horizon, levels): one level per cell, so adapted levels
    can differ by series and horizon.
    """
    c = np.maximum(count, 1)[:, :, None].astype(np.float64)
    # Finite-sample correction: the ceil((m+1)q)/m empirical quantile covers q in expectation.
    adj = np.minimum(1.0, levels * (c + 1) / c) if finite_sample else levels
    pos = adj * (c - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, c.astype(np.int64) - 1)
    frac = pos - lo
    lo_v = np.take_along_axis(ordered, lo, axis=2).astype(np.float64)
    hi_v = np.take_along_axis(ordered, hi, axis=2).astype(np.float64)
    out = lo_v + frac * (hi_v - lo_v)
    return np.asarray(np.where(count[:, :, None] > 0, out, 0.0))
