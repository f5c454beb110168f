"""The control loop over any backend: observe, forecast, decide, act, learn.

Each step polls the orchestrator (migrations that ended are settled, failures rolled back,
and the network map learns from the transfers) and reads the backend's inventory and
telemetry. Allocation recommenders, if any, then size each VM's resources from the past
and their changes go to the backend as ``Resize`` actions, whose outcomes say whether they
were applied live or need a restart. Last, the planner forecasts and chooses moves and
hands them to the orchestrator as proposals. Moves the orchestrator refuses are returned
to the planner, so they count against no budget. The same loop drives the simulated
backend and a hypervisor driver: only the :class:`~forethought.cluster.backend.Backend`
differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from forethought.allocation.base import Recommender
from forethought.allocation.manager import (
    REASONS,
    AnomalyRecord,
    PredictiveRecommender,
    allocate_on_hosts,
)
from forethought.cluster.backend import Backend, Resize, ResizeOutcome
from forethought.cluster.model import Cluster, io_pools
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTH_FLOOR_KBS, BANDWIDTHS, Resource
from forethought.forecast.base import FloatArray
from forethought.migration.log import ActionState
from forethought.migration.orchestrator import Decision, Orchestrator, Outcome, Proposal
from forethought.migration.planner import ClusterView, Move, PredictivePlanner


@dataclass
class LoopStep:
    """What one step saw and did."""

    time: float
    demand_mips: float
    granted_mips: float
    active_hosts: int
    moves: list[Move] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    resizes: list[ResizeOutcome] = field(default_factory=list)
    #: VMs the backend reports that the loop was not built with (started since): neither
    #: sized nor moved, and their load is not in the planner's view of their hosts.
    unmanaged: list[str] = field(default_factory=list)
    #: Anomalies the allocation manager found this step and acted on, with evidence.
    anomalies: list[AnomalyRecord] = field(default_factory=list)


class MigrationLoop:
    """Runs ``planner`` through ``orchestrator`` on ``backend``.

    ``cluster`` describes the hardware (host types, power curves, sites): what a planner
    needs and an inventory does not say. ``vm_ids`` names the cluster's VM rows as the
    backend does (``vm-<i>`` by default). With ``propose`` off, moves are planned and
    reported but not handed to the orchestrator (each step plans them afresh, as nothing
    moved). With ``within_slots`` consolidations are planned only within the migrations
    the orchestrator could start now, so every planned drain can start (a run's plan then
    reads as what it will do). With ``dry_run`` the loop decides as usual and acts on
    nothing: resizes come back not applied, moves are not proposed, and the orchestrator
    is not polled (the migrations its log holds are another run's to settle).
    """

    def __init__(
        self,
        backend: Backend,
        cluster: Cluster,
        planner: PredictivePlanner,
        orchestrator: Orchestrator,
        *,
        interval: float = 300.0,
        vm_ids: Sequence[str] | None = None,
        allocators: Mapping[Resource, Recommender] | None = None,
        dry_run: bool = False,
        propose: bool = True,
        within_slots: bool = False,
        initial: Mapping[Resource, FloatArray] | None = None,
    ) -> None:
        if planner.oracle:
            raise ForethoughtError("the control loop runs on forecasts; the oracle is offline")
        self.backend, self.cluster = backend, cluster
        self.planner, self.orchestrator = planner, orchestrator
        self.network = orchestrator.network
        self.interval = interval
        self.dry_run = dry_run
        self.propose = propose and not dry_run
        self.within_slots = within_slots
        ids = [f"vm-{v}" for v in range(cluster.n_vms)] if vm_ids is None else list(vm_ids)
        if len(ids) != cluster.n_vms:
            raise ForethoughtError(f"vm_ids must name each of the {cluster.n_vms} VMs")
        self.vm_ids = ids
        self._vm_row = {vm: i for i, vm in enumerate(ids)}
        self.steps = 0
        # What the last step saw: each VM's CPU demand (MIPS) and host row (-1: absent).
        self.last_demand = np.zeros(cluster.n_vms)
        self.last_placed = np.full(cluster.n_vms, -1, dtype=np.int64)
        self.vm_mips = cluster.vm_column("mips")
        self.vm_ram = cluster.vm_column("ram_mb")
        # Allocation per resource: CPU and memory in percent of each VM's size (MIPS, MB),
        # disk and network bandwidths in KB/s (no size: NaN until first sized).
        self.allocators = dict(allocators or {})
        unknown = [
            r.value
            for r in self.allocators
            if r not in (Resource.CPU, Resource.MEMORY, *BANDWIDTHS)
        ]
        if unknown:
            raise ForethoughtError(f"the loop cannot size {', '.join(unknown)}")
        for resource, rec in self.allocators.items():
            if resource in BANDWIDTHS and not isinstance(rec, PredictiveRecommender):
                raise ForethoughtError(
                    f"{resource.value}: a baseline sizes against each VM's provisioned size, "
                    "which a bandwidth does not have; size it with forethought's manager"
                )
        self._size = {Resource.CPU: self.vm_mips, Resource.MEMORY: self.vm_ram}
        self._alloc: dict[Resource, np.ndarray] = {}
        # Whether each VM's demand of a resource has been measured yet: no VM is resized
        # on a resource before it has been, whatever its host's room (it keeps what it has).
        self._measured: dict[Resource, np.ndarray] = {}
        for resource, rec in self.allocators.items():
            unsized = resource in BANDWIDTHS
            size = np.full(cluster.n_vms, np.inf if unsized else 100.0)
            rec.reset(cluster.n_vms, size, max(1, round(interval)))
            self._alloc[resource] = np.full(cluster.n_vms, np.nan if unsized else 100.0)
            self._measured[resource] = np.zeros(cluster.n_vms, dtype=bool)
        for resource, held in (initial or {}).items():
            self._start_at(resource, np.asarray(held, dtype=np.float64))

    def _start_at(self, resource: Resource, held: FloatArray) -> None:
        """Start from what each VM holds now (backend units; NaN: unknown, the default
        stays), not from its full size: a VM's current vCPUs and balloon are its
        allocation until a measured demand says otherwise."""
        if resource not in self.allocators:
            return
        if held.shape != (self.cluster.n_vms,):
            raise ForethoughtError(f"initial {resource.value}: one value per VM")
        alloc = 100.0 * held / self._size[resource] if resource in self._size else held
        alloc = np.where(np.isfinite(alloc) & (alloc > 0), alloc, self._alloc[resource])
        if resource in self._size:
            alloc = np.minimum(alloc, 100.0)
        self._alloc[resource] = alloc
        start = getattr(self.allocators[resource], "start_at", None)
        if start is not None:
            start(alloc)

    def step(self, now: float) -> LoopStep:
        outcomes = [] if self.dry_run else self.orchestrator.poll(now)
        for o in outcomes:
            if o.state in (ActionState.COMPLETED, ActionState.ROLLED_BACK, ActionState.FAILED):
                self.planner.learner.observe_move(o.state is ActionState.COMPLETED)
        inventory = self.backend.inventory()
        obs = self.backend.telemetry()
        n = self.cluster.n_vms
        placed = np.full(n, -1, dtype=np.int64)
        movable = np.zeros(n, dtype=bool)
        unmanaged: list[str] = []
        holds = np.zeros(n)  # each VM's CPU allocation now (MIPS)
        for vm in inventory.vms:
            row = self._vm_row.get(vm.id)
            if row is None:
                unmanaged.append(vm.id)
                continue
            placed[row] = self.network.index(vm.host)
            movable[row] = not vm.migrating
            holds[row] = vm.cpu_mips
        if Resource.CPU not in obs.resources:
            raise ForethoughtError(f"{self.backend.name}: telemetry has no CPU demand")
        cpu = obs.resources.index(Resource.CPU)
        demand = np.zeros(n)
        granted = np.zeros(n)
        known = [i for i, vm in enumerate(obs.vm_ids) if vm in self._vm_row]
        rows = np.array([self._vm_row[obs.vm_ids[i]] for i in known], dtype=np.int64)
        sampled = obs.demand[known]
        demand[rows] = sampled[:, cpu]
        granted[rows] = obs.granted[known, cpu]
        # A VM whose CPU was not measured (a counter's first read) is taken at what it
        # holds, the most it can use, and kept where it is until it has been.
        measured = np.isfinite(demand)
        demand = np.where(measured, demand, holds)
        granted = np.where(np.isfinite(granted), granted, 0.0)
        movable &= measured
        known_anomalies = {r: len(_anomalies(rec)) for r, rec in self.allocators.items()}
        resizes, oversized = self._rightsize(obs.resources, sampled, rows, placed)
        anomalies = [
            a for r, rec in self.allocators.items() for a in _anomalies(rec)[known_anomalies[r] :]
        ]
        view = ClusterView(
            time=now,
            demand=demand,
            placed=placed,
            movable=movable,
            vm_mips=self.vm_mips,
            vm_ram=self.vm_ram,
            host_mips=self.cluster.host_column("mips"),
            host_core=self.cluster.host_column("pe_mips"),
            host_ram=self.cluster.host_column("ram_mb"),
            host_kind=self.cluster.host_type,
            host_bandwidth=self.cluster.host_column("bandwidth_mbps"),
            power_table=self.cluster.power_table,
            interval=self.interval,
            oversized=oversized,
            measured=measured,
        )
        slots = self.orchestrator.free_slots() if self.within_slots else None
        moves = self.planner.plan(view, self.steps, slots)
        self.steps += 1
        self.last_demand = np.where(measured, demand, np.nan)
        self.last_placed = placed
        proposals = {
            id(m): Proposal(
                vm=self.vm_ids[m.vm],
                source=self.network.host_id(m.source),
                target=self.network.host_id(m.target),
                benefit=m.benefit_wh,
                pressure=m.source_pressure,
                ram_mb=float(self.vm_ram[m.vm]),
                reason=m.kind,
                predicted={
                    "target_pressure_after": m.target_pressure_after,
                    "seconds": m.seconds,
                    "benefit_wh": m.benefit_wh,
                },
            )
            for m in moves
        }
        decisions = self.orchestrator.submit(list(proposals.values()), now) if self.propose else []
        accepted = {id(d.proposal) for d in decisions if d.accepted}
        self.planner.rejected([m for m in moves if id(proposals[id(m)]) not in accepted])
        return LoopStep(
            time=now,
            # Nothing measured (a first read of rate counters): no figure, not a zero.
            demand_mips=float(demand[measured].sum()) if measured.any() else float("nan"),
            granted_mips=float(granted.sum()),
            active_hosts=int(np.unique(placed[placed >= 0]).size),
            moves=moves,
            decisions=decisions,
            outcomes=outcomes,
            resizes=resizes,
            unmanaged=sorted(unmanaged),
            anomalies=anomalies,
        )

    def _rightsize(
        self,
        resources: tuple[Resource, ...],
        demand: np.ndarray,
        rows: np.ndarray,
        placed: np.ndarray,
    ) -> tuple[list[ResizeOutcome], np.ndarray]:
        """Size every VM from its demand so far and send the changes to the backend.

        Desired allocations are granted within each host's capacity, higher SLA classes
        first (:func:`~forethought.allocation.manager.allocate_on_hosts`); a VM whose
        desire alone exceeds its host is capped and returned as a migration candidate.
        """
        done: list[ResizeOutcome] = []
        n = self.cluster.n_vms
        oversized = np.zeros(n, dtype=bool)
        capacity = {
            Resource.CPU: self.cluster.host_column("mips"),
            Resource.MEMORY: self.cluster.host_column("ram_mb"),
        }
        for resource, rec in self.allocators.items():
            if resource not in resources:
                raise ForethoughtError(
                    f"{self.backend.name}: telemetry has no {resource.value} to size"
                )
            if resource in BANDWIDTHS:
                continue  # sized together below: reads and writes share the host's disks
            size = self._size[resource]
            column = 100.0 * demand[:, resources.index(resource)] / size[rows]
            usage, seen = self._observed(resource, rows, column)
            before = self._alloc[resource]
            rec.observe(usage, seen)
            rec.shortfall(seen & (usage > before * (1 + 1e-9)))
            wanted = np.asarray(rec.recommend(), dtype=np.float64) / 100.0 * size
            on = placed >= 0
            priority = getattr(getattr(rec, "settings", None), "priority", None)
            classes = np.zeros(n, dtype=np.int64) if priority is None else np.asarray(priority)
            granted = wanted.copy()
            too_big = np.zeros(n, dtype=bool)
            granted[on], too_big[on] = allocate_on_hosts(
                wanted[on], placed[on], capacity[resource], classes[on]
            )
            oversized |= too_big
            # Not measured yet: it keeps what it holds (counted on its host all the same).
            granted = np.where(self._measured[resource], granted, before / 100.0 * size)
            after = 100.0 * granted / size
            changed = ~np.isclose(after, before, rtol=1e-9, atol=1e-9)
            done += self._send(resource, changed, granted, granted < wanted - 1e-9, rec)
            self._alloc[resource] = after
        limited, too_big = self._limit_bandwidths(demand, resources, rows, placed)
        return done + limited, oversized | too_big

    def _limit_bandwidths(
        self,
        demand: np.ndarray,
        resources: tuple[Resource, ...],
        rows: np.ndarray,
        placed: np.ndarray,
    ) -> tuple[list[ResizeOutcome], np.ndarray]:
        """Size disk and network bandwidths (KB/s) and send the limits that changed.

        Limits are granted within each host's capacity
        (:meth:`~forethought.cluster.model.Cluster.io_capacity`), higher SLA classes first:
        reads and writes share the host's disks, receive and transmit each have its whole
        link. A grant never goes below the floor, even on a short host, since a zero
        limit stalls the VM's I/O. A VM not limited yet (no forecast) is left so. A VM
        whose limit alone exceeds its host, where a larger host exists, is returned as a
        migration candidate.
        """
        n = self.cluster.n_vms
        wanted: dict[Resource, np.ndarray] = {}
        classes: dict[Resource, np.ndarray] = {}
        for resource, rec in self.allocators.items():
            if resource not in BANDWIDTHS:
                continue
            usage, seen = self._observed(resource, rows, demand[:, resources.index(resource)])
            rec.observe(usage, seen)
            rec.shortfall(seen & (usage > self._alloc[resource] * (1 + 1e-9)))  # NaN: never
            wanted[resource] = np.asarray(rec.recommend(), dtype=np.float64).copy()
            priority = getattr(getattr(rec, "settings", None), "priority", None)
            classes[resource] = (
                np.zeros(n, dtype=np.int64) if priority is None else np.asarray(priority)
            )
        granted = {r: w.copy() for r, w in wanted.items()}
        oversized = np.zeros(n, dtype=bool)
        on = placed >= 0
        for pool in io_pools(wanted):
            capacity = self.cluster.io_capacity(pool[0])
            m = int(on.sum())
            # One request per VM and resource of the pool; an unset limit asks nothing.
            want = np.concatenate([np.nan_to_num(wanted[r][on], nan=0.0) for r in pool])
            got, too_big = allocate_on_hosts(
                want,
                np.tile(placed[on], len(pool)),
                capacity,
                np.concatenate([classes[r][on] for r in pool]),
            )
            for i, r in enumerate(pool):
                part = slice(i * m, (i + 1) * m)
                limit = np.maximum(got[part], BANDWIDTH_FLOOR_KBS)
                granted[r][on] = np.where(np.isfinite(wanted[r][on]), limit, np.nan)
                oversized[on] |= too_big[part] & (want[part] <= capacity.max())
        done: list[ResizeOutcome] = []
        for resource, after in granted.items():
            before = self._alloc[resource]
            after = np.where(self._measured[resource], after, before)
            changed = np.isfinite(after) & ~np.isclose(after, before, rtol=1e-9, atol=1e-9)
            short = after < wanted[resource] * (1 - 1e-9)
            done += self._send(resource, changed, after, short, self.allocators[resource])
            self._alloc[resource] = after
        return done, oversized

    def _observed(
        self, resource: Resource, rows: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per VM row, this step's usage of ``resource`` (``values`` for ``rows``) and
        whether it was measured (NaN: not); remembers which VMs have been, ever."""
        n = self.cluster.n_vms
        usage = np.zeros(n)
        seen = np.zeros(n, dtype=bool)
        finite = np.isfinite(values)
        usage[rows[finite]] = values[finite]
        seen[rows] = finite
        self._measured[resource] |= seen
        return usage, seen

    def _send(
        self,
        resource: Resource,
        changed: np.ndarray,
        amount: np.ndarray,
        short: np.ndarray,
        recommender: Recommender,
    ) -> list[ResizeOutcome]:
        """Send the changed VMs' new allocations (in the backend's unit) as resizes, each
        with the recommender's reason (a host short of room overrides it)."""
        decision = getattr(recommender, "decision", None)  # forethought's manager keeps one
        codes = getattr(decision, "reason", None)
        done: list[ResizeOutcome] = []
        for v in np.flatnonzero(changed).tolist():
            if short[v]:
                why = "host short: SLA class"
            elif codes is not None and len(codes) > v:
                why = REASONS[int(codes[v])] or "bounds"
            else:
                why = "forecast"
            action = Resize(self.vm_ids[v], resource, float(amount[v]), why)
            if self.dry_run:
                done.append(ResizeOutcome(action, False, False, "dry run: not applied"))
                continue
            try:
                done.append(self.backend.resize(action))
            except ForethoughtError as exc:  # refused: reported, not retried
                done.append(ResizeOutcome(action, False, False, str(exc)))
        return done

    def allocation(self, resource: Resource) -> np.ndarray:
        """Each VM's allocation of a sized resource in the backend's unit (CPU in MIPS,
        memory in MB, disk and network in KB/s); NaN where none is set yet."""
        if resource not in self._alloc:
            raise ForethoughtError(f"the loop does not size {resource.value}")
        alloc = self._alloc[resource]
        if resource in self._size:  # kept in percent of each VM's size
            return np.asarray(alloc / 100.0 * self._size[resource])
        return alloc.copy()

    @property
    def hosts(self) -> int:
        return self.cluster.n_hosts


def _anomalies(recommender: Recommender) -> list[AnomalyRecord]:
    """The anomalies a recommender has acted on so far (forethought's manager keeps them;
    the baselines detect none)."""
    found: list[AnomalyRecord] = getattr(recommender, "anomalies", [])
    return found
