"""Hosts and VMs of a simulated cluster, as flat arrays (one row per host or VM)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from forethought.cluster.power import HP_ML110_G4, HP_ML110_G5, PowerModel, power_table
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTHS, Resource
from forethought.forecast.base import FloatArray

#: KB/s (KiB, as every bandwidth here) in one Mbit/s of a network link.
KBS_PER_MBPS = 1e6 / 8 / 1024
#: Bandwidths that draw on one shared pool of the host: reads and writes on its disks.
#: Network receive and transmit each have the whole link (full duplex).
DISK = (Resource.DISK_READ, Resource.DISK_WRITE)


def io_pools(resources: Iterable[Resource]) -> list[tuple[Resource, ...]]:
    """The given bandwidths grouped by the host capacity they draw on: disk reads and
    writes together, network receive and transmit each on its own."""
    present = set(resources)
    pools = [tuple(r for r in DISK if r in present)]
    pools += [(r,) for r in (Resource.NET_RX, Resource.NET_TX) if r in present]
    return [p for p in pools if p]


#: The most hosts a command line builds: 125 times CloudSim's PlanetLab setup (800). The
#: simulator is vectorised over hosts, but a million of them for a handful of VMs only
#: fills memory (5 VMs on a million hosts ran past two minutes and 1.7 GB).
MAX_HOSTS = 100_000


@dataclass(frozen=True)
class HostType:
    """A server model: cores (processing elements) of ``pe_mips`` each, memory, network,
    local disk, and its power curve.

    ``bandwidth_mbps`` is the host's network link, in each direction: what its VMs'
    traffic and its migrations share. ``disk_kbs`` is what its disks deliver, reads and
    writes together (KB/s); infinite when not modelled, as in CloudSim's hosts.
    """

    name: str
    pes: int
    pe_mips: float
    ram_mb: float
    bandwidth_mbps: float
    power: PowerModel
    disk_gb: float = 1000.0
    disk_kbs: float = math.inf

    def __post_init__(self) -> None:
        if not (self.bandwidth_mbps > 0 and self.disk_kbs > 0):
            raise ForethoughtError(
                f"host type {self.name}: bandwidth_mbps and disk_kbs must be positive"
            )

    @property
    def mips(self) -> float:
        return self.pes * self.pe_mips


@dataclass(frozen=True)
class VmType:
    """A VM size: one core of ``mips``, memory, network bandwidth and its disk image."""

    name: str
    mips: float
    ram_mb: float
    bandwidth_mbps: float
    image_gb: float = 2.5


@dataclass(frozen=True)
class Site:
    """A place hosts live: ``private`` (owned) or ``public`` (rented cloud capacity)."""

    name: str
    kind: str = "private"

    def __post_init__(self) -> None:
        if self.kind not in ("private", "public"):
            raise ForethoughtError(f"site {self.name}: kind must be private or public")


@dataclass(frozen=True)
class Link:
    """The network between two sites: one-way latency, bandwidth and the price of a GB."""

    a: str
    b: str
    latency_ms: float
    bandwidth_mbps: float
    cost_per_gb: float = 0.0

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.bandwidth_mbps <= 0 or self.cost_per_gb < 0:
            raise ForethoughtError(
                f"link {self.a}-{self.b}: latency and cost must be >= 0, bandwidth > 0"
            )


@dataclass
class Cluster:
    """Hosts and VMs as arrays; ``host_type[h]`` and ``vm_type[v]`` index the type lists.

    ``host_site[h]`` indexes ``sites``; ``links`` joins pairs of sites (hosts of one site
    share its local network, which is never the bottleneck here).
    """

    host_types: list[HostType]
    vm_types: list[VmType]
    host_type: np.ndarray
    vm_type: np.ndarray
    sites: list[Site] = field(default_factory=lambda: [Site("private")])
    host_site: np.ndarray | None = None
    links: list[Link] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.host_type.size == 0:
            raise ForethoughtError("a cluster needs at least one host")
        if self.host_type.min() < 0 or self.host_type.max() >= len(self.host_types):
            raise ForethoughtError("host_type indexes outside the list of host types")
        if self.vm_type.size and (
            self.vm_type.min() < 0 or self.vm_type.max() >= len(self.vm_types)
        ):
            raise ForethoughtError("vm_type indexes outside the list of VM types")
        if self.host_site is None:
            self.host_site = np.zeros(self.host_type.size, dtype=np.int64)
        if self.host_site.shape != self.host_type.shape or (
            self.host_site.size
            and not 0 <= self.host_site.min() <= self.host_site.max() < len(self.sites)
        ):
            raise ForethoughtError("host_site must give every host one of the sites")
        names = {s.name for s in self.sites}
        for link in self.links:
            if link.a not in names or link.b not in names:
                raise ForethoughtError(f"link {link.a}-{link.b} names an unknown site")

    def link(self, a: int, b: int) -> Link | None:
        """The link between sites a and b (indexes), None within one site."""
        if a == b:
            return None
        pair = {self.sites[a].name, self.sites[b].name}
        for link in self.links:
            if {link.a, link.b} == pair:
                return link
        raise ForethoughtError(
            f"no link between sites {self.sites[a].name} and {self.sites[b].name}"
        )

    @property
    def n_hosts(self) -> int:
        return int(self.host_type.size)

    @property
    def n_vms(self) -> int:
        return int(self.vm_type.size)

    def host_column(self, attribute: str) -> FloatArray:
        values = np.array([getattr(t, attribute) for t in self.host_types], dtype=np.float64)
        return np.asarray(values[self.host_type])

    def io_capacity(self, resource: Resource) -> FloatArray:
        """What each host can carry of a bandwidth (KB/s): its link for network receive or
        transmit, its disks for reads and writes (one pool for both: see ``DISK``)."""
        if resource not in BANDWIDTHS:
            raise ForethoughtError(f"{resource.value} is not a disk or network bandwidth")
        if resource in DISK:
            return self.host_column("disk_kbs")
        return np.asarray(self.host_column("bandwidth_mbps") * KBS_PER_MBPS)

    def vm_column(self, attribute: str) -> FloatArray:
        values = np.array([getattr(t, attribute) for t in self.vm_types], dtype=np.float64)
        return np.asarray(values[self.vm_type])

    @property
    def power_table(self) -> FloatArray:
        return power_table([t.power for t in self.host_types])


G4 = HostType("HP ProLiant ML110 G4", 2, 1860.0, 4096.0, 1000.0, HP_ML110_G4)
G5 = HostType("HP ProLiant ML110 G5", 2, 2660.0, 4096.0, 1000.0, HP_ML110_G5)
#: The four EC2-like VM types of CloudSim's PlanetLab examples (memory as CloudSim uses it).
CLOUDSIM_VM_TYPES = [
    VmType("high-cpu-medium", 2500.0, 870.0, 100.0),
    VmType("extra-large", 2000.0, 1740.0, 100.0),
    VmType("small", 1000.0, 1740.0, 100.0),
    VmType("micro", 500.0, 613.0, 100.0),
]


def cloudsim_planetlab(n_vms: int, n_hosts: int = 800) -> Cluster:
    """CloudSim 3.0.3's PlanetLab data centre: host i is G4 if i is even, G5 if odd; VM j
    takes type floor(j / ceil(n / 4)), a quarter of the VMs each in trace order."""
    if n_vms < 1:
        raise ForethoughtError("the trace has no VM")
    quarter = -(-n_vms // 4)
    return Cluster(
        host_types=[G4, G5],
        vm_types=list(CLOUDSIM_VM_TYPES),
        host_type=np.arange(n_hosts, dtype=np.int64) % 2,
        vm_type=np.arange(n_vms, dtype=np.int64) // quarter,
    )
