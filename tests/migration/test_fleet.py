"""The control loop on a discovered fleet (``forethought run``), over the simulated backend.

The libvirt path of the same command is tested in ``tests/cli/test_run.py`` against
libvirt's test hypervisor; here the backend is the simulator, so every branch runs without
libvirt-python.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from forethought.allocation.policy import parse_policy
from forethought.cluster.backend import HostInfo, Inventory, Observation, VmInfo
from forethought.cluster.model import CLOUDSIM_VM_TYPES, G5, Cluster
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.migration.fleet import FleetLoop, FleetSettings, cluster_of
from forethought.migration.log import ActionLog

STEPS = 40


def crowded_backend() -> SimulatedBackend:
    """Eight VMs of 2,500 MIPS on four hosts of 5,320: the four on host 0 turn busy."""
    cluster = Cluster(
        [G5], [CLOUDSIM_VM_TYPES[0]], np.zeros(4, dtype=np.int64), np.zeros(8, dtype=np.int64)
    )
    t = np.arange(STEPS)
    u = np.full((8, STEPS), 0.2) + 0.02 * np.sin(t / 3.0)
    u[:4, 20:] = 0.9  # host 0's VMs: 2,000 MIPS of its 5,320, then 9,000
    placement = np.array([0, 0, 0, 0, 1, 2, 3, 3])
    return SimulatedBackend(cluster, u, placement, interval=300.0)


def run(backend: SimulatedBackend, settings: FleetSettings, log: Path) -> list[dict[str, object]]:
    fleet = FleetLoop(backend, settings, log)
    records: list[dict[str, object]] = []

    def on_step(k: int, step: object) -> None:
        records.append(fleet.record(k, step))  # type: ignore[arg-type]
        backend.advance(settings.interval)

    done = fleet.run(STEPS, on_step, clock=lambda: 0.0, sleep=lambda s: None)
    assert done == STEPS
    return records


def test_the_cluster_is_built_from_the_inventory() -> None:
    inventory = Inventory(
        (
            HostInfo("a", "private", 8000.0, 16384.0, 1000.0, True),
            HostInfo("b", "private", 8000.0, 16384.0, 1000.0, True),
            HostInfo("c", "public", 16000.0, 65536.0, 1000.0, True),
        ),
        (
            VmInfo("web", "a", 2000.0, 2048.0, False),
            VmInfo("db", "c", 4000.0, 8192.0, False),
            VmInfo("web2", "b", 2000.0, 2048.0, False),
        ),
    )
    settings = FleetSettings(link_mbps=200.0, latency_ms=20.0, cost_per_gb=0.05)
    cluster = cluster_of(inventory, settings)
    assert cluster.n_hosts == 3
    assert cluster.n_vms == 3
    assert len(cluster.host_types) == 2  # a and b are alike
    assert cluster.host_column("mips").tolist() == [8000.0, 8000.0, 16000.0]
    assert cluster.host_column("pe_mips").tolist() == [8000.0, 8000.0, 16000.0]  # no core cap
    assert cluster.vm_column("ram_mb").tolist() == [2048.0, 8192.0, 2048.0]
    assert len(cluster.vm_types) == 2
    assert [(s.name, s.kind) for s in cluster.sites] == [
        ("private", "private"),
        ("public", "public"),
    ]
    [link] = cluster.links
    assert (link.bandwidth_mbps, link.latency_ms, link.cost_per_gb) == (200.0, 20.0, 0.05)
    assert cluster.power_table.shape == (2, 11)


def test_a_vm_is_sized_by_what_it_can_be_given_live() -> None:
    host = HostInfo("a", "private", 8000.0, 16384.0, 1000.0, True)
    shrunk = VmInfo("web", "a", 1000.0, 1024.0, False, max_cpu_mips=4000.0, max_memory_mb=4096.0)
    unknown = VmInfo("db", "a", 2000.0, 2048.0, False)  # no maximum known: as it is now
    assert shrunk.size == (4000.0, 4096.0)
    assert unknown.size == (2000.0, 2048.0)
    cluster = cluster_of(Inventory((host,), (shrunk, unknown)), FleetSettings())
    assert cluster.vm_column("mips").tolist() == [4000.0, 2000.0]
    assert cluster.vm_column("ram_mb").tolist() == [4096.0, 2048.0]


@pytest.mark.parametrize(
    ("inventory", "message"),
    [
        (Inventory((), ()), "no host"),
        (
            Inventory((HostInfo("a", "private", 8000.0, 16384.0, 1000.0, True),), ()),
            "no VM runs on the connected hosts",
        ),
        (
            Inventory(
                (HostInfo("a", "private", 0.0, 16384.0, 1000.0, True),),
                (VmInfo("web", "a", 2000.0, 2048.0, False),),
            ),
            "host a: CPU, memory and bandwidth must be positive",
        ),
        (
            Inventory(
                (HostInfo("a", "private", 8000.0, 16384.0, 1000.0, True),),
                (VmInfo("web", "a", 2000.0, 0.0, False),),
            ),
            "VM web: CPU and memory must be positive",
        ),
    ],
)
def test_an_inventory_with_nothing_to_manage_is_refused(inventory: Inventory, message: str) -> None:
    with pytest.raises(ForethoughtError, match=message):
        cluster_of(inventory, FleetSettings())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interval": 0.5}, "interval must be at least 1 s"),
        ({"interval": float("nan")}, "interval must be at least 1 s"),
        ({"sized": (Resource.CPU, Resource.CPU)}, "named twice"),
        ({"link_mbps": 0.0}, "bandwidth > 0"),
        ({"latency_ms": -1.0}, "latency and cost >= 0"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ForethoughtError, match=message):
        replace(FleetSettings(), **change)  # type: ignore[arg-type]


def test_a_live_run_resizes_and_moves_vms_off_the_crowded_host(tmp_path: Path) -> None:
    backend = crowded_backend()
    records = run(backend, FleetSettings(sized=(Resource.CPU,)), tmp_path / "log.jsonl")
    resizes = [r for rec in records for r in rec["resizes"]]  # type: ignore[attr-defined]
    assert resizes
    assert all(r["applied"] and r["live"] for r in resizes)
    # The simulator holds the last CPU cap each VM was given.
    last = {r["vm"]: r["amount"] for r in resizes}
    for vm, amount in last.items():
        assert backend.cpu_alloc[int(vm.removeprefix("vm-"))] == pytest.approx(amount)
    proposed = [p for rec in records for p in rec["proposed"]]  # type: ignore[attr-defined]
    assert any(p["accepted"] for p in proposed)
    assert any(rec["settled"] for rec in records)
    # Every action is in the durable log, and host 0 no longer holds all four busy VMs.
    assert ActionLog.read(tmp_path / "log.jsonl")
    assert np.count_nonzero(backend.host_of[:4] == 0) < 4


def test_a_dry_run_decides_but_changes_nothing(tmp_path: Path) -> None:
    backend = crowded_backend()
    before = backend.cpu_alloc.copy()
    records = run(
        backend, FleetSettings(sized=(Resource.CPU,), dry_run=True), tmp_path / "log.jsonl"
    )
    resizes = [r for rec in records for r in rec["resizes"]]  # type: ignore[attr-defined]
    assert resizes
    assert not any(r["applied"] for r in resizes)
    assert {r["message"] for r in resizes} == {"dry run: not applied"}
    assert any(rec["planned"] for rec in records)  # it would move VMs...
    assert not any(rec["proposed"] for rec in records)  # ...and proposes none
    assert np.array_equal(backend.cpu_alloc, before)
    assert backend.host_of.tolist() == [0, 0, 0, 0, 1, 2, 3, 3]
    assert not (tmp_path / "log.jsonl").exists() or not ActionLog.read(tmp_path / "log.jsonl")


def test_without_migrations_vms_are_sized_and_moves_only_reported(tmp_path: Path) -> None:
    backend = crowded_backend()
    records = run(
        backend, FleetSettings(sized=(Resource.CPU,), migrate=False), tmp_path / "log.jsonl"
    )
    assert any(r["applied"] for rec in records for r in rec["resizes"])  # type: ignore[attr-defined]
    assert any(rec["planned"] for rec in records)
    assert not any(rec["proposed"] for rec in records)
    assert backend.host_of.tolist() == [0, 0, 0, 0, 1, 2, 3, 3]


class WithNewcomer:
    """The simulator, plus a VM started after the loop was built."""

    name = "simulator"
    simulated = True

    def __init__(self, inner: SimulatedBackend) -> None:
        self.inner, self.started = inner, False

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.inner, attribute)

    def inventory(self) -> Inventory:
        inv = self.inner.inventory()
        if not self.started:
            return inv
        extra = VmInfo("late", inv.hosts[0].id, 1000.0, 512.0, False)
        return Inventory(inv.hosts, (*inv.vms, extra))

    def telemetry(self) -> Observation:
        obs = self.inner.telemetry()
        if not self.started:
            return obs
        row = np.full((1, len(obs.resources)), 10.0)
        return Observation(
            obs.time,
            (*obs.vm_ids, "late"),
            obs.resources,
            np.vstack([obs.demand, row]),
            np.vstack([obs.granted, row]),
        )


def test_a_vm_started_after_the_loop_is_reported_unmanaged(tmp_path: Path) -> None:
    inner = crowded_backend()
    backend = WithNewcomer(inner)
    fleet = FleetLoop(backend, FleetSettings(sized=(Resource.CPU,)), tmp_path / "log.jsonl")  # type: ignore[arg-type]
    first = fleet.record(0, fleet.loop.step(0.0))
    assert first["unmanaged"] == []
    backend.started = True
    inner.advance(300.0)
    second = fleet.record(1, fleet.loop.step(300.0))
    assert second["unmanaged"] == ["late"]
    assert all(r["vm"] != "late" for r in second["resizes"])  # type: ignore[attr-defined]
    fleet.log.close()


def test_steps_keep_to_the_interval(tmp_path: Path) -> None:
    backend = crowded_backend()
    settings = FleetSettings(interval=60.0, sized=(Resource.CPU,))
    fleet = FleetLoop(backend, settings, tmp_path / "log.jsonl")
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def on_step(k: int, step: object) -> None:
        now[0] += 5.0 if k != 1 else 70.0  # the second step overruns its interval

    assert fleet.run(4, on_step, clock=lambda: now[0], sleep=sleep) == 4
    assert slept == [55.0, 0.0, 45.0]


def test_allocations_are_in_the_backends_units(tmp_path: Path) -> None:
    backend = crowded_backend()
    fleet = FleetLoop(backend, FleetSettings(sized=(Resource.CPU,)), tmp_path / "log.jsonl")
    np.testing.assert_array_equal(fleet.loop.allocation(Resource.CPU), np.full(8, 2500.0))
    with pytest.raises(ForethoughtError, match="the loop does not size memory"):
        fleet.loop.allocation(Resource.MEMORY)
    [first] = [fleet.vms()[0]]
    assert first == {
        "vm": "vm-0", "group": "all", "host": None, "cpu_demand_mips": 0.0,
        "allocation": {"cpu": 2500.0},
    }  # fmt: skip
    fleet.log.close()


def test_an_empty_run_has_no_report() -> None:
    from forethought.migration.fleet_report import RunTimeline, render_run

    with pytest.raises(ForethoughtError, match="the run made no step"):
        render_run({}, RunTimeline(), "forethought run")


def test_a_steps_duration_is_wall_clock_time_whatever_the_runs_clock(tmp_path: Path) -> None:
    backend = crowded_backend()
    fleet = FleetLoop(backend, FleetSettings(sized=(Resource.CPU,)), tmp_path / "log.jsonl")
    durations: list[float] = []
    # The simulator's clock stands still during a step; the work still takes time.
    fleet.run(
        2,
        lambda k, step: durations.append(fleet.last_step_seconds),
        clock=lambda: 0.0,
        sleep=lambda s: None,
    )
    assert all(d > 0 for d in durations)


def test_a_simulated_vm_keeps_its_traces_name() -> None:
    base = crowded_backend()
    names = [f"web {v}" for v in range(8)]
    backend = SimulatedBackend(base.cluster, base.u, base.host_of, names=names)
    assert [v.id for v in backend.inventory().vms] == names
    assert backend.telemetry().vm_ids == tuple(names)
    with pytest.raises(ForethoughtError, match="name each of the 8 VMs once"):
        SimulatedBackend(base.cluster, base.u, base.host_of, names=["a"] * 8)


def test_a_run_plans_no_more_consolidations_than_can_start(tmp_path: Path) -> None:
    # Sixteen light VMs alone on their hosts: far more drains pay than the 16 slots and
    # 2 per host allow. The plan is what the run would start, not a wish list.
    cluster = Cluster(
        [G5], [CLOUDSIM_VM_TYPES[0]], np.zeros(40, dtype=np.int64), np.zeros(40, dtype=np.int64)
    )
    u = np.full((40, 10), 0.05)
    backend = SimulatedBackend(cluster, u, np.arange(40), interval=300.0)
    fleet = FleetLoop(backend, FleetSettings(sized=(), dry_run=True), tmp_path / "log.jsonl")
    records: list[dict[str, object]] = []
    fleet.run(3, lambda k, step: records.append(fleet.record(k, step)), sleep=lambda s: None)
    planned = [len(r["planned"]) for r in records]  # type: ignore[arg-type]
    assert max(planned) == fleet.settings.limits.total


class FirstReadUnmeasured(SimulatedBackend):
    """A hypervisor's counters: rates have no value at the first read (NaN), as libvirt's
    CPU time and I/O byte counters do; memory is a level and is measured at once."""

    reads = 0

    def telemetry(self) -> Observation:
        obs = super().telemetry()
        self.reads += 1
        if self.reads > 1:
            return obs
        blank = np.full_like(obs.demand, np.nan)
        return replace(obs, demand=blank, granted=blank)


def test_nothing_is_decided_on_a_first_read_that_measured_nothing(tmp_path: Path) -> None:
    # Light VMs alone on their hosts: measured at zero they would all be consolidated,
    # and throttled, at once. Unmeasured, they are left as they are until measured.
    cluster = Cluster(
        [G5], [CLOUDSIM_VM_TYPES[0]], np.zeros(8, dtype=np.int64), np.zeros(8, dtype=np.int64)
    )
    backend = FirstReadUnmeasured(cluster, np.full((8, 10), 0.05), np.arange(8))
    fleet = FleetLoop(backend, FleetSettings(sized=(Resource.CPU,)), tmp_path / "log.jsonl")
    records: list[dict[str, object]] = []
    demand: list[object] = []

    def on_step(k: int, step: object) -> None:
        records.append(fleet.record(k, step))  # type: ignore[arg-type]
        demand.append(fleet.vms()[0]["cpu_demand_mips"])
        backend.advance(300.0)

    fleet.run(3, on_step, clock=lambda: 0.0, sleep=lambda s: None)
    first, second = records[0], records[1]
    assert first["resizes"] == []
    assert first["planned"] == []
    assert math.isnan(float(str(first["demand_mips"])))  # not a made-up zero
    assert demand[0] is None  # not measured: no figure, rather than a false one
    assert demand[1] == pytest.approx(0.05 * 2500.0)
    assert second["planned"]  # measured: the light hosts are consolidated


def test_each_vm_starts_from_what_it_holds_not_from_its_maximum(tmp_path: Path) -> None:
    # A VM with 1 of its 4 vCPUs and 1 of its 4 GiB: its allocation is what it has.
    base = crowded_backend()
    shrunk = replace(base.inventory().vms[0], cpu_mips=625.0, memory_mb=250.0)

    class Shrunk(SimulatedBackend):
        def inventory(self) -> Inventory:
            inv = super().inventory()
            return Inventory(inv.hosts, (shrunk, *inv.vms[1:]))

    backend = Shrunk(base.cluster, base.u, base.host_of)
    settings = FleetSettings(sized=(Resource.CPU, Resource.MEMORY), dry_run=True)
    fleet = FleetLoop(backend, settings, tmp_path / "log.jsonl")
    assert fleet.loop.allocation(Resource.CPU)[0] == pytest.approx(625.0)
    assert fleet.loop.allocation(Resource.MEMORY)[0] == pytest.approx(250.0)
    assert fleet.loop.allocation(Resource.CPU)[1] == pytest.approx(2500.0)  # at its maximum


def test_an_interval_too_short_for_the_policys_horizon_is_refused_before_the_run(
    tmp_path: Path,
) -> None:
    # A six-hour horizon at one-second steps: 21,600 steps ahead, their square per VM.
    policy = parse_policy(
        "version: 1\ndefaults:\n  cpu: {horizon_minutes: 360}\ngroups:\n"
        '  - {name: all, match: {name: "*"}}\n',
        "p.yaml",
    )
    settings = FleetSettings(interval=1.0, sized=(Resource.CPU,))
    log = tmp_path / "log.jsonl"
    with pytest.raises(ForethoughtError, match=r"step every (\d+) s or more") as refused:
        FleetLoop(crowded_backend(), settings, log, policy)
    assert "looks up to 21,600 steps ahead" in str(refused.value)
    assert not log.exists()  # refused before the log was touched
    shortest = int(refused.value.args[0].split("step every ")[1].split()[0])
    FleetLoop(crowded_backend(), replace(settings, interval=float(shortest)), log, policy)


def test_a_log_of_another_fleets_migrations_is_not_taken_over(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"time":0,"action":"act-1","vm":"web","source":"kvm-a","target":"kvm-b",'
        '"state":"planned"}\n'
    )
    settings = FleetSettings(sized=(Resource.CPU,))
    with pytest.raises(ForethoughtError, match="another fleet's or a simulation's log"):
        FleetLoop(crowded_backend(), settings, log)
    ActionLog.open(log, exclusive=True).close()  # the refusal let go of the log
    dry = FleetLoop(crowded_backend(), replace(settings, dry_run=True), log)  # only reads
    assert any("unsettled migration(s) of another run" in n for n in dry.notes)


def test_a_simulated_run_can_run_its_migrations_to_their_end(tmp_path: Path) -> None:
    backend = crowded_backend()
    fleet = FleetLoop(backend, FleetSettings(sized=(Resource.CPU,)), tmp_path / "log.jsonl")
    ended: list[object] = []

    def on_step(k: int, step: object) -> None:
        pass  # the clock stands still: what a step starts is still under way at its end

    def finish() -> None:
        ended.extend(fleet.drain(backend.advance))

    # One step: the moves it starts at once (two, off the crowded host) are under way.
    fleet.run(1, on_step, clock=lambda: 0.0, sleep=lambda s: None, finish=finish)
    assert len(ended) == 2
    assert fleet.orchestrator.in_flight == {}
    assert ActionLog.open(tmp_path / "log.jsonl").open_actions() == []
