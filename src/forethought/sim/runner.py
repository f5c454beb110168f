"""Run a policy over a trace: the glue between telemetry, the cluster and the simulator."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from forethought.allocation.policy import Policy, VmInfo
from forethought.cluster.model import cloudsim_planetlab
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource, Unit
from forethought.forecast.base import FloatArray
from forethought.sim.cloudsim import CloudSimDataCentre
from forethought.sim.metrics import SimResult
from forethought.sim.policies import policy
from forethought.telemetry.series import Telemetry


def cpu_utilisation(telemetry: Telemetry) -> FloatArray:
    """Each VM's CPU use as a fraction of its capacity, (vms, steps).

    A missing sample repeats the VM's last observed value (zero before the first one):
    the simulator needs a demand at every step, and holding the last value is what a
    monitoring system would report.
    """
    if Resource.CPU not in telemetry.resources:
        raise ForethoughtError(f"{telemetry.source}: the trace has no cpu series to simulate")
    if telemetry.unit(Resource.CPU) is Unit.PERCENT:
        values, mask = telemetry.series(Resource.CPU)
    else:
        values, mask = (
            telemetry.percent_of_capacity(Resource.CPU),
            telemetry.series(Resource.CPU)[1],
        )
    values = np.where(mask, values, np.nan)
    # Forward fill along time, vectorised: index of the last observed step at each step.
    steps = np.arange(values.shape[1])[None, :]
    last = np.maximum.accumulate(np.where(mask, steps, -1), axis=1)
    filled = np.take_along_axis(np.nan_to_num(values, nan=0.0), np.maximum(last, 0), axis=1)
    filled = np.where(last >= 0, filled, 0.0)
    return np.asarray(np.clip(filled, 0.0, 100.0) / 100.0)


def simulate(
    telemetry: Telemetry,
    policy_name: str,
    parameter: float | None = None,
    *,
    hosts: int = 800,
    allocate: str | None = None,
    allocation_policy: Policy | None = None,
    progress: Callable[[int, int], None] | None = None,
    vms: list[VmInfo] | None = None,
) -> SimResult:
    """Run ``policy_name`` on the CloudSim-compatible data centre over the trace's CPU.

    ``allocate`` runs an allocation recommender inside the simulation: ``forethought``
    (with ``allocation_policy``, or the default policy) or one of the rightsizing
    baselines; each VM's CPU is then capped at the allocation it decided. ``vms`` gives
    each VM's tags and application for the policy's groups (names only without it).
    """
    spec = policy(policy_name)
    test = spec.build(parameter)
    planner = spec.build_planner(parameter)
    allocator = None
    groups = None
    if allocate is not None:
        from forethought.allocation.runner import recommender_for

        if allocate != "forethought" and allocation_policy is not None:
            raise ForethoughtError("an allocation policy file goes with forethought's manager")
        baseline = None if allocate == "forethought" else allocate
        # With forethought's manager, the figures per policy group, as `rightsize` gives them.
        allocator, groups = recommender_for(
            telemetry, Resource.CPU, allocation_policy, baseline, 0, vms
        )
    u = cpu_utilisation(telemetry)
    cluster = cloudsim_planetlab(u.shape[0], hosts)
    dc = CloudSimDataCentre(
        cluster,
        u,
        test,
        interval=float(telemetry.step_seconds),
        name=spec.name,
        planner=planner,
        allocator=allocator,
        vm_names=telemetry.vm_ids,
        allocation_groups=groups,
    )
    return dc.run(progress=progress)


def parquet_writer() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a clear error naming the extra that brings them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ForethoughtError(
            "--timeline writes Parquet: pip install 'forethought[parquet]'"
        ) from exc
    return pa, pq


def write_timeline(results: list[SimResult], path: str) -> None:
    """Every run's per-interval timeline as one Parquet table (needs ``forethought[parquet]``).

    Runs are told apart by ``policy`` and ``parameter`` (NaN: the policy's default).
    """
    pa, pq = parquet_writer()
    columns: dict[str, list[object]] = {"policy": [], "parameter": []}
    for r in results:
        n = len(r.timeline.get("time", []))
        columns["policy"].extend([r.policy] * n)
        columns["parameter"].extend([math.nan if r.parameter is None else r.parameter] * n)
        for key, values in r.timeline.items():
            columns.setdefault(key, []).extend(values)
    # Built in memory, then written: pyarrow removes the target of a write that fails,
    # which must never take away what was there (a device node, as root).
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    try:
        with open(path, "wb") as handle:
            handle.write(sink.getvalue().to_pybytes())
    except OSError as exc:
        raise ForethoughtError(f"cannot write the timeline {path}: {exc}") from exc
