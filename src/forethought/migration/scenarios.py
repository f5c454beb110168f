"""Joint demand scenarios for many VMs: forecast marginals tied by an empirical copula.

A host overloads when the *sum* of its VMs' demands exceeds its capacity, so the pressure
score needs the distribution of a sum, which depends on how the VMs move together. Adding
each VM's p95 assumes they all peak at once (far too pessimistic for a consolidated host);
adding medians assumes they never do. Instead each draw takes one recent time index ``s``
and sets every VM to the quantile of its own forecast at the rank its one-step error had
at ``s`` among its recent errors. VMs that erred high together (a shared burst) are high
together in the draw; each VM's marginal is still its own calibrated forecast.
"""

from __future__ import annotations

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray


class ResidualCopula:
    """The last ``window`` one-step forecast errors of ``n`` series, turned into ranks.

    ``record`` is called once per step with what was observed and what had been predicted
    for it. ``uniforms(draws)`` gives, for the most recent ``draws`` steps, every series'
    error rank scaled into (0, 1). A series with fewer than ``min_errors`` recorded errors
    has no usable ranks yet; it gets the same high rank in every draw (its forecast's
    upper quantile), the cautious choice while nothing is known about its spread.
    """

    def __init__(self, n: int, window: int = 48, min_errors: int = 12) -> None:
        if n < 1 or window < 2 or not 1 <= min_errors <= window:
            raise ForethoughtError(
                f"copula needs n >= 1, window >= 2 and 1 <= min_errors <= window; "
                f"got n={n}, window={window}, min_errors={min_errors}"
            )
        self.n, self.window, self.min_errors = n, window, min_errors
        self.errors = np.full((n, window), np.nan)
        self.steps = 0
        self.cautious_rank = 0.95

    def record(self, actual: FloatArray, predicted: FloatArray, valid: BoolArray) -> None:
        """Keep ``actual - predicted`` where ``valid`` (NaN elsewhere) as the newest error."""
        if actual.shape != (self.n,) or predicted.shape != (self.n,) or valid.shape != (self.n,):
            raise ForethoughtError(f"copula.record needs three arrays of shape ({self.n},)")
        slot = self.steps % self.window
        error = np.where(valid & np.isfinite(predicted), actual - predicted, np.nan)
        self.errors[:, slot] = error
        self.steps += 1

    def uniforms(self, draws: int) -> FloatArray:
        """(draws, n) ranks in (0, 1), one row per recent step, newest first."""
        if draws < 1:
            raise ForethoughtError(f"draws must be at least 1; got {draws}")
        filled = min(self.steps, self.window)
        draws = min(draws, max(filled, 1))
        # Slots of the newest ``draws`` steps, newest first.
        slots = (self.steps - 1 - np.arange(draws)) % self.window
        errors = self.errors
        seen = np.isfinite(errors)
        count = seen.sum(axis=1)
        # Rank of each error among the series' own errors: NaNs sort last and are not
        # counted, so a rank is (number of smaller errors + 0.5) / count.
        order = np.argsort(np.where(seen, errors, np.inf), axis=1, kind="stable")
        ranks = np.empty_like(order)
        rows = np.arange(self.n)[:, None]
        ranks[rows, order] = np.arange(self.window)[None, :]
        u = (ranks[:, slots] + 0.5) / np.maximum(count, 1)[:, None]
        usable = (count >= self.min_errors)[:, None] & seen[:, slots]
        u = np.where(usable, u, self.cautious_rank)
        return np.asarray(np.clip(u, 0.0, 1.0).T)


def quantile_paths(quantiles: FloatArray, levels: tuple[float, ...], u: FloatArray) -> FloatArray:
    """Invert each series' forecast quantiles at the draws' ranks.

    ``quantiles`` is (series, horizon, levels) with ascending ``levels``; ``u`` is (draws,
    series). Returns (draws, series, horizon): piecewise-linear in the level between the
    forecast quantiles, flat beyond the lowest and highest level (no extrapolation into
    tails the forecast did not estimate).
    """
    q = np.asarray(quantiles, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    if q.ndim != 3 or q.shape[2] != lv.size or u.ndim != 2 or u.shape[1] != q.shape[0]:
        raise ForethoughtError(
            f"quantile_paths: quantiles {q.shape}, levels {lv.size}, ranks {u.shape} disagree"
        )
    if lv.size == 1:
        return np.asarray(np.broadcast_to(q[None, :, :, 0], (u.shape[0], *q.shape[:2])))
    hi = np.clip(np.searchsorted(lv, u, side="right"), 1, lv.size - 1)  # (draws, series)
    lo = hi - 1
    w = np.clip((u - lv[lo]) / (lv[hi] - lv[lo]), 0.0, 1.0)[:, :, None]
    # Gather whole horizon rows at once: (series, levels, horizon) flattened on its first
    # two axes, so each draw copies contiguous rows instead of scattered elements.
    n, steps, k = q.shape
    rows = np.ascontiguousarray(np.transpose(q, (0, 2, 1))).reshape(n * k, steps)
    base = np.arange(n)[None, :] * k + lo
    q_lo = rows[base]  # (draws, series, horizon)
    q_hi = rows[base + 1]
    return np.asarray(q_lo + w * (q_hi - q_lo))
