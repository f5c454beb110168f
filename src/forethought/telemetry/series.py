"""A typed panel of many series: VMs x resources x time on a regular grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from forethought.core.errors import ForethoughtError
from forethought.core.numbers import is_whole
from forethought.core.resources import Resource, Unit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SkippedRecord:
    """A record a reader skipped under ``--skip-bad``, with where and why."""

    path: str
    line: int | None
    reason: str


@dataclass
class RepairReport:
    """What a reader changed to put real-world data on a clean grid. Nothing is hidden."""

    clipped: int = 0  # values moved into their valid range (e.g. CPU above 100 %)
    duplicates_merged: int = 0  # samples sharing a grid slot or a timestamp, averaged
    gaps: int = 0  # grid slots with no sample, left missing in the mask
    skipped: list[SkippedRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Notes every command shows on reading, not only ``inspect`` (the trace is usable
    #: but the user should know before waiting on it).
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: RepairReport) -> None:
        """Add another report's counts and records to this one."""
        self.clipped += other.clipped
        self.duplicates_merged += other.duplicates_merged
        self.gaps += other.gaps
        self.skipped.extend(other.skipped)
        self.notes.extend(other.notes)
        self.warnings.extend(other.warnings)

    def to_dict(self) -> dict[str, object]:
        return {
            "clipped": self.clipped,
            "duplicates_merged": self.duplicates_merged,
            "gaps": self.gaps,
            "skipped": [{"path": s.path, "line": s.line, "reason": s.reason} for s in self.skipped],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Telemetry:
    """Samples of many VMs and resources on one regular time grid.

    ``values[v, r, t]`` is VM ``v``'s demand for ``resources[r]`` at ``start + t * step_seconds``,
    in ``units[r]``; where ``mask`` is False the sample is missing and ``values`` holds NaN.
    ``capacity[v, r]``, when known, is the VM's provisioned amount in the same unit family
    (for example memory provisioned in KB), NaN where unknown.
    """

    vm_ids: tuple[str, ...]
    resources: tuple[Resource, ...]
    units: tuple[Unit, ...]
    step_seconds: int
    start: int
    values: FloatArray
    mask: BoolArray
    capacity: FloatArray
    source: str = ""
    repairs: RepairReport = field(default_factory=RepairReport)

    def __post_init__(self) -> None:
        # Names given as text become the enums they name ("percent" is Unit.PERCENT), so
        # that every later test of a unit or resource holds; an unknown one is an error.
        try:
            object.__setattr__(self, "resources", tuple(Resource(x) for x in self.resources))
            object.__setattr__(self, "units", tuple(Unit(x) for x in self.units))
        except ValueError as exc:
            raise ForethoughtError(f"telemetry: {exc}") from None
        if len(set(self.resources)) != len(self.resources):
            raise ForethoughtError("telemetry: each resource may appear once")
        for name in ("values", "mask", "capacity"):
            if not isinstance(getattr(self, name), np.ndarray):
                raise ForethoughtError(f"telemetry: {name} must be a NumPy array")
        if self.values.dtype.kind != "f" or self.mask.dtype != bool:
            raise ForethoughtError("telemetry: values must be floats and mask booleans")
        if not is_whole(self.step_seconds):
            raise ForethoughtError(
                f"step_seconds must be a whole number, got {self.step_seconds!r}"
            )
        n, r = len(self.vm_ids), len(self.resources)
        if self.values.ndim != 3 or self.values.shape[:2] != (n, r):
            raise ForethoughtError(
                f"values must have shape (vms={n}, resources={r}, steps); got {self.values.shape}"
            )
        if self.mask.shape != self.values.shape:
            raise ForethoughtError("mask and values must have the same shape")
        if self.capacity.shape != (n, r):
            raise ForethoughtError(f"capacity must have shape ({n}, {r})")
        if len(self.units) != r:
            raise ForethoughtError("one unit per resource is required")
        if self.step_seconds <= 0:
            raise ForethoughtError("step_seconds must be positive")

    @property
    def n_vms(self) -> int:
        return len(self.vm_ids)

    @property
    def n_steps(self) -> int:
        return int(self.values.shape[2])

    def has(self, resource: Resource) -> bool:
        return resource in self.resources

    def index(self, resource: Resource) -> int:
        try:
            return self.resources.index(resource)
        except ValueError:
            have = ", ".join(r.value for r in self.resources)
            raise ForethoughtError(
                f"{self.source or 'trace'} has no {resource.value} series (it has: {have})"
            ) from None

    def unit(self, resource: Resource) -> Unit:
        return self.units[self.index(resource)]

    def series(self, resource: Resource) -> tuple[FloatArray, BoolArray]:
        """The (vms, steps) values and mask of one resource."""
        i = self.index(resource)
        return self.values[:, i, :], self.mask[:, i, :]

    def percent_of_capacity(self, resource: Resource) -> FloatArray:
        """The series as percent of each VM's provisioned capacity (needs known capacity)."""
        i = self.index(resource)
        if self.units[i] is Unit.PERCENT:
            return self.values[:, i, :]
        cap = self.capacity[:, i]
        unknown = np.flatnonzero(~(np.isfinite(cap) & (cap > 0)))
        if unknown.size:
            names = ", ".join(self.vm_ids[v] for v in unknown[:5].tolist())
            more = f" and {unknown.size - 5} more" if unknown.size > 5 else ""
            where = f"{self.source}: " if self.source else ""
            raise ForethoughtError(
                f"{where}{resource.value}: provisioned capacity is unknown for VM(s) "
                f"{names}{more}, so it cannot be expressed in percent"
            )
        return np.asarray(100.0 * self.values[:, i, :] / cap[:, None], dtype=np.float64)

    def select_vms(self, keep: npt.NDArray[np.intp] | slice) -> Telemetry:
        """A telemetry of a subset of the VMs (same grid and resources)."""
        ids = np.asarray(self.vm_ids, dtype=object)[keep]
        return Telemetry(
            vm_ids=tuple(str(x) for x in ids),
            resources=self.resources,
            units=self.units,
            step_seconds=self.step_seconds,
            start=self.start,
            values=self.values[keep],
            mask=self.mask[keep],
            capacity=self.capacity[keep],
            source=self.source,
            repairs=self.repairs,
        )

    def head(self, steps: int) -> Telemetry:
        """The first ``steps`` samples of every series."""
        return Telemetry(
            vm_ids=self.vm_ids,
            resources=self.resources,
            units=self.units,
            step_seconds=self.step_seconds,
            start=self.start,
            values=self.values[:, :, :steps],
            mask=self.mask[:, :, :steps],
            capacity=self.capacity,
            source=self.source,
            repairs=self.repairs,
        )
