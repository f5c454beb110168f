"""Resources a VM consumes and the units their samples are expressed in."""

from __future__ import annotations

from enum import StrEnum


class Resource(StrEnum):
    """A kind of demand forethought forecasts and allocates."""

    CPU = "cpu"
    MEMORY = "memory"
    DISK_READ = "disk_read"
    DISK_WRITE = "disk_write"
    NET_RX = "net_rx"
    NET_TX = "net_tx"


#: Bandwidths (disk and network). A trace gives no provisioned size to express them in
#: percent of, so they are allocated in their own unit (KB/s), as a throttle.
BANDWIDTHS = (Resource.DISK_READ, Resource.DISK_WRITE, Resource.NET_RX, Resource.NET_TX)
#: The least disk or network limit set, in KB/s (1 MiB/s). A zero limit would stop the
#: VM's I/O (and to libvirt it means no limit at all); a VM idle so far must still be able
#: to start its I/O at once, and the next decision then sizes it to its demand.
BANDWIDTH_FLOOR_KBS = 1024.0

#: The largest sample a reader accepts, in any unit: a trillion (a petabyte per second in
#: KB/s). Above it a value is a corrupted record, and parts of the engine that keep float32
#: state (3.4e38 at most) would overflow on it.
MAX_READING = 1e12


class Unit(StrEnum):
    """The unit of a series. Never guessed silently: readers set it from the format."""

    PERCENT = "percent"  # percent of the VM's provisioned capacity, 0-100
    MHZ = "MHz"
    MIPS = "MIPS"
    CORES = "cores"
    KB = "KB"
    MB = "MB"
    KB_PER_S = "KB/s"


#: The unit each resource is read in when a generic file does not say.
DEFAULT_UNITS: dict[Resource, Unit] = {
    Resource.CPU: Unit.PERCENT,
    Resource.MEMORY: Unit.KB,
    Resource.DISK_READ: Unit.KB_PER_S,
    Resource.DISK_WRITE: Unit.KB_PER_S,
    Resource.NET_RX: Unit.KB_PER_S,
    Resource.NET_TX: Unit.KB_PER_S,
}


def parse_resource(name: str) -> Resource:
    """Return the resource called ``name`` (case-insensitive), or raise ``ValueError``."""
    try:
        return Resource(name.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Resource)
        raise ValueError(f"unknown resource {name!r}; known resources: {known}") from None
