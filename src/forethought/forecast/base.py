"""The forecaster contract and the typed forecast value it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forethought.core.errors import ForecastError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Relative tolerance within which an observation equals a quantile. The engine keeps the
#: paths it issued in float32 (relative precision 6e-8), so a constant series can sit a few
#: float32 steps off its own forecast; 1e-6 covers that and is far below any difference that
#: matters (1e-4 points of a percentage, 1 KB/s in 1 GB/s).
ROUNDING = 1e-6

#: Quantile levels forecast by default: the median and three upper levels used to provision.
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Forecast:
    """A forecast distribution for every series and step of a horizon.

    ``quantiles[i, h, k]`` is the level-``levels[k]`` quantile of series ``i`` at ``h + 1`` steps
    after the last observation; ``mean[i, h]`` its mean. ``notes[i]`` says, in words, which
    fallbacks shaped series ``i``'s forecast (empty when none did): a forecast never goes
    missing without a reason.
    """

    levels: tuple[float, ...]
    quantiles: FloatArray
    mean: FloatArray
    notes: tuple[str, ...]
    model_names: tuple[str, ...] = ()
    # (series, models): rows sum to 1 where any model could forecast the series, and are
    # all zero where the fallback answered instead (its note says so).
    model_weights: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.quantiles.ndim != 3 or self.quantiles.shape[2] != len(self.levels):
            raise ForecastError("quantiles must have shape (series, horizon, levels)")
        if self.mean.shape != self.quantiles.shape[:2]:
            raise ForecastError("mean must have shape (series, horizon)")
        if len(self.notes) != self.quantiles.shape[0]:
            raise ForecastError("one note per series is required")

    @property
    def n_series(self) -> int:
        return int(self.quantiles.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.quantiles.shape[1])

    def quantile(self, level: float) -> FloatArray:
        """The (series, horizon) quantile at ``level``, which must be one of ``levels``."""
        for k, have in enumerate(self.levels):
            if abs(have - level) < 1e-9:
                return self.quantiles[:, :, k]
        raise ForecastError(f"level {level} was not forecast (levels: {self.levels})")

    @property
    def median(self) -> FloatArray:
        return self.quantile(0.5)


def horizon_bands(max_horizon: int) -> list[tuple[int, int]]:
    """Doubling bands of horizon steps [1,1], [2,3], [4,7], [8,15]... up to ``max_horizon``.

    Forecast error grows slowly with the horizon, so steps within a band can share what is
    learned about them (regression weights, residual distributions).
    """
    bands, lo = [], 1
    while lo <= max_horizon:
        hi = min(2 * lo - 1, max_horizon)
        bands.append((lo, hi))
        lo = hi + 1
    return bands


def validate_levels(levels: tuple[float, ...]) -> tuple[float, ...]:
    """Sorted, unique levels strictly inside (0, 1); the median is always included."""
    if any(not 0.0 < q < 1.0 for q in levels):
        raise ForecastError(f"quantile levels must lie strictly between 0 and 1: {levels}")
    return tuple(sorted({*levels, 0.5}))


class Forecaster(ABC):
    """Fixed verbs for every forecaster: ``update`` with samples, ``forecast`` a horizon.

    A forecaster holds many series at once. ``update`` takes a block of new samples of shape
    (series, steps) with an optional mask of observed samples; ``forecast`` returns a
    :class:`Forecast` for the next ``horizon`` steps of every series.
    """

    @abstractmethod
    def update(self, values: FloatArray, observed: BoolArray | None = None) -> None:
        """Learn from new samples, appended after everything seen so far."""

    @abstractmethod
    def forecast(self, horizon: int) -> Forecast:
        """The distribution of the next ``horizon`` steps of every series."""

    def fit(self, history: FloatArray, observed: BoolArray | None = None) -> Forecaster:
        """Learn from a whole history at once; returns ``self`` for chaining."""
        self.update(history, observed)
        return self
