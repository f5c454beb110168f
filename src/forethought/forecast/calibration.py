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

How fast to adapt depends on the series: a calm one is served best by a slow rate (narrow,
steady bands), one whose regime changes by a fast one. No single rate suits a fleet, so
several are run side by side, each an *expert* with its own level, and the level used is
their weighted mean, each weight falling exponentially with the expert's recent pinball
loss (dynamically-tuned ACI, Gibbs and Candes 2022). Every expert's long-run miss rate is
1 - q, so the mixture's is too; the weights only choose how the band gets there.

Until a series has ``min_count`` residuals in a band, it borrows the pooled residuals of
all series in that band, standardised by each series' scale, and its note says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray, horizon_bands

# Rates of the level experts: a decade around the single rate that served before, spaced by
# about sqrt(10), so whichever rate a series needs is within reach of one expert.
DEFAULT_ADAPT_RATES: tuple[float, ...] = (0.001, 0.003, 0.01)
# Each expert's loss is discounted by this factor per step (a memory of about 100 steps,
# most of a day at five minutes), so the weights follow a change of regime.
EXPERT_LOSS_DECAY = 0.99
# Weights are softmax(-EXPERT_SHARPNESS x discounted loss); losses are scaled by the width
# of the experts' quantiles, so this does not depend on the unit of the series.
EXPERT_SHARPNESS = 1.0
# The most one step can add to an expert's loss, in units of the experts' mean width.
_MAX_STEP_LOSS = 100.0
_TINY_WIDTH = np.float32(1e-30)  # keeps 1 / width finite in float32 (0 x inf would be NaN)
# Series per block when adapting: bounds the temporaries at fleet scale (a few MB each).
_ADAPT_BLOCK = 16384


def adapt_rates(adapt_rate: float | Sequence[float]) -> tuple[float, ...]:
    """The experts' rates for an ``adapt_rate`` argument; () when adaptation is off.

    A single number is one expert (plain adaptive conformal inference); 0 turns adaptation
    off, which keeps the finite-sample correction of split conformal instead.
    """
    rates = (adapt_rate,) if isinstance(adapt_rate, int | float) else tuple(adapt_rate)
    for rate in rates:
        if not (np.isfinite(rate) and 0.0 <= rate < 1.0):
            raise ValueError(f"adapt_rate must be in [0, 1); got {rate}")
    if any(rate == 0 for rate in rates) and len(rates) > 1:
        raise ValueError("adapt_rate 0 turns adaptation off: give it alone, not among rates")
    if len(set(rates)) != len(rates):
        raise ValueError(f"adapt_rate lists a rate twice: {rates}")
    return tuple(float(r) for r in rates if r > 0)


class ResidualCalibrator:
    """Rings of recent residuals per series and horizon band (float32, grown on demand)."""

    def __init__(
        self,
        n: int,
        horizon: int,
        levels: tuple[float, ...],
        size: int = 288,
        min_count: int = 24,
        adapt_rate: float | Sequence[float] = DEFAULT_ADAPT_RATES,
    ) -> None:
        if size < 2 or min_count < 1:
            raise ValueError("the calibration window needs at least 2 residuals")
        self.n, self.horizon, self.size = n, horizon, size
        self.min_count = min(min_count, size)
        self.levels = np.asarray(levels, dtype=np.float64)
        self.rates = adapt_rates(adapt_rate)
        self.bands = horizon_bands(horizon)
        self.band_of = np.array(
            [b for b, (lo, hi) in enumerate(self.bands) for _ in range(lo, hi + 1)]
        )
        B = len(self.bands)
        self._ring = np.full((n, B, min(size, 32)), np.nan, dtype=np.float32)
        self._pos = 0  # every band records one residual per step
        self._count = np.zeros((n, B), dtype=np.int64)
        self._sum = np.zeros((n, B))  # running sum of each ring, for the mean residual
        L, K = len(self.levels), len(self.rates)
        # Each expert's level per (series, horizon, level), and the quantiles at those
        # levels as last refreshed: what its misses and losses are judged against. float32,
        # as the rings: at fleet scale these are the calibrator's largest arrays after them.
        # The series are the last axis: every operation then runs along long rows, not
        # along the handful of levels and experts (several times faster).
        self._expert_levels = np.empty((horizon, L, K, n), dtype=np.float32)
        self._expert_levels[:] = self.levels.astype(np.float32)[:, None, None]
        self._expert_quantiles = np.zeros((horizon, L, K, n), dtype=np.float32)
        self._expert_loss = np.zeros((B, L, K, n), dtype=np.float32)  # per horizon band
        # Residual quantiles at the combined levels, as last computed by refresh().
        self._quantiles: FloatArray | None = None
        self._mean = np.zeros((n, horizon))
        self._pooled = np.ones((n, horizon), dtype=bool)
        self._stale = True
        self._anomaly_q = np.full(n, np.nan)
        self.adds_since_refresh = 0

    def add(self, residuals: FloatArray, valid: BoolArray) -> None:
        """Record one step's residuals of the 1..k-step-ahead forecasts, shape (series, k)."""
        k = residuals.shape[1]
        # One residual per band: rotate through the band's horizons from step to step.
        picks = [
            (b, lo - 1 + self._pos % (min(hi, k) - lo + 1))
            for b, (lo, hi) in enumerate(self.bands)
            if lo <= k
        ]
        bands = np.array([b for b, _ in picks])
        cols = np.array([c for _, c in picks])
        if self.rates and self._quantiles is not None:
            self._adapt(k, residuals, valid, cols)
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

    def _adapt(self, k: int, residuals: FloatArray, valid: BoolArray, cols: np.ndarray) -> None:
        """Move every expert's level toward its target miss rate and score the experts.

        A miss is a residual above the expert's quantile in force (the last refresh), which
        is the quantile a forecast issued meanwhile would have used. Each band scores its
        experts on the horizon its ring records this step (``cols``): the pinball loss of
        their quantiles, which over the rotation covers every horizon of the band.
        """
        ready = valid[:, :k] & ~self._pooled[:, :k]  # (series, k)
        if not ready.any():
            return
        level = self.levels.astype(np.float32)[:, None, None]  # (level, 1, 1)
        rates = np.asarray(self.rates, dtype=np.float32)[:, None]  # (expert, 1)
        # The two possible steps of each expert: rate * (missed - (1 - level)).
        up, down = rates * level, rates * (level - 1)
        across = ready.T  # (k, series), as the experts' arrays are laid out
        # In blocks of series: the temporaries are (k, levels, experts, series) each.
        for first in range(0, self.n, _ADAPT_BLOCK):
            rows = slice(first, first + _ADAPT_BLOCK)
            q = self._expert_quantiles[:k, :, :, rows]
            r = residuals[rows, :k].T.astype(np.float32)[:, None, None, :]
            step = np.where(r > q, up, down)
            step *= across[:, None, None, rows]  # no step where not ready
            levels = self._expert_levels[:k, :, :, rows]  # a view: updated in place
            levels += step
            np.clip(levels, 0.0, 1.0, out=levels)
            self._score(rows, q[cols], r[cols], across[cols][:, rows], level)

    def _score(
        self, rows: slice, q: np.ndarray, r: np.ndarray, ready: BoolArray, level: np.ndarray
    ) -> None:
        """Add one step's pinball loss per band to the experts' discounted losses."""
        loss = (r - q) * ((r > q) + (level - 1))  # (bands, levels, experts, series)
        # In units of the experts' mean width, so the weights do not depend on the unit of
        # the series; no width (all quantiles 0) means nothing to tell the experts apart.
        width = np.abs(q).mean(axis=2)
        inverse = np.zeros_like(width)
        np.divide(1.0, np.maximum(width, _TINY_WIDTH), out=inverse, where=width > 0)
        with np.errstate(over="ignore"):  # capped right below
            loss *= inverse[:, :, None, :]
        # Bounded, as the method assumes: a width of almost nothing (a series flat at 0)
        # would otherwise turn one residual into an infinite loss for every expert.
        np.minimum(loss, _MAX_STEP_LOSS, out=loss)
        np.copyto(loss, np.float32(0.0), where=~ready[:, None, None, :])  # NaN where missing
        held = self._expert_loss[: q.shape[0], :, :, rows]  # a view: updated in place
        held *= np.where(ready, np.float32(EXPERT_LOSS_DECAY), np.float32(1.0))[:, None, None, :]
        held += loss

    @property
    def counts(self) -> np.ndarray:
        """Residuals held per (series, horizon)."""
        return self._count[:, self.band_of]

    def _band_weights(self, band: int) -> np.ndarray:
        """The experts' weights in one horizon band, (level, expert, series), float32."""
        loss = self._expert_loss[band]  # (level, expert, series)
        # Shifted by the best loss first: the same softmax, without overflow.
        best = loss.min(axis=1, keepdims=True)
        weights = np.exp(-EXPERT_SHARPNESS * (loss - best))
        weights /= weights.sum(axis=1, keepdims=True)
        return np.asarray(weights)

    @property
    def expert_weights(self) -> FloatArray:
        """Each expert's weight per (series, horizon, level, expert); sums to 1 over experts."""
        per_band = np.stack([self._band_weights(b) for b in range(len(self.bands))])
        return np.asarray(per_band[self.band_of].transpose(3, 0, 1, 2), dtype=np.float64)

    @property
    def expert_levels(self) -> FloatArray:
        """Each expert's level per (series, horizon, level, expert)."""
        return self._expert_levels.transpose(3, 0, 1, 2).astype(np.float64)

    @property
    def adjusted_levels(self) -> FloatArray:
        """The adapted level used for each (series, horizon, level): the experts' mix."""
        levels = np.empty((self.n, self.horizon, len(self.levels)))
        for b in range(len(self.bands)):
            levels[:, self.band_of == b] = self._band_levels(b)
        return levels

    def _band_levels(self, band: int) -> FloatArray:
        """The mixed levels of one band's horizon steps, (series, steps, level)."""
        steps = self.band_of == band
        if not self.rates:
            shape = (self.n, int(steps.sum()), len(self.levels))
            return np.asarray(np.broadcast_to(self.levels, shape))
        weights = self._band_weights(band)  # (level, expert, series)
        levels = self._expert_levels[steps]  # (steps, level, expert, series)
        mixed = weights[:, 0] * levels[:, :, 0]
        for k in range(1, len(self.rates)):  # a few whole-array steps: faster than einsum
            mixed += weights[:, k] * levels[:, :, k]
        return np.asarray(mixed.transpose(2, 0, 1), dtype=np.float64)  # (series, steps, level)

    def refresh(self, scale: FloatArray, bands: list[int] | None = None) -> None:
        """Recompute the quantiles in force (used to adapt levels and bound anomalies).

        Called on the engine's own schedule only, so asking for a forecast never changes
        what the engine learns. ``scale`` standardises residuals for the pooled fallback.
        ``bands`` limits the work to some horizon bands (the others keep their quantiles),
        so a caller can spread the sorting over several steps.
        """
        partial = bands is not None and self._quantiles is not None
        self._quantiles, self._mean, self._pooled, self._anomaly_q = self._compute(
            scale, bands if partial else None, experts=True
        )
        if not partial:
            self._stale = False
            self.adds_since_refresh = 0

    def _compute(
        self, scale: FloatArray, bands: list[int] | None = None, experts: bool = False
    ) -> tuple[FloatArray, FloatArray, BoolArray, FloatArray]:
        """Quantiles at the adjusted levels, mean residual, pooled mask, one-step p-top.

        With ``experts`` the quantiles at every expert's level are put in force as well
        (in place): a refresh does that, a forecast only needs the mixed level.
        """
        chosen = list(range(len(self.bands))) if bands is None else bands
        n, L, K = self.n, len(self.levels), len(self.rates)
        experts = experts and K > 0
        # With adaptive levels the long-run miss rate is already driven to 1 - q, so the
        # finite-sample correction would only make the quantiles conservative.
        finite_sample = not self.rates
        if bands is None or self._quantiles is None:
            quant = np.empty((self.n, self.horizon, len(self.levels)))
        elif experts:
            quant = self._quantiles  # a refresh replaces them anyway: no copy needed
        else:
            quant = self._quantiles.copy()
        first_band: np.ndarray | None = None  # kept for the anomaly bar below
        for b in chosen:  # per band: the same values as sorting the whole ring at once
            # One sorted band alive at a time: at fleet scale these are the largest
            # temporaries of a refresh.
            ordered = np.sort(self._ring[:, b], axis=1)  # NaN last; beats partition here
            levels = self._band_levels(b)  # only the bands refreshed: a partial refresh is cheap
            for i, h in enumerate(np.flatnonzero(self.band_of == b).tolist()):
                at = levels[:, i]
                if experts:  # the mixed levels and every expert's, in one lookup
                    mine = self._expert_levels[h].reshape(L * K, n).T.astype(np.float64)
                    at = np.concatenate([at, mine], axis=1)
                found = _from_sorted(ordered, self._count[:, b], at, finite_sample)
                quant[:, h] = found[:, :L]
                if experts:
                    self._expert_quantiles[h] = found[:, L:].T.reshape(L, K, n)
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
                if experts:  # a borrowed quantile is every expert's: nothing to adapt yet
                    self._expert_quantiles[hs] = np.where(
                        pooled[:, hs].T[:, None, None, :],
                        (zq[:, None] * unit[None, :])[:, None, :],  # (level, 1, series)
                        self._expert_quantiles[hs],
                    )
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
    # Flat indices: the same values as take_along_axis, in a fraction of the time.
    row = (np.arange(ordered.shape[0]) * ordered.shape[1])[:, None]
    flat = ordered.reshape(-1)
    lo_v = flat[row + lo].astype(np.float64)
    hi_v = flat[row + hi].astype(np.float64)
    out = lo_v + frac * (hi_v - lo_v)
    return np.asarray(np.where(count[:, None] > 0, out, 0.0))
