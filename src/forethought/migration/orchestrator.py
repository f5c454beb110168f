"""The migration orchestrator: carries out a planner's proposals safely, and says how it went.

A proposal is only a wish, made from a forecast; by the time it is acted on the cluster
may have moved. So every proposal passes a pre-condition against the backend's inventory
and the orchestrator's own limits before it starts, every completion is checked against
the inventory (the post-condition) before it counts, and every failure, refusal or
timeout ends with the VM verified back on its source. Each step is written to the
:class:`~forethought.migration.log.ActionLog` before the next is taken, so a restarted
orchestrator resumes from the log without losing a migration.

Migrations across sites share each inter-site link's *tunnel*: a bandwidth reservation
sized to the migrations crossing it (their needs, capped by the link and a configured
ceiling, at least a floor) and split equally among them; each migration is started with
its share as a cap.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from forethought.cluster.backend import (
    Backend,
    HostInfo,
    Inventory,
    Migrate,
    MigrationState,
    MigrationStatus,
    VmInfo,
)
from forethought.core.errors import ForethoughtError
from forethought.migration.log import ActionLog, ActionRecord, ActionState
from forethought.migration.network import MIGRATION_SHARE, NetworkMap

Link = tuple[str, str]


@dataclass(frozen=True)
class Proposal:
    """A move the planner wants: ``benefit`` orders proposals (highest first), ``pressure``
    breaks ties; ``predicted`` is what the planner expects of it, kept to learn from."""

    vm: str
    source: str
    target: str
    benefit: float
    pressure: float
    ram_mb: float
    reason: str = ""
    predicted: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.benefit) and math.isfinite(self.pressure)):
            raise ForethoughtError(
                f"proposal for {self.vm}: benefit and pressure must be finite, "
                f"got {self.benefit}, {self.pressure}"
            )
        if not (self.ram_mb >= 0 and math.isfinite(self.ram_mb)):
            raise ForethoughtError(
                f"proposal for {self.vm}: ram_mb must be >= 0, got {self.ram_mb}"
            )


@dataclass(frozen=True)
class TunnelBounds:
    """Least and most bandwidth (Mbit/s) an inter-site link's migration tunnel may have."""

    floor_mbps: float = 0.0
    ceiling_mbps: float = math.inf

    def __post_init__(self) -> None:
        if not 0 <= self.floor_mbps <= self.ceiling_mbps:
            raise ForethoughtError(
                f"tunnel bounds: need 0 <= floor <= ceiling, got {self.floor_mbps}, "
                f"{self.ceiling_mbps}"
            )


@dataclass(frozen=True)
class Limits:
    """How much the orchestrator may do at once.

    ``per_host`` counts a host's migrations in and out; ``per_link`` those crossing one
    inter-site link; ``total`` all of them. A migration still running
    ``timeout_factor`` times its expected duration after its expected end is aborted.
    ``tunnel`` bounds every link's tunnel, ``tunnels`` overrides it link by link (either
    order of the two site names).
    """

    per_host: int = 2
    per_link: int = 4
    total: int = 8
    timeout_factor: float = 0.5
    tunnel: TunnelBounds = TunnelBounds()
    tunnels: Mapping[Link, TunnelBounds] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if min(self.per_host, self.per_link, self.total) < 1:
            raise ForethoughtError(
                f"limits: per_host, per_link and total must be >= 1, got "
                f"{self.per_host}, {self.per_link}, {self.total}"
            )
        if not (self.timeout_factor >= 0 and math.isfinite(self.timeout_factor)):
            raise ForethoughtError(
                f"limits: timeout_factor must be >= 0, got {self.timeout_factor}"
            )

    def bounds(self, link: Link) -> TunnelBounds:
        a, b = link
        return self.tunnels.get((a, b), self.tunnels.get((b, a), self.tunnel))


@dataclass(frozen=True)
class Decision:
    """What :meth:`Orchestrator.submit` did with one proposal."""

    action: str
    proposal: Proposal
    accepted: bool
    reason: str = ""  # why it was rejected
    migration: str = ""  # the backend's id, once started
    bandwidth_mbps: float | None = None  # its tunnel share; None within a site
    expected_end: float | None = None


@dataclass(frozen=True)
class Outcome:
    """How an action ended: COMPLETED, ROLLED_BACK, FAILED (the VM could not be found
    safe on its source), or REJECTED (a plan a restart found never started).

    ``measured`` holds the facts to set beside ``predicted``: ``expected_seconds`` (the
    backend's estimate), ``actual_seconds``, ``predicted_seconds`` (the network map's
    estimate when planned), ``bandwidth_mbps`` (the tunnel share), ``achieved_mbps``.
    """

    action: str
    proposal: Proposal
    state: ActionState
    message: str
    migration: str = ""
    measured: Mapping[str, float] = field(default_factory=dict)

    @property
    def predicted(self) -> Mapping[str, float]:
        return self.proposal.predicted

    @property
    def expected_seconds(self) -> float | None:
        return self.measured.get("expected_seconds")

    @property
    def actual_seconds(self) -> float | None:
        return self.measured.get("actual_seconds")


class Phase(Enum):
    RUNNING = "running"  # started; the backend is asked about it on every poll
    ROLLING_BACK = "rolling_back"  # aborted before a restart: the VM remains to be verified
    UNCONFIRMED = "unconfirmed"  # planned before a restart, start never recorded


@dataclass
class Flight:
    """An action the orchestrator is responsible for until it settles."""

    action: str
    proposal: Proposal
    phase: Phase
    link: Link | None
    migration: str = ""
    started: float = 0.0
    expected_end: float = 0.0
    need_mbps: float = 0.0
    bandwidth_mbps: float | None = None
    predicted_seconds: float = math.nan
    overdue: str = ""  # why it was aborted, once it was for running late

    @property
    def counts(self) -> bool:
        """Whether it holds a concurrency slot (an unconfirmed one may be migrating)."""
        return self.phase is not Phase.ROLLING_BACK


class Orchestrator:
    """Starts, watches and settles migrations within ``limits``, logging every step.

    Open actions found in ``log`` (a restart) are taken over and settled by :meth:`poll`.
    """

    def __init__(
        self,
        backend: Backend,
        network: NetworkMap,
        log: ActionLog,
        limits: Limits | None = None,
    ) -> None:
        self.backend, self.network, self.log = backend, network, log
        self.limits = limits or Limits()
        for a, b in self.limits.tunnels:
            network.link_key(a, b)  # raises on a link the network does not have
        self._flights: dict[str, Flight] = {}
        for record in log.open_actions():
            self._flights[record.action] = self._recover(record)

    @classmethod
    def resume(
        cls,
        backend: Backend,
        network: NetworkMap,
        log_path: str | Path,
        limits: Limits | None = None,
    ) -> Orchestrator:
        """An orchestrator that takes over from the log at ``log_path``: the migrations it
        records as started and unfinished are polled (and settled) by the next :meth:`poll`.
        """
        return cls(backend, network, ActionLog.open(log_path), limits)

    def close(self) -> None:
        self.log.close()

    @property
    def in_flight(self) -> Mapping[str, Flight]:
        return self._flights

    def free_slots(self) -> int:
        """Migrations that could start now within the total limit (the per-host and
        per-link limits may still refuse some)."""
        held = sum(f.counts for f in self._flights.values())
        return max(0, self.limits.total - held)

    # -- submitting ------------------------------------------------------------------
    def submit(self, proposals: Iterable[Proposal], now: float) -> list[Decision]:
        """Start what passes the pre-condition, highest benefit first; one decision per
        proposal, in that order.

        Once the total limit is reached, the rest are declined with that reason and no
        action id: they never became actions, so the log does not record them (a planner
        on a large fleet offers many more moves than the limit lets start, and logging
        each would grow the log by thousands of records a day).
        """
        ordered = sorted(proposals, key=lambda p: (-p.benefit, -p.pressure))
        inv = self.backend.inventory()
        vms = {v.id: v for v in inv.vms}
        hosts = {h.id: h for h in inv.hosts}
        running = [f for f in self._flights.values() if f.counts]
        load = _Load.of(running)
        batch: dict[str, str] = {}  # VM -> action in this batch
        decisions: dict[str, Decision] = {}  # by action, filled in benefit order
        accepted: list[Flight] = []
        for p in ordered:
            if load.total >= self.limits.total:
                full = f"{load.total} migrations in progress (limit {self.limits.total})"
                decisions[f"declined-{len(decisions)}"] = Decision("", p, False, full)
                continue
            action = self.log.new_id()
            decisions[action] = Decision(action, p, False)  # a place in the order
            self._write(action, p, ActionState.PLANNED, now, facts=_plan_facts(p))
            try:
                flight = self._precondition(action, p, vms, hosts, batch, load)
            except _PreconditionError as refused:
                self._write(action, p, ActionState.REJECTED, now, message=str(refused))
                decisions[action] = Decision(action, p, False, str(refused))
                continue
            batch[p.vm] = action
            load.add(flight)
            accepted.append(flight)

        shares = self._shares(running, accepted)
        for flight in accepted:
            decisions[flight.action] = self._start(flight, shares.get(flight.link), now)
        return list(decisions.values())

    def _precondition(
        self,
        action: str,
        p: Proposal,
        vms: Mapping[str, VmInfo],
        hosts: Mapping[str, HostInfo],
        batch: Mapping[str, str],
        load: _Load,
    ) -> Flight:
        """The flight ``p`` would become, or _PreconditionError saying which condition fails."""
        vm = vms.get(p.vm)
        if vm is None:
            raise _PreconditionError(f"{p.vm} does not exist")
        mine = next((f.action for f in self._flights.values() if f.proposal.vm == p.vm), None)
        if mine is not None:
            raise _PreconditionError(f"{p.vm} already has action {mine} in flight")
        if p.vm in batch:
            raise _PreconditionError(f"{p.vm} is already proposed in this batch ({batch[p.vm]})")
        if vm.host != p.source:
            raise _PreconditionError(f"{p.vm} runs on {vm.host}, not on {p.source}")
        if vm.migrating:
            raise _PreconditionError(f"{p.vm} is already migrating")
        if p.target == p.source:
            raise _PreconditionError(f"target {p.target} is the host {p.vm} runs on")
        target = hosts.get(p.target)
        if target is None:
            raise _PreconditionError(f"target {p.target} does not exist")
        if not target.powered_on:
            raise _PreconditionError(f"target {p.target} is powered off")
        try:
            s, t = self.network.index(p.source), self.network.index(p.target)
            link = self.network.link_of(s, t)
        except ForethoughtError as e:
            raise _PreconditionError(f"network map: {e}") from None
        if link is not None and self.network.is_down(*link):
            raise _PreconditionError(f"link {link[0]}-{link[1]} is down")
        if load.total >= self.limits.total:
            raise _PreconditionError(
                f"{load.total} migrations in progress (limit {self.limits.total})"
            )
        for host in (p.source, p.target):
            if load.hosts[host] >= self.limits.per_host:
                raise _PreconditionError(
                    f"{host} has {load.hosts[host]} migrations in progress "
                    f"(limit {self.limits.per_host})"
                )
        if link is not None and load.links[link] >= self.limits.per_link:
            raise _PreconditionError(
                f"link {link[0]}-{link[1]} carries {load.links[link]} migrations "
                f"(limit {self.limits.per_link})"
            )
        return Flight(
            action,
            p,
            Phase.RUNNING,
            link,
            need_mbps=float(self.network.migration_mbps(s, t)),
            predicted_seconds=float(self.network.transfer_seconds(vm.memory_mb, s, t)),
        )

    def _shares(self, running: list[Flight], new: list[Flight]) -> dict[Link | None, float]:
        """Each link's tunnel split equally among all its migrations, new ones included.

        A migration keeps the share it started with: the backend protocol cannot re-rate a
        live migration, so the split reaches the equal one as older migrations finish.
        """
        crossing: dict[Link, list[Flight]] = {}
        for f in running + new:
            if f.link is not None and f.phase is Phase.RUNNING:
                crossing.setdefault(f.link, []).append(f)
        return {
            link: self._capacity(link, [f.need_mbps for f in fs]) / len(fs)
            for link, fs in crossing.items()
        }

    def _capacity(self, link: Link, needs: list[float]) -> float:
        if self.network.is_down(*link):
            return 0.0
        bounds = self.limits.bounds(link)
        if not needs:
            return bounds.floor_mbps
        usable = self.network.link_bandwidth(*link) * MIGRATION_SHARE
        return max(bounds.floor_mbps, min(sum(needs), usable, bounds.ceiling_mbps))

    def tunnel_capacity(self) -> dict[Link, float]:
        """Every inter-site link's tunnel (Mbit/s) for the migrations crossing it now."""
        needs: dict[Link, list[float]] = {link: [] for link in self.network.links}
        for f in self._flights.values():
            if f.link is not None and f.phase is Phase.RUNNING:
                needs[f.link].append(f.need_mbps)
        return {link: self._capacity(link, n) for link, n in needs.items()}

    def _start(self, flight: Flight, share: float | None, now: float) -> Decision:
        p = flight.proposal
        try:
            status = self.backend.migrate(Migrate(p.vm, p.target, p.reason, share))
        except ForethoughtError as e:  # backends map their refusals to ForethoughtError
            message = f"backend refused: {e}"
            self._write(flight.action, p, ActionState.REJECTED, now, message=message)
            return Decision(flight.action, p, False, message)
        flight.migration, flight.bandwidth_mbps = status.id, share
        flight.started, flight.expected_end = status.started, status.expected_end
        self._flights[flight.action] = flight
        facts = {
            **_plan_facts(p),
            "started": status.started,
            "expected_end": status.expected_end,
            "need_mbps": flight.need_mbps,
            "predicted_seconds": flight.predicted_seconds,
        }
        if share is not None:
            facts["bandwidth_mbps"] = share
        self._write(flight.action, p, ActionState.STARTED, now, migration=status.id, facts=facts)
        return Decision(flight.action, p, True, "", status.id, share, status.expected_end)

    # -- watching --------------------------------------------------------------------
    def poll(self, now: float) -> list[Outcome]:
        """Ask the backend about every action in flight; settle those that ended (or ran
        past their timeout, which are aborted first). Returns the settled ones."""
        ended: list[tuple[Flight, MigrationStatus | None]] = []
        for f in list(self._flights.values()):
            if f.phase is not Phase.RUNNING:
                ended.append((f, None))
                continue
            try:
                status = self.backend.migration(f.migration)
            except ForethoughtError:
                ended.append((f, None))  # the backend lost it: the inventory will tell
                continue
            if status.state is MigrationState.RUNNING and self._overdue(f, now):
                f.overdue = (
                    f"overdue: expected to end at {f.expected_end:.1f} s, still running "
                    f"at {now:.1f} s"
                )
                try:
                    status = self.backend.abort(f.migration)
                except ForethoughtError:
                    continue  # try again on the next poll
            if status.state is not MigrationState.RUNNING:
                ended.append((f, status))
        if not ended:
            return []
        inv = self.backend.inventory()  # after the aborts, so it shows their effect
        outcomes = [self._settle(f, status, inv, now) for f, status in ended]
        return [o for o in outcomes if o is not None]

    def _overdue(self, f: Flight, now: float) -> bool:
        slack = self.limits.timeout_factor * max(f.expected_end - f.started, 0.0)
        return now > f.expected_end + slack

    def _settle(
        self, f: Flight, status: MigrationStatus | None, inv: Inventory, now: float
    ) -> Outcome | None:
        """Log how ``f`` ended; None when it has not (its VM is still migrating)."""
        p = f.proposal
        vm = next((v for v in inv.vms if v.id == p.vm), None)
        if f.phase is Phase.UNCONFIRMED:
            return self._confirm(f, vm, now)
        if f.phase is Phase.ROLLING_BACK:
            if vm is not None and vm.migrating:
                return None  # the backend is still undoing it; look again next poll
            return self._rollback(f, vm, inv, now, ActionState.ABORTED)
        if status is None and vm is not None and vm.migrating:
            # The backend does not know the migration (an earlier run started it) but the
            # VM is still moving: how it ends is not known yet, so look again next poll,
            # up to the timeout a migration of ours would be aborted at.
            if not self._overdue(f, now):
                return None
            lost = (
                f"still migrating at {now:.1f} s, past its timeout, and unknown to this "
                "backend (an earlier run started it): left to the hypervisor, check the VM"
            )
            self._write(f.action, p, ActionState.FAILED, now, message=lost, migration=f.migration)
            del self._flights[f.action]
            return Outcome(f.action, p, ActionState.FAILED, lost, f.migration)
        if status is None or status.state is MigrationState.COMPLETED:
            failure = _postcondition(p, vm)
            if failure is None:
                return self._complete(f, status, vm, now)
            if status is None:
                failure = f"the backend no longer knows {f.migration}; {failure}"
            self._write(
                f.action, p, ActionState.FAILED, now, message=failure, migration=f.migration
            )
            return self._rollback(f, vm, inv, now, ActionState.FAILED)
        if vm is not None and vm.migrating:
            return None  # the backend is still undoing it; look again next poll
        state = (
            ActionState.ABORTED if status.state is MigrationState.ABORTED else ActionState.FAILED
        )
        message = f.overdue or status.message or status.state.value
        self._write(f.action, p, state, now, message=message, migration=f.migration)
        return self._rollback(f, vm, inv, now, state)

    def _complete(
        self, f: Flight, status: MigrationStatus | None, vm: VmInfo | None, now: float
    ) -> Outcome:
        p = f.proposal
        ended = status.ended if status is not None and status.ended is not None else now
        measured = {
            "started": f.started,
            "ended": ended,
            "expected_seconds": f.expected_end - f.started,
            "actual_seconds": ended - f.started,
            "predicted_seconds": f.predicted_seconds,
        }
        if f.bandwidth_mbps is not None:
            measured["bandwidth_mbps"] = f.bandwidth_mbps
        megabytes = vm.memory_mb if vm is not None else p.ram_mb
        source, target = self.network.index(p.source), self.network.index(p.target)
        # The transfer's own time: the link's latency is waited out whatever the rate.
        latency = float(self.network.latency_ms(source, target)) / 1000.0
        transfer = measured["actual_seconds"] - (latency if math.isfinite(latency) else 0.0)
        if transfer > 0 and megabytes > 0:
            measured["achieved_mbps"] = megabytes * 8.0 / transfer
            try:
                estimate = self.network.observe(
                    source,
                    target,
                    megabytes,
                    measured["actual_seconds"],
                    cap_mbps=f.bandwidth_mbps,
                )
            except ForethoughtError:
                estimate = None  # an implausible measurement teaches nothing
            if estimate is not None:
                measured["link_estimate_mbps"] = estimate
        self._write(
            f.action,
            p,
            ActionState.COMPLETED,
            now,
            message=f"{p.vm} runs on {p.target}",
            migration=f.migration,
            facts=measured,
        )
        del self._flights[f.action]
        return Outcome(f.action, p, ActionState.COMPLETED, "", f.migration, measured)

    def _rollback(
        self,
        f: Flight,
        vm: VmInfo | None,
        inv: Inventory,
        now: float,
        logged: ActionState,
    ) -> Outcome:
        """Verify the VM is back, running, on its source: ROLLED_BACK if so, else FAILED
        (``logged`` is the state the action is in now, FAILED or ABORTED)."""
        p = f.proposal
        del self._flights[f.action]
        powered = {h.id: h.powered_on for h in inv.hosts}
        if vm is not None and vm.host == p.source and not vm.migrating and powered.get(p.source):
            message = f"{p.vm} runs on its source {p.source}"
            self._write(
                f.action, p, ActionState.ROLLED_BACK, now, message=message, migration=f.migration
            )
            return Outcome(f.action, p, ActionState.ROLLED_BACK, message, f.migration)
        where = "is gone" if vm is None else f"is on {vm.host}, migrating={vm.migrating}"
        message = f"rollback impossible: {p.vm} {where}"
        if logged is not ActionState.FAILED:
            self._write(
                f.action, p, ActionState.FAILED, now, message=message, migration=f.migration
            )
        return Outcome(f.action, p, ActionState.FAILED, message, f.migration)

    def _confirm(self, f: Flight, vm: VmInfo | None, now: float) -> Outcome | None:
        """Settle a plan whose start a restart never saw recorded, from the inventory: the
        backend may have started it just before the crash. None while its VM migrates."""
        p = f.proposal
        if vm is not None and vm.migrating:
            return None  # started after all (or by someone else): wait for it to end
        del self._flights[f.action]
        if vm is not None and vm.host == p.source:
            message = "not started: the orchestrator stopped before recording a start"
            self._write(f.action, p, ActionState.REJECTED, now, message=message)
            return Outcome(f.action, p, ActionState.REJECTED, message)
        if vm is not None and vm.host == p.target:
            self._write(f.action, p, ActionState.STARTED, now, message="found moved on restart")
            message = "completed while the orchestrator was down"
            self._write(f.action, p, ActionState.COMPLETED, now, message=message)
            return Outcome(f.action, p, ActionState.COMPLETED, message)
        where = "is gone" if vm is None else f"is on {vm.host}"
        message = f"outcome unknown after a restart: {p.vm} {where}"
        self._write(f.action, p, ActionState.FAILED, now, message=message)
        return Outcome(f.action, p, ActionState.FAILED, message)

    # -- the log ---------------------------------------------------------------------
    def _write(
        self,
        action: str,
        p: Proposal,
        state: ActionState,
        now: float,
        *,
        message: str = "",
        migration: str = "",
        facts: Mapping[str, float] | None = None,
    ) -> None:
        self.log.append(
            ActionRecord(
                time=now,
                action=action,
                vm=p.vm,
                source=p.source,
                target=p.target,
                state=state,
                reason=p.reason,
                message=message,
                migration=migration,
                predicted=dict(p.predicted),
                facts=dict(facts or {}),
            )
        )

    def _recover(self, record: ActionRecord) -> Flight:
        """The flight an open action of the log stands for."""
        facts = record.facts
        proposal = Proposal(
            record.vm,
            record.source,
            record.target,
            facts.get("benefit", 0.0),
            facts.get("pressure", 0.0),
            facts.get("ram_mb", 0.0),
            record.reason,
            dict(record.predicted),
        )
        phase = {
            ActionState.PLANNED: Phase.UNCONFIRMED,
            ActionState.STARTED: Phase.RUNNING,
            ActionState.ABORTED: Phase.ROLLING_BACK,
        }[record.state]
        try:
            link = self.network.link_of(
                self.network.index(record.source), self.network.index(record.target)
            )
        except ForethoughtError:
            link = None
        # A started record holds what the start knew; an aborted one only needs its VM
        # verified, and a planned one its VM looked for, so their timings do not matter.
        return Flight(
            record.action,
            proposal,
            phase,
            link,
            migration=record.migration,
            started=facts.get("started", record.time),
            expected_end=facts.get("expected_end", record.time),
            need_mbps=facts.get("need_mbps", 0.0),
            bandwidth_mbps=facts.get("bandwidth_mbps"),
            predicted_seconds=facts.get("predicted_seconds", math.nan),
        )


class _PreconditionError(Exception):
    """A pre-condition that does not hold; its message says which."""


@dataclass
class _Load:
    """Migrations holding slots, by host and by link."""

    hosts: Counter[str]
    links: Counter[Link]
    total: int = 0

    @classmethod
    def of(cls, flights: Iterable[Flight]) -> _Load:
        load = cls(Counter(), Counter())
        for f in flights:
            load.add(f)
        return load

    def add(self, f: Flight) -> None:
        self.hosts[f.proposal.source] += 1
        self.hosts[f.proposal.target] += 1
        if f.link is not None:
            self.links[f.link] += 1
        self.total += 1


def _plan_facts(p: Proposal) -> dict[str, float]:
    return {"benefit": p.benefit, "pressure": p.pressure, "ram_mb": p.ram_mb}


def _postcondition(p: Proposal, vm: VmInfo | None) -> str | None:
    """Why the inventory does not show the move done, or None when it does."""
    if vm is None:
        return f"{p.vm} is missing from the inventory"
    if vm.host != p.target:
        return f"{p.vm} runs on {vm.host}, not on the target {p.target}"
    if vm.migrating:
        return f"{p.vm} is still migrating"
    return None
