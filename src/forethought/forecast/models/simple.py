"""The simplest baselines: last value, moving average and moving median."""

from __future__ import annotations

from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel, Prediction, flat, has_data


class LastValue(PointModel):
    """Persistence: the next steps equal the last observation."""

    name = "last"

    def predict(self, horizon: int, history: History) -> Prediction:
        return Prediction(flat(history.last, horizon), has_data(history), "no observation yet")


class MovingAverage(PointModel):
    """The mean of the last ``window`` samples."""

    name = "mean"

    def __init__(self, window: int = 12) -> None:
        self.window = window
        self.history_needed = window

    @property
    def label(self) -> str:
        return f"{self.name}{self.window}"

    def predict(self, horizon: int, history: History) -> Prediction:
        return Prediction(
            flat(history.mean(self.window), horizon), has_data(history), "no observation yet"
        )


class MovingMedian(PointModel):
    """The median of the last ``window`` samples: robust to the spikes typical of VM load.

    The median, not the mean, minimises expected absolute error, and VM utilisation is
    skewed by short bursts, so on such series it is the better central forecast.
    """

    name = "median"

    def __init__(self, window: int = 36) -> None:
        self.window = window
        self.history_needed = window

    @property
    def label(self) -> str:
        return f"{self.name}{self.window}"

    def predict(self, horizon: int, history: History) -> Prediction:
        return Prediction(
            flat(history.median(self.window), horizon), has_data(history), "no observation yet"
        )
