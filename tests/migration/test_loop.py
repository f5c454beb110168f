"""The control loop's sizing: host capacity, SLA classes, and VMs too big for their host."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forethought.allocation.manager import PredictiveRecommender, Settings
from forethought.allocation.policy import VmInfo, parse_policy
from forethought.cluster.model import (
    CLOUDSIM_VM_TYPES,
    KBS_PER_MBPS,
    Cluster,
    HostType,
    VmType,
)
from forethought.cluster.power import HP_ML110_G5
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.resources import BANDWIDTH_FLOOR_KBS, Resource
from forethought.migration.log import ActionLog
from forethought.migration.loop import LoopStep, MigrationLoop
from forethought.migration.network import NetworkMap
from forethought.migration.orchestrator import Orchestrator
from forethought.migration.planner import PlannerSettings, PredictivePlanner

POLICY = """version: 1
sla_classes: [gold, bronze]
defaults:
  cpu: {quantile: 0.5, headroom: 0.0}
groups:
  - {name: gold, match: {name: "vm-0"}, sla_class: gold}
  - {name: rest, match: {name: "*"}, sla_class: bronze}
"""


def rig(
    tmp_path: Path, hosts: list[HostType], vms: list[VmType], placement: list[int], u: float
) -> tuple[MigrationLoop, SimulatedBackend, PredictivePlanner]:
    cluster = Cluster(
        host_types=hosts,
        vm_types=vms,
        host_type=np.arange(len(hosts), dtype=np.int64),
        vm_type=np.arange(len(vms), dtype=np.int64),
    )
    backend = SimulatedBackend(cluster, np.full((len(vms), 40), u), np.array(placement))
    policy = parse_policy(POLICY)
    groups = policy.assign([VmInfo(f"vm-{v}") for v in range(len(vms))])
    sizing = Settings.from_policy(policy, groups, Resource.CPU, 300)
    network = NetworkMap(cluster)
    planner = PredictivePlanner(PlannerSettings(horizon=3, draws=4), network=network)
    orch = Orchestrator(backend, network, ActionLog.open(tmp_path / "log.jsonl"))
    loop = MigrationLoop(
        backend,
        cluster,
        planner,
        orch,
        allocators={Resource.CPU: PredictiveRecommender(sizing, Resource.CPU)},
    )
    return loop, backend, planner


def drive(loop: MigrationLoop, backend: SimulatedBackend, steps: int) -> list[LoopStep]:
    """Run the loop ``steps`` five-minute steps, the backend's clock with it."""
    done = []
    for k in range(steps):
        if k:
            backend.advance(300.0)
        done.append(loop.step(k * 300.0))
    return done


def test_a_short_host_serves_the_gold_class_first(tmp_path: Path) -> None:
    small = HostType("small", 2, 1000.0, 8192.0, 1000.0, HP_ML110_G5)  # 2,000 MIPS
    vm = VmType("one-core", 1000.0, 512.0, 100.0)
    loop, backend, _ = rig(tmp_path, [small], [vm, vm, vm], [0, 0, 0], u=0.9)
    reasons = []
    for step in drive(loop, backend, 6):
        reasons += [r.action.reason for r in step.resizes]
    # Three VMs want 900 MIPS each on a 2,000-MIPS host: gold gets all it wants, bronze
    # shares what is left, and no host is granted more than it has.
    assert backend.cpu_alloc[0] >= 900.0 - 1e-6
    assert backend.cpu_alloc.sum() <= 2000.0 + 1e-6
    assert backend.cpu_alloc[1] == backend.cpu_alloc[2] < 900.0
    assert "host short: SLA class" in reasons


def test_a_vm_too_big_for_its_host_becomes_a_migration(tmp_path: Path) -> None:
    small = HostType("small", 1, 1000.0, 8192.0, 1000.0, HP_ML110_G5)
    big = HostType("big", 2, 2500.0, 8192.0, 1000.0, HP_ML110_G5)  # cores as wide as the VM
    wide = VmType("wide", 2500.0, 512.0, 100.0)
    loop, backend, planner = rig(
        tmp_path, [small, big], [wide, CLOUDSIM_VM_TYPES[3]], [0, 1], u=0.9
    )
    moved = []
    for step in drive(loop, backend, 4):
        moved += [(m.vm, m.target, m.kind) for m in step.moves]
    assert (0, 1, "oversized") in moved  # to the only host that can hold it
    assert backend.host_of[0] == 1
    assert planner.stats.oversized >= 1


IO_POLICY = """version: 1
sla_classes: [gold, bronze]
defaults:
  disk_read: {quantile: 0.5, headroom: 0.0}
  disk_write: {quantile: 0.5, headroom: 0.0}
  net_rx: {quantile: 0.5, headroom: 0.0}
groups:
  - {name: gold, match: {name: "vm-0"}, sla_class: gold}
  - {name: rest, match: {name: "*"}, sla_class: bronze}
"""


def io_rig(
    tmp_path: Path, hosts: list[HostType], placement: list[int], io: dict[Resource, float]
) -> tuple[MigrationLoop, SimulatedBackend, PredictivePlanner]:
    n = len(placement)
    cluster = Cluster(
        host_types=hosts,
        vm_types=[CLOUDSIM_VM_TYPES[3]],
        host_type=np.arange(len(hosts), dtype=np.int64),
        vm_type=np.zeros(n, dtype=np.int64),
    )
    series = {r: np.full((n, 40), kbs) for r, kbs in io.items()}
    backend = SimulatedBackend(cluster, np.full((n, 40), 0.1), np.array(placement), io=series)
    policy = parse_policy(IO_POLICY)
    groups = policy.assign([VmInfo(f"vm-{v}") for v in range(n)])
    allocators = {
        r: PredictiveRecommender(Settings.from_policy(policy, groups, r, 300), r) for r in io
    }
    network = NetworkMap(cluster)
    planner = PredictivePlanner(PlannerSettings(horizon=3, draws=4), network=network)
    orch = Orchestrator(backend, network, ActionLog.open(tmp_path / "log.jsonl"))
    return MigrationLoop(backend, cluster, planner, orch, allocators=allocators), backend, planner


def test_a_short_disk_is_shared_by_reads_and_writes_gold_first(tmp_path: Path) -> None:
    # Three VMs each read 4,000 and write 2,000 KB/s from one host's 12,000 KB/s disks.
    host = HostType("io-bound", 4, 2500.0, 8192.0, 1000.0, HP_ML110_G5, disk_kbs=12_000.0)
    io = {Resource.DISK_READ: 4_000.0, Resource.DISK_WRITE: 2_000.0}
    loop, backend, _ = io_rig(tmp_path, [host], [0, 0, 0], io)
    reasons = []
    for step in drive(loop, backend, 8):
        reasons += [r.action.reason for r in step.resizes]
    reads, writes = backend.io_limit[Resource.DISK_READ], backend.io_limit[Resource.DISK_WRITE]
    # Gold is served in full; bronze shares the 6,000 KB/s left in proportion to its asks.
    assert reads[0] == pytest.approx(4_000.0, rel=1e-6)
    assert writes[0] == pytest.approx(2_000.0, rel=1e-6)
    np.testing.assert_allclose(reads[1:], 2_000.0, rtol=1e-6)
    # Half of bronze's 2,000 KB/s writes would be 1,000: the floor keeps its I/O going.
    np.testing.assert_allclose(writes[1:], BANDWIDTH_FLOOR_KBS)
    assert "host short: SLA class" in reasons


def test_network_limits_fit_the_link_each_way_and_an_oversized_vm_moves(
    tmp_path: Path,
) -> None:
    # An 80 Mbit/s link carries 9,765.6 KB/s each way; a 1 Gbit/s one 122,070.
    slow = HostType("slow-link", 4, 2500.0, 8192.0, 80.0, HP_ML110_G5)
    fast = HostType("fast-link", 4, 2500.0, 8192.0, 1000.0, HP_ML110_G5)
    loop, backend, planner = io_rig(tmp_path, [slow, fast], [0, 0, 1], {Resource.NET_RX: 12_000.0})
    moved = []
    for step in drive(loop, backend, 6):
        moved += [(m.vm, m.target, m.kind) for m in step.moves]
    limits = backend.io_limit[Resource.NET_RX]
    assert limits[2] == pytest.approx(12_000.0, rel=1e-6)  # the fast host has room
    # Each VM on the slow host asks more than its whole link: a migration candidate.
    assert any(kind == "oversized" and target == 1 for _, target, kind in moved)
    assert planner.stats.oversized >= 1
    on_slow = backend.host_of == 0
    assert limits[on_slow].sum() <= 80.0 * KBS_PER_MBPS + 1e-6
