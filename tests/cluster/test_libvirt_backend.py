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

from forethought.cluster.backend import BackendError, Migrate, MigrationState, Resize
from forethought.cluster.model import G5, Cluster
from forethought.core.resources import Resource
from forethought.migration.log import ActionLog, ActionState
from forethought.migration.network import NetworkMap
from forethought.migration.orchestrator import Orchestrator, Proposal

pytest.importorskip("libvirt", reason="libvirt-python is not installed (forethought[libvirt])")

from forethought.cluster.libvirt_backend import RESOURCES, LibvirtBackend, devices

NODE = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
       <active>4</active><mhz>2660</mhz><model>x86_64</model></cpu>
  <memory>8388608</memory>
  {domains}
  <network><name>default</name><bridge name="virbr0"/><forward/>
    <ip address="192.168.122.1" netmask="255.255.255.0"/></network>
</node>"""
DOMAIN = """<domain type="test"><name>{name}</name><memory>2097152</memory>
  <currentMemory>1048576</currentMemory><vcpu current="1">2</vcpu>
  <os><type>hvm</type></os>{devices}</domain>"""
# A disk, a CD-ROM (never throttled) and an interface; "bare" VMs have no devices.
DEVICES = """<devices>
  <disk type="file" device="disk"><source file="/guest/{name}.img"/>
    <target dev="vda" bus="virtio"/></disk>
  <disk type="file" device="cdrom"><source file="/guest/tools.iso"/>
    <target dev="hdc" bus="ide"/></disk>
  <interface type="network"><source network="default"/><target dev="tap{name}"/></interface>
</devices>"""


def node(tmp_path: Path, name: str, vms: list[str]) -> str:
    path = tmp_path / f"{name}.xml"
    domains = "".join(
        DOMAIN.format(name=v, devices="" if v.startswith("bare") else DEVICES.format(name=v))
        for v in vms
    )
    path.write_text(NODE.format(domains=domains))
    return f"test://{path}"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LibvirtBackend]:
    uris = [node(tmp_path, "a", ["web-1", "bare-1"]), node(tmp_path, "b", [])]
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
    assert set(vms) == {"web-1", "bare-1"}
    assert vms["web-1"].cpu_mips == 2660.0  # one vCPU running
    assert vms["web-1"].memory_mb == 1024.0
    assert vms["web-1"].host == inv.hosts[0].id
    # What it could be given live: two vCPUs by hot-plug, 2 GiB by the balloon.
    assert (vms["web-1"].max_cpu_mips, vms["web-1"].max_memory_mb) == (2 * 2660.0, 2048.0)
    assert vms["web-1"].size == (2 * 2660.0, 2048.0)


def test_the_clock_is_the_backends(backend: LibvirtBackend) -> None:
    first = backend.now()
    assert backend.now() == first + 60.0  # the clock the tests gave it


def test_telemetry_reads_every_resource_between_calls(backend: LibvirtBackend) -> None:
    first = backend.telemetry()
    assert first.resources == RESOURCES
    assert first.resources[:2] == (Resource.CPU, Resource.MEMORY)
    assert first.demand.shape == (2, 6)
    # Rates have no interval yet: not measured (NaN), never a made-up zero.
    assert np.isnan(first.demand[:, [0, 2, 3, 4, 5]]).all()
    assert np.isfinite(first.demand[:, 1]).all()  # memory is a level: measured at once
    second = backend.telemetry()
    assert np.isfinite(second.demand).all()
    assert (second.demand >= 0.0).all()
    assert (second.demand[:, 0] <= 2660.0 + 1e-6).all()  # at most its vCPU's MHz
    assert (second.demand[:, 1] > 0).all()
    row = {vm: second.demand[i] for i, vm in enumerate(second.vm_ids)}
    assert (row["bare-1"][2:] == 0.0).all()  # no disk, no interface: no I/O
    np.testing.assert_array_equal(second.granted, second.demand)


def test_devices_are_disks_and_interfaces_never_cd_roms() -> None:
    xml = DOMAIN.format(name="x", devices=DEVICES.format(name="x"))
    assert devices(xml) == (["vda"], ["tapx"])
    assert devices(DOMAIN.format(name="y", devices="")) == ([], [])


def test_resize_is_live_where_possible_and_says_when_it_is_not(
    backend: LibvirtBackend,
) -> None:
    cpu = backend.resize(Resize("web-1", Resource.CPU, 2 * 2660.0))
    assert (cpu.applied, cpu.live) == (True, True)
    assert "hot-plugged" in cpu.message
    # The test hypervisor has no cgroup CPU bandwidth: whole vCPUs, and it says so.
    assert "no cgroup CPU cap on this hypervisor" in cpu.message
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


def test_disk_and_network_limits_are_set_live_on_every_device(
    backend: LibvirtBackend,
) -> None:
    read = backend.resize(Resize("web-1", Resource.DISK_READ, 10.0))  # KB/s
    write = backend.resize(Resize("web-1", Resource.DISK_WRITE, 2.5))
    rx = backend.resize(Resize("web-1", Resource.NET_RX, 300.0))
    tx = backend.resize(Resize("web-1", Resource.NET_TX, 120.4))
    for outcome in (read, write, rx, tx):
        assert (outcome.applied, outcome.live) == (True, True), outcome.message
    domain = backend._find("web-1")[1]
    tune = domain.blockIoTune("vda", 0)
    assert (tune["read_bytes_sec"], tune["write_bytes_sec"]) == (10 * 1024, 2560)
    shaping = domain.interfaceParameters("tapweb-1", 0)
    assert (shaping["inbound.average"], shaping["outbound.average"]) == (300, 120)
    assert "vda" in read.message
    assert "hdc" not in read.message  # the CD-ROM is not throttled
    # A domain without disks or interfaces: nothing to limit, and the outcome says so.
    none = backend.resize(Resize("bare-1", Resource.NET_TX, 100.0))
    assert (none.applied, none.live) == (False, False)
    assert "has no network interface" in none.message


class _CgroupDomain:
    """Stands in for a KVM domain's scheduler call, which the test hypervisor lacks."""

    def __init__(self) -> None:
        self.params: dict[str, int] = {}

    def setSchedulerParametersFlags(self, params: dict[str, int], flags: int) -> int:  # noqa: N802
        self.params = params
        return 0


@pytest.mark.parametrize(
    ("cpus", "vcpus", "quota", "words"),
    [
        (1.3, 2, 65_000, "capped at 65%"),
        (2.0, 2, -1, "no CPU cap"),
        (0.001, 1, 1000, "quota 1000/100000"),  # the kernel accepts no quota under 1 ms
    ],
)
def test_a_fractional_cpu_allocation_becomes_a_cgroup_quota_per_vcpu(
    backend: LibvirtBackend, cpus: float, vcpus: int, quota: int, words: str
) -> None:
    domain = _CgroupDomain()
    message = backend._cpu_cap(domain, cpus, vcpus)
    assert domain.params == {"vcpu_period": 100_000, "vcpu_quota": quota}
    assert words in message


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
        [Proposal("bare-1", hosts[0], hosts[1], benefit=5.0, pressure=0.9, ram_mb=1024.0)], 0.0
    )
    assert decision.accepted
    outcomes = []
    for t in range(500):
        outcomes = orch.poll(float(t))
        if outcomes:
            break
        time.sleep(0.01)
    assert [o.state for o in outcomes] == [ActionState.ROLLED_BACK]
    assert {v.id: v.host for v in backend.inventory().vms}["bare-1"] == hosts[0]


def test_the_control_loop_throttles_disk_and_network_through_libvirt(
    backend: LibvirtBackend, tmp_path: Path
) -> None:
    from forethought.allocation.manager import PredictiveRecommender, Settings
    from forethought.allocation.policy import VmInfo, parse_policy
    from forethought.cluster.model import CLOUDSIM_VM_TYPES
    from forethought.migration.loop import MigrationLoop
    from forethought.migration.planner import PlannerSettings, PredictivePlanner

    hosts = [h.id for h in backend.hosts]
    vms = ["web-1", "bare-1"]
    cluster = Cluster(
        [G5], [CLOUDSIM_VM_TYPES[3]], np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64)
    )
    network = NetworkMap(cluster, host_ids=hosts)
    policy = parse_policy(
        "version: 1\ndefaults:\n  disk_write: {max: 50000}\n"
        "groups:\n  - {name: all, match: {name: '*'}}\n"
    )
    groups = policy.assign([VmInfo(v) for v in vms])
    allocators = {
        r: PredictiveRecommender(Settings.from_policy(policy, groups, r, 60), r)
        for r in (Resource.DISK_WRITE, Resource.NET_TX)
    }
    orch = Orchestrator(backend, network, ActionLog.open(tmp_path / "log.jsonl"))
    planner = PredictivePlanner(PlannerSettings(horizon=2, draws=2), network=network)
    loop = MigrationLoop(
        backend, cluster, planner, orch, interval=60.0, vm_ids=vms, allocators=allocators
    )
    outcomes = [o for k in range(4) for o in loop.step(60.0 * k).resizes]
    web = [o for o in outcomes if o.action.vm == "web-1"]
    assert {o.action.resource for o in web} == {Resource.DISK_WRITE, Resource.NET_TX}
    assert all(o.applied and o.live for o in web), [o.message for o in web]
    assert all(o.action.amount <= 50_000 for o in web if o.action.resource is Resource.DISK_WRITE)
    domain = backend._find("web-1")[1]
    last_tx = [o for o in web if o.action.resource is Resource.NET_TX][-1].action.amount
    assert domain.interfaceParameters("tapweb-1", 0)["outbound.average"] == round(last_tx)
    # The VM with no disk or interface: its limits are reported not applied, not hidden.
    bare = [o for o in outcomes if o.action.vm == "bare-1"]
    assert bare
    assert not any(o.applied for o in bare)


def test_a_migration_libvirt_runs_for_someone_else_shows_as_migrating(
    backend: LibvirtBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import libvirt

    # The test hypervisor keeps no jobs: none is migrating, and asking is no error.
    assert not any(v.migrating for v in backend.inventory().vms)

    def job(domain: libvirt.virDomain) -> list[int]:
        busy = domain.name() == "web-1"  # an earlier run's migration, say
        return [libvirt.VIR_DOMAIN_JOB_UNBOUNDED if busy else libvirt.VIR_DOMAIN_JOB_NONE]

    monkeypatch.setattr(libvirt.virDomain, "jobInfo", job)
    assert {v.id: v.migrating for v in backend.inventory().vms}["web-1"]
    assert sum(v.migrating for v in backend.inventory().vms) == 1
