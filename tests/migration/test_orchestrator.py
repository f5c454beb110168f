"""The orchestrator against the simulated backend: limits, tunnels, failures, restarts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from forethought.cluster.backend import BackendError, Migrate, MigrationState, MigrationStatus
from forethought.cluster.model import CLOUDSIM_VM_TYPES, G4, Cluster, HostType, Link, Site
from forethought.cluster.power import HP_ML110_G5
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.errors import ForethoughtError
from forethought.migration.log import ActionLog, ActionRecord, ActionState
from forethought.migration.network import NetworkMap
from forethought.migration.orchestrator import (
    Decision,
    Limits,
    Orchestrator,
    Outcome,
    Phase,
    Proposal,
    TunnelBounds,
)

S = ActionState
LINK = ("dc", "cloud")
LATENCY_S = 0.02  # the link's one-way latency: every transfer across it waits this long
N_VMS = 16


def two_sites(link_mbps: float = 100.0, public_host_mbps: float = 1000.0) -> Cluster:
    """Hosts 0-3 private ("dc"), 4-7 public ("cloud"), joined by a slow, costly link.

    VMs 0-3 have 870 MB, 4-11 1,740 MB, 12-15 613 MB; VM v starts on host v % 8, so
    every host runs two VMs (and is powered on).
    """
    public = HostType("cloud-vm-host", 2, 2660.0, 4096.0, public_host_mbps, HP_ML110_G5)
    return Cluster(
        host_types=[G4, public],
        vm_types=list(CLOUDSIM_VM_TYPES),
        host_type=np.array([0, 0, 0, 0, 1, 1, 1, 1]),
        vm_type=np.arange(N_VMS) // 4,
        sites=[Site("dc"), Site("cloud", "public")],
        host_site=np.array([0, 0, 0, 0, 1, 1, 1, 1]),
        links=[
            Link(
                "dc",
                "cloud",
                latency_ms=1000 * LATENCY_S,
                bandwidth_mbps=link_mbps,
                cost_per_gb=0.05,
            )
        ],
    )


@dataclass
class Rig:
    backend: SimulatedBackend
    network: NetworkMap
    orch: Orchestrator
    path: Path
    limits: Limits

    def resume(self) -> Orchestrator:
        """What a restarted process does: a fresh network map and the same log file."""
        return Orchestrator.resume(
            self.backend, NetworkMap(self.backend.cluster), self.path, self.limits
        )

    def run(self, seconds: float) -> list[Outcome]:
        self.backend.advance(seconds)
        return self.orch.poll(self.backend.time)


def make(
    tmp_path: Path,
    limits: Limits | None = None,
    *,
    link_mbps: float = 100.0,
    public_host_mbps: float = 1000.0,
    placement: np.ndarray | None = None,
) -> Rig:
    cluster = two_sites(link_mbps, public_host_mbps)
    u = np.full((N_VMS, 12), 0.3)
    where = np.arange(N_VMS) % 8 if placement is None else placement
    backend = SimulatedBackend(cluster, u, where)
    network = NetworkMap(cluster)
    path = tmp_path / "actions.jsonl"
    limits = limits or Limits()
    return Rig(
        backend, network, Orchestrator(backend, network, ActionLog.open(path), limits), path, limits
    )


def prop(vm: str, source: str, target: str, benefit: float = 1.0, **kw: float) -> Proposal:
    return Proposal(vm, source, target, benefit, 0.5, 870.0, "forecast overload", dict(kw))


def host_of(backend: SimulatedBackend, vm: str) -> str:
    return next(v.host for v in backend.inventory().vms if v.id == vm)


def states(path: Path, action: str) -> list[str]:
    return [r.state.value for r in ActionLog.read(path) if r.action == action]


def assert_no_vm_lost(backend: SimulatedBackend) -> None:
    """Every VM runs on exactly one existing host, and none is left mid-migration."""
    inv = backend.inventory()
    hosts = {h.id for h in inv.hosts}
    ids = [v.id for v in inv.vms]
    assert sorted(ids) == sorted(f"vm-{v}" for v in range(N_VMS))
    assert all(v.host in hosts for v in inv.vms)
    assert not any(v.migrating for v in inv.vms)


# -- ordering and limits -------------------------------------------------------------
def test_proposals_start_in_order_of_benefit_within_the_host_limit(tmp_path: Path) -> None:
    rig = make(tmp_path, Limits(per_host=2))
    decisions = rig.orch.submit(
        [
            prop("vm-0", "host-0", "host-1", benefit=1.0),
            prop("vm-2", "host-2", "host-1", benefit=5.0),
            prop("vm-3", "host-3", "host-1", benefit=3.0),
        ],
        now=0.0,
    )
    assert [d.proposal.vm for d in decisions] == ["vm-2", "vm-3", "vm-0"]
    assert [d.accepted for d in decisions] == [True, True, False]
    assert decisions[2].reason == "host-1 has 2 migrations in progress (limit 2)"
    planned = [r.vm for r in ActionLog.read(rig.path) if r.state is S.PLANNED]
    assert planned == ["vm-2", "vm-3", "vm-0"]
    assert states(rig.path, decisions[2].action) == ["planned", "rejected"]
    moving = {v.id for v in rig.backend.inventory().vms if v.migrating}
    assert moving == {"vm-2", "vm-3"}


def test_a_hosts_outgoing_migrations_count_against_its_limit(tmp_path: Path) -> None:
    rig = make(tmp_path, Limits(per_host=1))
    first, second = rig.orch.submit(
        [prop("vm-0", "host-0", "host-1", 2.0), prop("vm-8", "host-0", "host-2", 1.0)], 0.0
    )
    assert first.accepted
    assert not second.accepted
    assert second.reason == "host-0 has 1 migrations in progress (limit 1)"
    rig.run(20.0)  # vm-0 arrives: the slot is free again
    [again] = rig.orch.submit([prop("vm-8", "host-0", "host-2")], rig.backend.time)
    assert again.accepted


def test_the_link_and_total_limits(tmp_path: Path) -> None:
    rig = make(tmp_path, Limits(per_link=2, total=4))
    assert rig.orch.free_slots() == 4
    decisions = rig.orch.submit(
        [
            prop("vm-0", "host-0", "host-4", 9.0),
            prop("vm-1", "host-1", "host-5", 8.0),
            prop("vm-2", "host-2", "host-6", 7.0),
            prop("vm-3", "host-3", "host-2", 6.0),  # within dc: not on the link
            prop("vm-12", "host-4", "host-5", 5.0),  # within cloud
            prop("vm-13", "host-5", "host-7", 4.0),  # a fifth would exceed the total
        ],
        0.0,
    )
    assert [d.accepted for d in decisions] == [True, True, False, True, True, False]
    assert decisions[2].reason == "link dc-cloud carries 2 migrations (limit 2)"
    assert decisions[5].reason == "4 migrations in progress (limit 4)"
    assert rig.orch.free_slots() == 0
    # Declined once the total is full: never an action, so never in the log.
    assert decisions[5].action == ""
    logged = {r.vm for r in rig.orch.log.latest.values()}
    assert "vm-13" not in logged
    assert "vm-2" in logged  # refused by a pre-condition: an action, logged as rejected


def test_preconditions_reject_with_the_reason_and_touch_nothing(tmp_path: Path) -> None:
    rig = make(tmp_path)
    [ok] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    rig.backend.migrate(Migrate("vm-6", "host-2"))  # someone else is moving vm-6
    rig.network.mark_down("dc", "cloud")
    batch = [
        prop("vm-0", "host-0", "host-2", 9.0),
        prop("vm-1", "host-3", "host-2", 8.0),
        prop("vm-99", "host-0", "host-2", 7.0),
        prop("vm-2", "host-2", "host-2", 6.0),
        prop("vm-3", "host-3", "host-42", 5.0),
        prop("vm-4", "host-4", "host-5", 4.0),
        prop("vm-4", "host-4", "host-6", 3.0),
        prop("vm-5", "host-5", "host-1", 2.0),
        prop("vm-6", "host-6", "host-3", 1.0),
    ]
    decisions = rig.orch.submit(batch, 0.0)
    assert [d.reason for d in decisions] == [
        f"vm-0 already has action {ok.action} in flight",
        "vm-1 runs on host-1, not on host-3",
        "vm-99 does not exist",
        "target host-2 is the host vm-2 runs on",
        "target host-42 does not exist",
        "",
        f"vm-4 is already proposed in this batch ({decisions[5].action})",
        "link dc-cloud is down",
        "vm-6 is already migrating",
    ]
    for d in decisions:
        expected = ["planned", "started"] if d.accepted else ["planned", "rejected"]
        assert states(rig.path, d.action) == expected
    moving = {v.id for v in rig.backend.inventory().vms if v.migrating}
    assert moving == {"vm-0", "vm-4", "vm-6"}


def test_a_powered_off_target_is_refused(tmp_path: Path) -> None:
    rig = make(tmp_path, placement=np.arange(N_VMS) % 7)  # host-7 runs nothing
    [d] = rig.orch.submit([prop("vm-6", "host-6", "host-7")], 0.0)
    assert d.accepted  # an idle host is in standby and wakes for the VM
    (tmp_path / "down").mkdir()
    rig = make(tmp_path / "down", placement=np.arange(N_VMS) % 7)
    rig.backend.down_hosts.add(7)  # switched off
    [d] = rig.orch.submit([prop("vm-6", "host-6", "host-7")], 0.0)
    assert d.reason == "target host-7 is powered off"


# -- tunnel capacity -------------------------------------------------------------------
def test_concurrent_migrations_on_a_link_split_its_tunnel(tmp_path: Path) -> None:
    rig = make(tmp_path)  # a 100 Mbit/s link: migrations may use 50
    a, b = rig.orch.submit(
        [prop("vm-0", "host-0", "host-4"), prop("vm-1", "host-1", "host-5")], 0.0
    )
    assert rig.orch.tunnel_capacity() == {LINK: pytest.approx(50.0)}
    assert a.bandwidth_mbps == pytest.approx(25.0)
    assert b.bandwidth_mbps == pytest.approx(25.0)
    # The backend runs each at its share: 870 MB at 25 Mbit/s takes 278.4 s, not 139.2
    # (plus the link's latency, LATENCY_S).
    assert a.expected_end == pytest.approx(870 / (25 / 8) + LATENCY_S)
    assert rig.orch.in_flight[a.action].bandwidth_mbps == pytest.approx(25.0)
    started = [r for r in ActionLog.read(rig.path) if r.state is S.STARTED]
    assert [r.facts["bandwidth_mbps"] for r in started] == pytest.approx([25.0, 25.0])
    # Both ran at the share they were held to, not the link's speed: completing them
    # must not teach the map that the 100 Mbit/s link only does 50.
    outcomes = rig.run(300.0)
    assert [o.state for o in outcomes] == [S.COMPLETED, S.COMPLETED]
    assert outcomes[0].measured["achieved_mbps"] == pytest.approx(25.0)
    assert rig.network.link_bandwidth("dc", "cloud") == pytest.approx(100.0)


def test_the_tunnel_follows_the_migrations_as_they_start_and_finish(tmp_path: Path) -> None:
    # Public hosts with 100 Mbit/s NICs behind a 1 Gbit/s link: each migration needs 50.
    bounds = TunnelBounds(floor_mbps=10.0, ceiling_mbps=120.0)
    rig = make(tmp_path, Limits(tunnel=bounds), link_mbps=1000.0, public_host_mbps=100.0)
    assert rig.orch.tunnel_capacity() == {LINK: 10.0}  # idle: the floor

    [first] = rig.orch.submit([prop("vm-0", "host-0", "host-4")], 0.0)
    assert first.bandwidth_mbps == pytest.approx(50.0)
    assert rig.orch.tunnel_capacity() == {LINK: pytest.approx(50.0)}

    second, third, local = rig.orch.submit(
        [
            prop("vm-1", "host-1", "host-5", 3.0),
            prop("vm-2", "host-2", "host-6", 2.0),
            prop("vm-3", "host-3", "host-1", 1.0),
        ],
        0.0,
    )
    # Three need 150; the ceiling holds the tunnel to 120, 40 each.
    assert rig.orch.tunnel_capacity() == {LINK: pytest.approx(120.0)}
    assert second.bandwidth_mbps == pytest.approx(40.0)
    assert third.bandwidth_mbps == pytest.approx(40.0)
    assert local.bandwidth_mbps is None  # within a site: no tunnel
    assert first.expected_end == pytest.approx(870 / (50 / 8) + LATENCY_S)  # 139.2 s + latency
    assert second.expected_end == pytest.approx(870 / (40 / 8) + LATENCY_S)  # 174 s + latency

    rig.run(150.0)  # the first and the local one finish
    assert set(rig.orch.in_flight) == {second.action, third.action}
    assert rig.orch.tunnel_capacity() == {LINK: pytest.approx(100.0)}
    rig.run(30.0)
    assert rig.orch.in_flight == {}
    assert rig.orch.tunnel_capacity() == {LINK: 10.0}


def test_tunnel_bounds_per_link_and_validation(tmp_path: Path) -> None:
    limits = Limits(tunnels={("cloud", "dc"): TunnelBounds(0.0, 20.0)})
    rig = make(tmp_path, limits)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-4")], 0.0)
    assert d.bandwidth_mbps == pytest.approx(20.0)
    with pytest.raises(ForethoughtError, match="unknown site 'moon'"):
        Orchestrator(
            rig.backend,
            rig.network,
            rig.orch.log,
            Limits(tunnels={("dc", "moon"): TunnelBounds()}),
        )
    with pytest.raises(ForethoughtError, match="floor <= ceiling"):
        TunnelBounds(30.0, 20.0)
    with pytest.raises(ForethoughtError, match="per_host"):
        Limits(per_host=0)
    with pytest.raises(ForethoughtError, match="timeout_factor"):
        Limits(timeout_factor=-1.0)
    with pytest.raises(ForethoughtError, match="benefit and pressure must be finite"):
        Proposal("vm-0", "host-0", "host-1", float("nan"), 0.0, 870.0)
    with pytest.raises(ForethoughtError, match="ram_mb must be >= 0, got -1"):
        Proposal("vm-0", "host-0", "host-1", 1.0, 0.0, -1.0)


# -- completion and learning -----------------------------------------------------------
def test_a_completion_is_checked_measured_and_learnt_from(tmp_path: Path) -> None:
    rig = make(tmp_path)  # the backend's link does 100 Mbit/s...
    rig.network = NetworkMap(two_sites(link_mbps=200.0))  # ...the map still believes 200
    rig.orch = Orchestrator(rig.backend, rig.network, rig.orch.log)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-4", target_pressure=0.42)], 0.0)
    assert d.bandwidth_mbps == pytest.approx(100.0)
    assert d.expected_end == pytest.approx(139.2 + LATENCY_S)  # the link, not the share, held it

    [outcome] = rig.run(200.0)  # polled well after the end, which is no timeout
    assert outcome.state is S.COMPLETED
    assert outcome.predicted == {"target_pressure": 0.42}
    assert outcome.expected_seconds == pytest.approx(139.2 + LATENCY_S)
    assert outcome.actual_seconds == pytest.approx(139.2 + LATENCY_S)  # at its end, not poll

    assert outcome.measured["predicted_seconds"] == pytest.approx(870 / (100 / 8) + 0.02)
    assert outcome.measured["achieved_mbps"] == pytest.approx(50.0)
    # The link carried 100 Mbit/s: the estimate moves 30 % of the way down from 200.
    assert rig.network.link_bandwidth("dc", "cloud") == pytest.approx(170.0, rel=1e-3)
    assert host_of(rig.backend, "vm-0") == "host-4"
    assert states(rig.path, d.action) == ["planned", "started", "completed"]
    completed = ActionLog.open(rig.path).latest[d.action]
    assert completed.predicted == {"target_pressure": 0.42}
    assert completed.facts["actual_seconds"] == pytest.approx(139.2 + LATENCY_S)


class ClaimsCompletion(SimulatedBackend):
    """A backend whose reports cannot be trusted: every ended migration 'completed'."""

    def migration(self, migration_id: str) -> MigrationStatus:
        status = super().migration(migration_id)
        if status.state is MigrationState.RUNNING:
            return status
        return replace(status, state=MigrationState.COMPLETED)


class ClaimsFailure(SimulatedBackend):
    """A backend that reports a failure for a migration that in fact went through."""

    def migration(self, migration_id: str) -> MigrationStatus:
        status = super().migration(migration_id)
        if status.state is MigrationState.RUNNING:
            return status
        return replace(status, state=MigrationState.FAILED, message="lost the ack")


def swap_backend(rig: Rig, cls: type[SimulatedBackend]) -> None:
    old = rig.backend
    rig.backend = cls(old.cluster, old.u, old.host_of)
    rig.orch = Orchestrator(rig.backend, rig.network, rig.orch.log)


def test_a_failed_postcondition_is_logged_and_rolled_back(tmp_path: Path) -> None:
    rig = make(tmp_path)
    swap_backend(rig, ClaimsCompletion)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    rig.backend.abort(d.migration)  # it never happened, whatever the backend will say
    [outcome] = rig.run(1.0)
    assert outcome.state is S.ROLLED_BACK
    assert states(rig.path, d.action) == ["planned", "started", "failed", "rolled_back"]
    failed = [r for r in ActionLog.read(rig.path) if r.state is S.FAILED]
    assert failed[0].message == "vm-0 runs on host-0, not on the target host-1"
    assert host_of(rig.backend, "vm-0") == "host-0"


def test_a_vm_that_cannot_be_found_on_its_source_stays_failed(tmp_path: Path) -> None:
    rig = make(tmp_path)
    swap_backend(rig, ClaimsFailure)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    [outcome] = rig.run(20.0)
    assert outcome.state is S.FAILED
    assert outcome.message == "rollback impossible: vm-0 is on host-1, migrating=False"
    assert states(rig.path, d.action) == ["planned", "started", "failed"]
    assert rig.orch.in_flight == {}
    assert_no_vm_lost(rig.backend)


# -- injected failures -----------------------------------------------------------------
def test_an_injected_failure_is_rolled_back(tmp_path: Path) -> None:
    rig = make(tmp_path)
    rig.backend.fail_next_migrations(1)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    assert d.accepted
    [outcome] = rig.run(20.0)
    assert outcome.state is S.ROLLED_BACK
    assert outcome.message == "vm-0 runs on its source host-0"
    assert states(rig.path, d.action) == ["planned", "started", "failed", "rolled_back"]
    assert "failed (injected)" in [r.message for r in ActionLog.read(rig.path)]
    assert host_of(rig.backend, "vm-0") == "host-0"
    assert_no_vm_lost(rig.backend)
    [again] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], rig.backend.time)
    assert again.accepted  # nothing held on to its slots or its VM


@pytest.mark.parametrize(
    ("inject", "reason"),
    [
        (lambda b: b.full_hosts.add(4), "backend refused: host-4 has no room for vm-0"),
        (lambda b: b.cut_links.add((0, 4)), "backend refused: no link between host-0"),
    ],
    ids=["full-target", "cut-link"],
)
def test_a_refused_start_is_a_clean_rejection(
    tmp_path: Path, inject: Callable[[SimulatedBackend], None], reason: str
) -> None:
    rig = make(tmp_path)
    inject(rig.backend)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-4")], 0.0)
    assert not d.accepted
    assert d.reason.startswith(reason)
    assert states(rig.path, d.action) == ["planned", "rejected"]
    assert rig.orch.in_flight == {}
    assert rig.orch.tunnel_capacity() == {LINK: 0.0}
    assert host_of(rig.backend, "vm-0") == "host-0"
    assert_no_vm_lost(rig.backend)


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        (lambda b: b.full_hosts.add(4), "host-4 filled up before switch-over (target full)"),
        (lambda b: b.cut_links.add((0, 4)), "link between host-0 and host-4 cut mid-transfer"),
    ],
    ids=["target-fills-up", "link-cut"],
)
def test_a_failure_mid_transfer_is_rolled_back(
    tmp_path: Path, inject: Callable[[SimulatedBackend], None], message: str
) -> None:
    rig = make(tmp_path)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-4")], 0.0)
    assert d.accepted
    inject(rig.backend)
    [outcome] = rig.run(150.0)
    assert outcome.state is S.ROLLED_BACK
    assert states(rig.path, d.action) == ["planned", "started", "failed", "rolled_back"]
    assert message in [r.message for r in ActionLog.read(rig.path)]
    assert host_of(rig.backend, "vm-0") == "host-0"
    assert_no_vm_lost(rig.backend)


def test_a_migration_past_its_timeout_is_aborted_and_rolled_back(tmp_path: Path) -> None:
    rig = make(tmp_path, Limits(timeout_factor=0.5))
    rig.backend.slow_next_migrations(1, factor=3.0)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    assert d.expected_end == pytest.approx(13.92)  # the backend still promises 13.92 s
    assert rig.run(20.0) == []  # late, but within 50 % of 13.92 s
    [outcome] = rig.run(1.0)  # 21 s > 13.92 * 1.5
    assert outcome.state is S.ROLLED_BACK
    assert states(rig.path, d.action) == ["planned", "started", "aborted", "rolled_back"]
    aborted = [r for r in ActionLog.read(rig.path) if r.state is S.ABORTED]
    assert aborted[0].message.startswith("overdue: expected to end at 13.9 s")
    assert rig.backend.migration(d.migration).state is MigrationState.ABORTED
    rig.run(60.0)  # past when the slow transfer would have ended: it stays stopped
    assert host_of(rig.backend, "vm-0") == "host-0"
    assert_no_vm_lost(rig.backend)


def test_every_failure_at_once_loses_no_vm(tmp_path: Path) -> None:
    rig = make(tmp_path, Limits(per_host=4, per_link=4, total=8))
    rig.backend.fail_next_migrations(1)
    [failing] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    rig.backend.slow_next_migrations(1, 5.0)
    [slow] = rig.orch.submit([prop("vm-3", "host-3", "host-2")], 0.0)
    rig.backend.full_hosts.add(7)
    rest = rig.orch.submit(
        [
            prop("vm-1", "host-1", "host-5", 9.0),  # its link is cut below
            prop("vm-2", "host-2", "host-7", 8.0),  # refused: target full
            prop("vm-12", "host-4", "host-6", 7.0),
            prop("vm-11", "host-3", "host-0", 6.0),
        ],
        0.0,
    )
    assert [d.accepted for d in [failing, slow, *rest]] == [True, True, True, False, True, True]
    rig.backend.cut_links.add((1, 5))
    for _ in range(40):
        rig.run(10.0)
    assert rig.orch.in_flight == {}
    final = {r.vm: r.state for r in ActionLog.open(rig.path).latest.values()}
    assert final == {
        "vm-0": S.ROLLED_BACK,
        "vm-3": S.ROLLED_BACK,
        "vm-1": S.ROLLED_BACK,
        "vm-2": S.REJECTED,
        "vm-12": S.COMPLETED,
        "vm-11": S.COMPLETED,
    }
    where = {v.id: v.host for v in rig.backend.inventory().vms}
    assert [where[v] for v in ("vm-0", "vm-3", "vm-1", "vm-2")] == [
        "host-0",
        "host-3",
        "host-1",
        "host-2",
    ]
    assert (where["vm-12"], where["vm-11"]) == ("host-6", "host-0")
    assert_no_vm_lost(rig.backend)


# -- restarts ------------------------------------------------------------------------
def test_a_restarted_orchestrator_finishes_what_was_running(tmp_path: Path) -> None:
    rig = make(tmp_path)
    remote, local = rig.orch.submit(
        [prop("vm-0", "host-0", "host-4", 2.0), prop("vm-1", "host-1", "host-2", 1.0)], 0.0
    )
    assert rig.run(10.0) == []
    del rig.orch  # killed: nothing closed, nothing flushed beyond what append did

    orch = rig.resume()
    assert set(orch.in_flight) == {remote.action, local.action}
    assert orch.in_flight[remote.action].migration == remote.migration
    assert orch.in_flight[remote.action].bandwidth_mbps == pytest.approx(50.0)
    assert orch.tunnel_capacity() == {LINK: pytest.approx(50.0)}
    # Its VMs are still spoken for, and new actions get new ids.
    [dup] = orch.submit([prop("vm-0", "host-0", "host-5")], 10.0)
    assert dup.reason == f"vm-0 already has action {remote.action} in flight"
    assert dup.action == "act-3"

    rig.backend.advance(140.0)
    outcomes = orch.poll(rig.backend.time)
    assert {o.action: o.state for o in outcomes} == {
        remote.action: S.COMPLETED,
        local.action: S.COMPLETED,
    }
    assert outcomes[0].actual_seconds == pytest.approx(139.2 + LATENCY_S)
    assert host_of(rig.backend, "vm-0") == "host-4"
    assert host_of(rig.backend, "vm-1") == "host-2"
    assert states(rig.path, remote.action) == ["planned", "started", "completed"]
    assert ActionLog.open(rig.path).open_actions() == []


def test_a_restart_keeps_the_timeout_of_a_slow_migration(tmp_path: Path) -> None:
    rig = make(tmp_path)
    rig.backend.slow_next_migrations(1, 3.0)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    rig.run(10.0)
    orch = rig.resume()
    rig.backend.advance(15.0)
    [outcome] = orch.poll(rig.backend.time)
    assert outcome.state is S.ROLLED_BACK
    assert states(rig.path, d.action) == ["planned", "started", "aborted", "rolled_back"]
    assert host_of(rig.backend, "vm-0") == "host-0"


def test_a_restart_after_a_torn_write_carries_on(tmp_path: Path) -> None:
    rig = make(tmp_path)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-1")], 0.0)
    rig.backend.advance(20.0)
    with rig.path.open("ab") as f:  # the crash came while writing the completion
        f.write(b'{"time":20.0,"action":"' + d.action.encode() + b'","vm":"vm-0","sta')

    orch = rig.resume()
    assert len(orch.log.warnings) == 1
    assert "torn last line" in orch.log.warnings[0]
    [outcome] = orch.poll(rig.backend.time)
    assert outcome.state is S.COMPLETED
    orch.close()
    again = ActionLog.open(rig.path)
    assert again.warnings == []
    assert states(rig.path, d.action) == ["planned", "started", "completed"]


def plan_only(path: Path, vm: str, target: str) -> None:
    """A log whose writer died between logging a plan and logging its start."""
    with ActionLog.open(path) as log:
        log.append(ActionRecord(0.0, log.new_id(), vm, "host-0", target, S.PLANNED, "forecast"))


def test_a_plan_that_never_started_is_rejected_on_restart(tmp_path: Path) -> None:
    rig = make(tmp_path)
    rig.orch.close()
    plan_only(rig.path, "vm-0", "host-1")
    orch = rig.resume()
    assert orch.in_flight["act-1"].phase is Phase.UNCONFIRMED
    [blocked] = orch.submit([prop("vm-0", "host-0", "host-2")], 0.0)
    assert not blocked.accepted  # until it is settled, its VM is taken
    [outcome] = orch.poll(0.0)
    assert outcome.state is S.REJECTED
    assert outcome.message.startswith("not started")
    assert states(rig.path, "act-1") == ["planned", "rejected"]


def test_a_plan_that_did_start_is_followed_to_its_end_on_restart(tmp_path: Path) -> None:
    rig = make(tmp_path)
    rig.orch.close()
    plan_only(rig.path, "vm-0", "host-1")
    rig.backend.migrate(Migrate("vm-0", "host-1"))  # the start the log never recorded
    orch = rig.resume()
    assert orch.poll(0.0) == []  # its VM is migrating: wait
    rig.backend.advance(20.0)
    [outcome] = orch.poll(20.0)
    assert outcome.state is S.COMPLETED
    assert outcome.message == "completed while the orchestrator was down"
    assert states(rig.path, "act-1") == ["planned", "started", "completed"]


def test_an_abort_logged_before_a_crash_is_rolled_back_on_restart(tmp_path: Path) -> None:
    rig = make(tmp_path)
    [d] = rig.orch.submit([prop("vm-0", "host-0", "host-4")], 0.0)
    rig.backend.abort(d.migration)
    rig.orch.log.append(
        ActionRecord(5.0, d.action, "vm-0", "host-0", "host-4", S.ABORTED, migration=d.migration)
    )
    orch = rig.resume()
    assert orch.in_flight[d.action].phase is Phase.ROLLING_BACK
    assert orch.tunnel_capacity() == {LINK: 0.0}  # it no longer holds tunnel bandwidth
    [outcome] = orch.poll(6.0)
    assert outcome.state is S.ROLLED_BACK
    assert states(rig.path, d.action) == ["planned", "started", "aborted", "rolled_back"]


def restarted_on_a_backend_without_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Rig, Decision, Orchestrator]:
    """vm-1's move started, then the process restarted on a backend that does not know
    the earlier process's migration ids (libvirt's jobs are the hypervisor's)."""
    rig = make(tmp_path)
    [started] = rig.orch.submit([prop("vm-1", "host-1", "host-2")], 0.0)
    del rig.orch
    orch = rig.resume()

    def forgotten(migration_id: str) -> object:
        raise BackendError(f"unknown migration {migration_id!r}")

    monkeypatch.setattr(rig.backend, "migration", forgotten)
    return rig, started, orch


def test_a_restart_waits_for_a_migration_its_backend_did_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A restarted process talks to a new backend, which does not know the earlier
    # process's migration ids (libvirt's jobs are the hypervisor's, not the id's); it
    # only sees the VM still migrating. The move must be waited for, not failed.
    rig, started, orch = restarted_on_a_backend_without_its_ids(tmp_path, monkeypatch)
    rig.backend.advance(5.0)
    assert orch.poll(rig.backend.time) == []  # still moving: nothing settled
    assert states(rig.path, started.action) == ["planned", "started"]
    rig.backend.advance(200.0)  # it arrived
    [outcome] = orch.poll(rig.backend.time)
    assert outcome.state is S.COMPLETED
    assert states(rig.path, started.action) == ["planned", "started", "completed"]


def test_a_taken_over_migration_that_never_ends_fails_at_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig, started, orch = restarted_on_a_backend_without_its_ids(tmp_path, monkeypatch)
    moving = rig.backend.inventory()
    stuck = replace(moving, vms=tuple(replace(v, migrating=True) for v in moving.vms))
    monkeypatch.setattr(rig.backend, "inventory", lambda: stuck)  # it never arrives
    assert orch.poll(10.0) == []
    [outcome] = orch.poll(1e6)
    assert outcome.state is S.FAILED
    assert "past its timeout, and unknown to this backend" in outcome.message
    assert orch.in_flight == {}  # its slot is free again
    assert states(rig.path, started.action) == ["planned", "started", "failed"]
