"""The control loop on a fleet that is discovered, not described: ``forethought run``.

The simulator knows its hardware; a real fleet is known only by what its backend reports.
So the cluster the planner reasons about is built from the backend's inventory when the
run starts: one host type per distinct host (CPU, memory, link), one VM type per distinct
VM size, the sites the hosts belong to, and a link between every two sites. What an
inventory cannot say, a host's power curve and the links' bandwidth, latency and price,
comes from :class:`FleetSettings` and is reported as assumed.

Each step then runs the same :class:`~forethought.migration.loop.MigrationLoop` as the
simulated runs: observe, forecast, size every VM within the policy, plan moves off hosts
about to overload, and hand them to the orchestrator, which logs every action durably and
rolls back every failure. A dry run decides the same way and acts on nothing.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from forethought.allocation.base import Recommender
from forethought.allocation.inventory import vm_infos
from forethought.allocation.manager import PredictiveRecommender, Settings
from forethought.allocation.policy import DEFAULT_POLICY_YAML, Policy, VmInfo, parse_policy
from forethought.cluster.backend import Backend, BackendError, Inventory
from forethought.cluster.model import Cluster, HostType, Link, Site, VmType, cloudsim_planetlab
from forethought.cluster.power import HP_ML110_G5, PowerModel
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTHS, Resource
from forethought.forecast.anomaly import CrossAnomaly
from forethought.forecast.base import FloatArray
from forethought.migration.log import ActionLog
from forethought.migration.loop import LoopStep, MigrationLoop
from forethought.migration.network import NetworkMap
from forethought.migration.orchestrator import Limits, Orchestrator, Outcome
from forethought.migration.planner import PlannerSettings, PredictivePlanner

#: What the loop can size on a fleet: CPU and memory in percent of each VM's size at the
#: start, disk and network as throttles in KB/s.
SIZABLE: tuple[Resource, ...] = (Resource.CPU, Resource.MEMORY, *BANDWIDTHS)
#: Shortest step: rates are read between telemetry calls, and the recommenders count time
#: in whole seconds.
MIN_INTERVAL = 1.0


@dataclass(frozen=True)
class FleetSettings:
    """How the loop runs on a fleet, and what the inventory cannot tell it."""

    interval: float = 300.0  # seconds between steps
    sized: tuple[Resource, ...] = (Resource.CPU, Resource.MEMORY)
    migrate: bool = True
    dry_run: bool = False
    #: Power curve assumed for every host (a planner's energy estimates need one).
    power: PowerModel = HP_ML110_G5
    link_mbps: float = 1000.0  # between two sites, each way
    latency_ms: float = 1.0
    cost_per_gb: float = 0.0
    limits: Limits = field(default_factory=lambda: Limits(per_host=2, per_link=4, total=16))

    def __post_init__(self) -> None:
        if not self.interval >= MIN_INTERVAL:
            raise ForethoughtError(
                f"interval must be at least {MIN_INTERVAL:g} s; got {self.interval:g}"
            )
        odd = [r.value for r in self.sized if r not in SIZABLE]
        if odd:
            raise ForethoughtError(f"the loop cannot size {', '.join(odd)}")
        if len(set(self.sized)) != len(self.sized):
            raise ForethoughtError("a resource is named twice among those to size")
        if not self.link_mbps > 0 or self.latency_ms < 0 or self.cost_per_gb < 0:
            raise ForethoughtError("the links need bandwidth > 0, latency and cost >= 0")


def cluster_of(inventory: Inventory, settings: FleetSettings) -> Cluster:
    """The hosts and VMs of ``inventory`` as a cluster, in the inventory's order.

    Each VM's size (what percentages of CPU and memory are of) is the most it can be
    given live: its vCPU and balloon maximums where the backend reports them.
    A host is one processing element of its whole MIPS: a real VM's vCPUs may use all of
    a host's cores, unlike CloudSim's single-core VMs, so no per-core cap applies.
    """
    if not inventory.hosts:
        raise ForethoughtError("the backend reports no host")
    if not inventory.vms:
        raise ForethoughtError("no VM runs on the connected hosts: there is nothing to manage")
    host_kinds: dict[tuple[float, float, float], int] = {}
    host_types: list[HostType] = []
    for h in inventory.hosts:
        if not (h.cpu_mips > 0 and h.memory_mb > 0 and h.bandwidth_mbps > 0):
            raise ForethoughtError(f"host {h.id}: CPU, memory and bandwidth must be positive")
        key = (h.cpu_mips, h.memory_mb, h.bandwidth_mbps)
        if key not in host_kinds:
            host_kinds[key] = len(host_types)
            name = f"{h.cpu_mips:,.0f} MIPS, {h.memory_mb:,.0f} MB"
            host_types.append(
                HostType(name, 1, h.cpu_mips, h.memory_mb, h.bandwidth_mbps, settings.power)
            )
    vm_kinds: dict[tuple[float, float], int] = {}
    vm_types: list[VmType] = []
    for v in inventory.vms:
        if not (v.cpu_mips > 0 and v.memory_mb > 0):
            raise ForethoughtError(f"VM {v.id}: CPU and memory must be positive")
        # A VM's size is the most it can be given live, not what it has now: a VM shrunk
        # by an earlier run must be able to grow back.
        if v.size not in vm_kinds:
            vm_kinds[v.size] = len(vm_types)
            mips, ram = v.size
            vm_types.append(VmType(f"{mips:,.0f} MIPS, {ram:,.0f} MB", mips, ram, 0.0))
    site_names = list(dict.fromkeys(h.site for h in inventory.hosts))
    return Cluster(
        host_types=host_types,
        vm_types=vm_types,
        host_type=np.array(
            [host_kinds[(h.cpu_mips, h.memory_mb, h.bandwidth_mbps)] for h in inventory.hosts],
            dtype=np.int64,
        ),
        vm_type=np.array([vm_kinds[v.size] for v in inventory.vms], dtype=np.int64),
        sites=[Site(s, "public" if s == "public" else "private") for s in site_names],
        host_site=np.array([site_names.index(h.site) for h in inventory.hosts], dtype=np.int64),
        links=[
            Link(a, b, settings.latency_ms, settings.link_mbps, settings.cost_per_gb)
            for a, b in itertools.combinations(site_names, 2)
        ],
    )


class FleetLoop:
    """The control loop over ``backend``'s hosts and the VMs running when it is built.

    ``policy`` sizes the VMs (the default policy without one), its groups matched on each
    VM's name, and on its tags and application where ``tags`` (an inventory, by VM name)
    gives them; ``log_path`` keeps the orchestrator's durable action log. ``cluster`` is the
    hardware where it is known (the simulator's own data centre, its rows in the
    inventory's order); without it the cluster is built from the inventory
    (:func:`cluster_of`), with the settings' assumptions.
    """

    def __init__(
        self,
        backend: Backend,
        settings: FleetSettings,
        log_path: str | Path,
        policy: Policy | None = None,
        cluster: Cluster | None = None,
        tags: Mapping[str, VmInfo] | None = None,
    ) -> None:
        self.backend, self.settings = backend, settings
        inventory = backend.inventory()
        if cluster is not None and (
            cluster.n_hosts != len(inventory.hosts) or cluster.n_vms != len(inventory.vms)
        ):
            raise ForethoughtError(
                f"the cluster has {cluster.n_hosts} hosts and {cluster.n_vms} VMs; the backend "
                f"reports {len(inventory.hosts)} and {len(inventory.vms)}"
            )
        self.assumed = cluster is None  # power curves and links: assumed, not known
        self.cluster = cluster_of(inventory, settings) if cluster is None else cluster
        self.host_ids = [h.id for h in inventory.hosts]
        self.vm_ids = [v.id for v in inventory.vms]
        self.policy = policy or parse_policy(DEFAULT_POLICY_YAML, "default policy")
        infos, absent = vm_infos(self.vm_ids, dict(tags) if tags is not None else None)
        groups = self.policy.assign(infos, require_all_groups=False)
        self.groups = {vm: g.name for vm, g in zip(self.vm_ids, groups, strict=True)}
        #: What the run should say before it starts: nothing here stops it.
        self.notes: list[str] = []
        idle = self.policy.idle_groups(infos) if policy is not None else []
        if idle:
            self.notes.append(f"group(s) {', '.join(idle)} of the policy take no VM")
        if absent:
            shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
            self.notes.append(
                f"{len(absent):,} VM(s) of the inventory are not among this run's: {shown}"
            )
        step_seconds = round(settings.interval)
        sized = settings.sized
        sizing = {r: Settings.from_policy(self.policy, groups, r, step_seconds) for r in sized}
        _check_forecast_memory(sizing, len(self.vm_ids), settings.interval)
        allocators: dict[Resource, Recommender] = {
            r: PredictiveRecommender(s, r) for r, s in sizing.items()
        }
        network = NetworkMap(self.cluster, host_ids=self.host_ids)
        # A run that acts holds the log alone; a dry run only reads it (it settles nothing,
        # so it neither disturbs a run that acts on the same log nor takes over its moves).
        self.log = ActionLog.open(
            log_path, read_only=settings.dry_run, exclusive=not settings.dry_run
        )
        self.notes += self.log.warnings
        if not settings.dry_run:
            self._refuse_foreign(self.log)
        still_open = len(self.log.open_actions())
        if still_open and settings.dry_run:
            self.notes.append(
                f"the action log holds {still_open} unsettled migration(s) of another run "
                "(stopped, or acting now); a dry run leaves them be"
            )
        elif still_open:
            self.notes.append(
                f"taking over {still_open} unsettled migration(s) from the action log"
            )
        self.orchestrator = Orchestrator(backend, network, self.log, settings.limits)
        planner = PredictivePlanner(
            PlannerSettings(max_per_host=settings.limits.per_host), network=network
        )
        self.loop = MigrationLoop(
            backend,
            self.cluster,
            planner,
            self.orchestrator,
            interval=settings.interval,
            vm_ids=self.vm_ids,
            allocators=allocators,
            dry_run=settings.dry_run,
            # Without migrations the planner still runs, so the moves it would make (VMs
            # outgrowing their hosts among them) are reported, but none is started.
            propose=settings.migrate,
            # A plan is what the run will start: no drain beyond the free slots.
            within_slots=True,
            # Each VM starts from what it holds now, not from the most it could be given.
            initial={
                Resource.CPU: np.array([v.cpu_mips for v in inventory.vms]),
                Resource.MEMORY: np.array([v.memory_mb for v in inventory.vms]),
            },
        )
        self.last_step_seconds = 0.0  # how long the last step took (wall clock)

    def _refuse_foreign(self, log: ActionLog) -> None:
        """Refuse to take over migrations between hosts this fleet does not have: the log
        is another fleet's, or a simulation's, and settling them here would make up how
        they ended."""
        hosts = set(self.host_ids)
        foreign = [r for r in log.open_actions() if not {r.source, r.target} <= hosts]
        if not foreign:
            return
        log.close()
        shown = ", ".join(f"{r.vm} {r.source} -> {r.target}" for r in foreign[:3])
        raise ForethoughtError(
            f"{log.path} holds {len(foreign)} unsettled migration(s) between hosts this run "
            f"does not have ({shown}{' ...' if len(foreign) > 3 else ''}): it is another "
            "fleet's or a simulation's log; give this run its own --log"
        )

    def drain(self, advance: Callable[[float], object], rounds: int = 1_000) -> list[Outcome]:
        """Run the migrations still under way to their end (a simulator's clock can be
        moved on at will): ``advance`` moves the backend's clock by one interval, and the
        orchestrator settles what ended, until nothing is in flight. Returns the outcomes."""
        settled: list[Outcome] = []
        for _ in range(rounds):
            if not self.orchestrator.in_flight:
                break
            advance(self.settings.interval)
            settled += self.orchestrator.poll(self.backend.now())
        return settled

    def describe(self) -> dict[str, object]:
        """The run as JSON: backend, mode, what it sizes, its VMs and hosts, assumptions."""
        s, cluster = self.settings, self.cluster
        assert cluster.host_site is not None
        return {
            "backend": self.backend.name,
            "simulated": self.backend.simulated,
            "dry_run": s.dry_run,
            "migrate": s.migrate,
            "interval_seconds": s.interval,
            "sized": [r.value for r in s.sized],
            "policy": self.policy.source,
            "vms": [
                {"vm": vm, "group": self.groups[vm], "cpu_mips": mips, "memory_mb": ram}
                for vm, mips, ram in zip(
                    self.vm_ids,
                    cluster.vm_column("mips").tolist(),
                    cluster.vm_column("ram_mb").tolist(),
                    strict=True,
                )
            ],
            "hosts": [
                {
                    "host": host,
                    "site": cluster.sites[site].name,
                    "cpu_mips": mips,
                    "memory_mb": ram,
                }
                for host, site, mips, ram in zip(
                    self.host_ids,
                    cluster.host_site.tolist(),
                    cluster.host_column("mips").tolist(),
                    cluster.host_column("ram_mb").tolist(),
                    strict=True,
                )
            ],
            "assumed": self.assumptions(),
        }

    def assumptions(self) -> dict[str, object]:
        """What the run assumes because its backend cannot report it (none on the
        simulator, whose hardware is known): the hosts' power curve and migration
        bandwidth, and, between sites, the links' bandwidth and latency."""
        if not self.assumed:
            return {}
        s = self.settings
        mbps = sorted(set(self.cluster.host_column("bandwidth_mbps").tolist()))
        out: dict[str, object] = {
            "host_power_model": s.power.name,
            "host_migration_mbps": mbps[0] if len(mbps) == 1 else mbps,
        }
        if self.cluster.links:
            out |= {"link_mbps": s.link_mbps, "latency_ms": s.latency_ms}
        return out

    def run(
        self,
        steps: int | None,
        on_step: Callable[[int, LoopStep], None],
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        on_failure: Callable[[int, BackendError, int], None] | None = None,
        max_failures: int = 3,
        stop: Callable[[], bool] | None = None,
        finish: Callable[[], None] | None = None,
    ) -> int:
        """Step every ``interval`` seconds until ``steps`` steps are done (forever with
        None; a step the backend fails is tried again at the next interval); returns
        the steps done. A step that overruns its interval starts the next at once.
        ``clock`` and ``sleep`` default to ``time.monotonic`` and ``time.sleep``.

        A step the backend fails (a hypervisor out of reach for a moment) is reported to
        ``on_failure`` with how many have failed in a row, and the next step tries
        again; ``max_failures`` in a row (or any, without ``on_failure``) raise. A failed
        step observes nothing, so the forecasts see one interval fewer. ``stop`` is asked
        before each step: once it says True the run ends there, between steps. ``finish``
        is called once the steps end (all done, or stopped), before the log is let go.
        """
        if max_failures < 1:
            raise ForethoughtError(f"max_failures must be at least 1; got {max_failures}")
        clock = clock or time.monotonic
        sleep = sleep or time.sleep
        done = failures = 0
        start = clock()
        try:
            for k in itertools.count():  # k counts attempts; a failed one is not a step
                if steps is not None and done >= steps:
                    break
                if k:
                    sleep(max(0.0, start + k * self.settings.interval - clock()))
                if stop is not None and stop():
                    break
                began = time.perf_counter()  # the work's own time, whatever ``clock`` is
                try:
                    # Stamped by the backend's clock: the orchestrator sets it beside the
                    # expected ends of the backend's migrations.
                    step = self.loop.step(self.backend.now())
                except BackendError as failed:
                    failures += 1
                    if on_failure is None:
                        raise
                    if failures >= max_failures:
                        raise BackendError(
                            f"{failures} steps in a row failed; the last: {failed}"
                        ) from failed
                    on_failure(k, failed, failures)
                    continue
                failures = 0
                self.last_step_seconds = time.perf_counter() - began
                on_step(k, step)
                done += 1
            if finish is not None:  # the run ended as asked: before the log is let go
                finish()
        finally:
            self.log.close()
        return done

    def vms(self) -> list[dict[str, object]]:
        """Every managed VM as the last step left it: group, host, CPU demand (MIPS) and
        its allocation of each sized resource (MIPS, MB, KB/s; None before the first)."""
        loop = self.loop
        hosts = [loop.network.host_id(h) if h >= 0 else None for h in loop.last_placed.tolist()]
        allocations = {
            r.value: [a if np.isfinite(a) else None for a in loop.allocation(r).tolist()]
            for r in self.settings.sized
        }
        return [
            {
                "vm": vm,
                "group": self.groups[vm],
                "host": hosts[i],
                "cpu_demand_mips": demand if np.isfinite(demand) else None,  # not measured
                "allocation": {r: values[i] for r, values in allocations.items()},
            }
            for i, (vm, demand) in enumerate(
                zip(self.vm_ids, loop.last_demand.tolist(), strict=True)
            )
        ]

    def record(self, k: int, step: LoopStep) -> dict[str, object]:
        """One step as JSON: what was sized, planned, proposed and settled."""
        host = self.loop.network.host_id
        return {
            "step": k,
            "time": step.time,
            "demand_mips": step.demand_mips,
            "active_hosts": step.active_hosts,
            "resizes": [
                {
                    "vm": r.action.vm,
                    "resource": r.action.resource.value,
                    "amount": r.action.amount,
                    "reason": r.action.reason,
                    "applied": r.applied,
                    "live": r.live,
                    "message": r.message,
                }
                for r in step.resizes
            ],
            "planned": [
                {
                    "vm": self.vm_ids[m.vm],
                    "source": host(m.source),
                    "target": host(m.target),
                    "kind": m.kind,
                    "benefit_wh": m.benefit_wh,
                    "source_pressure": m.source_pressure,
                }
                for m in step.moves
            ],
            "proposed": [
                {
                    "action": d.action,
                    "vm": d.proposal.vm,
                    "target": d.proposal.target,
                    "accepted": d.accepted,
                    "why": d.reason,
                }
                for d in step.decisions
            ],
            "settled": [
                {
                    "action": o.action,
                    "vm": o.proposal.vm,
                    "state": o.state.value,
                    "message": o.message,
                }
                for o in step.outcomes
            ],
            "unmanaged": step.unmanaged,
            "anomalies": [
                {
                    "vm": self.vm_ids[a.vm],
                    "resource": a.resource,
                    "action": str(a.action),
                    "kind": "cross-resource" if isinstance(a.evidence, CrossAnomaly) else "series",
                    "evidence": asdict(a.evidence),
                }
                for a in step.anomalies
            ],
        }


#: The most the sizing forecasts may keep: they hold (look-ahead steps)^2 numbers per VM
#: and resource, so a short interval under a long horizon grows them fast.
MAX_FORECAST_BYTES = 2**30
#: Bytes per number of the issued paths the engine keeps (float32).
PATH_BYTES = 4


def _check_forecast_memory(sizing: Mapping[Resource, Settings], vms: int, interval: float) -> None:
    """Refuse, before the run, an interval so short against the policy's horizons that
    the forecasts would not fit (or a step would outlast its interval)."""
    steps = {r: int(s.lookahead.max()) for r, s in sizing.items()}
    need = sum(PATH_BYTES * h * h * vms for h in steps.values())
    if need <= MAX_FORECAST_BYTES:
        return
    ahead = max(steps.values())
    shortest = math.ceil(interval * math.sqrt(need / MAX_FORECAST_BYTES))
    raise ForethoughtError(
        f"sizing {vms:,} VMs every {interval:g} s looks up to {ahead:,} steps ahead (the "
        f"policy's horizon_minutes of {ahead * interval / 60:g} min), and the forecasts would "
        f"keep {need / 2**30:,.1f} GiB: give the policy a shorter horizon_minutes, size "
        f"fewer VMs, or step every {shortest} s or more (--interval)"
    )


def simulated_fleet(
    utilisation: FloatArray,
    n_hosts: int,
    *,
    interval: float,
    io: dict[Resource, FloatArray] | None = None,
    names: Sequence[str] | None = None,
    start: float = 0.0,
) -> SimulatedBackend:
    """A trace's VMs (``utilisation``: (vms, samples) in [0, 1]) in CloudSim's data centre
    of ``n_hosts`` hosts, placed first fit by memory and full CPU, as the simulator behind
    ``forethought run --simulate``; ``names`` are the VMs' (the trace's VM ids), and
    ``start`` the time of the first sample."""
    cluster = cloudsim_planetlab(utilisation.shape[0], n_hosts)
    ram, mips = cluster.vm_column("ram_mb"), cluster.vm_column("mips")
    free_ram = cluster.host_column("ram_mb").copy()
    free_cpu = cluster.host_column("mips").copy()
    placement = np.empty(cluster.n_vms, dtype=np.int64)
    for v in range(cluster.n_vms):  # once, before the run: not a per-step loop
        fits = np.flatnonzero((free_ram >= ram[v]) & (free_cpu >= mips[v]))
        if not fits.size:
            who = names[v] if names is not None else f"VM number {v} from 0"
            raise ForethoughtError(
                f"{cluster.n_vms:,} VMs do not fit on {n_hosts:,} hosts ({who} fits on none): "
                "give more hosts"
            )
        h = int(fits[0])
        placement[v] = h
        free_ram[h] -= ram[v]
        free_cpu[h] -= mips[v]
    return SimulatedBackend(
        cluster, utilisation, placement, interval=interval, io=io, names=names, start=start
    )
