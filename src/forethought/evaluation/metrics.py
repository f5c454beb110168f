"""Forecast accuracy metrics, as defined in the project's forecasting reference protocol.

All take arrays shaped (series, origins, horizon) of actuals, point forecasts and p95
forecasts, with NaN where the actual is missing, and ignore those points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forethought.forecast.base import FloatArray

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
    per_horizon: list[dict[str, float]]
    points: int
    series_without_scale: int


def score(actual: FloatArray, point: FloatArray, p95: FloatArray, scale: FloatArray) -> Scores:
    """Score forecasts; ``scale`` is (series, origins), the MASE denominator per origin."""
    seen = np.isfinite(actual)
    err = np.where(seen, actual - point, np.nan)
    pin = np.where(seen, pinball(actual, p95, 0.95), np.nan)
    covered = np.where(seen, (actual <= p95).astype(np.float64), np.nan)
    over = np.where(seen, np.maximum(0.0, p95 - actual), np.nan)
    scaled_ok = np.isfinite(scale) & (scale > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.abs(err) / np.where(scaled_ok, scale, np.nan)[:, :, None]

    def summary(axis: tuple[int, ...] | None) -> dict[str, FloatArray]:
        # MASE: mean over h per (series, origin) first, then over (series, origin).
        if axis is None:
            # Mean over h per (series, origin) first, then over the pairs that have both a
            # scale and at least one observed actual (explicit sums: no empty-slice means).
            seen_h = np.isfinite(scaled)
            n_h = seen_h.sum(axis=2)
            per_pair = np.where(seen_h, scaled, 0.0).sum(axis=2) / np.maximum(n_h, 1)
            use = scaled_ok & (n_h > 0)
            mase = per_pair[use].mean() if use.any() else np.nan
        else:
            mase = np.nanmean(scaled, axis=axis)
        cov = np.nanmean(covered, axis=axis)
        return {
            "mae": np.nanmean(np.abs(err), axis=axis),
            "rmse": np.sqrt(np.nanmean(err**2, axis=axis)),
            "mase": np.asarray(mase),
            "pinball_95": np.nanmean(pin, axis=axis),
            "coverage_95": cov,
            "under_provisioning": 1.0 - cov,
            "over_provisioning": np.nanmean(over, axis=axis),
        }

    overall = {k: float(v) for k, v in summary(None).items()}
    by_h = summary((0, 1))
    per_h = [
        {"h": float(h + 1), **{k: float(v[h]) for k, v in by_h.items()}}
        for h in range(actual.shape[2])
    ]
    return Scores(
        overall=overall,
        per_horizon=per_h,
        points=int(seen.sum()),
        series_without_scale=int((~scaled_ok).sum()),
    )
