"""A global model: one median regression on lag features, learned across many series.

Models learned across many VMs usually beat per-series ones: each VM has little history,
but VMs share how spikes decay and how levels drift. The features are all positively
homogeneous (last value, window means and medians), and there is no intercept, so the
model is scale-free: one set of weights serves a VM at 2 % and one at 80 %. The loss is
absolute error divided by each series' naive scale, which is what MASE scores.
"""

from __future__ import annotations

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray, horizon_bands
from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel, Prediction

#: (statistic, window) of each feature.
FEATURES: tuple[tuple[str, int], ...] = (
    ("last", 1),
    ("mean", 3),
    ("median", 12),
    ("median", 36),
    ("median", 144),
    ("mean", 36),
)


def median_regression(
    X: FloatArray, y: FloatArray, weight: FloatArray, start: FloatArray, iterations: int
) -> FloatArray:
    """Weighted least absolute deviations: :func:`quantile_regression` at the median."""
    return quantile_regression(X, y, weight, start, iterations, level=0.5)


def quantile_regression(
    X: FloatArray,
    y: FloatArray,
    weight: FloatArray,
    start: FloatArray,
    iterations: int,
    level: float = 0.5,
) -> FloatArray:
    """Weighted linear quantile regression (pinball loss) by iteratively reweighted least squares.

    Rows are rescaled by their weight first (|w (y - Xb)| = |w y - (w X) b|), so series of
    very different scales give a well-conditioned system; a ridge relative to the trace and
    a least-squares fallback keep a degenerate sample from failing the fit. Each pass
    weights a row by its side's pinball slope over its absolute residual.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    Xw, yw = X * weight[:, None], y * weight
    coef = start.copy()
    p = X.shape[1]
    for _ in range(iterations):
        signed = yw - Xw @ coef
        resid = np.abs(signed)
        slope = np.where(signed > 0, level, 1.0 - level)
        w = slope / np.maximum(resid, 1e-3 * (float(np.median(resid)) + 1e-9))
        weighted = Xw * w[:, None]
        xtwx = weighted.T @ Xw
        rhs = weighted.T @ yw
        ridge = 1e-6 * (np.trace(xtwx) / p + 1e-12)
        try:
            coef = np.linalg.solve(xtwx + ridge * np.eye(p), rhs)
        except np.linalg.LinAlgError:
            coef = np.linalg.lstsq(xtwx + ridge * np.eye(p), rhs, rcond=None)[0]
    return np.asarray(coef)


class GlobalLinear(PointModel):
    """Direct multi-horizon median regression on lag features, shared by all series."""

    name = "global"

    def __init__(
        self,
        max_horizon: int = 12,
        memory: int = 96,
        refit_every: int = 36,
        max_train_series: int = 2000,
        max_rows: int = 10000,
        iterations: int = 8,
        seed: int = 0,
    ) -> None:
        self.max_horizon = max_horizon
        self.memory = memory
        self.refit_every = refit_every
        self.max_train_series = max_train_series
        self.max_rows = max_rows
        self.iterations = iterations
        self.seed = seed
        self.history_needed = max(w for _, w in FEATURES) + memory + max_horizon

    def reset(self, n: int) -> None:
        self._rng = np.random.default_rng(self.seed)
        m = min(n, self.max_train_series)
        self._panel = np.sort(self._rng.choice(n, size=m, replace=False))
        self._ring = np.zeros((m, self.memory, len(FEATURES)), dtype=np.float32)
        self._rows = 0  # feature rows stored so far (ring position = rows % memory)
        self._bands = horizon_bands(self.max_horizon)
        start = np.zeros(len(FEATURES))
        start[FEATURES.index(("median", 36))] = 1.0
        self._coef = np.tile(start, (len(self._bands), 1))
        self._trained = False
        self._since_fit = 0

    def features(self, history: History) -> FloatArray:
        cols = []
        for stat, w in FEATURES:
            if stat == "last":
                cols.append(history.last)
            elif stat == "mean":
                cols.append(history.mean(w))
            else:
                cols.append(history.median(w))
        return np.stack(cols, axis=1)

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:
        feats = self.features(history)[self._panel]
        self._ring[:, self._rows % self.memory] = feats
        self._rows += 1
        self._since_fit += 1
        if self._since_fit >= self.refit_every and self._rows > 2 * self.max_horizon:
            self._since_fit = 0
            self._fit(history)

    def _fit(self, history: History) -> None:
        held = min(self._rows, self.memory)
        x = history.window(held + 1)[self._panel]  # the sample of each stored row is x[:, k]
        scale = history.scale()[self._panel]
        # MASE-style weights: 1 / naive scale, with the scale floored at a small share of
        # the level so that nearly constant series do not swamp the fit.
        level = np.abs(history.median(36)[self._panel])
        unit = np.maximum(np.where(np.isfinite(scale), scale, 0.0), 1e-2 * level)
        weight_of_series = np.where(unit > 0, 1.0 / np.where(unit > 0, unit, 1.0), 0.0)
        offset = x.shape[1] - held  # column of the oldest stored row's own sample in x
        oldest = self._rows - held
        m = len(self._panel)
        for b, (lo, hi) in enumerate(self._bands):
            usable = held - lo  # rows old enough to have a target at the band's first step
            if usable <= 0:
                continue
            # Draw (row, horizon) pairs, then take them for every series of the panel: the
            # same pairs for all, so the fit does not depend on the order of the series.
            ks, hs = np.meshgrid(np.arange(usable), np.arange(lo, hi + 1), indexing="ij")
            fits = (ks + hs < held).ravel()  # target at x[:, offset + k + h] must exist
            pairs = np.flatnonzero(fits)
            wanted = max(1, self.max_rows // m)
            if pairs.size > wanted:
                pairs = np.sort(self._rng.choice(pairs, size=wanted, replace=False))
            k, h = ks.ravel()[pairs], hs.ravel()[pairs]
            X = (
                self._ring[:, (oldest + k) % self.memory]
                .astype(np.float64)
                .reshape(-1, len(FEATURES))
            )
            yv = x[:, offset + k + h].reshape(-1)
            wv = np.repeat(weight_of_series, k.size)
            keep = np.isfinite(yv) & np.isfinite(X).all(axis=1) & (wv > 0)
            X, yv, wv = X[keep], yv[keep], wv[keep]
            if len(yv) < 10 * len(FEATURES):
                continue
            self._coef[b] = median_regression(X, yv, wv, self._coef[b], self.iterations)
            self._trained = True

    @property
    def coefficients(self) -> FloatArray:
        return self._coef

    def predict(self, horizon: int, history: History) -> Prediction:
        n = history.n
        if not self._trained:
            return Prediction(
                np.full((n, horizon), np.nan),
                np.zeros(n, dtype=bool),
                "global model not trained yet (needs a few hours of history)"
                if self._rows <= 2 * self.max_horizon + self.refit_every
                else "global model not trained: no series of its panel varies",
            )
        feats = self.features(history)
        per_band = feats @ self._coef.T  # (n, bands)
        band_of = np.array(
            [
                next(
                    (b for b, (lo, hi) in enumerate(self._bands) if lo <= h <= hi),
                    len(self._bands) - 1,
                )
                for h in range(1, horizon + 1)
            ]
        )
        valid = history.observed_count > 0
        return Prediction(per_band[:, band_of], valid, "no observation yet")
