"""The backend protocol: the only way the control loop touches a cluster.

A backend reports what exists (inventory) and what it uses (telemetry), and carries out
actions: resize a VM, live-migrate it (which completes later), abort a migration. The
simulator implements it (:class:`forethought.cluster.simulated.SimulatedBackend`); a real
hypervisor driver (libvirt first) implements the same calls, so a policy that runs in the
simulator runs unchanged against a fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.forecast.base import FloatArray


class BackendError(ForethoughtError):
    """What the backend refused or could not do (an action, or reaching a hypervisor),
    with the reason."""


@dataclass(frozen=True)
class HostInfo:
    """A host as the backend reports it; capacities in MIPS, MB and Mbit/s."""

    id: str
    site: str
    cpu_mips: float
    memory_mb: float
    bandwidth_mbps: float
    powered_on: bool


@dataclass(frozen=True)
class VmInfo:
    """A VM: where it runs and what it is allocated now.

    ``max_cpu_mips`` and ``max_memory_mb`` are what it can be given live (its vCPU
    hot-plug and balloon maximums), where those exceed what it has now; None where they
    do not or the backend does not know.
    """

    id: str
    host: str
    cpu_mips: float
    memory_mb: float
    migrating: bool
    max_cpu_mips: float | None = None
    max_memory_mb: float | None = None

    @property
    def size(self) -> tuple[float, float]:
        """The most CPU (MIPS) and memory (MB) the VM can be given without a restart."""
        return (
            self.cpu_mips if self.max_cpu_mips is None else max(self.cpu_mips, self.max_cpu_mips),
            self.memory_mb
            if self.max_memory_mb is None
            else max(self.memory_mb, self.max_memory_mb),
        )


@dataclass(frozen=True)
class Inventory:
    hosts: tuple[HostInfo, ...]
    vms: tuple[VmInfo, ...]


@dataclass(frozen=True)
class Observation:
    """One telemetry sample of every VM: demand and what it was granted, per resource.

    NaN marks a value not measured: a rate read from counters has no value at a VM's
    first read (there is no interval yet), and a caller must not take it for zero.
    """

    time: float
    vm_ids: tuple[str, ...]
    resources: tuple[Resource, ...]
    demand: FloatArray  # (vms, resources), in each resource's allocation unit
    granted: FloatArray  # (vms, resources)


@dataclass(frozen=True)
class Resize:
    """Set a VM's allocation of one resource; ``reason`` is kept with the action."""

    vm: str
    resource: Resource
    amount: float
    reason: str = ""


@dataclass(frozen=True)
class ResizeOutcome:
    """What happened: applied live (hot-plug, balloon, cgroup limit) or needs a restart."""

    action: Resize
    applied: bool
    live: bool
    message: str = ""


@dataclass(frozen=True)
class Migrate:
    """Live-migrate ``vm`` to ``target``.

    ``bandwidth_mbps`` caps the Mbit/s the transfer may use, so an orchestrator can share a
    constrained inter-site tunnel among concurrent migrations; None leaves the rate to the
    backend (a real driver maps it to the hypervisor's migration speed limit).
    """

    vm: str
    target: str
    reason: str = ""
    bandwidth_mbps: float | None = None


class MigrationState(Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"
    FAILED = "failed"


@dataclass(frozen=True)
class MigrationStatus:
    """A live migration as the backend sees it; ``expected_end`` is its own estimate.

    ``ended`` is when it completed, failed or was aborted, if the backend knows; callers
    that measure durations prefer it to the time they happened to look.
    """

    id: str
    vm: str
    source: str
    target: str
    started: float
    expected_end: float
    state: MigrationState
    message: str = ""
    ended: float | None = None


class Backend(Protocol):
    """Inventory, telemetry and actions of a cluster, simulated or real."""

    @property
    def name(self) -> str: ...

    @property
    def simulated(self) -> bool:
        """True when no real hypervisor is behind this backend."""
        ...

    def now(self) -> float:
        """The backend's clock, in seconds: the time its telemetry and migration statuses
        are stamped with (wall-clock time for a hypervisor, simulated time otherwise)."""
        ...

    def inventory(self) -> Inventory: ...

    def telemetry(self) -> Observation: ...

    def resize(self, action: Resize) -> ResizeOutcome: ...

    def migrate(self, action: Migrate) -> MigrationStatus: ...

    def migration(self, migration_id: str) -> MigrationStatus: ...

    def abort(self, migration_id: str) -> MigrationStatus: ...
