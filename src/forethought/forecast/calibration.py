"""Conformal calibration: quantiles from each series' own recent residuals, per horizon.

Every step the engine scores the point paths it issued 1..H steps earlier against the new
sample; the residuals go into a ring per (series, horizon). A quantile at level q is the
empirical q-quantile of that ring (with the finite-sample conformal correction), added to
the point path. Because each horizon has its own ring, coverage holds at every horizon,
not only on average. Until a series has ``min_count`` residuals at a horizon, it borrows
the pooled, scale-standardised residuals of all series at that horizon, and says so.
"""

from __future__ import annotations

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray


class ResidualCalibrator:
    """Rings of recent residuals per series and horizon (float32 to halve memory)."""

    def __init__(self, n: int, horizon: int, size: int = 96, min_count: int = 24) -> None:
        if size < 2 or min_count < 1:
            raise ValueError("the calibration window needs at least 2 residuals")
        self.n, self.horizon, self.size, self.min_count = n, horizon, size, min(min_count, size)
        self._ring = np.full((n, horizon, size), np.nan, dtype=np.float32)
        self._pos = np.zeros(horizon, dtype=np.int64)
        self._count = np.zeros((n, horizon), dtype=np.int64)

    def add(self, h: int, residual: FloatArray, valid: BoolArray) -> None:
        """Record the residuals of the ``h``-step-ahead forecasts (h counts from 1)."""
        k = h - 1
        self._ring[:, k, self._pos[k] % self.size] = np.where(valid, residual, np.nan)
        self._pos[k] += 1
        self._count[:, k] = np.minimum(self._count[:, k] + valid, self.size)

    @property
    def counts(self) -> np.ndarray:
        """Residuals held per (series, horizon)."""
        return self._count

    def residual_quantiles(
        self, levels: tuple[float, ...], scale: FloatArray, horizons: int | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Residual quantiles (series, horizon, levels), mean residual, and pooled-use mask.

        ``scale`` (per series) standardises residuals for the pooled fallback.
        """
        H = self.horizon if horizons is None else min(horizons, self.horizon)
        ring = self._ring[:, :H]
        ordered = np.sort(ring, axis=2)  # NaN sort last; sorting beats partition here
        count = self._count[:, :H]
        lv = np.asarray(levels)
        quant = _from_sorted(ordered, count, lv)
        with np.errstate(invalid="ignore"):
            mean = np.where(count > 0, np.nansum(ring, axis=2) / np.maximum(count, 1), 0.0)
        pooled = count < self.min_count
        if pooled.any():
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
        return quant.astype(np.float64), mean.astype(np.float64), pooled

    def upper_one_step(self, level: float) -> FloatArray:
        """The ``level`` quantile of the one-step residuals (NaN until enough are held)."""
        ordered = np.sort(self._ring[:, 0], axis=1)[:, None, :]
        q = _from_sorted(ordered, self._count[:, :1], np.asarray([level]))[:, 0, 0]
        return np.where(self._count[:, 0] >= self.min_count, q, np.nan)


def _from_sorted(ordered: np.ndarray, count: np.ndarray, levels: np.ndarray) -> FloatArray:
    """Conformal quantiles from rows sorted along the last axis, of which ``count`` are finite."""
    c = np.maximum(count, 1)[:, :, None].astype(np.float64)
    # Finite-sample correction: the ceil((m+1)q)/m empirical quantile covers q in expectation.
    adj = np.minimum(1.0, levels[None, None, :] * (c + 1) / c)
    pos = adj * (c - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, c.astype(np.int64) - 1)
    frac = pos - lo
    lo_v = np.take_along_axis(ordered, lo, axis=2).astype(np.float64)
    hi_v = np.take_along_axis(ordered, hi, axis=2).astype(np.float64)
    out = lo_v + frac * (hi_v - lo_v)
    return np.where(count[:, :, None] > 0, out, 0.0)
