"""Anomalies: observations above the forecast distribution for k consecutive steps, and
joint forecast errors across a VM's resources that are improbable together."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from forethought.forecast.base import ROUNDING, BoolArray, FloatArray


@dataclass(frozen=True)
class Anomaly:
    """Evidence of one anomaly: where, when, what was seen and what was expected."""

    series: int
    step: int  # index of the step at which the run reached k
    observed: tuple[float, ...]  # the k observations of the run
    upper: tuple[float, ...]  # the one-step upper quantiles they exceeded
    level: float


class AnomalyDetector:
    """Flags a series when ``run`` observations in a row exceed its one-step ``level`` quantile."""

    def __init__(self, n: int, run: int = 3, level: float = 0.99) -> None:
        if run < 1:
            raise ValueError("an anomaly run must be at least one step")
        self.run, self.level = run, level
        self._length = np.zeros(n, dtype=np.int64)
        self._seen = np.full((n, run), np.nan)
        self._bound = np.full((n, run), np.nan)
        self.events: list[Anomaly] = []
        self.flags = np.zeros(n, dtype=bool)  # series currently in an anomalous run
        self._frozen = np.full(n, np.nan)  # the bound in force when the current run began

    def check(self, step: int, y: FloatArray, observed: BoolArray, upper: FloatArray) -> BoolArray:
        """Score one step; returns the series whose run reached ``run`` at this step.

        During a run the bound stays the one in force when the run began: an adaptive
        forecaster partly follows a jump after one step, and a run must not escape the
        bar it is measured against by dragging it along.
        """
        in_run = self._length > 0
        bound = np.where(in_run, self._frozen, upper)
        # Above by more than rounding: a constant series forecast exactly is never anomalous.
        above = observed & np.isfinite(bound) & (y > bound + ROUNDING * np.abs(bound))
        self._frozen = np.where(above & ~in_run, upper, np.where(above, self._frozen, np.nan))
        upper = bound
        slot = step % self.run
        self._seen[:, slot] = y
        self._bound[:, slot] = upper
        self._length = np.where(above, self._length + 1, 0)
        self.flags = self._length >= self.run
        fired = self._length == self.run
        order = [(slot - k) % self.run for k in range(self.run - 1, -1, -1)]  # oldest first
        for i in np.flatnonzero(fired):  # only the few series that fire, never all of them
            self.events.append(
                Anomaly(
                    series=int(i),
                    step=step,
                    observed=tuple(float(v) for v in self._seen[i, order]),
                    upper=tuple(float(v) for v in self._bound[i, order]),
                    level=self.level,
                )
            )
        return np.asarray(fired)


def chi2_quantile(df: int, level: float) -> float:
    """The ``level`` quantile of a chi-squared law with ``df`` degrees of freedom.

    Wilson and Hilferty's cube-root normal approximation: within 1 % of the exact value
    for df >= 2 and within 4 % for df = 1 at the levels anomaly detection uses (0.99 to
    0.9999), well inside the noise of any threshold learned from data.
    """
    if df < 1 or not 0.0 < level < 1.0:
        raise ValueError("chi2_quantile needs df >= 1 and a level in (0, 1)")
    z = NormalDist().inv_cdf(level)
    c = 2.0 / (9.0 * df)
    return float(df * (1.0 - c + z * np.sqrt(c)) ** 3)


@dataclass(frozen=True)
class CrossAnomaly:
    """Evidence of a cross-resource anomaly: the residuals of every resource over the run,
    the score of each step (the largest squared partial residual: one resource's error
    given the others'), the bar they crossed, and the resource that broke ranks most."""

    vm: int
    step: int
    resources: tuple[str, ...]
    residuals: tuple[tuple[float, ...], ...]  # one row per step of the run, oldest first
    distance: tuple[float, ...]  # the score per step of the run
    threshold: float
    dominant: str  # the resource whose error, given the others', was largest last
    began: int | None = None  # the run's first step (a run may bridge unobserved steps)

    @property
    def peak(self) -> float:
        """The run's largest score: what ranks one anomaly against another."""
        return max(self.distance)

    @property
    def first_step(self) -> int:
        """The step the run began at."""
        return self.step - len(self.distance) + 1 if self.began is None else self.began


class CrossResourceDetector:
    """Flags a VM whose one-step forecast errors across resources are jointly improbable.

    Each VM's resources usually err together in a way of their own (CPU and network rise
    together; memory follows CPU). The detector keeps, per VM, an exponentially weighted
    covariance of its residual vector and scores each new vector by its largest squared
    partial residual: how far one resource's error is from what the others' errors
    predict of it. Real load errs in bursts with heavy tails, so the bar is not the
    Gaussian chi-squared quantile alone: it is the larger of that and the VM's own
    ``level`` quantile of its recent distances (conformal, like the engine's bands),
    refreshed every ``refresh`` steps. A VM is flagged when its distance stays above its
    bar for ``run`` steps in a row. This catches a broken relation (CPU up, memory down)
    even when each resource stays inside its own forecast band, which the per-series
    detector cannot see. Vectorised over VMs: one batched solve per step.
    """

    def __init__(
        self,
        n_vms: int,
        resources: tuple[str, ...],
        *,
        run: int = 3,
        level: float = 0.999,
        decay: float = 0.99,
        min_steps: int = 288,
        window: int = 2016,
        refresh: int = 12,
        min_scale: float = 1.0,
        ridge: float = 1e-6,
    ) -> None:
        if n_vms < 1 or len(resources) < 2:
            raise ValueError("cross-resource detection needs VMs and at least two resources")
        if run < 1 or not 0.0 < decay < 1.0 or min_steps < 1 or window < 2 or refresh < 1:
            raise ValueError(
                "run >= 1, 0 < decay < 1, min_steps >= 1, window >= 2, refresh >= 1 required"
            )
        self.resources, self.run, self.level = resources, run, level
        self.decay, self.min_steps, self.ridge = decay, min_steps, ridge
        self.refresh = refresh
        # Errors smaller than this (in the series' unit: 1 point of percent-of-capacity
        # by default) are never news: it keeps a VM that sat idle for hours from calling
        # its first few-point change an anomaly.
        self.min_scale = min_scale
        R = len(resources)
        self.threshold = chi2_quantile(1, level)  # the floor of every VM's bar
        self._ring = np.full((n_vms, window), np.nan)
        self._filled = 0
        self.bar = np.full(n_vms, np.inf)
        self._cov = np.zeros((n_vms, R, R))
        self._seen = np.zeros(n_vms, dtype=np.int64)
        self._length = np.zeros(n_vms, dtype=np.int64)
        # The last ``run`` complete steps of each VM: a step with a resource unobserved
        # neither breaks a run nor counts in it, nor takes a place in its evidence.
        self._pos = np.zeros(n_vms, dtype=np.int64)
        self._began = np.zeros(n_vms, dtype=np.int64)
        self._res = np.full((n_vms, run, R), np.nan)
        self._dist = np.full((n_vms, run), np.nan)
        self.flags = np.zeros(n_vms, dtype=bool)
        self.events: list[CrossAnomaly] = []

    def check(self, step: int, residuals: FloatArray, observed: BoolArray) -> BoolArray:
        """Score one step of (vms, resources) residuals; returns the VMs whose run fired."""
        n, R = self._cov.shape[:2]
        if residuals.shape != (n, R) or observed.shape != (n, R):
            raise ValueError(f"residuals and mask must have shape ({n}, {R})")
        complete = np.asarray(observed.all(axis=1) & np.isfinite(residuals).all(axis=1))
        r = np.where(complete[:, None], residuals, 0.0)
        # Scale each resource by its own running variance first, so the ridge is relative.
        # Floor each resource's variance by adding the deficit to the diagonal, which
        # keeps the matrix a covariance (and its correlations within [-1, 1]).
        raw = np.diagonal(self._cov, axis1=1, axis2=2)
        floor = max(self.min_scale, 1e-6) ** 2
        cov = self._cov + np.maximum(floor - raw, 0.0)[:, :, None] * np.eye(R)
        scale = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        corr = cov / (scale[:, :, None] * scale[:, None, :])
        corr += self.ridge * np.eye(R)
        z = r / scale
        # Each resource's error given the others': the conditional (partial) residual of a
        # Gaussian, (P z)_r / sqrt(P_rr) with P the inverse correlation. Large when the
        # resources disagree with their usual relation; small when they burst together
        # as they usually do, however large the burst.
        precision = np.linalg.inv(corr)
        solved = np.einsum("vij,vj->vi", precision, z)
        partial = solved**2 / np.diagonal(precision, axis1=1, axis2=2)
        d2 = partial.max(axis=1)
        # Scores count towards the bar once the covariance has some history, and the bar
        # is used once it rests on enough scores; before, a VM is never flagged.
        warm = self._seen >= min(48, self.min_steps)
        ready = complete & (self._seen >= self.min_steps) & np.isfinite(self.bar)
        above = ready & (d2 > self.bar)
        rows = np.flatnonzero(complete)
        self._res[rows, self._pos[rows]] = residuals[rows]
        self._dist[rows, self._pos[rows]] = np.where(ready[rows], d2[rows], np.nan)
        self._pos[rows] = (self._pos[rows] + 1) % self.run
        self._began = np.where(above & (self._length == 0), step, self._began)
        self._length = np.where(above, self._length + 1, np.where(complete, 0, self._length))
        self.flags = self._length >= self.run
        fired = above & (self._length == self.run)  # once per run, on the step it is reached
        for v in np.flatnonzero(fired):  # rare: a loop over the few that fire
            share = partial[v]
            order = [(int(self._pos[v]) + k) % self.run for k in range(self.run)]  # oldest first
            self.events.append(
                CrossAnomaly(
                    vm=int(v),
                    step=step,
                    resources=self.resources,
                    residuals=tuple(tuple(float(x) for x in self._res[v, k]) for k in order),
                    distance=tuple(float(self._dist[v, k]) for k in order),
                    threshold=float(self.bar[v]),
                    dominant=self.resources[int(np.argmax(share))],
                    began=int(self._began[v]),
                )
            )
        # Learn the usual joint error from normal steps only, so a long anomaly does not
        # teach the detector that it is normal.
        # The first steps average (weight 1 / count), then the weight settles at 1 - decay.
        learn = complete & ~above
        outer = r[:, :, None] * r[:, None, :]
        weight = np.where(learn, np.maximum(1.0 / (self._seen + 1.0), 1.0 - self.decay), 0.0)
        self._cov += weight[:, None, None] * (outer - self._cov)
        self._seen += learn
        # The VM's own distances on normal steps set its bar.
        slot_w = self._filled % self._ring.shape[1]
        self._ring[:, slot_w] = np.where(learn & warm, d2, np.nan)
        self._filled += 1
        if self._filled % self.refresh == 0:
            enough = np.isfinite(self._ring).sum(axis=1) >= 48
            quantile = _row_quantile(self._ring, self.level)
            self.bar = np.where(enough, np.maximum(self.threshold, quantile), np.inf)
        return np.asarray(fired)


def _row_quantile(rows: FloatArray, level: float) -> FloatArray:
    """Each row's ``level`` quantile over its finite values (inf for a row with none)."""
    finite = np.isfinite(rows)
    count = finite.sum(axis=1)
    ordered = np.sort(np.where(finite, rows, np.inf), axis=1)
    index = np.clip(np.ceil(level * count).astype(np.int64) - 1, 0, rows.shape[1] - 1)
    picked = np.take_along_axis(ordered, index[:, None], axis=1)[:, 0]
    return np.asarray(np.where(count > 0, picked, np.inf))
