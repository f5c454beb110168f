"""The contract of a point model, the building block of the engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.history import History


@dataclass(frozen=True)
class Prediction:
    """A point path per series, which series it is valid for, and why the others are not."""

    values: FloatArray  # (series, horizon)
    valid: BoolArray  # (series,)
    reason: str = ""  # why invalid series were left out, in words


IntArray = npt.NDArray[np.intp]


class PointModel(ABC):
    """A model of the central value of every series' next steps.

    Constructor arguments are the parameters; learned state lives in ``_private`` attributes
    and is (re)allocated by :meth:`reset`. Models see the history after the new sample has
    been appended, and must work on all series at once: no Python loop over series.
    """

    name: ClassVar[str]
    #: Samples of history the model reads; the engine keeps at least this many.
    history_needed: int = 1
    #: True: a model that refits on a schedule refits a slice of the series at each step
    #: instead of all of them every few steps (each series keeps its period), so a caller
    #: deciding every step pays about the same each step. Others ignore it.
    stagger: bool = False

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


class ScheduledRefit(PointModel):
    """A model that refits every ``refit_every`` steps once ``min_history`` samples exist.

    All series at once by default; with ``stagger``, after the first full fit, the series
    whose index is congruent to the step modulo ``refit_every``, so each series keeps its
    period and every step does a ``1/refit_every`` share of the work.
    """

    refit_every: int
    min_history: int

    def reset_schedule(self) -> None:
        """Start the schedule afresh; call from :meth:`reset`."""
        self._since_fit = self.refit_every
        self._fitted_once = False
        self._step = 0

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:
        self._since_fit += 1
        self._step += 1
        if self.stagger and self._fitted_once:
            rows = np.flatnonzero(
                np.arange(history.n) % self.refit_every == self._step % self.refit_every
            )
            if rows.size:
                self._fit(history, rows)
        elif self._since_fit >= self.refit_every and history.length >= self.min_history:
            self._since_fit = 0
            self._fit(history, None)
            self._fitted_once = True

    @abstractmethod
    def _fit(self, history: History, rows: IntArray | None) -> None:
        """Refit every series (``rows`` None), or only ``rows``; the others keep their fit."""


def flat(level: FloatArray, horizon: int) -> FloatArray:
    """A flat path: the same level at every step of the horizon."""
    return np.repeat(level[:, None], horizon, axis=1)


def has_data(history: History, minimum: int = 1) -> BoolArray:
    """Series with at least ``minimum`` observed samples."""
    return np.asarray(history.observed_count >= minimum)
