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
from forethought.allocation.manager import PredictiveRecommender, allocate_on_hosts
from forethought.cluster.backend import Backend, Resize, ResizeOutcome
from forethought.cluster.model import Cluster
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTHS, Resource
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


class MigrationLoop:
    """Runs ``planner`` through ``orchestrator`` on ``backend``.

    ``cluster`` describes the hardware (host types, power curves, sites): what a planner
    needs and an inventory does not say. ``vm_ids`` names the cluster's VM rows as the
    backend does (``vm-<i>`` by default).
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
    ) -> None:
        if planner.oracle:
            raise ForethoughtError("the control loop runs on forecasts; the oracle is offline")
        self.backend, self.cluster = backend, cluster
        self.planner, self.orchestrator = planner, orchestrator
        self.network = orchestrator.network
        self.interval = interval
        ids = [f"vm-{v}" for v in range(cluster.n_vms)] if vm_ids is None else list(vm_ids)
        if len(ids) != cluster.n_vms:
            raise ForethoughtError(f"vm_ids must name each of the {cluster.n_vms} VMs")
        self.vm_ids = ids
        self._vm_row = {vm: i for i, vm in enumerate(ids)}
        self.steps = 0
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
        for resource, rec in self.allocators.items():
            unsized = resource in BANDWIDTHS
            size = np.full(cluster.n_vms, np.inf if unsized else 100.0)
            rec.reset(cluster.n_vms, size, int(interval))
            self._alloc[resource] = np.full(cluster.n_vms, np.nan if unsized else 100.0)

    def _row(self, vm: str) -> int:
        try:
            return self._vm_row[vm]
        except KeyError:
            raise ForethoughtError(f"the backend reports a VM the cluster lacks: {vm}") from None

    def step(self, now: float) -> LoopStep:
        outcomes = self.orchestrator.poll(now)
        for o in outcomes:
            if o.state in (ActionState.COMPLETED, ActionState.ROLLED_BACK, ActionState.FAILED):
                self.planner.learner.observe_move(o.state is ActionState.COMPLETED)
        inventory = self.backend.inventory()
        obs = self.backend.telemetry()
        n = self.cluster.n_vms
        placed = np.full(n, -1, dtype=np.int64)
        movable = np.zeros(n, dtype=bool)
        for vm in inventory.vms:
            row = self._row(vm.id)
            placed[row] = self.network.index(vm.host)
            movable[row] = not vm.migrating
        if Resource.CPU not in obs.resources:
            raise ForethoughtError(f"{self.backend.name}: telemetry has no CPU demand")
        cpu = obs.resources.index(Resource.CPU)
        demand = np.zeros(n)
        granted = np.zeros(n)
        rows = np.array([self._row(v) for v in obs.vm_ids], dtype=np.int64)
        demand[rows] = obs.demand[:, cpu]
        granted[rows] = obs.granted[:, cpu]
        resizes, oversized = self._rightsize(obs.resources, obs.demand, rows, placed)
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
        )
        moves = self.planner.plan(view, self.steps)
        self.steps += 1
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
        decisions = self.orchestrator.submit(list(proposals.values()), now)
        accepted = {id(d.proposal) for d in decisions if d.accepted}
        self.planner.rejected([m for m in moves if id(proposals[id(m)]) not in accepted])
        return LoopStep(
            time=now,
            demand_mips=float(demand.sum()),
            granted_mips=float(granted.sum()),
            active_hosts=int(np.unique(placed[placed >= 0]).size),
            moves=moves,
            decisions=decisions,
            outcomes=outcomes,
            resizes=resizes,
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
                done += self._limit_bandwidth(resource, rec, demand, resources, rows)
                continue
            size = self._size[resource]
            usage = np.zeros(n)
            seen = np.zeros(n, dtype=bool)
            usage[rows] = 100.0 * demand[:, resources.index(resource)] / size[rows]
            seen[rows] = True
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
            after = 100.0 * granted / size
            for v in np.flatnonzero(~np.isclose(after, before, rtol=1e-9, atol=1e-9)).tolist():
                why = "forecast" if granted[v] >= wanted[v] - 1e-9 else "host short: SLA class"
                action = Resize(self.vm_ids[v], resource, float(granted[v]), why)
                try:
                    done.append(self.backend.resize(action))
                except ForethoughtError as exc:  # refused: reported, not retried
                    done.append(ResizeOutcome(action, False, False, str(exc)))
            self._alloc[resource] = after
        return done, oversized

    def _limit_bandwidth(
        self,
        resource: Resource,
        rec: Recommender,
        demand: np.ndarray,
        resources: tuple[Resource, ...],
        rows: np.ndarray,
    ) -> list[ResizeOutcome]:
        """Size a disk or network bandwidth (KB/s) and send the limits that changed.

        A host's disks and network are not modelled as a shared capacity here, so each VM
        gets what its forecast asks for within the policy's bounds.
        """
        n = self.cluster.n_vms
        usage = np.zeros(n)
        seen = np.zeros(n, dtype=bool)
        usage[rows] = demand[:, resources.index(resource)]
        seen[rows] = True
        before = self._alloc[resource]
        rec.observe(usage, seen)
        rec.shortfall(seen & (usage > before * (1 + 1e-9)))  # NaN (unset) is never short
        after = np.asarray(rec.recommend(), dtype=np.float64).copy()
        changed = np.isfinite(after) & ~np.isclose(after, before, rtol=1e-9, atol=1e-9)
        done: list[ResizeOutcome] = []
        for v in np.flatnonzero(changed).tolist():
            action = Resize(self.vm_ids[v], resource, float(after[v]), "forecast")
            try:
                done.append(self.backend.resize(action))
            except ForethoughtError as exc:  # refused: reported, not retried
                done.append(ResizeOutcome(action, False, False, str(exc)))
        self._alloc[resource] = after
        return done

    @property
    def hosts(self) -> int:
        return self.cluster.n_hosts
