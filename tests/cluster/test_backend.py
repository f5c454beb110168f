"""The simulated backend: the protocol's calls, their effects, and injected failures."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.cluster.backend import Backend, BackendError, Migrate, MigrationState, Resize
from forethought.cluster.model import (
    CLOUDSIM_VM_TYPES,
    Cluster,
    HostType,
    Link,
    Site,
    cloudsim_planetlab,
    io_pools,
)
from forethought.cluster.power import HP_ML110_G5
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource


def make(n_vms: int = 8, n_hosts: int = 4) -> SimulatedBackend:
    cluster = cloudsim_planetlab(n_vms, n_hosts)
    u = np.tile(np.linspace(0.1, 0.8, n_vms)[:, None], (1, 12))
    return SimulatedBackend(cluster, u, np.arange(n_vms) % n_hosts)


def test_satisfies_the_protocol_and_says_it_is_simulated() -> None:
    backend: Backend = make()
    assert backend.simulated
    inv = backend.inventory()
    assert len(inv.hosts) == 4
    assert len(inv.vms) == 8
    assert {v.host for v in inv.vms} == {h.id for h in inv.hosts}


def test_telemetry_grants_demand_when_hosts_have_room() -> None:
    b = make()
    obs = b.telemetry()
    assert obs.resources == (Resource.CPU,)
    np.testing.assert_allclose(obs.granted, obs.demand)


def test_telemetry_shares_out_an_overcommitted_host() -> None:
    cluster = cloudsim_planetlab(4, 1)
    b = SimulatedBackend(cluster, np.ones((4, 3)), np.zeros(4, dtype=np.int64))
    obs = b.telemetry()
    assert obs.granted.sum() == pytest.approx(cluster.host_column("mips")[0])
    assert (obs.granted < obs.demand).all()


def test_migration_completes_after_its_expected_time() -> None:
    b = make()
    status = b.migrate(Migrate("vm-0", "host-1", reason="test"))
    assert status.state is MigrationState.RUNNING
    assert b.inventory().vms[0].migrating
    # 870 MB over half of 1 Gbit/s (62.5 MB/s): 13.92 s.
    assert status.expected_end == pytest.approx(13.92)
    assert b.advance(10.0) == []
    ended = b.advance(5.0)
    assert [m.state for m in ended] == [MigrationState.COMPLETED]
    assert b.inventory().vms[0].host == "host-1"


def test_aborted_migration_leaves_the_vm_where_it_was() -> None:
    b = make()
    status = b.migrate(Migrate("vm-0", "host-1"))
    assert b.abort(status.id).state is MigrationState.ABORTED
    b.advance(60.0)
    assert b.inventory().vms[0].host == "host-0"
    assert not b.inventory().vms[0].migrating


def test_injected_failure_rolls_back() -> None:
    b = make()
    b.fail_next_migrations(1)
    first = b.migrate(Migrate("vm-0", "host-1"))
    second = b.migrate(Migrate("vm-1", "host-2"))
    b.advance(60.0)
    assert b.migration(first.id).state is MigrationState.FAILED
    assert b.migration(second.id).state is MigrationState.COMPLETED
    assert b.inventory().vms[0].host == "host-0"


def test_refusals_name_the_reason() -> None:
    b = make()
    b.full_hosts.add(2)
    with pytest.raises(BackendError, match="target full"):
        b.migrate(Migrate("vm-0", "host-2"))
    b.cut_links.add((0, 3))
    with pytest.raises(BackendError, match="no link"):
        b.migrate(Migrate("vm-0", "host-3"))
    with pytest.raises(BackendError, match="already runs"):
        b.migrate(Migrate("vm-0", "host-0"))
    b.migrate(Migrate("vm-0", "host-1"))
    with pytest.raises(BackendError, match="already migrating"):
        b.migrate(Migrate("vm-0", "host-1"))
    with pytest.raises(BackendError, match="unknown VM"):
        b.migrate(Migrate("vm-99", "host-1"))
    with pytest.raises(BackendError, match="unknown host"):
        b.migrate(Migrate("vm-1", "rack-1"))
    with pytest.raises(BackendError, match="unknown migration"):
        b.abort("mig-404")


def test_resize_is_live_within_the_host_and_refused_beyond() -> None:
    b = make()
    out = b.resize(Resize("vm-0", Resource.CPU, 1000.0, reason="forecast"))
    assert out.applied
    assert out.live
    assert b.inventory().vms[0].cpu_mips == 1000.0
    with pytest.raises(BackendError, match="outside"):
        b.resize(Resize("vm-0", Resource.CPU, 1e9))
    memory = b.resize(Resize("vm-0", Resource.MEMORY, 512.0))
    assert not memory.applied


def test_bad_construction_is_rejected() -> None:
    cluster = cloudsim_planetlab(2, 2)
    with pytest.raises(ForethoughtError, match="placement"):
        SimulatedBackend(cluster, np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ForethoughtError, match="utilisation"):
        SimulatedBackend(cluster, np.zeros((3, 3)), np.array([0, 1]))
    with pytest.raises(ForethoughtError, match="forward"):
        make().advance(-1.0)


def test_migration_across_sites_runs_at_the_link_speed() -> None:
    cluster = cloudsim_planetlab(2, 2)
    cluster.sites = [Site("dc"), Site("cloud", "public")]
    cluster.host_site = np.array([0, 1])
    cluster.links = [Link("dc", "cloud", latency_ms=20.0, bandwidth_mbps=100.0, cost_per_gb=0.02)]
    b = SimulatedBackend(cluster, np.full((2, 3), 0.2), np.array([0, 0]))
    status = b.migrate(Migrate("vm-0", "host-1"))
    # 870 MB over half of 100 Mbit/s (6.25 MB/s), after the link's 20 ms of latency.
    assert status.expected_end == pytest.approx(870 / 6.25 + 0.02)
    assert {h.site for h in b.inventory().hosts} == {"dc", "cloud"}


def test_sites_and_links_are_validated() -> None:
    with pytest.raises(ForethoughtError, match="private or public"):
        Site("x", "hybrid")
    with pytest.raises(ForethoughtError, match="bandwidth"):
        Link("a", "b", latency_ms=1.0, bandwidth_mbps=0.0)
    cluster = cloudsim_planetlab(2, 2)
    cluster.sites = [Site("dc"), Site("cloud", "public")]
    with pytest.raises(ForethoughtError, match="no link"):
        cluster.link(0, 1)


def test_migrations_conserve_vms_and_demand() -> None:
    """Moving VMs changes where demand lands, never how much there is or how many VMs."""
    b = make(n_vms=12, n_hosts=6)
    before = b.telemetry()
    for v, target in [(0, 1), (1, 2), (2, 3), (3, 4)]:
        b.migrate(Migrate(f"vm-{v}", f"host-{target}"))
    b.advance(120.0)
    after = b.telemetry()
    hosts = [vm.host for vm in b.inventory().vms]
    assert len(hosts) == 12
    assert float(after.demand.sum()) == pytest.approx(float(before.demand.sum()))
    assert hosts[:4] == ["host-1", "host-2", "host-3", "host-4"]


def test_bandwidths_are_reported_and_throttled_live() -> None:
    cluster = cloudsim_planetlab(3, 2)
    u = np.full((3, 4), 0.2)
    reads = np.array([[100.0] * 4, [5_000.0] * 4, [0.0] * 4])  # KB/s
    b = SimulatedBackend(
        cluster, u, np.array([0, 1, 0]), io={Resource.DISK_READ: reads, Resource.NET_TX: reads}
    )
    obs = b.telemetry()
    assert obs.resources == (Resource.CPU, Resource.DISK_READ, Resource.NET_TX)
    np.testing.assert_allclose(obs.demand[:, 1], [100.0, 5_000.0, 0.0])
    np.testing.assert_allclose(obs.granted[:, 1:], obs.demand[:, 1:])  # no throttle yet
    out = b.resize(Resize("vm-1", Resource.DISK_READ, 1_024.0))
    assert (out.applied, out.live) == (True, True)
    obs = b.telemetry()
    assert obs.granted[1, 1] == 1_024.0  # demand above the throttle is not served
    assert obs.granted[1, 2] == 5_000.0  # the other bandwidth is untouched
    with pytest.raises(BackendError, match="positive"):
        b.resize(Resize("vm-1", Resource.NET_TX, 0.0))
    # A bandwidth the trace has no series for is not simulated, and says so.
    assert not b.resize(Resize("vm-1", Resource.NET_RX, 10.0)).applied


@pytest.mark.parametrize(
    ("io", "message"),
    [
        ({Resource.MEMORY: np.zeros((3, 4))}, "not a disk or network bandwidth"),
        ({Resource.NET_RX: np.zeros((3, 5))}, r"must be \(vms, steps\)"),
        ({Resource.NET_RX: np.full((3, 4), -1.0)}, "at least 0"),
        ({Resource.NET_RX: np.full((3, 4), np.nan)}, "finite"),
    ],
)
def test_bad_bandwidth_series_are_refused(io: dict[Resource, np.ndarray], message: str) -> None:
    cluster = cloudsim_planetlab(3, 2)
    with pytest.raises(ForethoughtError, match=message):
        SimulatedBackend(cluster, np.full((3, 4), 0.2), np.array([0, 1, 0]), io=io)


def test_a_hosts_disks_and_link_are_shared_by_its_vms() -> None:
    # One host with a 10,000 KB/s disk and an 80 Mbit/s link (9,765.6 KB/s each way).
    host = HostType("io-bound", 2, 2000.0, 8192.0, 80.0, HP_ML110_G5, disk_kbs=10_000.0)
    vm = CLOUDSIM_VM_TYPES[3]
    cluster = Cluster([host], [vm], np.zeros(1, dtype=np.int64), np.zeros(3, dtype=np.int64))
    reads = np.full((3, 2), 4_000.0)
    writes = np.full((3, 2), 1_000.0)
    rx = np.full((3, 2), 2_000.0)
    b = SimulatedBackend(
        cluster,
        np.full((3, 2), 0.1),
        np.zeros(3, dtype=np.int64),
        io={Resource.DISK_READ: reads, Resource.DISK_WRITE: writes, Resource.NET_RX: rx},
    )
    obs = b.telemetry()
    # Reads and writes ask 15,000 KB/s of a 10,000 KB/s disk: both scaled by 2/3.
    np.testing.assert_allclose(obs.granted[:, 1], 4_000.0 * 2 / 3)
    np.testing.assert_allclose(obs.granted[:, 2], 1_000.0 * 2 / 3)
    assert obs.granted[:, 1:3].sum() == pytest.approx(10_000.0)
    # 6,000 KB/s received fits the link: untouched.
    np.testing.assert_allclose(obs.granted[:, 3], 2_000.0)
    np.testing.assert_allclose(obs.demand[:, 1], 4_000.0)  # demand is what was asked


def test_host_io_capacity_comes_from_its_link_and_disks() -> None:
    cluster = cloudsim_planetlab(2, 2)
    np.testing.assert_allclose(cluster.io_capacity(Resource.NET_TX), 1e9 / 8 / 1024)
    assert np.isinf(cluster.io_capacity(Resource.DISK_READ)).all()  # not modelled
    with pytest.raises(ForethoughtError, match="not a disk or network bandwidth"):
        cluster.io_capacity(Resource.MEMORY)
    with pytest.raises(ForethoughtError, match="disk_kbs must be positive"):
        HostType("bad", 1, 1000.0, 1024.0, 100.0, HP_ML110_G5, disk_kbs=0.0)
    assert io_pools([Resource.NET_TX, Resource.DISK_WRITE, Resource.DISK_READ]) == [
        (Resource.DISK_READ, Resource.DISK_WRITE),
        (Resource.NET_TX,),
    ]
