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
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from forethought.allocation.base import Recommender
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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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
) -> RightsizeScores:
    values = np.asarray(values, dtype=np.float64)
    observed = np.asarray(observed, dtype=bool)
    if values.ndim != 2 or observed.shape != values.shape:
        raise ForethoughtError("replay takes (vms, steps) values and a mask of the same shape")
    observed = observed & np.isfinite(values)
    n, T = values.shape
    if resize_delay < 0:
        raise ForethoughtError("--resize-delay must be >= 0 steps")
    warm = min(288, T // 2) if warmup is None else warmup
    if not 0 <= warm < T:
        raise ForethoughtError(f"the warm-up ({warm} steps) must be shorter than the trace ({T})")
    capacity = np.broadcast_to(np.asarray(capacity, dtype=np.float64), (n,)).copy()
    clean = np.where(observed, values, 0.0)
    cpu0 = time.process_time()
    recommender.reset(n, capacity, step_seconds)
    applied = capacity.copy()
    pending: deque[tuple[int, FloatArray]] = deque()
    alloc_sum = unused_sum = used_sum = unmet_sum = 0.0
    short_count = np.zeros(n, dtype=np.int64)
    scored_count = np.zeros(n, dtype=np.int64)
    resizes = 0
    decision_seconds = 0.0
    for t in range(T):
        while pending and pending[0][0] <= t:
            new = pending.popleft()[1]
            if t >= warm:
                resizes += int(np.count_nonzero(~np.isclose(new, applied, rtol=1e-9, atol=1e-9)))
            applied = new
        used, obs = clean[:, t], observed[:, t]
        short = obs & (used > applied * (1 + 1e-9) + 1e-12)
        if t >= warm:
            alloc_sum += float(applied[obs].sum())
            unused_sum += float(np.maximum(applied - used, 0.0)[obs].sum())
            used_sum += float(used[obs].sum())
            unmet_sum += float(np.maximum(used - applied, 0.0)[obs].sum())
            short_count += short
            scored_count += obs
        d0 = time.perf_counter()
        recommender.observe(used, obs)
        recommender.shortfall(short)
        pending.append((t + 1 + resize_delay, np.asarray(recommender.recommend(), dtype=float)))
        decision_seconds += time.perf_counter() - d0
        if progress is not None and (t % 64 == 0 or t == T - 1):
            progress(t + 1, T)
    scored = int(scored_count.sum())
    hours = (T - warm) * step_seconds / 3600.0
    share = np.divide(short_count, scored_count, out=np.zeros(n), where=scored_count > 0)
    return RightsizeScores(
        resource=resource,
        recommender=recommender.name,
        slack=unused_sum / alloc_sum if alloc_sum else 0.0,
        under_provisioned_share=float(short_count.sum()) / scored if scored else 0.0,
        unmet_share=unmet_sum / used_sum if used_sum else 0.0,
        resizes_per_vm_hour=resizes / (n * hours) if hours > 0 else 0.0,
        vms_over_1pct=float(np.mean(share > 0.01)) if n else 0.0,
        n_vms=n,
        scored_steps=T - warm,
        resizes=resizes,
        cpu_seconds=time.process_time() - cpu0,
        decision_ms_mean=1000.0 * decision_seconds / T,
    )
