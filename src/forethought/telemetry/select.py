"""Which VMs to draw in a report: those whose level moves most through the trace."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def hourly_level_spread(values: FloatArray, mask: BoolArray, step_seconds: int) -> FloatArray:
    """Per series (rows), the standard deviation of its hourly means; 0 where undefined.

    The spread of hourly means, not of samples: a VM flickering between 0 and 100 % every
    five minutes makes a dull plot, while one whose level rises and falls through the day
    shows how a forecaster or a recommender follows it.
    """
    n = values.shape[0]
    per_hour = max(1, round(3600 / step_seconds))
    hours = values.shape[1] // per_hour
    if hours < 2:
        return np.zeros(n)
    cut = (slice(None), slice(0, hours * per_hour))
    seen = np.where(mask[cut], values[cut], np.nan).reshape(n, hours, per_hour)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing hours and series
        level = np.nanstd(np.nanmean(seen, axis=2), axis=1)
    return np.asarray(np.where(np.isfinite(level), level, 0.0))


def top_rows(score: FloatArray, count: int) -> npt.NDArray[np.intp]:
    """The ``count`` rows of highest score, in row order; ties keep the row order."""
    if count <= 0:
        return np.zeros(0, dtype=np.intp)
    order = np.argsort(-score, kind="stable")
    return np.asarray(np.sort(order[:count]), dtype=np.intp)
