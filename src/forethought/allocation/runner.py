"""Rightsize a trace: pick the resources, build the recommenders, replay each one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from forethought.allocation.base import Recommender
from forethought.allocation.cross import cross_resource_anomalies
from forethought.allocation.manager import PredictiveRecommender, Settings
from forethought.allocation.policy import (
    DEFAULT_POLICY_YAML,
    Group,
    Policy,
    VmInfo,
    parse_policy,
)
from forethought.allocation.replay import RightsizeScores, replay
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTHS, Resource, Unit
from forethought.forecast.anomaly import CrossAnomaly
from forethought.telemetry.series import Telemetry

#: Resources a rightsizing run sizes by default, where the trace has them.
SIZED = (Resource.CPU, Resource.MEMORY)


def percent_series(telemetry: Telemetry, resource: Resource) -> tuple[np.ndarray, np.ndarray]:
    """A resource as percent of each VM's provisioned capacity, and its mask."""
    values, mask = telemetry.series(resource)
    if telemetry.unit(resource) is not Unit.PERCENT:
        try:
            values = telemetry.percent_of_capacity(resource)
        except ForethoughtError as exc:
            others = [r.value for r in SIZED if r in telemetry.resources and r is not resource]
            hint = f" (--resource {others[0]})" if others else ""
            raise ForethoughtError(
                f"{exc}; CPU and memory are sized in percent of each VM's size, so leave "
                f"{resource.value} out{hint}"
            ) from None
    return values, mask


def sized_series(
    telemetry: Telemetry, resource: Resource
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, mask and each VM's capacity, in the unit the resource is allocated in.

    CPU and memory in percent of the VM's provisioned size (capacity 100); a bandwidth in
    its own unit with no capacity (infinite: only the policy's ``max`` bounds it).
    """
    if resource in BANDWIDTHS:
        values, mask = telemetry.series(resource)
        return values, mask, np.full(telemetry.n_vms, np.inf)
    values, mask = percent_series(telemetry, resource)
    return values, mask, np.full(telemetry.n_vms, 100.0)


def resources_of(telemetry: Telemetry, names: list[str] | str | None) -> list[Resource]:
    if isinstance(names, str):  # one name, not its letters
        names = [names]
    if names:
        try:
            wanted = [Resource(n) for n in names]
        except ValueError as exc:
            known = ", ".join(r.value for r in Resource)
            raise ForethoughtError(f"{exc}; choose from {known}") from None
        missing = [r.value for r in wanted if r not in telemetry.resources]
        if missing:
            raise ForethoughtError(
                f"{telemetry.source}: no {', '.join(missing)} series in the trace"
            )
        return wanted
    return [r for r in SIZED if r in telemetry.resources]


def policy_groups(
    telemetry: Telemetry, policy: Policy | None, vms: list[VmInfo] | None = None
) -> tuple[Policy, list[Group]]:
    """The policy (the default one where none is given) and each VM's group in it."""
    policy = policy or parse_policy(DEFAULT_POLICY_YAML, "default policy")
    # Every VM must fall in a group; a group with no VM here is only noted by the caller.
    infos = vms if vms is not None else [VmInfo(v) for v in telemetry.vm_ids]
    return policy, policy.assign(infos, require_all_groups=False)


def recommender_for(
    telemetry: Telemetry,
    resource: Resource,
    policy: Policy | None,
    baseline: str | None,
    resize_delay: int,
    vms: list[VmInfo] | None = None,
) -> tuple[Recommender, list[str] | None]:
    """The recommender for one resource, and each VM's policy group (None for a baseline).

    The baselines know no groups; forethought's manager sizes each VM by its group's
    settings, and the group names let the figures be given per group.
    """
    recs, groups = recommenders_for(telemetry, [resource], policy, baseline, resize_delay, vms)
    return recs[resource], groups


def recommenders_for(
    telemetry: Telemetry,
    resources: list[Resource],
    policy: Policy | None,
    baseline: str | None,
    resize_delay: int,
    vms: list[VmInfo] | None = None,
) -> tuple[dict[Resource, Recommender], list[str] | None]:
    """One recommender per resource, and each VM's policy group (assigned once for all)."""
    if baseline is not None:
        from forethought.allocation.baselines import make_baseline

        for resource in resources:
            if resource in BANDWIDTHS:
                raise ForethoughtError(
                    f"the {baseline} baseline sizes against each VM's provisioned size, "
                    f"which the trace does not give for {resource.value}; size it with a "
                    "forethought policy, or choose --resource cpu/memory"
                )
        return {r: make_baseline(baseline, r.value) for r in resources}, None
    policy, groups = policy_groups(telemetry, policy, vms)
    recs: dict[Resource, Recommender] = {
        r: PredictiveRecommender(
            Settings.from_policy(policy, groups, r, telemetry.step_seconds),
            r,
            resize_delay=resize_delay,
        )
        for r in resources
    }
    return recs, [g.name for g in groups]


def rightsize(
    telemetry: Telemetry,
    *,
    policy: Policy | None = None,
    baseline: str | None = None,
    resources: list[str] | str | None = None,
    resize_delay: int = 0,
    warmup: int | None = None,
    cross_resource: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    watch: npt.NDArray[np.intp] | None = None,
    vms: list[VmInfo] | None = None,
) -> dict[str, RightsizeScores]:
    """Replay every chosen resource; policy and groups are checked before anything runs.

    With forethought's manager and two or more resources, a first pass finds the
    cross-resource anomalies (``cross_resource``), and every resource's manager acts on
    them as its policy says. ``watch`` lists VMs whose allocations are kept step by step;
    ``vms`` gives each VM's tags and application for the policy's groups (names only
    without it).
    """
    if baseline is not None and policy is not None:
        raise ForethoughtError("a policy goes with forethought's manager, not with a baseline")
    if telemetry.n_vms == 0:
        raise ForethoughtError(f"{telemetry.source}: no VM to rightsize")
    chosen = resources_of(telemetry, resources)
    if not chosen:
        raise ForethoughtError(f"{telemetry.source}: no cpu or memory series to rightsize")
    # The figures are also given per policy group (forethought's policy only: the
    # baselines know no groups).
    recs, groups = recommenders_for(telemetry, chosen, policy, baseline, resize_delay, vms)
    built = list(recs.items())
    cross = None
    if cross_resource and baseline is None and len(chosen) > 1:
        report = None if progress is None else _bind(progress, "cross-resource")
        cross = cross_resource_anomalies(
            {r: sized_series(telemetry, r)[:2] for r in chosen},
            step_seconds=telemetry.step_seconds,
            progress=report,
        )
        for _, rec in built:
            if isinstance(rec, PredictiveRecommender):
                rec.cross = cross
    out: dict[str, RightsizeScores] = {}
    for resource, rec in built:
        values, mask, capacity = sized_series(telemetry, resource)
        report = None if progress is None else _bind(progress, resource.value)
        out[resource.value] = replay(
            values,
            mask,
            rec,
            capacity,
            step_seconds=telemetry.step_seconds,
            resource=resource.value,
            resize_delay=resize_delay,
            warmup=warmup,
            progress=report,
            watch=watch,
            groups=groups,
        )
        if isinstance(rec, PredictiveRecommender):
            out[resource.value] = replace(
                out[resource.value],
                anomalies=len(rec.anomalies),
                cross_resource_anomalies=sum(
                    isinstance(a.evidence, CrossAnomaly) for a in rec.anomalies
                ),
            )
    return out


def _bind(progress: Callable[[str, int, int], None], label: str) -> Callable[[int, int], None]:
    return lambda done, total: progress(label, done, total)
