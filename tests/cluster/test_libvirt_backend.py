"""The libvirt backend against libvirt's own test hypervisor (``test:///...``).

libvirt's test driver is a real libvirt connection with an in-memory hypervisor: the same
API calls, checks and errors as a KVM host, without virtual machines. It runs vCPU
hot-plug, ballooning and statistics; it cannot migrate, which exercises the failure path.
Skipped where libvirt-python is not installed (``pip install 'forethought[libvirt]'``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from forethought.cluster.backend import Migrate, MigrationState, Resize
from forethought.cluster.model import G5, Cluster
from forethought.cluster.simulated import BackendError
from forethought.core.resources import Resource
from forethought.migration.log import ActionLog, ActionState
from forethought.migration.network import NetworkMap
from forethought.migration.orchestrator import Orchestrator, Proposal

pytest.importorskip("libvirt", reason="libvirt-python is not installed (forethought[libvirt])")

from forethought.cluster.libvirt_backend import LibvirtBackend

NODE = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
       <active>4</active><mhz>2660</mhz><model>x86_64</model></cpu>
  <memory>8388608</memory>
  {domains}
</node>"""
DOMAIN = """<domain type="test"><name>{name}</name><memory>2097152</memory>
  <currentMemory>1048576</currentMemory><vcpu current="1">2</vcpu>
  <os><type>hvm</type></os></domain>"""


def node(tmp_path: Path, name: str, vms: list[str]) -> str:
    path = tmp_path / f"{name}.xml"
    path.write_text(NODE.format(domains="".join(DOMAIN.format(name=v) for v in vms)))
    return f"test://{path}"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LibvirtBackend]:
    uris = [node(tmp_path, "a", ["web-1", "db-1"]), node(tmp_path, "b", [])]
    ticks = iter(np.arange(0.0, 1e6, 60.0))
    b = LibvirtBackend(uris, sites={uris[1]: "public"}, clock=lambda: float(next(ticks)))
    yield b
    b.close()


def test_inventory_reports_hosts_and_running_domains(backend: LibvirtBackend) -> None:
    assert backend.simulated is False
    inv = backend.inventory()
    assert [h.cpu_mips for h in inv.hosts] == [4 * 2660.0, 4 * 2660.0]
    assert [h.site for h in inv.hosts] == ["private", "public"]
    assert len({h.id for h in inv.hosts}) == 2
    vms = {v.id: v for v in inv.vms}
    assert set(vms) == {"web-1", "db-1"}
    assert vms["web-1"].cpu_mips == 2660.0  # one vCPU running
    assert vms["web-1"].memory_mb == 1024.0
    assert vms["web-1"].host == inv.hosts[0].id


def test_telemetry_reads_cpu_between_calls_and_memory(backend: LibvirtBackend) -> None:
    first = backend.telemetry()
    assert first.resources == (Resource.CPU, Resource.MEMORY)
    assert first.demand.shape == (2, 2)
    assert (first.demand[:, 0] == 0.0).all()  # no interval yet
    second = backend.telemetry()
    assert (second.demand[:, 0] >= 0.0).all()
    assert (second.demand[:, 0] <= 2660.0 + 1e-6).all()  # at most its vCPU's MHz
    assert (second.demand[:, 1] > 0).all()
    np.testing.assert_array_equal(second.granted, second.demand)


def test_resize_is_live_where_possible_and_says_when_it_is_not(
    backend: LibvirtBackend,
) -> None:
    cpu = backend.resize(Resize("web-1", Resource.CPU, 2 * 2660.0))
    assert (cpu.applied, cpu.live) == (True, True)
    assert "hot-plugged" in cpu.message
    assert {v.id: v.cpu_mips for v in backend.inventory().vms}["web-1"] == 2 * 2660.0
    ballooned = backend.resize(Resize("web-1", Resource.MEMORY, 1536.0))
    assert (ballooned.applied, ballooned.live) == (True, True)
    assert {v.id: v.memory_mb for v in backend.inventory().vms}["web-1"] == 1536.0
    # Above the domain's maximum memory: written to the configuration, not restarted.
    beyond = backend.resize(Resize("web-1", Resource.MEMORY, 4096.0))
    assert (beyond.applied, beyond.live) == (True, False)
    assert "next restart" in beyond.message
    assert {v.id: v.memory_mb for v in backend.inventory().vms}["web-1"] == 1536.0
    # More vCPUs than the domain may ever have: refused live and in the configuration.
    refused = backend.resize(Resize("web-1", Resource.CPU, 8 * 2660.0))
    assert (refused.applied, refused.live) == (False, False)
    assert "exceeds maximum" in refused.message
    disk = backend.resize(Resize("web-1", Resource.DISK_READ, 10.0))
    assert not disk.applied


def test_bad_requests_are_clear_errors(backend: LibvirtBackend, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unknown VM 'nope'"):
        backend.resize(Resize("nope", Resource.CPU, 100.0))
    with pytest.raises(BackendError, match="positive"):
        backend.resize(Resize("web-1", Resource.CPU, -1.0))
    with pytest.raises(BackendError, match="already runs"):
        backend.migrate(Migrate("web-1", backend.hosts[0].id))
    missing = f"test://{tmp_path / 'missing.xml'}"
    with pytest.raises(BackendError, match="cannot reach the hypervisor at test://"):
        LibvirtBackend([missing])


def test_a_refused_migration_fails_and_the_orchestrator_rolls_it_back(
    backend: LibvirtBackend, tmp_path: Path
) -> None:
    status = backend.migrate(Migrate("web-1", backend.hosts[1].id, bandwidth_mbps=400.0))
    assert status.state is MigrationState.RUNNING
    for _ in range(500):  # the worker thread returns soon: the test driver refuses
        status = backend.migration(status.id)
        if status.state is not MigrationState.RUNNING:
            break
        time.sleep(0.01)
    assert status.state is MigrationState.FAILED
    assert "libvirt" in status.message
    # End to end: the orchestrator starts a move, sees it fail, verifies the VM at home.
    hosts = [h.id for h in backend.hosts]
    cluster = Cluster([G5], [], np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64))
    network = NetworkMap(cluster, host_ids=hosts)
    orch = Orchestrator(backend, network, ActionLog.open(tmp_path / "actions.jsonl"))
    [decision] = orch.submit(
        [Proposal("db-1", hosts[0], hosts[1], benefit=5.0, pressure=0.9, ram_mb=1024.0)], 0.0
    )
    assert decision.accepted
    outcomes = []
    for t in range(500):
        outcomes = orch.poll(float(t))
        if outcomes:
            break
        time.sleep(0.01)
    assert [o.state for o in outcomes] == [ActionState.ROLLED_BACK]
    assert {v.id: v.host for v in backend.inventory().vms}["db-1"] == hosts[0]
