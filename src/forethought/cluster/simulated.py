"""A simulated cluster behind the backend protocol, with injectable failures.

It plays a CPU trace against a :class:`~forethought.cluster.model.Cluster`: each VM demands
its type's MIPS times its trace utilisation, capped by its allocation and shared out on
an over-committed host; migrations take RAM over half the bandwidth of the slower link end
(or the cap the caller asks for, if lower) and complete when time passes them; a failure
can be injected for the next migrations, the next migrations can be slowed past their
expected end, a host can be marked full and a link cut (which also fails the migrations
in flight through them when they come to switch over), to exercise the callers' rollback
and timeout paths.

Disk and network bandwidth series (KB/s) can be played beside the CPU trace (``io``): the
telemetry then reports them, a resize sets a VM's throttle live, and what a VM is
granted is its demand up to its throttle.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from forethought.cluster.backend import (
    BackendError,
    HostInfo,
    Inventory,
    Migrate,
    MigrationState,
    MigrationStatus,
    Observation,
    Resize,
    ResizeOutcome,
    VmInfo,
)
from forethought.cluster.model import Cluster, io_pools
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTHS, Resource
from forethought.forecast.base import FloatArray


class SimulatedBackend:
    """The simulator standing in for a hypervisor; ``simulated`` says so to every caller."""

    name = "simulator"
    simulated = True

    def __init__(
        self,
        cluster: Cluster,
        utilisation: FloatArray,
        placement: np.ndarray,
        *,
        interval: float = 300.0,
        io: Mapping[Resource, FloatArray] | None = None,
        names: Sequence[str] | None = None,
        start: float = 0.0,
    ) -> None:
        u = np.asarray(utilisation, dtype=np.float64)
        if u.shape[0] != cluster.n_vms or u.ndim != 2:
            raise ForethoughtError(f"utilisation must be (vms={cluster.n_vms}, steps)")
        # The VMs' names (a trace's VM ids); vm-<row> without them.
        self.names = (
            [f"vm-{v}" for v in range(cluster.n_vms)] if names is None else [str(n) for n in names]
        )
        if len(self.names) != cluster.n_vms or len(set(self.names)) != cluster.n_vms:
            raise ForethoughtError(f"names must name each of the {cluster.n_vms} VMs once")
        self._row = {name: v for v, name in enumerate(self.names)}
        self.io: dict[Resource, FloatArray] = {}
        for resource, series in (io or {}).items():
            if resource not in BANDWIDTHS:
                raise ForethoughtError(f"io: {resource.value} is not a disk or network bandwidth")
            values = np.asarray(series, dtype=np.float64)
            if values.shape != u.shape:
                raise ForethoughtError(
                    f"io: {resource.value} must be (vms, steps) = {u.shape}, got {values.shape}"
                )
            if not np.isfinite(values).all() or (values < 0).any():
                raise ForethoughtError(f"io: {resource.value} must be finite KB/s, at least 0")
            self.io[resource] = values
        # Each VM's throttle per bandwidth (KB/s); unlimited until a resize sets one.
        self.io_limit = {r: np.full(cluster.n_vms, np.inf) for r in self.io}
        placement = np.asarray(placement, dtype=np.int64)
        if placement.shape != (cluster.n_vms,) or placement.min() < 0:
            raise ForethoughtError("placement must give every VM a host")
        if placement.max() >= cluster.n_hosts:
            raise ForethoughtError("placement names a host that does not exist")
        self.cluster, self.u, self.interval = cluster, u, interval
        self.host_of = placement.copy()
        self.vm_mips = cluster.vm_column("mips")
        self.cpu_alloc = self.vm_mips.copy()
        self.memory = cluster.vm_column("ram_mb")
        self.capacity = cluster.host_column("mips")
        self.bandwidth = cluster.host_column("bandwidth_mbps")
        # The clock starts at the trace's first sample (Unix time where the trace has it).
        self.start = self.time = float(start)
        self._ids = itertools.count(1)
        self._migrations: dict[str, MigrationStatus] = {}
        self._fail_next = 0
        self._slow_next: list[float] = []
        # When each running migration really ends; differs from its expected_end only for
        # a slowed one, whose status keeps the estimate the caller was promised.
        self._true_end: dict[str, float] = {}
        self.full_hosts: set[int] = set()
        # Hosts switched off or failed (injectable). A host merely without VMs is in
        # standby and takes VMs (it wakes, as CloudSim's idle hosts do), so it is on.
        self.down_hosts: set[int] = set()
        self.cut_links: set[tuple[int, int]] = set()

    # -- identities --------------------------------------------------------------------
    @staticmethod
    def host_id(h: int) -> str:
        return f"host-{h}"

    def vm_id(self, v: int) -> str:
        return self.names[v]

    def _host(self, host: str) -> int:
        try:
            h = int(host.removeprefix("host-"))
        except ValueError:
            raise BackendError(f"unknown host {host!r}") from None
        if not 0 <= h < self.cluster.n_hosts:
            raise BackendError(f"unknown host {host!r}")
        return h

    def _vm(self, vm: str) -> int:
        v = self._row.get(vm)
        if v is None:
            raise BackendError(f"unknown VM {vm!r}")
        return v

    # -- reads -------------------------------------------------------------------------
    def now(self) -> float:
        return self.time

    def _sample(self) -> int:
        """The trace's sample now (its last once the trace has ended)."""
        return min(int((self.time - self.start) // self.interval), int(self.u.shape[1]) - 1)

    def _moving(self) -> set[int]:
        return {
            self._vm(m.vm) for m in self._migrations.values() if m.state is MigrationState.RUNNING
        }

    def inventory(self) -> Inventory:
        assert self.cluster.host_site is not None
        ram = self.cluster.host_column("ram_mb")
        hosts = tuple(
            HostInfo(
                self.host_id(h),
                self.cluster.sites[int(self.cluster.host_site[h])].name,
                float(self.capacity[h]),
                float(ram[h]),
                float(self.bandwidth[h]),
                h not in self.down_hosts,
            )
            for h in range(self.cluster.n_hosts)
        )
        moving = self._moving()
        vms = tuple(
            VmInfo(
                self.vm_id(v),
                self.host_id(int(self.host_of[v])),
                float(self.cpu_alloc[v]),
                float(self.memory[v]),
                v in moving,
                max_cpu_mips=float(self.vm_mips[v]),  # its type's size, whatever the cap now
            )
            for v in range(self.cluster.n_vms)
        )
        return Inventory(hosts, vms)

    def demand(self) -> FloatArray:
        """CPU demand of every VM now (MIPS), from the trace."""
        k = self._sample()
        return np.asarray(self.cluster.vm_column("mips") * self.u[:, k])

    def telemetry(self) -> Observation:
        want = np.minimum(self.demand(), self.cpu_alloc)
        load = np.bincount(self.host_of, want, self.cluster.n_hosts)
        share = np.where(load > self.capacity, self.capacity / np.maximum(load, 1e-12), 1.0)
        granted = want * share[self.host_of]
        k = self._sample()
        io_demand = {r: self.io[r][:, k] for r in self.io}
        io_granted = {r: np.minimum(d, self.io_limit[r]) for r, d in io_demand.items()}
        # A host's disks (reads and writes together) and its link (each direction) carry
        # no more than their capacity: what its VMs push through is scaled to fit.
        for pool in io_pools(io_granted):
            capacity = self.cluster.io_capacity(pool[0])
            load = np.sum(
                [np.bincount(self.host_of, io_granted[r], self.cluster.n_hosts) for r in pool],
                axis=0,
            )
            share = np.where(load > capacity, capacity / np.maximum(load, 1e-12), 1.0)
            for r in pool:
                io_granted[r] = io_granted[r] * share[self.host_of]
        return Observation(
            self.time,
            tuple(self.names),
            (Resource.CPU, *self.io),
            np.column_stack([self.demand(), *io_demand.values()]),
            np.column_stack([granted, *io_granted.values()]),
        )

    # -- actions -----------------------------------------------------------------------
    def resize(self, action: Resize) -> ResizeOutcome:
        v = self._vm(action.vm)
        if action.resource in self.io:
            if not (np.isfinite(action.amount) and action.amount > 0):
                raise BackendError(f"resize {action.vm}: a throttle must be positive KB/s")
            self.io_limit[action.resource][v] = action.amount
            return ResizeOutcome(
                action, True, True, f"{action.resource.value} throttle {action.amount:g} KB/s"
            )
        if action.resource is not Resource.CPU:
            return ResizeOutcome(action, False, False, f"{action.resource.value}: not simulated")
        if not 0 < action.amount <= self.capacity[self.host_of[v]]:
            raise BackendError(
                f"resize {action.vm} to {action.amount:g} MIPS: outside (0, host capacity "
                f"{self.capacity[self.host_of[v]]:g}]"
            )
        self.cpu_alloc[v] = action.amount
        return ResizeOutcome(action, True, True, "cpu limit changed live")

    def fail_next_migrations(self, count: int = 1) -> None:
        """Inject failures: the next ``count`` migrations abort at their end."""
        self._fail_next += count

    def slow_next_migrations(self, count: int = 1, factor: float = 3.0) -> None:
        """Inject slowness: the next ``count`` migrations take ``factor`` times as long as
        their status's ``expected_end`` says, as a congested or dirtying VM would."""
        if count < 0 or not factor > 0:
            raise ForethoughtError(
                f"slow_next_migrations: count must be >= 0 and factor > 0, got {count}, {factor}"
            )
        self._slow_next.extend([float(factor)] * count)

    def migrate(self, action: Migrate) -> MigrationStatus:
        v, d = self._vm(action.vm), self._host(action.target)
        s = int(self.host_of[v])
        if v in self._moving():
            raise BackendError(f"{action.vm} is already migrating")
        if d == s:
            raise BackendError(f"{action.vm} already runs on {action.target}")
        if d in self.full_hosts:
            raise BackendError(f"{action.target} has no room for {action.vm} (target full)")
        if (min(s, d), max(s, d)) in self.cut_links:
            raise BackendError(f"no link between {self.host_id(s)} and {action.target}")
        assert self.cluster.host_site is not None
        link = self.cluster.link(int(self.cluster.host_site[s]), int(self.cluster.host_site[d]))
        mbps = min(self.bandwidth[s], self.bandwidth[d])
        if link is not None:  # across sites the slower of the hosts and the link
            mbps = min(mbps, link.bandwidth_mbps)
        mbps = mbps / 2.0  # half the bandwidth carries migrations
        if action.bandwidth_mbps is not None:
            if not action.bandwidth_mbps > 0:
                raise BackendError(
                    f"migrate {action.vm}: bandwidth cap must be > 0 Mbit/s, "
                    f"got {action.bandwidth_mbps}"
                )
            mbps = min(mbps, action.bandwidth_mbps)
        rate = mbps / 8.0  # MB/s
        duration = float(self.memory[v] / rate)
        if link is not None:  # across sites every transfer also waits out the link's latency
            duration += link.latency_ms / 1000.0
        status = MigrationStatus(
            id=f"mig-{next(self._ids)}",
            vm=action.vm,
            source=self.host_id(s),
            target=action.target,
            started=self.time,
            expected_end=self.time + duration,
            state=MigrationState.RUNNING,
        )
        if self._fail_next:
            self._fail_next -= 1
            status = _with(status, message="inject:fail")
        factor = self._slow_next.pop(0) if self._slow_next else 1.0
        self._true_end[status.id] = self.time + duration * factor
        self._migrations[status.id] = status
        return status

    def migration(self, migration_id: str) -> MigrationStatus:
        try:
            return self._migrations[migration_id]
        except KeyError:
            raise BackendError(f"unknown migration {migration_id!r}") from None

    def abort(self, migration_id: str) -> MigrationStatus:
        status = self.migration(migration_id)
        if status.state is not MigrationState.RUNNING:
            return status
        status = _with(
            status, state=MigrationState.ABORTED, message="aborted on request", ended=self.time
        )
        self._migrations[migration_id] = status
        self._true_end.pop(migration_id, None)
        return status

    def advance(self, seconds: float) -> list[MigrationStatus]:
        """Move time on; returns the migrations that ended meanwhile (done or failed)."""
        if seconds < 0:
            raise ForethoughtError("time only moves forward")
        self.time += seconds
        ended = []
        for key, m in list(self._migrations.items()):
            end = self._true_end.get(key, m.expected_end)
            if m.state is not MigrationState.RUNNING or end > self.time:
                continue
            s, d = self._host(m.source), self._host(m.target)
            failure = ""
            if m.message == "inject:fail":
                failure = "failed (injected)"
            elif (min(s, d), max(s, d)) in self.cut_links:
                failure = f"link between {m.source} and {m.target} cut mid-transfer"
            elif d in self.full_hosts:
                failure = f"{m.target} filled up before switch-over (target full)"
            if failure:
                m = _with(m, state=MigrationState.FAILED, message=failure, ended=end)
            else:
                self.host_of[self._vm(m.vm)] = d
                m = _with(m, state=MigrationState.COMPLETED, message="", ended=end)
            self._migrations[key] = m
            self._true_end.pop(key, None)
            ended.append(m)
        return ended


def _with(status: MigrationStatus, **changes: object) -> MigrationStatus:
    return replace(status, **changes)  # type: ignore[arg-type]
