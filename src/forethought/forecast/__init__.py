"""Forecasting: per-series models run over all series at once, calibrated and adaptive."""

from forethought.forecast.base import DEFAULT_LEVELS, Forecast, Forecaster
from forethought.forecast.engine import (
    ForecastEngine,
    make_forecaster,
    model_names,
    native_model_names,
)

__all__ = [
    "DEFAULT_LEVELS",
    "Forecast",
    "ForecastEngine",
    "Forecaster",
    "make_forecaster",
    "model_names",
    "native_model_names",
]
