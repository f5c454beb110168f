"""Forecast accuracy metrics, as defined in the project's forecasting reference protocol.

All take arrays shaped (series, origins, horizon) of actuals, point forecasts and p95
forecasts, with NaN where the actual is missing, and ignore those points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forethought.core.errors import ForecastError
from forethought.forecast.base import ROUNDING, FloatArray

METRIC_NAMES = (
    "mae",
    "rmse",
    "mase",
    "pinball_95",
    "coverage_95",
    "under_provisioning",
    "over_provisioning",
)


def pinball(actual: FloatArray, quantile: FloatArray, level: float) -> FloatArray:
    """Pinball (quantile) loss of ``quantile`` at ``level`` for each point."""
    diff = actual - quantile
    return np.asarray(np.maximum(level * diff, (level - 1.0) * diff))


def naive_scale(history: FloatArray) -> FloatArray:
    """In-sample one-step naive MAE of each row (NaN-aware; NaN when under two samples)."""
    d = np.abs(np.diff(history, axis=1))
    with np.errstate(invalid="ignore"):
        count = np.isfinite(d).sum(axis=1)
        total = np.nansum(d, axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass(frozen=True)
class Scores:
    """Metrics overall and per horizon step."""

    overall: dict[str, float]
    per_horizon: list[dict[str, float]]  # "h" (the step, from 1) is an int
    points: int
    series_without_scale: int
    #: Observed actuals with no forecast (NaN point or p95): left out of every metric.
    missing_forecasts: int = 0


def score(actual: FloatArray, point: FloatArray, p95: FloatArray, scale: FloatArray) -> Scores:
    """Score forecasts; ``scale`` is (series, origins), the MASE denominator per origin.

    ``actual``, ``point`` and ``p95`` are (series, origins, horizon). A point is scored
    where the actual was observed and both forecasts exist; observed actuals without a
    forecast are counted in ``missing_forecasts``, not scored as a perfect or a missed one.
    """
    actual, point, p95 = (np.asarray(a, dtype=np.float64) for a in (actual, point, p95))
    scale = np.asarray(scale, dtype=np.float64)
    if actual.ndim != 3 or point.shape != actual.shape or p95.shape != actual.shape:
        raise ForecastError(
            "score takes actual, point and p95 of one (series, origins, horizon) shape; got "
            f"{actual.shape}, {point.shape} and {p95.shape}"
        )
    if scale.shape != actual.shape[:2]:
        raise ForecastError(f"scale must have shape {actual.shape[:2]}, got {scale.shape}")
    observed = np.isfinite(actual)
    seen = observed & np.isfinite(point) & np.isfinite(p95)
    err = np.where(seen, actual - point, np.nan)
    pin = np.where(seen, pinball(actual, p95, 0.95), np.nan)
    # An actual equal to p95 up to rounding is covered (a constant series forecast exactly).
    covered = np.where(seen, (actual <= p95 + ROUNDING * np.abs(p95)).astype(np.float64), np.nan)
    over = np.where(seen, np.maximum(0.0, p95 - actual), np.nan)
    scaled_ok = np.isfinite(scale) & (scale > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.abs(err) / np.where(scaled_ok, scale, np.nan)[:, :, None]

    def mean(x: FloatArray, axis: tuple[int, ...] | None) -> FloatArray:
        """NaN-ignoring mean that returns NaN, silently, for an empty slice."""
        ok = np.isfinite(x)
        total = np.where(ok, x, 0.0).sum(axis=axis)
        count = ok.sum(axis=axis)
        return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan))

    def summary(axis: tuple[int, ...] | None) -> dict[str, FloatArray]:
        if axis is None:
            # MASE: mean over h per (series, origin) first, then over the pairs that have
            # both a scale and at least one observed actual.
            per_pair = mean(scaled, (2,))
            mase = mean(np.where(scaled_ok, per_pair, np.nan), None)
        else:
            mase = mean(scaled, axis)
        cov = mean(covered, axis)
        return {
            "mae": mean(np.abs(err), axis),
            "rmse": np.sqrt(mean(err**2, axis)),
            "mase": mase,
            "pinball_95": mean(pin, axis),
            "coverage_95": cov,
            "under_provisioning": 1.0 - cov,
            "over_provisioning": mean(over, axis),
        }

    overall = {k: float(v) for k, v in summary(None).items()}
    by_h = summary((0, 1))
    per_h = [
        {"h": h + 1, **{k: float(v[h]) for k, v in by_h.items()}} for h in range(actual.shape[2])
    ]
    return Scores(
        overall=overall,
        per_horizon=per_h,
        points=int(seen.sum()),
        series_without_scale=int((~scaled_ok).sum()),
        missing_forecasts=int((observed & ~seen).sum()),
    )
