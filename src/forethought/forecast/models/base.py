"""The contract of a point model, the building block of the engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.history import History


@dataclass(frozen=True)
class Prediction:
    """A point path per series, which series it is valid for, and why the others are not."""

    values: FloatArray  # (series, horizon)
    valid: BoolArray  # (series,)
    reason: str = ""  # why invalid series were left out, in words


class PointModel(ABC):
    """A model of the central value of every series' next steps.

    Constructor arguments are the parameters; learned state lives in ``_private`` attributes
    and is (re)allocated by :meth:`reset`. Models see the history after the new sample has
    been appended, and must work on all series at once: no Python loop over series.
    """

    name: ClassVar[str]
    #: Samples of history the model reads; the engine keeps at least this many.
    history_needed: int = 1

    @property
    def label(self) -> str:
        """The name shown in weights and notes, unique within an ensemble."""
        return self.name

    def reset(self, n: int) -> None:  # noqa: B027 - stateless models need no reset
        """Allocate learned state for ``n`` series."""

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:  # noqa: B027
        """Learn from the newest sample ``y`` (carried forward where not observed)."""

    @abstractmethod
    def predict(self, horizon: int, history: History) -> Prediction:
        """The point path of the next ``horizon`` steps for every series."""


def flat(level: FloatArray, horizon: int) -> FloatArray:
    """A flat path: the same level at every step of the horizon."""
    return np.repeat(level[:, None], horizon, axis=1)


def has_data(history: History, minimum: int = 1) -> BoolArray:
    """Series with at least ``minimum`` observed samples."""
    return np.asarray(history.observed_count >= minimum)
