"""Exponential smoothing whose smoothing parameter learns from its own errors."""

from __future__ import annotations

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel, Prediction, flat, has_data

_ALPHA_MIN, _ALPHA_MAX = 0.01, 1.0


def _unit_scale(history: History) -> FloatArray:
    """The per-series error unit for gradient steps (1 where not yet known or zero)."""
    scale = history.scale()
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


class EWMA(PointModel):
    """An exponentially weighted level with a per-series alpha tuned online.

    After each sample alpha takes a gradient step on the absolute one-step error, using the
    sensitivity of the level to alpha (``d level / d alpha``), so each series settles on the
    smoothing its own noise calls for.
    """

    name = "ewma"

    def __init__(self, alpha: float = 0.3, learning_rate: float = 0.005) -> None:
        self.alpha = alpha
        self.learning_rate = learning_rate

    def reset(self, n: int) -> None:
        self._level = np.full(n, np.nan)
        self._dlevel = np.zeros(n)  # derivative of the level with respect to alpha
        self._alpha = np.full(n, self.alpha)

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:
        fresh = observed & ~np.isfinite(self._level)
        self._level[fresh] = y[fresh]
        live = observed & ~fresh
        err = np.where(live, y - np.nan_to_num(self._level), 0.0)
        step = self.learning_rate * np.sign(err) * self._dlevel / _unit_scale(history)
        self._alpha = np.clip(self._alpha + np.where(live, step, 0.0), _ALPHA_MIN, _ALPHA_MAX)
        self._dlevel = np.where(live, err + (1.0 - self._alpha) * self._dlevel, self._dlevel)
        self._level = np.where(live, self._level + self._alpha * err, self._level)

    @property
    def alphas(self) -> FloatArray:
        return self._alpha

    def predict(self, horizon: int, history: History) -> Prediction:
        valid = has_data(history) & np.isfinite(self._level)
        return Prediction(flat(self._level, horizon), valid, "no observation yet")


class HoltDamped(PointModel):
    """Holt's linear trend with a damped trend; alpha learns online like :class:`EWMA`'s."""

    name = "holt"

    def __init__(
        self, alpha: float = 0.3, beta: float = 0.05, phi: float = 0.9, learning_rate: float = 0.005
    ) -> None:
        if not 0.0 < phi <= 1.0:
            raise ValueError("phi must lie in (0, 1]")
        self.alpha = alpha
        self.beta = beta
        self.phi = phi
        self.learning_rate = learning_rate
        self.history_needed = 2

    def reset(self, n: int) -> None:
        self._level = np.full(n, np.nan)
        self._trend = np.zeros(n)
        self._dlevel = np.zeros(n)
        self._alpha = np.full(n, self.alpha)

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:
        fresh = observed & ~np.isfinite(self._level)
        self._level[fresh] = y[fresh]
        live = observed & ~fresh
        expected = np.nan_to_num(self._level) + self.phi * self._trend
        err = np.where(live, y - expected, 0.0)
        step = self.learning_rate * np.sign(err) * self._dlevel / _unit_scale(history)
        self._alpha = np.clip(self._alpha + np.where(live, step, 0.0), _ALPHA_MIN, _ALPHA_MAX)
        self._dlevel = np.where(live, err + (1.0 - self._alpha) * self._dlevel, self._dlevel)
        self._level = np.where(live, expected + self._alpha * err, self._level)
        self._trend = np.where(
            live, self.phi * self._trend + self._alpha * self.beta * err, self._trend
        )

    def predict(self, horizon: int, history: History) -> Prediction:
        damp = np.cumsum(self.phi ** np.arange(1, horizon + 1))
        path = flat(self._level, horizon) + self._trend[:, None] * damp[None, :]
        valid = has_data(history, 2) & np.isfinite(self._level)
        return Prediction(path, valid, "fewer than 2 observations")
