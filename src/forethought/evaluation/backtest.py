"""Rolling-origin backtests of a forecaster on a panel of series."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from forethought.core.errors import ForecastError
from forethought.evaluation.metrics import Scores, naive_scale, score
from forethought.forecast.base import BoolArray, FloatArray, Forecaster


@dataclass(frozen=True)
class BacktestConfig:
    """The protocol: origins first_origin, first_origin + every, ... while a horizon fits."""

    horizon: int = 12
    first_origin: int = 144
    every: int = 12

    def origins(self, steps: int) -> list[int]:
        if self.horizon < 1 or self.every < 1 or self.first_origin < 2:
            raise ForecastError("horizon and every must be >= 1, first_origin >= 2")
        last = steps - self.horizon
        if self.first_origin > last:
            raise ForecastError(
                f"the trace has {steps} steps: too short for a first origin at "
                f"{self.first_origin} and a horizon of {self.horizon}"
            )
        return list(range(self.first_origin, last + 1, self.every))


@dataclass
class BacktestResult:
    """Scores, costs and the forecasts' notes of a backtest."""

    scores: Scores
    n_series: int
    n_origins: int
    cpu_seconds: float
    wall_seconds: float
    notes: dict[str, int] = field(default_factory=dict)  # distinct fallback note -> series
    anomalies: int = 0
    # The forecasts scored, for drawing them: the origins, and the median and p95 paths
    # issued at each, (series, origin, horizon step).
    origins: list[int] = field(default_factory=list, repr=False)
    point: FloatArray | None = field(default=None, repr=False, compare=False)
    p95: FloatArray | None = field(default=None, repr=False, compare=False)

    @property
    def cpu_per_1k_series_per_origin(self) -> float:
        return self.cpu_seconds / (self.n_series / 1000.0) / max(self.n_origins, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            **self.scores.overall,
            "per_horizon": self.scores.per_horizon,
            "n_series": self.n_series,
            "n_origins": self.n_origins,
            "points": self.scores.points,
            "series_origins_without_scale": self.scores.series_without_scale,
            "cpu_seconds": self.cpu_seconds,
            "cpu_seconds_per_1k_series_per_origin": self.cpu_per_1k_series_per_origin,
            "wall_seconds": self.wall_seconds,
            "fallback_notes": self.notes,
            "anomalies": self.anomalies,
        }


def backtest(
    make: Callable[[], Forecaster],
    values: FloatArray,
    observed: BoolArray | None = None,
    config: BacktestConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Rolling-origin evaluation with an expanding window, fed to the forecaster online.

    The forecaster sees y[:, :t] before forecasting from origin t, then the samples up to the
    next origin; the CPU time of all updates and forecasts is the cost.
    """
    cfg = config or BacktestConfig()
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ForecastError("backtest takes a (series, steps) array")
    if values.shape[0] == 0:
        raise ForecastError("backtest needs at least one series")
    mask = np.isfinite(values) if observed is None else observed & np.isfinite(values)
    clean = np.where(mask, values, np.nan)
    n, steps = values.shape
    origins = cfg.origins(steps)
    H = cfg.horizon
    point = np.empty((n, len(origins), H))
    p95 = np.empty((n, len(origins), H))
    actual = np.empty((n, len(origins), H))
    scale = np.empty((n, len(origins)))
    notes: dict[str, int] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model = make()
    fed = 0
    for j, t in enumerate(origins):
        model.update(values[:, fed:t], mask[:, fed:t])
        fed = t
        fc = model.forecast(H)
        point[:, j] = fc.quantile(0.5)
        p95[:, j] = fc.quantile(0.95)
        if progress is not None:
            progress(j + 1, len(origins))
        if j == len(origins) - 1:
            for text in fc.notes:
                if text:
                    notes[text] = notes.get(text, 0) + 1
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    for j, t in enumerate(origins):  # scoring is not part of the forecaster's cost
        actual[:, j] = clean[:, t : t + H]
        scale[:, j] = naive_scale(clean[:, :t])
    events = getattr(model, "events", [])
    return BacktestResult(
        scores=score(actual, point, p95, scale),
        n_series=n,
        n_origins=len(origins),
        cpu_seconds=cpu,
        wall_seconds=wall,
        notes=notes,
        anomalies=len(events),
        origins=origins,
        point=point,
        p95=p95,
    )
