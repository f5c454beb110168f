"""Rightsizing replay: each VM's demand against allocations decided from the past only.

At every step the recommender has seen the usage up to the step before; its decision
takes effect ``resize_delay`` steps later (the time a resize takes to apply). The figures,
over the steps after a warm-up and the samples really observed:

- ``slack``: allocated but unused, over all allocated (sum of max(0, alloc - used) over the
  sum of alloc);
- ``under_provisioned_share``: the share of VM-intervals with demand above allocation;
- ``unmet_share``: demand above allocation, over all demand;
- ``resizes_per_vm_hour``: changes of the allocation in force, per VM and hour;
- ``vms_over_1pct``: the share of VMs under-provisioned in more than 1 % of their intervals.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import numpy.typing as npt

from forethought.allocation.base import Recommender
from forethought.core.clock import steps_per_day
from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray


@dataclass(frozen=True)
class RightsizeScores:
    """One recommender on one resource; ``to_dict`` holds the figures ``--json`` prints."""

    resource: str
    recommender: str
    slack: float
    under_provisioned_share: float
    unmet_share: float
    resizes_per_vm_hour: float
    vms_over_1pct: float
    n_vms: int
    scored_steps: int
    resizes: int
    cpu_seconds: float
    decision_ms_mean: float
    anomalies: int = 0  # anomalies the recommender recorded and acted on
    cross_resource_anomalies: int = 0  # of them, found across the VM's resources
    # The allocation in force at every step for the VMs asked to be watched (vms, steps),
    # for plots; not one of the figures.
    watched_allocation: FloatArray | None = field(default=None, compare=False, repr=False)
    # The same figures for each policy group's VMs, where the policy has two or more.
    groups: dict[str, RightsizeScores] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("watched_allocation", "groups")
        }
        if self.groups:
            out["groups"] = {
                name: {key: getattr(g, key) for key, _, _ in FIGURES} | {"n_vms": g.n_vms}
                for name, g in self.groups.items()
            }
        return out


#: The rightsizing figures as every table shows them: (field, label, format).
FIGURES = (
    ("slack", "slack", "{:.1%}"),
    ("under_provisioned_share", "under-provisioned intervals", "{:.2%}"),
    ("unmet_share", "unmet demand", "{:.3%}"),
    ("resizes_per_vm_hour", "resizes per VM-hour", "{:.3f}"),
    ("vms_over_1pct", "VMs short > 1 % of the time", "{:.1%}"),
)


class AllocationScorer:
    """Accumulates the rightsizing figures step by step, wherever allocations are applied.

    The replay below uses it, and so does the simulator when the allocation manager runs
    inside a full simulation, so both report the same figures by the same definitions.
    Call ``step`` once per step with the allocation in force and the usage observed, and
    ``resized`` with each new allocation as it takes effect.
    """

    def __init__(self, n: int, warmup: int, step_seconds: int) -> None:
        self.n, self.warmup, self.step_seconds = n, warmup, step_seconds
        # Per VM, so the figures can be given for any subset of VMs (a policy group).
        self.alloc_sum, self.unused_sum = np.zeros(n), np.zeros(n)
        self.used_sum, self.unmet_sum = np.zeros(n), np.zeros(n)
        self.short_count = np.zeros(n, dtype=np.int64)
        self.scored_count = np.zeros(n, dtype=np.int64)
        self.resize_count = np.zeros(n, dtype=np.int64)
        self.steps = 0
        self.decision_seconds = 0.0

    @property
    def resizes(self) -> int:
        return int(self.resize_count.sum())

    def resized(self, t: int, before: FloatArray, after: FloatArray) -> None:
        """A new allocation takes effect at step t (counted after the warm-up)."""
        if t >= self.warmup:
            self.resize_count += ~np.isclose(after, before, rtol=1e-9, atol=1e-9)

    def step(self, t: int, applied: FloatArray, used: FloatArray, observed: BoolArray) -> BoolArray:
        """Score step t; returns the VMs whose demand exceeded their allocation."""
        # An allocation not set yet (infinite: a bandwidth before its first sizing) is
        # neither slack nor short: such VM-steps are left out of the figures.
        observed = observed & np.isfinite(applied)
        short = observed & (used > applied * (1 + 1e-9) + 1e-12)
        self.steps = max(self.steps, t + 1)
        if t >= self.warmup:
            obs = observed
            self.alloc_sum += np.where(obs, applied, 0.0)
            self.unused_sum += np.where(obs, np.maximum(applied - used, 0.0), 0.0)
            self.used_sum += np.where(obs, used, 0.0)
            self.unmet_sum += np.where(obs, np.maximum(used - applied, 0.0), 0.0)
            self.short_count += short
            self.scored_count += obs
        return np.asarray(short)

    def scores(
        self,
        resource: str,
        recommender: str,
        cpu_seconds: float,
        groups: Sequence[str] | None = None,
    ) -> RightsizeScores:
        """The figures over every VM; with ``groups`` (each VM's policy group, two or more
        distinct), over each group's VMs too."""
        overall = self._figures(resource, recommender, cpu_seconds, np.arange(self.n))
        if groups is None or len(set(groups)) < 2:
            return overall
        names = np.asarray(groups)
        by_group = {
            str(g): self._figures(resource, recommender, 0.0, np.flatnonzero(names == g))
            for g in dict.fromkeys(groups)
        }
        return replace(overall, groups=by_group)

    def _figures(
        self, resource: str, recommender: str, cpu_seconds: float, rows: npt.NDArray[np.intp]
    ) -> RightsizeScores:
        n, T, warm = rows.size, self.steps, self.warmup
        scored = int(self.scored_count[rows].sum())
        hours = (T - warm) * self.step_seconds / 3600.0
        alloc, used = float(self.alloc_sum[rows].sum()), float(self.used_sum[rows].sum())
        share = np.divide(
            self.short_count[rows],
            self.scored_count[rows],
            out=np.zeros(n),
            where=self.scored_count[rows] > 0,
        )
        resizes = int(self.resize_count[rows].sum())
        return RightsizeScores(
            resource=resource,
            recommender=recommender,
            slack=float(self.unused_sum[rows].sum()) / alloc if alloc else 0.0,
            under_provisioned_share=float(self.short_count[rows].sum()) / scored if scored else 0.0,
            unmet_share=float(self.unmet_sum[rows].sum()) / used if used else 0.0,
            resizes_per_vm_hour=resizes / (n * hours) if hours > 0 and n else 0.0,
            vms_over_1pct=float(np.mean(share > 0.01)) if n else 0.0,
            n_vms=n,
            scored_steps=max(T - warm, 0),
            resizes=resizes,
            cpu_seconds=cpu_seconds,
            decision_ms_mean=1000.0 * self.decision_seconds / max(T, 1),
        )


def replay(
    values: FloatArray,
    observed: BoolArray,
    recommender: Recommender,
    capacity: FloatArray,
    *,
    step_seconds: int,
    resource: str,
    resize_delay: int = 0,
    warmup: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    watch: npt.NDArray[np.intp] | None = None,
    groups: Sequence[str] | None = None,
) -> RightsizeScores:
    """Replay ``values`` (vms, steps) against ``recommender``'s allocations; see the module.

    ``watch`` lists VMs whose allocation in force is kept at every step
    (``watched_allocation``), for plotting against their demand. ``groups`` names each
    VM's policy group, for the figures per group.
    """
    values = np.asarray(values, dtype=np.float64)
    observed = np.asarray(observed, dtype=bool)
    if values.ndim != 2 or observed.shape != values.shape:
        raise ForethoughtError("replay takes (vms, steps) values and a mask of the same shape")
    observed = observed & np.isfinite(values)
    n, T = values.shape
    if resize_delay < 0:
        raise ForethoughtError("--resize-delay must be >= 0 steps")
    warm = min(steps_per_day(step_seconds), T // 2) if warmup is None else warmup
    if not 0 <= warm < T:
        raise ForethoughtError(f"the warm-up ({warm} steps) must be shorter than the trace ({T})")
    if resize_delay + 1 >= T:
        raise ForethoughtError(
            f"--resize-delay {resize_delay} steps: no decision could take effect within the "
            f"trace's {T} steps"
        )
    if n == 0:
        raise ForethoughtError(f"{resource}: no VM to replay")
    negative = observed & (values < 0)
    if negative.any():
        v, t = (int(x[0]) for x in np.nonzero(negative))
        raise ForethoughtError(f"{resource}: negative usage {values[v, t]:g} (VM {v}, step {t})")
    if not observed[:, warm:].any():  # the figures would read as perfect sizing
        raise ForethoughtError(f"{resource}: no observed sample after the warm-up to score")
    capacity = np.broadcast_to(np.asarray(capacity, dtype=np.float64), (n,)).copy()
    clean = np.where(observed, values, 0.0)
    cpu0 = time.process_time()
    recommender.reset(n, capacity, step_seconds)
    applied = capacity.copy()
    pending: deque[tuple[int, FloatArray]] = deque()
    scorer = AllocationScorer(n, warm, step_seconds)
    kept = None if watch is None else np.empty((len(watch), T))
    for t in range(T):
        while pending and pending[0][0] <= t:
            new = pending.popleft()[1]
            scorer.resized(t, applied, new)
            applied = new
        if kept is not None:
            kept[:, t] = applied[watch]
        used, obs = clean[:, t], observed[:, t]
        short = scorer.step(t, applied, used, obs)
        d0 = time.perf_counter()
        recommender.observe(used, obs)
        recommender.shortfall(short)
        pending.append((t + 1 + resize_delay, np.asarray(recommender.recommend(), dtype=float)))
        scorer.decision_seconds += time.perf_counter() - d0
        if progress is not None and (t % 64 == 0 or t == T - 1):
            progress(t + 1, T)
    scores = scorer.scores(resource, recommender.name, time.process_time() - cpu0, groups)
    return replace(scores, watched_allocation=kept) if kept is not None else scores
