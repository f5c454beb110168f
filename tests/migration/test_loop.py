"""The control loop's sizing: host capacity, SLA classes, and VMs too big for their host."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forethought.allocation.manager import PredictiveRecommender, Settings
from forethought.allocation.policy import VmInfo, parse_policy
from forethought.cluster.model import CLOUDSIM_VM_TYPES, Cluster, HostType, VmType
from forethought.cluster.power import HP_ML110_G5
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.resources import Resource
from forethought.migration.log import ActionLog
from forethought.migration.loop import MigrationLoop
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


def test_a_short_host_serves_the_gold_class_first(tmp_path: Path) -> None:
    small = HostType("small", 2, 1000.0, 8192.0, 1000.0, HP_ML110_G5)  # 2,000 MIPS
    vm = VmType("one-core", 1000.0, 512.0, 100.0)
    loop, backend, _ = rig(tmp_path, [small], [vm, vm, vm], [0, 0, 0], u=0.9)
    reasons = []
    for k in range(6):
        if k:
            backend.advance(300.0)
        reasons += [r.action.reason for r in loop.step(k * 300.0).resizes]
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
    for k in range(4):
        if k:
            backend.advance(300.0)
        step = loop.step(k * 300.0)
        moved += [(m.vm, m.target, m.kind) for m in step.moves]
    assert (0, 1, "oversized") in moved  # to the only host that can hold it
    assert backend.host_of[0] == 1
    assert planner.stats.oversized >= 1
