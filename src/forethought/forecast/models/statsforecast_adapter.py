"""statsforecast's models as forethought point models (``forethought[statsforecast]``).

Nixtla's statsforecast fits classical models (AutoETS, AutoARIMA, AutoTheta ...) with
compiled code over a whole panel of series. The adapter hands it the last ``window``
samples of every series, refits every ``refit_every`` steps (a fit costs about a
thousand times a step of the native models), and between refits serves the path it
issued, advanced by the steps since. The engine then treats it like any other point
model: conformal quantiles from its own residuals, a weight from its recent loss, and a
fallback, with a note, for the series it could not fit.

It is never part of ``auto``: choose it by name (``--model autoets``) to compare, or to
use where its cost is worth it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from forethought.core.errors import ForecastError
from forethought.forecast.base import FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel, Prediction

#: Adapter names and the statsforecast model class each one runs.
MODELS = {"autoets": "AutoETS", "autoarima": "AutoARIMA", "autotheta": "AutoTheta"}


def _load(model: str) -> tuple[Any, Any, Any]:
    try:
        import pandas as pd
        from statsforecast import StatsForecast
        from statsforecast import models as sf_models
    except ImportError as exc:
        raise ForecastError(
            f"the {model} model needs statsforecast: pip install 'forethought[statsforecast]'"
        ) from exc
    return pd, StatsForecast, getattr(sf_models, MODELS[model])


class StatsForecastModel(PointModel):
    """A statsforecast model refitted on a sliding window, vectorised by statsforecast."""

    name: ClassVar[str] = "statsforecast"

    def __init__(
        self,
        model: str = "autoets",
        *,
        season_length: int = 1,
        window: int = 288,
        refit_every: int = 12,
        min_history: int = 24,
    ) -> None:
        if model not in MODELS:
            raise ForecastError(
                f"unknown statsforecast model {model!r}; choose from {list(MODELS)}"
            )
        if window < 2 or refit_every < 1 or min_history < 3 or season_length < 1:
            raise ForecastError(
                "statsforecast adapter: window >= 2, refit_every >= 1, min_history >= 3 "
                "and season_length >= 1 are required"
            )
        self.model, self.season_length = model, season_length
        self.window, self.refit_every, self.min_history = window, refit_every, min_history
        self.history_needed = window
        self._pd, self._sf, self._cls = _load(model)
        self.failures: list[str] = []
        self.reset(0)

    @property
    def label(self) -> str:
        return self.model

    def reset(self, n: int) -> None:
        self._n = n
        self._path: FloatArray = np.full((n, 0), np.nan)
        self._fitted = np.zeros(n, dtype=bool)
        self._age = 0

    def observe(self, y: FloatArray, observed: Any, history: History) -> None:
        self._age += 1

    def _refit(self, horizon: int, history: History) -> None:
        y = history.window(self.window)
        n, t = y.shape
        ready = (history.observed_count >= self.min_history) & np.isfinite(y).all(axis=1)
        rows = np.flatnonzero(ready)
        path = np.full((n, horizon), np.nan)
        if rows.size and t >= 3:
            frame = self._pd.DataFrame(
                {
                    "unique_id": np.repeat(rows, t),
                    "ds": np.tile(np.arange(t), rows.size),
                    "y": y[rows].ravel(),
                }
            )
            sf = self._sf(models=[self._cls(season_length=self.season_length)], freq=1, n_jobs=1)
            try:
                out = sf.forecast(df=frame, h=horizon)
            except Exception as exc:  # a failed fit falls back, with a note
                self.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                if "unique_id" not in out.columns:
                    out = out.reset_index()
                out = out.sort_values(["unique_id", "ds"])
                column = next(c for c in out.columns if c not in ("unique_id", "ds"))
                ids = out["unique_id"].to_numpy().reshape(-1, horizon)[:, 0].astype(np.int64)
                path[ids] = out[column].to_numpy(dtype=np.float64).reshape(-1, horizon)
        self._path = path
        self._fitted = np.isfinite(path).all(axis=1)
        self._age = 0

    def predict(self, horizon: int, history: History) -> Prediction:
        n = history.n
        if self._n != n:
            self.reset(n)
        needed = horizon + self.refit_every
        if self._age >= self.refit_every or self._path.shape[1] < needed:
            self._refit(needed, history)
        values = self._path[:, self._age : self._age + horizon]
        valid = self._fitted & np.isfinite(values).all(axis=1)
        reason = (
            f"{self.model}: fewer than {self.min_history} observations, a gap in the last "
            f"{self.window} samples, or the fit failed"
        )
        return Prediction(np.where(valid[:, None], values, np.nan), valid, reason)
