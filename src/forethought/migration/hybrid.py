"""The control loop on a simulated hybrid cluster: two sites, and injected failures.

The private site's hosts are older (HP ML110 G4, 4 GB), the public site's newer and
larger (G5 with 8 GB, so more VMs fit on each), and the link between the sites is slow and
priced per GB. Most VMs start on the private site, some on the public one. A planner that
ranks targets by energy alone is drawn to the roomier public hosts; one that knows the
network weighs each move's transfer time and price and crosses only when it pays. The same run
can inject failures every few steps (aborted migrations, migrations that overrun their
expected time, a target that fills up, the inter-site link going down) to show each one
rolled back by the orchestrator with no VM lost.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from forethought.allocation.base import Recommender
from forethought.allocation.manager import PredictiveRecommender, Settings
from forethought.allocation.policy import DEFAULT_POLICY_YAML, Policy, VmInfo, parse_policy
from forethought.cluster.model import (
    CLOUDSIM_VM_TYPES,
    G4,
    G5,
    Cluster,
    Link,
    Site,
)
from forethought.cluster.power import power_of
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.forecast.base import FloatArray
from forethought.migration.log import ActionLog, ActionState
from forethought.migration.loop import MigrationLoop
from forethought.migration.network import NetworkMap
from forethought.migration.orchestrator import Limits, Orchestrator, Outcome
from forethought.migration.planner import PlannerSettings, PredictivePlanner

FAILURE_KINDS = ("abort", "overrun", "target-full", "link-down")


@dataclass(frozen=True)
class HybridSetup:
    """The two sites and the link between them."""

    private_hosts: int = 50
    public_hosts: int = 50
    link_mbps: float = 100.0
    link_latency_ms: float = 30.0
    cost_per_gb: float = 0.09
    public_share: float = 0.3  # share of the VMs (the last ones) that start on the public site
    failure_every: int = 0  # steps between injected failures; 0 injects none
    #: What each host's disks deliver, reads and writes together (KB/s); inf: not modelled.
    host_disk_kbs: float = math.inf

    def __post_init__(self) -> None:
        if self.private_hosts < 1 or self.public_hosts < 1:
            raise ForethoughtError("each site needs at least one host")
        if not self.link_mbps > 0 or self.link_latency_ms < 0 or self.cost_per_gb < 0:
            raise ForethoughtError("the link needs bandwidth > 0, latency and cost >= 0")
        if not 0.0 <= self.public_share < 1.0:
            raise ForethoughtError("public_share must be in [0, 1)")
        if self.failure_every < 0:
            raise ForethoughtError("failure_every must be >= 0")
        if not self.host_disk_kbs > 0:
            raise ForethoughtError("host_disk_kbs must be positive (inf: not modelled)")


def two_site_cluster(n_vms: int, setup: HybridSetup) -> Cluster:
    """Private G4 hosts, then public G5 hosts with 8 GB; CloudSim's four VM types by quarter."""
    if n_vms < 1:
        raise ForethoughtError("the trace has no VM")
    hosts = setup.private_hosts + setup.public_hosts
    site = (np.arange(hosts) >= setup.private_hosts).astype(np.int64)
    quarter = -(-n_vms // 4)
    return Cluster(
        host_types=[
            replace(G4, disk_kbs=setup.host_disk_kbs),
            replace(G5, name="public G5, 8 GB", ram_mb=8192.0, disk_kbs=setup.host_disk_kbs),
        ],
        vm_types=list(CLOUDSIM_VM_TYPES),
        host_type=site.copy(),
        vm_type=np.arange(n_vms, dtype=np.int64) // quarter,
        sites=[Site("private"), Site("public", "public")],
        host_site=site,
        links=[
            Link(
                "private",
                "public",
                latency_ms=setup.link_latency_ms,
                bandwidth_mbps=setup.link_mbps,
                cost_per_gb=setup.cost_per_gb,
            )
        ],
    )


def initial_placement(cluster: Cluster, setup: HybridSetup) -> np.ndarray:
    """First fit by memory and full CPU: the first VMs on the private site, the last
    ``public_share`` of them on the public one."""
    ram, mips = cluster.vm_column("ram_mb"), cluster.vm_column("mips")
    free_ram = cluster.host_column("ram_mb").copy()
    free_cpu = cluster.host_column("mips").copy()
    first_public = cluster.n_vms - round(setup.public_share * cluster.n_vms)
    placement = np.empty(cluster.n_vms, dtype=np.int64)
    for v in range(cluster.n_vms):
        site = (
            slice(0, setup.private_hosts) if v < first_public else slice(setup.private_hosts, None)
        )
        fits = np.flatnonzero((free_ram[site] >= ram[v]) & (free_cpu[site] >= mips[v]))
        if not fits.size:
            raise ForethoughtError(
                f"VM number {v} (from 0, in the trace's order) fits on no host of its site: "
                "give the site more hosts"
            )
        h = int(fits[0]) + (site.start or 0)
        placement[v] = h
        free_ram[h] -= ram[v]
        free_cpu[h] -= mips[v]
    return placement


@dataclass
class HybridResult:
    """What one run did; ``to_dict`` is its JSON."""

    ranking: str  # "network-aware" or "network-blind"
    steps: int
    vms: int
    proposed: int = 0
    started: int = 0
    completed: int = 0
    cross_site_completed: int = 0
    rejected: int = 0
    rolled_back: int = 0
    failed: int = 0
    still_running: int = 0
    unmet_share: float = 0.0  # demand the hosts could not serve (overload, CPU caps)
    #: Also counting the 10 % slowdown of each VM while it migrates (as CloudSim models
    #: live migration): the SLA cost of moving, which the snapshot telemetry cannot see.
    unmet_share_with_migration: float = 0.0
    energy_kwh: float = 0.0
    mean_active_hosts: float = 0.0
    migration_seconds: float = 0.0  # time VMs spent in migration (degraded), all moves
    cross_site_gb: float = 0.0
    transfer_cost: float = 0.0
    vms_lost: int = 0
    resizes_live: int = 0  # allocation changes applied live (with --allocate)
    resizes_restart: int = 0  # written to the configuration, waiting for a restart
    resizes_refused: int = 0
    #: Disk and network demand above the VMs' throttles, over all such demand (with
    #: --allocate on a trace that has bandwidths; 0 otherwise).
    io_unmet_share: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)
    #: Migrations an injected failure hit, and whether every one of them was rolled back
    #: (vacuously true when none was hit).
    failures_hit: int = 0
    failures_rolled_back: bool = True
    #: Per step: hours, active hosts, cumulative migrations started, cumulative ones
    #: started across sites, cumulative rollbacks, unmet share, cumulative energy (kWh).
    timeline: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self, timeline: bool = False) -> dict[str, object]:
        out = asdict(self)
        if not timeline:
            out.pop("timeline")
        return out


def run_hybrid(
    utilisation: FloatArray,
    setup: HybridSetup,
    *,
    network_aware: bool,
    log_path: str | Path,
    steps: int | None = None,
    interval: float = 300.0,
    seed: int = 0,
    allocate: bool = False,
    io: Mapping[Resource, FloatArray] | None = None,
    policy: Policy | None = None,
    vms: Sequence[VmInfo] | None = None,
) -> HybridResult:
    """Run the control loop over ``utilisation`` (vms, samples in [0, 1]) for ``steps``.

    ``io`` adds disk and network bandwidth series (KB/s, same shape); with ``allocate``
    the loop throttles them too, under ``policy`` (the default policy without one), its
    groups matched on ``vms`` (the trace's names, tags and applications; ``vm-N`` without).
    """
    u = np.asarray(utilisation, dtype=np.float64)
    if u.ndim != 2 or not np.isfinite(u).all() or (u < 0).any() or (u > 1).any():
        raise ForethoughtError("utilisation must be a finite (vms, samples) array in [0, 1]")
    steps = u.shape[1] if steps is None else min(steps, u.shape[1])
    cluster = two_site_cluster(u.shape[0], setup)
    backend = SimulatedBackend(
        cluster, u, initial_placement(cluster, setup), interval=interval, io=io
    )
    network = NetworkMap(cluster)
    limits = Limits(per_host=2, per_link=4, total=16)
    settings = PlannerSettings(max_per_host=limits.per_host)
    planner = PredictivePlanner(settings, network=network if network_aware else None)
    log = ActionLog.open(log_path)
    orchestrator = Orchestrator(backend, network, log, limits)
    allocators: dict[Resource, Recommender] = {}
    if allocate:  # forethought's manager, sizing each VM's CPU
        policy = policy or parse_policy(DEFAULT_POLICY_YAML, "default policy")
        names = list(vms) if vms is not None else [VmInfo(f"vm-{v}") for v in range(cluster.n_vms)]
        if len(names) != cluster.n_vms:
            raise ForethoughtError(f"{len(names)} VM descriptions for {cluster.n_vms} VMs")
        groups = policy.assign(names, require_all_groups=False)
        for resource in (Resource.CPU, *backend.io):  # and each bandwidth the trace has
            sizing = Settings.from_policy(policy, groups, resource, int(interval))
            allocators[resource] = PredictiveRecommender(sizing, resource)
    loop = MigrationLoop(
        backend, cluster, planner, orchestrator, interval=interval, allocators=allocators
    )
    result = HybridResult("network-aware" if network_aware else "network-blind", steps, u.shape[0])
    rng = np.random.default_rng(seed)
    kinds = itertools.cycle(FAILURE_KINDS)
    capacity = cluster.host_column("mips")
    table, kind = cluster.power_table, cluster.host_type
    demand = granted = 0.0
    io_demand = io_granted = 0.0  # KB, summed over the bandwidths and VMs
    slowed = 0.0  # MIPS-seconds lost to the slowdown of migrating VMs
    hosts_sum = 0
    link_down_until = -1
    full_until: dict[int, int] = {}
    site = cluster.host_site
    assert site is not None
    private = np.arange(setup.private_hosts)
    public = np.arange(setup.private_hosts, cluster.n_hosts)
    for k in range(steps):
        now = k * interval
        if k:
            backend.advance(interval)
        # Undo injections whose time is up, then inject the next one.
        if k == link_down_until:
            backend.cut_links.clear()
            network.mark_up("private", "public")
        for h, until in list(full_until.items()):
            if k >= until:
                backend.full_hosts.discard(h)
                del full_until[h]
        if setup.failure_every and k and k % setup.failure_every == 0:
            what = next(kinds)
            result.injected[what] = result.injected.get(what, 0) + 1
            if what == "abort":
                backend.fail_next_migrations(2)
            elif what == "overrun":
                backend.slow_next_migrations(2, 4.0)
            elif what == "target-full":
                busy = np.unique(backend.host_of)
                for h in rng.choice(busy, size=min(5, busy.size), replace=False).tolist():
                    backend.full_hosts.add(int(h))
                    full_until[int(h)] = k + 2
            else:  # the link fails under the migrations crossing it; the map learns later
                backend.cut_links.update(
                    (int(a), int(b)) for a, b in itertools.product(private, public)
                )
                link_down_until = k + 2
        # Disk and network as served this step, under the throttles decided before it (the
        # loop's own reading; after its step the throttles already know this demand).
        before_step = backend.telemetry()
        io_demand += float(before_step.demand[:, 1:].sum())
        io_granted += float(before_step.granted[:, 1:].sum())
        report = loop.step(now)
        started = [d for d in report.decisions if d.accepted]
        crossing = sum(
            bool(site[network.index(d.proposal.source)] != site[network.index(d.proposal.target)])
            for d in started
        )
        rolled = sum(o.state is ActionState.ROLLED_BACK for o in report.outcomes)
        result.proposed += len(report.moves)
        result.started += len(started)
        result.rejected += sum(not d.accepted for d in report.decisions)
        demand += report.demand_mips
        granted += report.granted_mips
        hosts_sum += report.active_hosts
        result.migration_seconds += sum(o.actual_seconds or 0.0 for o in report.outcomes)
        slowed += _slowdown(report.outcomes, loop, backend)
        for r in report.resizes:
            if not r.applied:
                result.resizes_refused += 1
            elif r.live:
                result.resizes_live += 1
            else:
                result.resizes_restart += 1
        obs = backend.telemetry()
        load = np.bincount(backend.host_of, obs.granted[:, 0], cluster.n_hosts) / capacity
        on = np.bincount(backend.host_of, minlength=cluster.n_hosts) > 0
        watts = np.where(on, power_of(table, kind, np.clip(load, 0.0, 1.0)), 0.0)
        result.energy_kwh += float(watts.sum()) * interval / 3.6e6
        tl = result.timeline
        for key, value in (
            ("hours", now / 3600.0),
            ("active_hosts", float(report.active_hosts)),
            ("migrations_started", _last(tl, "migrations_started") + len(started)),
            ("cross_site_started", _last(tl, "cross_site_started") + crossing),
            ("rolled_back", _last(tl, "rolled_back") + rolled),
            (
                "unmet_share",
                1.0 - report.granted_mips / report.demand_mips if report.demand_mips > 0 else 0.0,
            ),
            ("energy_kwh", result.energy_kwh),
        ):
            tl.setdefault(key, []).append(float(value))
    # Let the last migrations settle, then read the outcome from the durable log.
    backend.advance(interval * 2)
    last = orchestrator.poll(steps * interval + interval * 2)
    for o in last:
        result.migration_seconds += o.actual_seconds or 0.0
    slowed += _slowdown(last, loop, backend)
    # No action at all (one VM that never needs a move): the log was never written.
    latest = ActionLog.read(log_path) if Path(log_path).exists() else []
    log.close()
    final: dict[str, tuple[ActionState, str, str]] = {}
    saw_failure: set[str] = set()
    for record in latest:
        final[record.action] = (record.state, record.source, record.target)
        if record.state in (ActionState.FAILED, ActionState.ABORTED):
            saw_failure.add(record.action)
    ram = dict(zip(loop.vm_ids, loop.vm_ram.tolist(), strict=True))
    vm_of = {record.action: record.vm for record in latest}
    for action, (state, source, target) in final.items():
        if state is ActionState.COMPLETED:
            result.completed += 1
            s, t = network.index(source), network.index(target)
            if site[s] != site[t]:
                result.cross_site_completed += 1
                gb = ram[vm_of[action]] / 1024.0
                result.cross_site_gb += gb
                result.transfer_cost += gb * setup.cost_per_gb
        elif state is ActionState.ROLLED_BACK:
            result.rolled_back += 1
        elif state is ActionState.FAILED:
            result.failed += 1
        elif state is ActionState.STARTED:
            result.still_running += 1
    result.failures_hit = len(saw_failure)
    result.failures_rolled_back = all(final[a][0] is ActionState.ROLLED_BACK for a in saw_failure)
    inventory = backend.inventory()
    known = {h.id for h in inventory.hosts}
    seen = [v.id for v in inventory.vms if v.host in known]
    result.vms_lost = u.shape[0] - len(set(seen))
    result.unmet_share = (demand - granted) / demand if demand > 0 else 0.0
    result.io_unmet_share = (io_demand - io_granted) / io_demand if io_demand > 0 else 0.0
    served = demand * interval  # MIPS-seconds demanded over the run
    result.unmet_share_with_migration = (
        ((demand - granted) * interval + slowed) / served if served > 0 else 0.0
    )
    result.mean_active_hosts = hosts_sum / max(steps, 1)
    return result


def _last(timeline: dict[str, list[float]], key: str) -> float:
    values = timeline.get(key)
    return values[-1] if values else 0.0


MIGRATION_SLOWDOWN = 0.1  # share of a migrating VM's CPU lost while it moves (CloudSim's)


def _slowdown(outcomes: list[Outcome], loop: MigrationLoop, backend: SimulatedBackend) -> float:
    """MIPS-seconds the given finished migrations cost their VMs: 10 % of the VM's demand
    for the time the migration ran (the demand is the backend's at the time it is read)."""
    if not outcomes:
        return 0.0
    demand = backend.demand()
    rows = {vm: i for i, vm in enumerate(loop.vm_ids)}
    return float(
        sum(
            MIGRATION_SLOWDOWN * demand[rows[o.proposal.vm]] * (o.actual_seconds or 0.0)
            for o in outcomes
        )
    )
