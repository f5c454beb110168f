"""AR(p) and ARIMA(p,1,0), fitted in batch for all series by ridge-regularised least squares."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from forethought.forecast.base import FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import IntArray, Prediction, ScheduledRefit


class AutoRegressive(ScheduledRefit):
    """AR(``order``) on levels, or on first differences when ``differenced`` (ARIMA(p,1,0)).

    Coefficients are refitted every ``refit_every`` steps on the last ``window`` samples, so
    they follow a changing series; between refits the forecast still starts from the newest
    samples. All series are fitted at once through batched normal equations (or a slice of
    them at each step, when staggered).
    """

    def __init__(
        self,
        order: int = 3,
        window: int = 288,
        refit_every: int = 12,
        differenced: bool = False,
        ridge: float = 1e-3,
    ) -> None:
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order = order
        self.window = window
        self.refit_every = refit_every
        self.differenced = differenced
        self.ridge = ridge
        self.history_needed = window + 1
        self.min_history = 4 * order + 12 + int(differenced)

    @property
    def name(self) -> str:  # type: ignore[override]
        return "arima" if self.differenced else "ar"

    def reset(self, n: int) -> None:
        self._coef = np.zeros((n, self.order))
        self._mean = np.zeros(n)
        self._fitted = np.zeros(n, dtype=bool)
        self.reset_schedule()

    def _series(self, history: History, w: int, rows: IntArray | None = None) -> FloatArray:
        x = history.window(w + int(self.differenced))
        if rows is not None:
            x = x[rows]
        return np.diff(x, axis=1) if self.differenced else x

    def _fit(self, history: History, rows: IntArray | None = None) -> None:
        """Refit every series, or only ``rows`` (the others keep their coefficients)."""
        z = self._series(history, self.window, rows)
        mean = z.mean(axis=1)
        zc = z - mean[:, None]
        p = self.order
        lagged = sliding_window_view(zc, p + 1, axis=1)  # (n, T-p, p+1), oldest first
        X = lagged[:, :, :p][:, :, ::-1]  # lag 1 first
        target = lagged[:, :, p]
        xtx = np.einsum("nti,ntj->nij", X, X)
        xty = np.einsum("nti,nt->ni", X, target)
        reg = self.ridge * (np.trace(xtx, axis1=1, axis2=2) / p + 1e-9)
        xtx = xtx + reg[:, None, None] * np.eye(p)[None]
        coef = np.linalg.solve(xtx, xty[:, :, None])[:, :, 0]
        # Keep only stationary-looking fits: a sum of |coefficients| near or above one makes
        # multi-step paths explode; such series are better served by the other models.
        stable = np.abs(coef).sum(axis=1) < 0.98
        varying = zc.std(axis=1) > 0
        keep = slice(None) if rows is None else rows
        self._coef[keep] = np.where((stable & varying)[:, None], coef, 0.0)
        self._mean[keep] = mean
        self._fitted[keep] = stable & varying

    def predict(self, horizon: int, history: History) -> Prediction:
        n = history.n
        p = self.order
        if history.length < self.min_history or not self._fitted.any():
            short = history.length < self.min_history
            return Prediction(
                np.full((n, horizon), np.nan),
                np.zeros(n, dtype=bool),
                f"under {self.min_history} samples of history"
                if short
                else "no stable autoregressive fit (a constant series, or one whose fit "
                "would explode)",
            )
        recent = self._series(history, p) - self._mean[:, None]  # (n, p), oldest first
        lags = recent[:, ::-1].copy()  # lag 1 first
        steps = np.empty((n, horizon))
        for h in range(horizon):  # loop over the horizon, vectorised over series
            nxt = np.einsum("np,np->n", self._coef, lags)
            steps[:, h] = nxt
            lags = np.concatenate([nxt[:, None], lags[:, :-1]], axis=1)
        steps += self._mean[:, None]
        path = history.last[:, None] + np.cumsum(steps, axis=1) if self.differenced else steps
        return Prediction(path, self._fitted.copy(), "no stable autoregressive fit")
