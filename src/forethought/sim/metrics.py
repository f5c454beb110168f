"""Simulation metrics: CloudSim's (energy, SLATAH, PDM, SLAV, ESV) and forethought's own.

CloudSim's definitions (Beloglazov and Buyya 2012, as its Helper computes them):

- SLATAH: the share of active-host time during which a host was granted less CPU than its
  VMs requested, a ratio of sums over all hosts;
- PDM: CPU requested but not granted because of migration, over all CPU requested;
- SLAV = SLATAH x PDM; ESV = energy (kWh) x SLAV;
- overall SLA violation: all CPU requested but not granted, over all CPU requested.

forethought adds: mean active hosts, the unmet share of demand (the same as CloudSim's
overall figure for CPU), the p99 over VMs of each VM's unmet share, and slack: the share of
active hosts' capacity left unused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from forethought.allocation.replay import RightsizeScores
from forethought.forecast.base import BoolArray, FloatArray

JOULES_PER_KWH = 3.6e6


@dataclass
class SimResult:
    """Everything a simulation run reports; ``to_dict`` is the ``--json`` object."""

    policy: str
    parameter: float | None
    energy_kwh: float
    slatah: float
    pdm: float
    slav: float
    esv: float
    migrations: int
    host_shutdowns: int
    overall_sla_violation: float
    mean_active_hosts: float
    unmet_share: float
    unmet_share_p99_over_vms: float
    slack: float
    n_vms: int
    n_hosts: int
    wall_seconds: float
    policy_step_seconds_mean: float
    policy_step_seconds_max: float
    timeline: dict[str, list[float]] = field(default_factory=dict)
    #: (intervals, hosts) CPU utilisation of every host after each policy step, float32.
    host_utilisation: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    #: The rightsizing figures of the allocation manager, when it ran in the simulation
    #: (the same keys as ``forethought rightsize --json``); None otherwise.
    allocation: RightsizeScores | None = None

    def to_dict(self, timeline: bool = False) -> dict[str, object]:
        out = {k: v for k, v in asdict(self).items() if k != "host_utilisation"}
        if not timeline:
            out.pop("timeline")
        if self.allocation is None:
            out.pop("allocation")
        else:  # the figures as `rightsize --json` gives them, nothing internal
            out["allocation"] = self.allocation.to_dict()
        return out


class Accumulator:
    """Sums the per-frame quantities the metrics are ratios of."""

    def __init__(self, n_hosts: int, n_vms: int) -> None:
        self.energy_joules = 0.0
        self.active_time = 0.0
        self.violation_time = 0.0
        self.requested = 0.0
        self.allocated = 0.0
        self.migration_shortfall = 0.0
        self.host_seconds = 0.0
        self.elapsed = 0.0
        self.capacity_seconds = 0.0
        self.used_seconds = 0.0
        self.vm_requested = np.zeros(n_vms)
        self.vm_unmet = np.zeros(n_vms)
        self.shutdowns = 0
        self._active = np.ones(n_hosts, dtype=bool)  # CloudSim starts every host active
        self._pending: BoolArray | None = None
        self._pending_time: float | None = None
        self.host_fraction: list[np.ndarray] = []
        self.timeline: dict[str, list[float]] = {
            "time": [],
            "active_hosts": [],
            "energy_kwh": [],
            "migrations": [],
            "sla_violation_hosts": [],
        }

    def frame(
        self,
        dt: float,
        power_start: FloatArray,
        power_end: FloatArray,
        host_mips: FloatArray,
        host_req: FloatArray,
        alloc: FloatArray,
        req: FloatArray,
        in_migration: BoolArray,
        capacity: FloatArray | None = None,
    ) -> None:
        """Account the frame of length dt that starts with the recorded entries given."""
        if dt <= 0:
            return
        self.energy_joules += float(np.sum(power_start + power_end)) * 0.5 * dt
        active = host_mips > 0
        self.active_time += float(active.sum()) * dt
        self.violation_time += float((active & (host_mips < host_req)).sum()) * dt
        self.requested += float(req.sum()) * dt
        self.allocated += float(alloc.sum()) * dt
        short = np.maximum(req - alloc, 0.0)
        self.migration_shortfall += float(short[in_migration & (alloc < req)].sum()) * dt
        self.vm_requested += req * dt
        self.vm_unmet += short * dt
        self.elapsed += dt
        self.host_seconds += float(active.sum()) * dt
        if capacity is not None:
            self.capacity_seconds += float(capacity[active].sum()) * dt
            self.used_seconds += float(host_mips[active].sum()) * dt

    def host_entry(self, active: BoolArray, t: float) -> None:
        """A host state entry at time t; a later entry at the same time replaces it."""
        if self._pending is not None and self._pending_time != t:
            self._commit()
        self._pending, self._pending_time = active.copy(), t

    def _commit(self) -> None:
        if self._pending is None:
            return
        self.shutdowns += int((self._active & ~self._pending).sum())
        self._active = self._pending
        self._pending = None

    def sample(self, t: float, fraction: FloatArray, migrations: int, violating: int) -> None:
        """One point of the timeline, after the policy step at time t."""
        self.host_fraction.append(fraction.astype(np.float32))
        active_hosts = int((fraction > 0).sum())
        tl = self.timeline
        tl["time"].append(t)
        tl["active_hosts"].append(float(active_hosts))
        tl["energy_kwh"].append(self.energy_joules / JOULES_PER_KWH)
        tl["migrations"].append(float(migrations))
        tl["sla_violation_hosts"].append(float(violating))

    def result(
        self,
        *,
        name: str,
        parameter: float | None,
        migrations: int,
        n_vms: int,
        n_hosts: int,
        wall_seconds: float,
        policy_seconds: list[float],
        allocation: RightsizeScores | None = None,
    ) -> SimResult:
        self._commit()
        slatah = self.violation_time / self.active_time if self.active_time else 0.0
        pdm = self.migration_shortfall / self.requested if self.requested else 0.0
        energy = self.energy_joules / JOULES_PER_KWH
        overall = (self.requested - self.allocated) / self.requested if self.requested else 0.0
        share = np.divide(
            self.vm_unmet,
            self.vm_requested,
            out=np.zeros_like(self.vm_unmet),
            where=self.vm_requested > 0,
        )
        return SimResult(
            policy=name,
            parameter=parameter,
            energy_kwh=energy,
            slatah=slatah,
            pdm=pdm,
            slav=slatah * pdm,
            esv=energy * slatah * pdm,
            migrations=migrations,
            host_shutdowns=self.shutdowns,
            overall_sla_violation=overall,
            mean_active_hosts=self.host_seconds / self.elapsed if self.elapsed else 0.0,
            unmet_share=overall,
            unmet_share_p99_over_vms=float(np.quantile(share, 0.99)) if share.size else 0.0,
            slack=1.0 - self.used_seconds / self.capacity_seconds if self.capacity_seconds else 0.0,
            n_vms=n_vms,
            n_hosts=n_hosts,
            wall_seconds=wall_seconds,
            policy_step_seconds_mean=float(np.mean(policy_seconds)) if policy_seconds else 0.0,
            policy_step_seconds_max=float(np.max(policy_seconds)) if policy_seconds else 0.0,
            timeline=self.timeline,
            host_utilisation=np.array(self.host_fraction, dtype=np.float32),
            allocation=allocation,
        )
