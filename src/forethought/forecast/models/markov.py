"""A Markov chain over utilisation states, one transition matrix per series."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from forethought.forecast.base import FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import IntArray, Prediction, ScheduledRefit


class MarkovChain(ScheduledRefit):
    """States are per-series quantile bins of the recent window; transitions are counted.

    The h-step state distribution is the current state's row of ``P^h``, computed by
    repeated batched products. Bins and counts are re-estimated every ``refit_every`` steps
    from the last ``window`` samples, so the chain follows the series (the adaptive part).
    The point forecast is the median of the state distribution; :meth:`distribution` exposes
    the whole of it (used for the probability that demand falls into a lull).
    """

    name = "markov"

    def __init__(
        self, states: int = 8, window: int = 288, refit_every: int = 12, smoothing: float = 0.1
    ) -> None:
        if states < 2:
            raise ValueError("a Markov chain needs at least 2 states")
        self.states = states
        self.window = window
        self.refit_every = refit_every
        self.smoothing = smoothing
        self.history_needed = window
        self.min_history = 4 * states

    def reset(self, n: int) -> None:
        s = self.states
        self._edges = np.zeros((n, s - 1))
        self._values = np.zeros((n, s))
        self._matrix = np.tile(np.eye(s), (n, 1, 1))
        self._fitted = np.zeros(n, dtype=bool)
        self._median_paths = np.zeros((n, s, 0))  # median path from each starting state
        self.reset_schedule()

    def state_of(self, x: FloatArray) -> np.ndarray:
        """State index of each value of ``x`` (series, k) under each series' bins."""
        return self._states(x).astype(np.int64)

    def _states(self, x: FloatArray) -> np.ndarray:
        """:meth:`state_of` in the smallest integer type that holds the states."""
        # One comparison per edge (a loop over states, not series): five times faster
        # than comparing against all edges at once and summing a (series, k, edges) array.
        state = np.zeros(x.shape, dtype=np.int8 if self.states <= 127 else np.int64)
        for j in range(self._edges.shape[1]):
            state += x > self._edges[:, j : j + 1]
        return state

    def _fit(self, history: History | _Rows, rows: IntArray | None = None) -> None:
        if rows is not None:
            assert isinstance(history, History)
            self._fit_rows(history, rows)
            return
        x = history.window(self.window)
        n, length = x.shape
        s = self.states
        # Temporaries are the engine's peak memory at fleet scale (this runs on every
        # series at once): the sorted window is dropped as soon as the edges are read, and
        # states and indices stay in the smallest integer type that holds them.
        ordered = np.sort(x, axis=1)
        inner = np.round(np.linspace(0.0, 1.0, s + 1)[1:-1] * (length - 1)).astype(np.int64)
        self._edges = ordered[:, inner]  # (n, s-1) empirical quantile edges
        self._fitted = ordered[:, -1] > ordered[:, 0]
        del ordered
        state = self._states(x)
        index: type[np.signedinteger[Any]] = np.int32 if n * s * s < 2**31 else np.int64
        offset = np.arange(n, dtype=index)[:, None]
        pair: npt.NDArray[np.signedinteger[Any]] = state[:, :-1].astype(index)
        pair *= s
        pair += state[:, 1:]
        pair += offset * (s * s)
        counts = np.bincount(pair.ravel(), minlength=n * s * s).reshape(n, s, s).astype(np.float64)
        del pair
        counts += self.smoothing
        self._matrix = counts / counts.sum(axis=2, keepdims=True)
        # Representative value of each state: the mean of the samples that fell in it,
        # or the nearest bin edge where a state was never visited.
        cell: npt.NDArray[np.signedinteger[Any]] = state.astype(index)
        cell += offset * s
        del state
        sums = np.bincount(cell.ravel(), weights=x.ravel(), minlength=n * s)
        hits = np.bincount(cell.ravel(), minlength=n * s)
        del cell
        edges_ext = np.concatenate([self._edges[:, :1], self._edges], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            self._values = np.where(
                hits.reshape(n, s) > 0, (sums / np.maximum(hits, 1)).reshape(n, s), edges_ext
            )
        self._median_paths = np.zeros((n, s, 0))  # invalidate the cached paths

    def _fit_rows(self, history: History, rows: np.ndarray) -> None:
        """Refit some series only, and refresh their cached median paths."""
        full = (self._edges, self._values, self._matrix, self._fitted, self._median_paths)
        sub = MarkovChain(self.states, self.window, self.refit_every, self.smoothing)
        sub.reset(rows.size)
        sub._fit(_Rows(history, rows))
        self._edges[rows], self._values[rows] = sub._edges, sub._values
        self._matrix[rows], self._fitted[rows] = sub._matrix, sub._fitted
        horizon = full[4].shape[2]
        if horizon:
            sub._ensure_paths(horizon)
            self._median_paths[rows] = sub._median_paths

    def _ensure_paths(self, horizon: int) -> None:
        """Cache the median path from every starting state (series, states, horizon).

        Only the paths are kept, not the matrix powers: (series, horizon, states, states)
        would cost hundreds of MB for 100,000 series.
        """
        if self._median_paths.shape[2] == horizon:
            return
        n, s = self._matrix.shape[:2]
        paths = np.empty((n, s, horizon))
        current = self._matrix
        for h in range(horizon):  # loop over the horizon, vectorised over series
            median_state = _median_state(current)
            paths[:, :, h] = np.take_along_axis(self._values, median_state, axis=1)
            if h + 1 < horizon:
                current = np.matmul(current, self._matrix)
        self._median_paths = paths

    def distribution(self, horizon: int, history: History) -> FloatArray:
        """State probabilities (series, horizon, states) for each future step."""
        n, s = history.n, self.states
        current = self.state_of(history.window(1))[:, 0]
        p = np.zeros((n, s))
        p[np.arange(n), current] = 1.0
        out = np.empty((n, horizon, s))
        for h in range(horizon):  # loop over the horizon, vectorised over series
            p = np.einsum("ns,nst->nt", p, self._matrix)
            out[:, h] = p
        return out

    @property
    def state_values(self) -> FloatArray:
        return self._values

    def predict(self, horizon: int, history: History) -> Prediction:
        n = history.n
        if not self._fitted.any():
            return Prediction(
                np.full((n, horizon), np.nan),
                np.zeros(n, dtype=bool),
                "constant series: a single state"
                if self._fitted_once
                else f"under {self.min_history} samples of history",
            )
        self._ensure_paths(horizon)
        current = self.state_of(history.window(1))[:, 0]
        path = self._median_paths[np.arange(n), current]
        return Prediction(path, self._fitted.copy(), "constant series: a single state")


def _median_state(p: FloatArray) -> np.ndarray:
    """Index of the median state of each distribution p[..., :] (cumulative share 0.5).

    The running sum is taken a state at a time: the same sums as ``np.cumsum``, without
    its (series, states, states) temporaries.
    """
    s = p.shape[-1]
    total = np.zeros(p.shape[:-1])
    below = np.zeros(p.shape[:-1], dtype=np.int64)
    for j in range(s):
        total += p[..., j]
        below += total < 0.5
    return np.asarray(np.minimum(below, s - 1))


class _Rows:
    """A view of some series of a history, enough for :meth:`MarkovChain._fit`."""

    def __init__(self, history: History, rows: np.ndarray) -> None:
        self.history, self.rows = history, rows
        self.n = rows.size

    def window(self, w: int) -> FloatArray:
        return np.asarray(self.history.window(w)[self.rows])
