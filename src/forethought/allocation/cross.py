"""Cross-resource anomalies of a trace: one forecasting pass over all of a VM's resources.

The allocation manager sizes each resource on its own, but an anomaly often shows only in
how a VM's resources move together: CPU climbing while memory falls, network silent while
CPU is busy. This pass forecasts every (VM, resource) series one step ahead with the same
engine as the manager, feeds each step's residual vectors to a
:class:`~forethought.forecast.anomaly.CrossResourceDetector`, and returns the anomalies
with their evidence, by step, for the per-resource managers to act on as their policy
says (alert, scale up, isolate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from forethought.core.clock import steps_per_day
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.forecast.anomaly import Anomaly, CrossAnomaly, CrossResourceDetector
from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.engine import make_forecaster


@dataclass
class CrossReport:
    """Every cross-resource anomaly, by the step it fired, and who was flagged when.

    ``series_events`` are the same pass's per-series anomalies (a resource above its own
    one-step p99 for ``run`` steps), as (VM, resource, evidence).
    """

    resources: tuple[str, ...]
    threshold: float
    events: list[CrossAnomaly] = field(default_factory=list)
    by_step: dict[int, list[CrossAnomaly]] = field(default_factory=dict)
    flags: BoolArray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    series_events: list[tuple[int, str, Anomaly]] = field(default_factory=list)

    def counts(self) -> list[tuple[str, int]]:
        """(kind, anomalies): each resource above its own p99, then across resources."""
        out = [
            (f"{name} above its own p99", sum(1 for _, r, _ in self.series_events if r == name))
            for name in self.resources
        ]
        if len(self.resources) > 1:
            out.append(("across resources", len(self.events)))
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "resources": list(self.resources),
            "threshold_floor": self.threshold,
            "series": [
                {
                    "vm": vm,
                    "resource": resource,
                    "step": e.step,
                    "observed": list(e.observed),
                    "upper": list(e.upper),
                    "level": e.level,
                }
                for vm, resource, e in self.series_events
            ],
            "count": len(self.events),
            "events": [
                {
                    "vm": e.vm,
                    "step": e.step,
                    "dominant": e.dominant,
                    "began": e.first_step,
                    "score": list(e.distance),
                    "bar": e.threshold,
                    "residuals": [list(r) for r in e.residuals],
                }
                for e in self.events
            ],
        }


def cross_resource_anomalies(
    series: dict[Resource, tuple[FloatArray, BoolArray]],
    *,
    step_seconds: int,
    run: int = 3,
    level: float = 0.999,
    model: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> CrossReport:
    """Detect cross-resource anomalies in ``series``: resource -> (values, mask), each
    (vms, steps) on one grid. With a single resource only the per-series anomalies can
    be found (``series_events``); there is nothing to compare across."""
    if not series:
        raise ForethoughtError("anomaly detection needs at least one resource")
    resources = tuple(series)
    shapes = {values.shape for values, _ in series.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ForethoughtError("every resource must be a (vms, steps) array on the same grid")
    n, T = next(iter(shapes))
    R = len(resources)
    values = np.concatenate([np.asarray(series[r][0], dtype=np.float64) for r in resources])
    mask = np.concatenate([np.asarray(series[r][1], dtype=bool) for r in resources])
    mask &= np.isfinite(values)
    engine = make_forecaster(
        model, step_seconds=step_seconds, horizon=1, lower=0.0, anomaly_run=run
    )
    engine.steady()
    names = tuple(r.value for r in resources)
    detector = None
    if R > 1:  # a VM's usual joint error is learned over a day before it can be flagged
        day = steps_per_day(step_seconds)
        detector = CrossResourceDetector(n, names, run=run, level=level, min_steps=day)
    report = CrossReport(names, detector.threshold if detector is not None else float("nan"))
    flags = np.zeros((n, T), dtype=bool)
    predicted = np.full(n * R, np.nan)
    for t in range(T):
        y, seen = values[:, t], mask[:, t]
        if detector is not None:
            residual = np.where(seen, y - predicted, np.nan)
            fired = detector.check(t, residual.reshape(R, n).T, seen.reshape(R, n).T)
            if fired.any():
                fresh = detector.events[len(report.events) :]
                report.events.extend(fresh)
                report.by_step[t] = list(fresh)
            flags[:, t] = detector.flags
        engine.update(np.where(seen, y, np.nan)[:, None], seen[:, None])
        predicted = np.asarray(engine.forecast(1).median[:, 0])
        if progress is not None and (t % 64 == 0 or t == T - 1):
            progress(t + 1, T)
    report.flags = flags
    report.series_events = [
        (e.series % n, resources[e.series // n].value, e) for e in engine.events
    ]
    return report
