"""A libvirt backend: forethought's control loop on real hypervisors (KVM/QEMU first).

One libvirt connection per host (``qemu+ssh://host/system``, ``qemu:///system`` ...). The
backend implements the same protocol as the simulator, so a policy that runs in the
simulator runs unchanged here:

- **inventory**: each connection's node info (CPUs x MHz as the host's MIPS, memory) and
  its running domains (vCPUs x the host's MHz, current memory);
- **telemetry**: CPU from each domain's cumulative CPU time between two calls (the first
  call has no interval yet and reports zero), memory from the balloon statistics
  (``actual - unused``), disk reads and writes (KB/s) from the block statistics of every
  disk and network receive and transmit (KB/s) from the statistics of every interface,
  both as rates between two calls; what a domain used is also what it was granted, since
  a real hypervisor does not report demand it could not serve;
- **resize**: live where the hypervisor allows it, and it says when it does not.
  CPU by vCPU hot-plug (``setVcpusFlags(..., AFFECT_LIVE)``) to the whole vCPUs the
  allocation needs, then a cgroup bandwidth cap (``vcpu_quota`` over ``vcpu_period``) to
  the exact fraction, where the hypervisor has one; memory by the balloon
  (``setMemoryFlags(..., AFFECT_LIVE)``) up to the domain's maximum; disk reads and
  writes by block I/O throttling (``setBlockIoTune``) and network receive and transmit by
  interface shaping (``setInterfaceParameters``, inbound and outbound as the domain sees
  them), the allocation shared evenly over the domain's disks or interfaces. A change the
  running domain refuses is written to its persistent configuration instead, and the
  outcome says it takes effect at the next restart. Nothing is restarted behind the
  caller's back;
- **migrate**: ``migrateToURI3`` with ``VIR_MIGRATE_LIVE | PEER2PEER | PERSIST_DEST |
  UNDEFINE_SOURCE`` and the orchestrator's tunnel share as the bandwidth cap (MiB/s). It
  runs in a worker thread, since libvirt's call blocks until the migration ends, and
  ``migration(id)`` reports its state; ``abort`` asks libvirt to abort the job.

Install with ``pip install 'forethought[libvirt]'`` (needs libvirt's C library and
headers, Debian's ``libvirt-dev``). Without libvirt-python, constructing the backend is a
clear error, and the simulator stands in (``Backend.simulated`` says which one runs).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

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
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource

KIB_PER_MB = 1024
#: The cgroup CPU bandwidth period set with a quota (microseconds; libvirt's default).
CPU_PERIOD_US = 100_000
#: Resources a domain reports and is resized in (all of them, CPU and memory first), in
#: the order of every observation.
RESOURCES: tuple[Resource, ...] = tuple(Resource)
#: Block throttling parameters per disk resource (bytes/s; the _max twin bounds bursts).
_BLOCK_TUNE = {Resource.DISK_READ: "read_bytes_sec", Resource.DISK_WRITE: "write_bytes_sec"}
#: Interface shaping per network resource (KiB/s), as the domain sees the traffic.
_SHAPING = {Resource.NET_RX: "inbound.average", Resource.NET_TX: "outbound.average"}


def devices(xml: str) -> tuple[list[str], list[str]]:
    """The target names of a domain's disks (not CD-ROMs) and network interfaces."""
    root = ET.fromstring(xml)
    disks = [
        t.get("dev", "")
        for d in root.iterfind("./devices/disk")
        if d.get("device", "disk") == "disk" and (t := d.find("target")) is not None
    ]
    nics = [
        t.get("dev", "")
        for i in root.iterfind("./devices/interface")
        if (t := i.find("target")) is not None
    ]
    return [d for d in disks if d], [n for n in nics if n]


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:
        raise ForethoughtError(
            "the libvirt backend needs libvirt-python: pip install 'forethought[libvirt]' "
            "(it builds against libvirt's C library: Debian's libvirt-dev)"
        ) from exc
    # libvirt prints every error to stderr by default; forethought reports them itself.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


@dataclass
class _Host:
    uri: str
    id: str
    site: str
    conn: Any
    mhz: float
    cpus: int
    memory_mb: float
    bandwidth_mbps: float


@dataclass
class _Flight:
    status: MigrationStatus
    domain: Any
    future: Future[None]


class LibvirtBackend:
    """Hosts reached through libvirt; ``sites`` maps a URI to its site (default "private"),
    ``bandwidth_mbps`` is each host's migration network (libvirt does not report it)."""

    name = "libvirt"
    simulated = False

    def __init__(
        self,
        uris: Sequence[str],
        *,
        sites: Mapping[str, str] | None = None,
        bandwidth_mbps: float = 1000.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not uris:
            raise ForethoughtError("the libvirt backend needs at least one connection URI")
        if not bandwidth_mbps > 0:
            raise ForethoughtError(f"bandwidth_mbps must be positive; got {bandwidth_mbps}")
        self._lv = _libvirt()
        self.clock = clock
        self.hosts: list[_Host] = []
        for uri in uris:
            try:
                conn = self._lv.open(uri)
                _, memory_mb, cpus, mhz = conn.getInfo()[:4]
                hostname = conn.getHostname()
            except self._lv.libvirtError as exc:
                self.close()
                raise BackendError(f"cannot reach the hypervisor at {uri}: {_why(exc)}") from None
            host_id = hostname if hostname not in {h.id for h in self.hosts} else uri
            self.hosts.append(
                _Host(
                    uri,
                    host_id,
                    (sites or {}).get(uri, "private"),
                    conn,
                    float(mhz),
                    int(cpus),
                    float(memory_mb),
                    bandwidth_mbps,
                )
            )
        self._ids = itertools.count(1)
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="forethought-migrate")
        self._cpu_seen: dict[str, tuple[float, float]] = {}  # domain -> (cpu ns, wall s)
        # domain -> (bytes read, written, received, sent; wall s) at the last telemetry
        self._io_seen: dict[str, tuple[np.ndarray, float]] = {}

    def close(self) -> None:
        for h in self.hosts:
            with contextlib.suppress(Exception):  # closing a dead connection is not news
                h.conn.close()
        if hasattr(self, "_pool"):
            self._pool.shutdown(wait=False)

    # -- lookups ---------------------------------------------------------------------
    def _host(self, host_id: str) -> _Host:
        for h in self.hosts:
            if h.id == host_id:
                return h
        raise BackendError(f"unknown host {host_id!r}")

    def _domains(self) -> list[tuple[_Host, Any]]:
        out: list[tuple[_Host, Any]] = []
        for h in self.hosts:
            try:
                domains = h.conn.listAllDomains(self._lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            except self._lv.libvirtError as exc:
                raise BackendError(f"{h.uri}: cannot list domains: {_why(exc)}") from None
            out.extend((h, d) for d in domains)
        return out

    def _find(self, vm: str) -> tuple[_Host, Any]:
        for h, d in self._domains():
            if d.name() == vm:
                return h, d
        raise BackendError(f"unknown VM {vm!r} (not running on any connected host)")

    def _moving(self) -> set[str]:
        with self._lock:
            return {
                f.status.vm
                for f in self._flights.values()
                if f.status.state is MigrationState.RUNNING
            }

    def _in_a_job(self, d: Any) -> bool:
        """Whether libvirt runs a job on the domain now: a migration, whoever started it
        (an earlier run's, which this process does not track, among them)."""
        try:
            kind = d.jobInfo()[0]
        except self._lv.libvirtError:  # a driver without job information: ours only
            return False
        return kind in (self._lv.VIR_DOMAIN_JOB_BOUNDED, self._lv.VIR_DOMAIN_JOB_UNBOUNDED)

    # -- reads -----------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def inventory(self) -> Inventory:
        hosts = tuple(
            HostInfo(h.id, h.site, h.cpus * h.mhz, h.memory_mb, h.bandwidth_mbps, True)
            for h in self.hosts
        )
        moving = self._moving()
        vms = []
        for h, d in self._domains():
            _, max_kib, memory_kib, vcpus, _ = d.info()
            try:
                most_vcpus = int(d.maxVcpus())
            except self._lv.libvirtError:  # not every driver says; hot-plug then finds out
                most_vcpus = vcpus
            vms.append(
                VmInfo(
                    d.name(),
                    h.id,
                    vcpus * h.mhz,
                    memory_kib / KIB_PER_MB,
                    d.name() in moving or self._in_a_job(d),
                    max_cpu_mips=most_vcpus * h.mhz,
                    max_memory_mb=max_kib / KIB_PER_MB,
                )
            )
        return Inventory(hosts, tuple(vms))

    def telemetry(self) -> Observation:
        now = self.clock()
        ids, rows = [], []
        for h, d in self._domains():
            name = d.name()
            _, _, memory_kib, vcpus, cpu_ns = d.info()
            try:
                cpu_ns = float(d.getCPUStats(True)[0]["cpu_time"])
            except (self._lv.libvirtError, KeyError, IndexError):
                cpu_ns = float(cpu_ns)
            before = self._cpu_seen.get(name)
            self._cpu_seen[name] = (cpu_ns, now)
            busy = math.nan  # not measured: no interval before a VM's first read
            if before is not None and now > before[1]:
                used_s = (cpu_ns - before[0]) / 1e9
                busy = float(np.clip(used_s / ((now - before[1]) * vcpus), 0.0, 1.0))
            try:
                stats = d.memoryStats()
                used_kib = float(stats.get("actual", memory_kib)) - float(stats.get("unused", 0))
            except self._lv.libvirtError:
                used_kib = float(memory_kib)
            ids.append(name)
            rows.append((busy * vcpus * h.mhz, used_kib / KIB_PER_MB, *self._io_rates(d, now)))
        demand = np.array(rows, dtype=np.float64).reshape(len(rows), len(RESOURCES))
        return Observation(now, tuple(ids), RESOURCES, demand, demand)

    def _io_rates(self, d: Any, now: float) -> tuple[float, float, float, float]:
        """KB/s read, written, received and sent since the last call (NaN the first time:
        there is no interval to divide by).

        A device whose statistics the hypervisor refuses counts as idle; a counter that
        went backwards (the domain restarted) gives zero for that interval, not a
        negative rate.
        """
        disks, nics = devices(d.XMLDesc(0))
        total = np.zeros(4)
        for dev in disks:
            with contextlib.suppress(self._lv.libvirtError):
                stats = d.blockStats(dev)  # (rd_req, rd_bytes, wr_req, wr_bytes, errs)
                total[0:2] += (float(stats[1]), float(stats[3]))
        for dev in nics:
            with contextlib.suppress(self._lv.libvirtError):
                stats = d.interfaceStats(dev)  # (rx_bytes, rx_packets, ..., tx_bytes, ...)
                total[2:4] += (float(stats[0]), float(stats[4]))
        before = self._io_seen.get(d.name())
        self._io_seen[d.name()] = (total, now)
        if before is None or not now > before[1]:
            return (math.nan, math.nan, math.nan, math.nan)
        rate = np.maximum(total - before[0], 0.0) / 1024.0 / (now - before[1])
        return (float(rate[0]), float(rate[1]), float(rate[2]), float(rate[3]))

    # -- actions ---------------------------------------------------------------------
    def resize(self, action: Resize) -> ResizeOutcome:
        h, d = self._find(action.vm)
        if not (math.isfinite(action.amount) and action.amount > 0):
            raise BackendError(f"resize {action.vm}: the amount must be positive")
        lv = self._lv
        if action.resource is Resource.CPU:
            vcpus = max(1, math.ceil(action.amount / h.mhz))
            try:
                d.setVcpusFlags(vcpus, lv.VIR_DOMAIN_AFFECT_LIVE)
                cap = self._cpu_cap(d, action.amount / h.mhz, vcpus)
                return ResizeOutcome(action, True, True, f"{vcpus} vCPUs, hot-plugged live; {cap}")
            except lv.libvirtError as live_refused:
                return self._persist(
                    action,
                    lambda: d.setVcpusFlags(vcpus, lv.VIR_DOMAIN_AFFECT_CONFIG),
                    f"{vcpus} vCPUs",
                    live_refused,
                )
        if action.resource is Resource.MEMORY:
            kib = int(action.amount * KIB_PER_MB)
            if kib <= d.maxMemory():
                try:
                    d.setMemoryFlags(kib, lv.VIR_DOMAIN_AFFECT_LIVE)
                    return ResizeOutcome(action, True, True, f"{kib} KiB by the balloon, live")
                except lv.libvirtError as live_refused:
                    refused = live_refused
            else:
                refused = None

            def persist() -> None:
                flags = lv.VIR_DOMAIN_AFFECT_CONFIG
                d.setMemoryFlags(kib, flags | lv.VIR_DOMAIN_MEM_MAXIMUM)
                d.setMemoryFlags(kib, flags)

            return self._persist(action, persist, f"{kib} KiB (above the live maximum)", refused)
        if action.resource in _BLOCK_TUNE or action.resource in _SHAPING:
            return self._limit_io(action, d)
        return ResizeOutcome(
            action, False, False, f"{action.resource.value}: libvirt has no live limit here"
        )

    def _cpu_cap(self, d: Any, cpus: float, vcpus: int) -> str:
        """Cap each vCPU at its share of ``cpus`` by cgroup CPU bandwidth, where possible.

        Hot-plug alone rounds an allocation up to whole vCPUs; the quota gives the VM the
        exact fraction (1.3 CPUs: two vCPUs at 65 % each). A hypervisor without the
        parameters (libvirt's test driver, some non-KVM drivers) keeps whole vCPUs, and the
        outcome says so.
        """
        share = cpus / vcpus
        quota = -1 if share >= 0.999 else max(1000, round(CPU_PERIOD_US * share))
        params = {"vcpu_period": CPU_PERIOD_US, "vcpu_quota": quota}
        try:
            d.setSchedulerParametersFlags(params, self._lv.VIR_DOMAIN_AFFECT_LIVE)
        except (self._lv.libvirtError, LookupError, TypeError) as exc:
            # libvirt-python raises LookupError for a parameter the driver does not know.
            return f"no cgroup CPU cap on this hypervisor ({_why(exc)}): whole vCPUs"
        if quota < 0:
            return "no CPU cap (whole vCPUs)"
        return f"each capped at {share:.0%} by cgroup quota {quota}/{CPU_PERIOD_US} us"

    def _limit_io(self, action: Resize, d: Any) -> ResizeOutcome:
        """Throttle disk I/O or shape network traffic, shared evenly over the devices."""
        lv = self._lv
        disks, nics = devices(d.XMLDesc(0))
        kind = "disk" if action.resource in _BLOCK_TUNE else "network interface"
        targets = disks if action.resource in _BLOCK_TUNE else nics
        if not targets:
            return ResizeOutcome(
                action, False, False, f"{action.resource.value}: the domain has no {kind}"
            )
        kib_s = action.amount / len(targets)
        if action.resource in _BLOCK_TUNE:
            key = _BLOCK_TUNE[action.resource]
            rate = max(1, round(kib_s * 1024))  # bytes/s; _max equal: no bursts above it
            params: dict[str, int] = {key: rate, f"{key}_max": rate}

            def apply(flags: int) -> None:
                for dev in targets:
                    d.setBlockIoTune(dev, params, flags)

            what = f"{rate} bytes/s per disk ({', '.join(targets)})"
        else:
            key = _SHAPING[action.resource]
            rate = max(1, round(kib_s))  # KiB/s

            def apply(flags: int) -> None:
                for dev in targets:
                    d.setInterfaceParameters(dev, {key: rate}, flags)

            what = f"{key} {rate} KiB/s per interface ({', '.join(targets)})"
        try:
            apply(lv.VIR_DOMAIN_AFFECT_LIVE)
        except lv.libvirtError as live_refused:
            return self._persist(
                action, lambda: apply(lv.VIR_DOMAIN_AFFECT_CONFIG), what, live_refused
            )
        return ResizeOutcome(action, True, True, f"{what}, live")

    def _persist(
        self, action: Resize, write: Callable[[], None], what: str, why: Exception | None
    ) -> ResizeOutcome:
        """Write a change the running domain refused into its configuration, and say so."""
        reason = f"live change refused ({_why(why)})" if why is not None else "beyond live"
        try:
            write()
        except self._lv.libvirtError as exc:
            return ResizeOutcome(
                action,
                False,
                False,
                f"{what}: {reason}, and the configuration refused too: {_why(exc)}",
            )
        return ResizeOutcome(
            action,
            True,
            False,
            f"{what}: {reason}; set in the configuration, takes effect "
            "at the next restart (not restarted)",
        )

    def migrate(self, action: Migrate) -> MigrationStatus:
        source, d = self._find(action.vm)
        target = self._host(action.target)
        if target is source:
            raise BackendError(f"{action.vm} already runs on {action.target}")
        if action.vm in self._moving():
            raise BackendError(f"{action.vm} is already migrating")
        lv = self._lv
        mbps = min(source.bandwidth_mbps, target.bandwidth_mbps)
        if action.bandwidth_mbps is not None:
            mbps = min(mbps, action.bandwidth_mbps)
        params = {lv.VIR_MIGRATE_PARAM_BANDWIDTH: max(1, int(mbps / 8.0))}  # MiB/s
        flags = (
            lv.VIR_MIGRATE_LIVE
            | lv.VIR_MIGRATE_PEER2PEER
            | lv.VIR_MIGRATE_PERSIST_DEST
            | lv.VIR_MIGRATE_UNDEFINE_SOURCE
        )
        memory_mb = d.info()[2] / KIB_PER_MB
        now = self.clock()
        status = MigrationStatus(
            id=f"libvirt-{next(self._ids)}",
            vm=action.vm,
            source=source.id,
            target=target.id,
            started=now,
            expected_end=now + memory_mb / (mbps / 8.0),
            state=MigrationState.RUNNING,
        )
        future = self._pool.submit(d.migrateToURI3, target.uri, params, flags)
        with self._lock:
            self._flights[status.id] = _Flight(status, d, future)
        return status

    def migration(self, migration_id: str) -> MigrationStatus:
        with self._lock:
            flight = self._flights.get(migration_id)
        if flight is None:
            raise BackendError(f"unknown migration {migration_id!r}")
        if flight.status.state is MigrationState.RUNNING and flight.future.done():
            exc = flight.future.exception()
            end = self.clock()
            if exc is None:
                flight.status = replace(flight.status, state=MigrationState.COMPLETED, ended=end)
            else:
                flight.status = replace(
                    flight.status,
                    state=MigrationState.FAILED,
                    message=f"libvirt: {_why(exc)}",
                    ended=end,
                )
        return flight.status

    def abort(self, migration_id: str) -> MigrationStatus:
        status = self.migration(migration_id)
        if status.state is not MigrationState.RUNNING:
            return status
        with self._lock:
            flight = self._flights[migration_id]
        try:
            flight.domain.abortJob()
        except self._lv.libvirtError as exc:
            raise BackendError(f"cannot abort {migration_id}: {_why(exc)}") from None
        flight.status = replace(
            status, state=MigrationState.ABORTED, message="aborted on request", ended=self.clock()
        )
        return flight.status


def _why(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    message = getattr(exc, "get_error_message", None)
    text = message() if callable(message) else None
    return str(text or exc)
