"""Conformal calibration: quantiles from each series' own recent residuals, per horizon.

Every step the engine scores the point paths it issued 1..H steps earlier against the new
sample. Residuals are kept in a ring per series and *horizon band* ([1], [2,3], [4,7],
[8,15] ...): error grows slowly with the horizon, so neighbouring steps can share a ring,
which cuts memory and sorting by H / log2(H) (what lets 100,000 series fit in 2 GB). Each
band records one residual per step, rotating through its horizons, so every ring spans
the same stretch of time.

Real VM load is bursty, so residuals are not exchangeable and a plain empirical quantile
under-covers after a quiet spell. The level used for each (series, horizon, level) is
therefore adapted online (adaptive conformal inference, Gibbs and Candes 2021): each new
residual above the quantile in force raises the level a little, each one below lowers it,
so the long-run miss rate of *every horizon* is driven to 1 - q whatever the data do.

Until a series has ``min_count`` residuals in a band, it borrows the pooled residuals of
all series in that band, standardised by each series' scale, and its note says so.
"""

from __future__ import annotations

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray, horizon_bands


class ResidualCalibrator:
    """Rings of recent residuals per series and horizon band (float32, grown on demand)."""

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
        self.bands = horizon_bands(horizon)
        self.band_of = np.array(
            [b for b, (lo, hi) in enumerate(self.bands) for _ in range(lo, hi + 1)]
        )
        B = len(self.bands)
        self._ring = np.full((n, B, min(size, 32)), np.nan, dtype=np.float32)
        self._pos = 0  # every band records one residual per step
        self._count = np.zeros((n, B), dtype=np.int64)
        self._sum = np.zeros((n, B))  # running sum of each ring, for the mean residual
        self._adjusted = np.tile(self.levels.astype(np.float32), (n, horizon, 1))
        # Residual quantiles at the adjusted levels, as last computed by refresh().
        self._quantiles: FloatArray | None = None
        self._mean = np.zeros((n, horizon))
        self._pooled = np.ones((n, horizon), dtype=bool)
        self._stale = True
        self._anomaly_q = np.full(n, np.nan)
        self.adds_since_refresh = 0

    def add(self, residuals: FloatArray, valid: BoolArray) -> None:
        """Record one step's residuals of the 1..k-step-ahead forecasts, shape (series, k)."""
        k = residuals.shape[1]
        if self.adapt_rate > 0 and self._quantiles is not None:
            self._adapt(k, residuals, valid)
        # One residual per band: rotate through the band's horizons from step to step.
        picks = [
            (b, lo - 1 + self._pos % (min(hi, k) - lo + 1))
            for b, (lo, hi) in enumerate(self.bands)
            if lo <= k
        ]
        bands = np.array([b for b, _ in picks])
        cols = np.array([c for _, c in picks])
        held = self._ring.shape[2]
        if self._pos >= held and held < self.size:
            # Straight to full size, once: growing by doubling would hold the old and the
            # new ring together several times, and the last time near the full size.
            grown = np.full((self.n, len(self.bands), self.size), np.nan, np.float32)
            grown[:, :, :held] = self._ring
            self._ring = grown
        slot = self._pos % self.size
        ok = valid[:, cols]
        new = np.where(ok, residuals[:, cols], np.nan).astype(np.float32)
        old = self._ring[:, bands, slot]  # NaN until the ring is full: nothing leaves then
        # In float64: float32 differences of large residuals would drift the running sum.
        entering = np.where(ok, new, 0.0).astype(np.float64)
        leaving = np.where(np.isfinite(old), old, 0.0).astype(np.float64)
        self._sum[:, bands] += entering - leaving
        self._count[:, bands] += ok.astype(np.int64) - np.isfinite(old)
        self._ring[:, bands, slot] = new
        self._pos += 1
        self._stale = True
        self.adds_since_refresh += 1

    def _adapt(self, k: int, residuals: FloatArray, valid: BoolArray) -> None:
        """Move each level toward the miss rate it should have (adaptive conformal).

        A miss is a residual above the quantile in force (the last refresh), which is the
        quantile a forecast issued meanwhile would have used.
        """
        assert self._quantiles is not None
        ready = valid & ~self._pooled[:, :k]
        missed = residuals[:, :, None] > self._quantiles[:, :k]
        # The two possible steps per level, computed as adapt_rate * (missed - (1 - q)).
        up = self.adapt_rate * (1.0 - (1.0 - self.levels))
        down = self.adapt_rate * (0.0 - (1.0 - self.levels))
        step = np.where(missed, up, down)
        step[~ready] = 0.0
        moved = step + self._adjusted[:, :k]
        self._adjusted[:, :k] = np.clip(moved, 0.0, 1.0, out=moved)

    @property
    def counts(self) -> np.ndarray:
        """Residuals held per (series, horizon)."""
        return self._count[:, self.band_of]

    @property
    def adjusted_levels(self) -> FloatArray:
        """The adapted level used for each (series, horizon, level)."""
        return self._adjusted.astype(np.float64)

    def refresh(self, scale: FloatArray, bands: list[int] | None = None) -> None:
        """Recompute the quantiles in force (used to adapt levels and bound anomalies).

        Called on the engine's own schedule only, so asking for a forecast never changes
        what the engine learns. ``scale`` standardises residuals for the pooled fallback.
        ``bands`` limits the work to some horizon bands (the others keep their quantiles),
        so a caller can spread the sorting over several steps.
        """
        partial = bands is not None and self._quantiles is not None
        self._quantiles, self._mean, self._pooled, self._anomaly_q = self._compute(
            scale, bands if partial else None
        )
        if not partial:
            self._stale = False
            self.adds_since_refresh = 0

    def _compute(
        self, scale: FloatArray, bands: list[int] | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray, FloatArray]:
        """Quantiles at the adjusted levels, mean residual, pooled mask, one-step p-top."""
        chosen = list(range(len(self.bands))) if bands is None else bands
        levels = self._adjusted.astype(np.float64)
        # With adaptive levels the long-run miss rate is already driven to 1 - q, so the
        # finite-sample correction would only make the quantiles conservative.
        finite_sample = self.adapt_rate <= 0
        if bands is None or self._quantiles is None:
            quant = np.empty((self.n, self.horizon, len(self.levels)))
        else:
            quant = self._quantiles.copy()
        first_band: np.ndarray | None = None  # kept for the anomaly bar below
        for b in chosen:  # per band: the same values as sorting the whole ring at once
            # One sorted band alive at a time: at fleet scale these are the largest
            # temporaries of a refresh.
            ordered = np.sort(self._ring[:, b], axis=1)  # NaN last; beats partition here
            for h in np.flatnonzero(self.band_of == b).tolist():
                quant[:, h] = _from_sorted(ordered, self._count[:, b], levels[:, h], finite_sample)
            if b == 0:
                first_band = ordered
            del ordered
        count = self._count[:, self.band_of]
        mean = np.where(count > 0, self._sum[:, self.band_of] / np.maximum(count, 1), 0.0)
        pooled = count < self.min_count
        if pooled.any():
            usable = np.isfinite(scale) & (scale > 0)
            unit = np.where(usable, scale, 0.0)  # a series with no scale borrows a 0 width
            for b in chosen:  # loop over bands: each pools all series at once
                z = self._ring[:, b][usable] / unit[usable, None]
                z = z[np.isfinite(z)]
                if not z.size:
                    continue
                zq = np.quantile(z, np.minimum(1.0, self.levels * (1 + 1 / z.size)))
                hs = np.flatnonzero(self.band_of == b)
                fallback = zq[None, None, :] * unit[:, None, None]
                quant[:, hs] = np.where(pooled[:, hs, None], fallback, quant[:, hs])
            mean = np.where(pooled, 0.0, mean)
        # Anomalies are judged at the fixed top level, not the adapted one: a run of
        # outliers must not lift the bar it is measured against.
        if first_band is not None:
            top = np.full((self.n, 1), float(self.levels[-1]))
            anomaly_q = _from_sorted(first_band, self._count[:, 0], top, finite_sample)[:, 0]
        else:
            anomaly_q = self._anomaly_q
        return quant, mean, pooled, anomaly_q

    @property
    def stale(self) -> bool:
        """True when residuals arrived since the last :meth:`refresh`."""
        return self._stale

    def residual_quantiles(
        self, scale: FloatArray, horizons: int | None = None, fresh: bool = True
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Residual quantiles (series, horizon, levels), mean residual, and pooled-use mask.

        Computed afresh when residuals arrived since the last refresh, without replacing
        the quantiles in force: forecasting is read-only. With ``fresh=False`` the
        quantiles in force are used as they are (at most one refresh period old), which
        spares a sort of every ring on each call.
        """
        if self._quantiles is None or (self._stale and fresh):
            quant, mean, pooled, _ = self._compute(scale)
        else:
            quant, mean, pooled = self._quantiles, self._mean, self._pooled
        H = self.horizon if horizons is None else min(horizons, self.horizon)
        return quant[:, :H], mean[:, :H], pooled[:, :H]

    def upper_one_step(self) -> FloatArray:
        """The one-step residual quantile at the top level, unadapted, as last refreshed.

        NaN until the series has enough residuals of its own: no anomaly is called on
        borrowed calibration.
        """
        if self._quantiles is None:
            return np.full(self.n, np.nan)
        return np.where(self._pooled[:, 0], np.nan, self._anomaly_q)


def _from_sorted(
    ordered: np.ndarray, count: np.ndarray, levels: FloatArray, finite_sample: bool = True
) -> FloatArray:
    """Empirical quantiles of rows sorted along the last axis, of which ``count`` are finite.

    ``ordered`` is (series, slots), ``count`` (series,), ``levels`` (series, levels): one
    level per cell, so adapted levels can differ by series.
    """
    c = np.maximum(count, 1)[:, None].astype(np.float64)
    # Finite-sample correction: the ceil((m+1)q)/m empirical quantile covers q in expectation.
    adj = np.minimum(1.0, levels * (c + 1) / c) if finite_sample else levels
    pos = adj * (c - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, c.astype(np.int64) - 1)
    frac = pos - lo
    lo_v = np.take_along_axis(ordered, lo, axis=1).astype(np.float64)
    hi_v = np.take_along_axis(ordered, hi, axis=1).astype(np.float64)
    out = lo_v + frac * (hi_v - lo_v)
    return np.asarray(np.where(count[:, None] > 0, out, 0.0))
