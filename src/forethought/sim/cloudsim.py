"""A data centre that reproduces CloudSim 3.0.3's power-aware simulation and accounting.

The CloudSim PlanetLab experiments (Beloglazov and Buyya 2012) are the yardstick of the
consolidation literature, so this mode follows CloudSim's mechanics, including the ones
that look like accidents, because its published numbers depend on them:

- every ``interval`` seconds (at 300.1, 600.1, ... s) each VM requests its MIPS times its
  trace utilisation, linearly interpolated; a host that is over-subscribed scales every
  request by one factor and floors it; requests are capped at one core's MIPS;
- a VM that requests 0 MIPS at an update while not migrating is destroyed for good
  (PowerDatacenter removes "completed" VMs), so a trace VM with two consecutive zero
  samples leaves the data centre; this is what sets the DVFS baseline's energy;
- a migrating VM gets 90 % of its request on the source and 10 % on the target, where its
  full request still counts as demanded (which makes every incoming migration an SLA
  violation of the target), and it takes RAM / (half the host bandwidth) seconds; the
  source counts it at its full request, the target at the 10 %, and only the source
  records its state entry; a VM moved twice in one step sits on both targets;
- the policy step (overload test, minimum-migration-time selection, power-aware best-fit
  decreasing placement, then consolidation of the least-loaded hosts) sees the hosts'
  utilisation as of the last update, while placement within one step only adds the VMs
  it placed to the load tests, not to the power estimate;
- energy is the trapezoid of the SPECpower curve between consecutive events, nothing for
  a host that was at zero load at the start of the frame; the SLA figures are ratios of
  sums over the hosts' and VMs' state histories (see :mod:`forethought.sim.metrics`).

Everything is vectorised over VMs and hosts; placement is a greedy sequential algorithm,
so it loops over the VMs being placed, each scored against all hosts at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from forethought.allocation.base import Recommender
from forethought.allocation.replay import AllocationScorer
from forethought.cluster.model import Cluster
from forethought.cluster.power import power_of
from forethought.core.clock import steps_per_day
from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray
from forethought.migration.planner import ClusterView, PredictivePlanner
from forethought.sim.metrics import Accumulator, SimResult
from forethought.sim.overload import LocalRegression, Oracle, OverloadTest, StaticThreshold

HISTORY = 30  # utilisation values each VM keeps (CloudSim's PowerVm.HISTORY_LENGTH)
OFFSET = 0.1  # CloudSim's updates fire 0.1 s after each interval boundary
IN_SHARE = 0.1  # share of a migrating VM's request granted on the target
OUT_SHARE = 0.9  # share granted on the source while it migrates


def _f(values: np.ndarray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


@dataclass
class _State:
    """What one update of all hosts computes: requests, allocations, host load."""

    req: FloatArray  # requested MIPS per VM (capped only by an allocation, if one runs)
    alloc_src: FloatArray  # MIPS granted on the VM's own (source) host
    alloc_dst: FloatArray  # MIPS granted on the target, where migrating
    host_mips: FloatArray  # utilised MIPS per host (CloudSim's getUtilizationMips)
    host_req: FloatArray  # requested MIPS per host
    sched: FloatArray  # MIPS counted against each host's scheduler
    demand: FloatArray  # what each VM's workload wants, before any allocation cap


class CloudSimDataCentre:
    """Runs one day of a trace through CloudSim's power-aware data centre.

    ``utilisation`` is (vms, samples) in [0, 1] at ``interval`` seconds. ``test`` is the
    overload test of a migration policy (MMT selection and PABFD placement follow), or None
    for the ``dvfs`` baseline: first-fit placement and no migration at all. A ``planner``
    (forethought's predictive policy) replaces the test, selection and placement; the
    data centre's mechanics and accounting stay CloudSim's.
    """

    def __init__(
        self,
        cluster: Cluster,
        utilisation: FloatArray,
        test: OverloadTest | None,
        *,
        interval: float = 300.0,
        name: str = "",
        planner: PredictivePlanner | None = None,
        allocator: Recommender | None = None,
        allocation_warmup: int | None = None,
        vm_names: Sequence[str] | None = None,
        allocation_groups: Sequence[str] | None = None,
    ) -> None:
        # Names for messages about one VM; its index in the trace where none are given.
        self.vm_names = list(vm_names) if vm_names is not None else None
        if test is not None and planner is not None:
            raise ForethoughtError("a run takes an overload test or a planner, not both")
        u = np.asarray(utilisation, dtype=np.float64)
        if u.ndim != 2 or u.shape[0] != cluster.n_vms:
            raise ForethoughtError(
                f"utilisation must be (vms={cluster.n_vms}, samples); got {u.shape}"
            )
        if u.shape[1] < 2:
            raise ForethoughtError("the trace needs at least two samples")
        if not np.isfinite(u).all():
            v, k = np.argwhere(~np.isfinite(u))[0]
            raise ForethoughtError(f"utilisation of VM {v} at sample {k} is not a number")
        if (u < 0).any() or (u > 1).any():
            v, k = np.argwhere((u < 0) | (u > 1))[0]
            raise ForethoughtError(
                f"utilisation of VM {v} at sample {k} is {u[v, k]:g}: must be in [0, 1]"
            )
        if not (np.isfinite(interval) and interval > 0):
            raise ForethoughtError(
                f"the interval must be a positive number of seconds; got {interval}"
            )
        self.cluster, self.test, self.interval = cluster, test, interval
        self.planner = planner
        # An allocation manager inside the run: each VM's CPU is capped at the allocation
        # it decided from the past (a CPU limit), and its figures are scored as
        # `forethought rightsize` scores them. CloudSim's figures then see the capped
        # requests; demand above a cap is the allocation's unmet share.
        self.allocator = allocator
        self.allocation_groups = allocation_groups  # each VM's policy group, for its figures
        self.alloc_pct = np.full(cluster.n_vms, 100.0)
        steps = u.shape[1]
        day = steps_per_day(interval)
        warm = min(day, steps // 2) if allocation_warmup is None else allocation_warmup
        if not 0 <= warm < steps:
            raise ForethoughtError(
                f"the allocation warm-up ({warm} steps) must be shorter than the trace ({steps})"
            )
        self.scorer = AllocationScorer(cluster.n_vms, warm, int(interval))
        self.name = name or (test.name if test is not None else "dvfs")
        # CloudSim appends a copy of the last sample so the last interval interpolates.
        self.u = np.concatenate([u, u[:, -1:]], axis=1)
        self.total = cluster.host_column("mips")
        self.pe = cluster.host_column("pe_mips")
        self.host_ram = cluster.host_column("ram_mb")
        self.host_bw = cluster.host_column("bandwidth_mbps")
        self.kind = cluster.host_type
        self.table = cluster.power_table
        self.mips = cluster.vm_column("mips")
        self.ram = cluster.vm_column("ram_mb")
        self.bw = cluster.vm_column("bandwidth_mbps")
        n, H = cluster.n_vms, cluster.n_hosts
        self.host_of = np.full(n, -1, dtype=np.int64)
        self.target = np.full(n, -1, dtype=np.int64)
        self.via = np.full(n, -1, dtype=np.int64)  # an intermediate target, see _update
        self.mig_end = np.full(n, np.inf)
        self.seq = np.arange(n, dtype=np.int64)  # order of each VM in its host's list
        self._next_seq = n
        self.history = np.zeros((n, HISTORY))  # VM utilisation, newest first
        # CloudSim's PowerDatacenter destroys every VM that is not migrating and requests
        # 0 MIPS at an update (getCompletedVms); such a VM never comes back.
        self.alive = np.ones(n, dtype=bool)
        self.migrations = 0
        self.policy_seconds: list[float] = []
        self._hosts = np.arange(H)

    # -- state -------------------------------------------------------------------------
    def utilisation_at(self, t: float) -> FloatArray:
        """Each VM's utilisation at time t, linearly interpolated between samples."""
        pos = t / self.interval
        k = int(np.floor(pos))
        if pos == k:
            return np.asarray(self.u[:, min(k, self.u.shape[1] - 1)])
        k = min(k, self.u.shape[1] - 2)
        frac = pos - k
        return np.asarray(self.u[:, k] + (self.u[:, k + 1] - self.u[:, k]) * frac)

    def _update(self, t: float) -> _State:
        H = self.cluster.n_hosts
        demand = np.where(self.alive, self.mips * self.utilisation_at(t), 0.0)
        req = demand
        if self.allocator is not None:
            req = np.minimum(demand, self.alloc_pct / 100.0 * self.mips)
        src = self.host_of
        moving = self.target >= 0
        cap_src = np.minimum(req, self.pe[src])
        sched = np.bincount(src, cap_src, H)
        # A VM sits, while it migrates, on its source and on every host it is migrating to
        # (two when one step moved it twice: off an overloaded host, then off the
        # under-loaded host it had just been given).
        ins = []
        for tgt in (self.target, self.via):
            m = np.flatnonzero(tgt >= 0)
            d = tgt[m]
            cap = np.minimum(req[m], self.pe[d])
            sched += np.bincount(d, IN_SHARE * cap, H)
            ins.append((m, d, cap))
        over = sched > self.total
        factor = np.where(over, self.total / np.where(sched > 0, sched, 1.0), 1.0)
        out = np.where(moving, OUT_SHARE, 1.0)
        alloc_src = np.where(over[src], np.floor(cap_src * factor[src] * out), cap_src * out)
        # A VM in migration counts at allocation / 0.9 on its source (its full request) and
        # at its allocation (10 %) on a target (HostDynamicWorkload.updateVmsProcessing).
        host_mips = np.bincount(src, np.where(moving, alloc_src / OUT_SHARE, alloc_src), H)
        host_req = np.bincount(src, req, H)
        alloc_dst = np.zeros_like(req)
        for k, (m, d, cap) in enumerate(ins):
            a = np.where(over[d], np.floor(cap * IN_SHARE * factor[d]), cap * IN_SHARE)
            host_mips += np.bincount(d, a, H)
            host_req += np.bincount(d, req[m], H)
            if k == 0:
                alloc_dst[m] = a
        return _State(req, alloc_src, alloc_dst, _f(host_mips), _f(host_req), _f(sched), _f(demand))

    def _cpu_fraction(self, host_mips: FloatArray) -> FloatArray:
        u = host_mips / self.total
        return np.asarray(np.where((u > 1) & (u < 1.01), 1.0, u))

    def _power(self, fraction: FloatArray) -> FloatArray:
        return power_of(self.table, self.kind, fraction)

    # -- initial placement -------------------------------------------------------------
    def _place_initial(self) -> None:
        """Place every VM at its full MIPS, in trace order, before the first update."""
        H = self.cluster.n_hosts
        sched = np.zeros(H)
        ram_used = np.zeros(H)
        bw_used = np.zeros(H)
        idle_gap = self._power(np.zeros(H))
        for v in range(self.cluster.n_vms):
            need = self.mips[v]
            ok = (
                (self.pe >= need)
                & (np.where(sched <= self.total, self.total - sched, 0.0) >= need)
                & (self.host_ram - ram_used >= self.ram[v])
                & (self.host_bw - bw_used >= self.bw[v])
            )
            if not ok.any():
                raise ForethoughtError(
                    f"VM {self._vm_name(v)} ({need:.0f} MIPS, {self.ram[v]:.0f} MB) fits on "
                    "no host: the cluster is too small for the trace"
                )
            if self.test is None and self.planner is None:
                h = int(np.argmax(ok))  # first fit, as CloudSim's simple policy
            else:  # a planner starts from the same placement as the heuristics
                # No host has been updated yet, so CloudSim's power-aware best fit compares
                # the power after adding the VM (at the full MIPS of the VMs created so
                # far) with idle power: empty hosts look cheapest, and VMs spread out.
                diff = self._power((sched + need) / self.total) - idle_gap
                h = int(np.argmin(np.where(ok, diff, np.inf)))
            self.host_of[v] = h
            sched[h] += min(need, self.pe[h])
            ram_used[h] += self.ram[v]
            bw_used[h] += self.bw[v]

    # -- the run -----------------------------------------------------------------------
    def _vm_name(self, v: int) -> str:
        if self.vm_names is not None and v < len(self.vm_names):
            return repr(self.vm_names[v])
        return f"number {v} (from 0, in the trace's order)"

    def run(
        self, horizon: float | None = None, progress: Callable[[int, int], None] | None = None
    ) -> SimResult:
        wall0 = time.perf_counter()
        steps = self.u.shape[1] - 2  # updates at 1..steps intervals (+0.1 s)
        limit = (self.u.shape[1] - 1) * self.interval if horizon is None else horizon
        self._place_initial()
        if self.allocator is not None:
            self.allocator.reset(
                self.cluster.n_vms, np.full(self.cluster.n_vms, 100.0), int(self.interval)
            )
        alloc_cpu = 0.0
        acc = Accumulator(self.cluster.n_hosts, self.cluster.n_vms)
        prev: tuple[float, _State, FloatArray, FloatArray, BoolArray] | None = None
        for k in range(1, steps + 1):
            t = k * self.interval + OFFSET
            if t > limit:
                break
            state = self._update(t)
            if self.allocator is not None:
                c0 = time.process_time()
                self._allocate(k - 1, t)
                alloc_cpu += time.process_time() - c0
            self.history[:, 1:] = self.history[:, :-1]
            self.history[:, 0] = state.req / self.mips
            if prev is not None:
                acc.frame(t - prev[0], *self._frame_ends(prev, state))
            acc.host_entry(state.host_mips > 0, t)
            prev = (t, state, *self._record(state))
            self._remove_finished(state)
            if self.test is not None or self.planner is not None:
                t0 = time.perf_counter()
                plan = self._optimise(state, t)
                self.policy_seconds.append(time.perf_counter() - t0)
                if plan:
                    self._start(plan, t)
                    state = self._update(t)
                    prev = (t, state, *self._record(state))
                    acc.host_entry(state.host_mips > 0, t)
                # Migrations complete within the interval: step through their ends.
                for c in np.unique(self.mig_end[np.isfinite(self.mig_end)]).tolist():
                    if c > limit:
                        break
                    before = self._update(c)
                    acc.frame(c - prev[0], *self._frame_ends(prev, before))
                    self._remove_finished(before)
                    self._complete(c)
                    state = self._update(c)
                    prev = (c, state, *self._record(state))
                    acc.host_entry(state.host_mips > 0, c)
                    self._remove_finished(state)
            acc.sample(
                t,
                self._cpu_fraction(prev[1].host_mips),
                self.migrations,
                int(((prev[1].host_mips < prev[1].host_req) & (prev[1].host_mips > 0)).sum()),
            )
            if progress is not None:
                progress(k, steps)
        return acc.result(
            name=self.name,
            parameter=(
                self.test.parameter
                if self.test is not None
                else self.planner.settings.threshold
                if self.planner is not None
                else None
            ),
            migrations=self.migrations,
            n_vms=self.cluster.n_vms,
            n_hosts=self.cluster.n_hosts,
            wall_seconds=time.perf_counter() - wall0,
            policy_seconds=self.policy_seconds,
            allocation=(
                None
                if self.allocator is None
                else self.scorer.scores(
                    "cpu", self.allocator.name, alloc_cpu, self.allocation_groups
                )
            ),
        )

    def _allocate(self, k: int, t: float) -> None:
        """Score interval k's demand against the allocations in force, then decide the next."""
        assert self.allocator is not None
        demand = np.where(self.alive, 100.0 * self.utilisation_at(t), 0.0)
        short = self.scorer.step(k, self.alloc_pct, demand, self.alive)
        d0 = time.perf_counter()
        self.allocator.observe(demand, self.alive.copy())
        self.allocator.shortfall(short)
        new = np.asarray(self.allocator.recommend(), dtype=np.float64).copy()
        self.scorer.decision_seconds += time.perf_counter() - d0
        self.scorer.resized(k + 1, self.alloc_pct, new)
        self.alloc_pct = new

    def _frame_ends(
        self, prev: tuple[float, _State, FloatArray, FloatArray, BoolArray], now: _State
    ) -> tuple[
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        BoolArray,
        FloatArray,
    ]:
        """Power at both ends of a frame and the host and VM entries recorded at its start."""
        _, state, alloc, req, flag = prev
        u0 = self._cpu_fraction(state.host_mips)
        u1 = self._cpu_fraction(now.host_mips)
        p0 = np.where(u0 > 0, self._power(u0), 0.0)
        p1 = np.where(u0 > 0, self._power(u1), 0.0)
        return p0, p1, state.host_mips, state.host_req, alloc, req, flag, self.total

    def _record(self, state: _State) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Each VM's (allocated, requested, in-migration) entry, as CloudSim keeps it.

        A migrating VM sits on two hosts' lists, but only its source writes its entry
        (HostDynamicWorkload skips the VMs migrating in): 90 %, flagged as migration.
        """
        return state.alloc_src, state.req, self.target >= 0

    def _remove_finished(self, state: _State) -> None:
        """CloudSim destroys the VMs that request nothing and are not migrating (a VM
        capped to nothing by an allocation still has work, so it stays)."""
        self.alive &= ~((state.demand == 0) & (self.target < 0))

    # -- migrations --------------------------------------------------------------------
    def _start(self, plan: list[tuple[int, int]], t: float) -> None:
        """Start every planned migration at time t."""
        final: dict[int, int] = {}
        for v, d in plan:
            if v in final:  # the VM migrates to both hosts; the later move completes last
                self.via[v] = final[v]
            final[v] = d
        self.migrations += len(plan)
        vms = np.fromiter(final.keys(), dtype=np.int64)
        dst = np.fromiter(final.values(), dtype=np.int64)
        self.target[vms] = dst
        # Migration time: RAM over half the target's bandwidth (Mbit/s -> MB/s).
        self.mig_end[vms] = t + self.ram[vms] / (self.host_bw[dst] / 8.0 / 2.0)

    def _complete(self, c: float) -> None:
        done = np.flatnonzero(self.mig_end == c)
        if not done.size:
            return
        self.host_of[done] = self.target[done]
        self.target[done] = -1
        self.via[done] = -1
        self.mig_end[done] = np.inf
        self.seq[done] = self._next_seq + np.arange(done.size)
        self._next_seq += done.size

    # -- the policy step ---------------------------------------------------------------
    def _optimise(self, state: _State, t: float) -> list[tuple[int, int]]:
        if self.planner is not None:
            return self._plan(state, t)
        assert self.test is not None
        future = None
        if isinstance(self.test, Oracle):  # the oracle hook: the true next interval
            future = np.where(self.alive, self.mips * self.utilisation_at(t + self.interval), 0)
        return _PolicyStep(self, state, future).plan()

    def _plan(self, state: _State, t: float) -> list[tuple[int, int]]:
        """forethought's predictive planner on this data centre's state."""
        assert self.planner is not None
        live = self.alive
        placed = np.where(live, np.where(self.target >= 0, self.target, self.host_of), -1)
        future = None
        if self.planner.oracle:
            h = self.planner.settings.horizon
            future = np.stack(
                [self.utilisation_at(t + j * self.interval) for j in range(1, h + 1)], axis=1
            )
            future = np.where(live[:, None], future * self.mips[:, None], 0.0)
        view = ClusterView(
            time=t,
            demand=np.where(live, state.req, 0.0),
            placed=placed,
            movable=live & (self.target < 0),
            vm_mips=self.mips,
            vm_ram=self.ram,
            host_mips=self.total,
            host_core=self.pe,
            # CloudSim requests RAM through a null utilisation model after placement, so
            # memory never binds a migration; a planner on real hosts sees real RAM.
            host_ram=np.full(self.cluster.n_hosts, np.inf),
            host_kind=self.kind,
            host_bandwidth=self.host_bw,
            power_table=self.table,
            interval=self.interval,
            future=future,
        )
        moves = self.planner.plan(view, len(self.policy_seconds))
        return [(m.vm, m.target) for m in moves]


class _PolicyStep:
    """One call of CloudSim's optimizeAllocation, on what-if copies of the host loads."""

    def __init__(
        self, dc: CloudSimDataCentre, state: _State, future: FloatArray | None = None
    ) -> None:
        assert dc.test is not None
        self.dc, self.test = dc, dc.test
        H = dc.cluster.n_hosts
        live = np.flatnonzero(dc.alive)  # destroyed VMs are on no host's list
        host = dc.host_of[live]
        self.req = state.req
        self.vm_share = dc.mips[:, None] * dc.history  # MIPS-weighted history per VM
        self.load_req = np.bincount(host, state.req[live], H)
        hist = np.zeros((H, HISTORY))
        np.add.at(hist, host, self.vm_share[live])
        self.hist = hist / dc.total[:, None]
        self.sched = np.bincount(host, np.minimum(state.req[live], dc.pe[host]), H)
        self.max_ram = np.zeros(H)
        np.maximum.at(self.max_ram, host, dc.ram[live])
        self.count = np.bincount(host, minlength=H)
        # CPU granted to the VMs on each host's (what-if) list: grows as the step places
        # VMs, unlike the power drawn, which CloudSim reads as of the last update.
        self.granted = np.bincount(host, state.alloc_src[live], H)
        self.fraction = dc._cpu_fraction(state.host_mips)
        self.power_now = dc._power(self.fraction)
        self.members: list[list[int]] = [[] for _ in range(H)]
        for v in live[np.lexsort((dc.seq[live], host))].tolist():
            self.members[dc.host_of[v]].append(v)
        # Hosts granting nothing are interchangeable within a type (same capacity, same
        # power after placement, no load test), and CloudSim breaks ties by the lowest id;
        # so placement scores the busy hosts and the first blank host of each type only.
        # The candidate list changes only when exclusions or blank hosts change.
        self._version = 0
        self._cached: tuple[int, int, np.ndarray] | None = None
        self._intervals_per_mb = 1.0 / (dc.host_bw / 8.0 / 2.0) / dc.interval
        # Fast paths: THR needs only the load; LR only each host's line, which is additive.
        self._thr = isinstance(self.test, StaticThreshold)
        self._lr = self.test if isinstance(self.test, LocalRegression) else None
        self._oracle = self.test if isinstance(self.test, Oracle) else None
        self._generic = not (self._thr or self._lr is not None or self._oracle is not None)
        self.future = np.zeros_like(self.req) if future is None else future
        self.load_next = np.bincount(host, self.future[live], H)
        if self._lr is not None:
            self.vm_a, self.vm_b, self.vm_ready = self._lr.line(self.vm_share)
            self.a, self.b, _ = self._lr.line(self.hist)
            self.ready_count = np.zeros(H, dtype=np.int64)
            np.add.at(self.ready_count, host, self.vm_ready[live])

    def _intervals(self, max_ram: FloatArray, rows: np.ndarray) -> FloatArray:
        """Scheduling intervals the longest migration off each host takes (0 if empty)."""
        return np.asarray(np.ceil(max_ram * self._intervals_per_mb[rows]))

    def _candidates(self, excluded: BoolArray) -> np.ndarray:
        key = (id(excluded), self._version)
        if self._cached is not None and self._cached[:2] == key:
            return self._cached[2]
        open_ = ~excluded
        blank = self.granted == 0
        rows = np.flatnonzero(open_ & ~blank)
        firsts = [
            int(np.argmax(m))
            for k in range(len(self.dc.cluster.host_types))
            if (m := open_ & blank & (self.dc.kind == k)).any()
        ]
        if firsts:
            rows = np.union1d(rows, firsts)
        self._cached = (*key, rows)
        return rows

    def _overloaded(self, rows: np.ndarray) -> BoolArray:
        dc = self.dc
        if self._oracle is not None:
            return self._oracle.decide(self.load_next[rows] / dc.total[rows])
        if self._lr is not None:
            return self._lr.decide(
                self.load_req[rows] / dc.total[rows],
                self.a[rows],
                self.b[rows],
                self.ready_count[rows] > 0,
                self._intervals(self.max_ram[rows], rows),
            )
        return self.test.overloaded(
            self.load_req[rows] / dc.total[rows],
            self.hist[rows],
            self._intervals(self.max_ram[rows], rows),
        )

    def _add(self, v: int, h: int, sign: float = 1.0) -> None:
        dc = self.dc
        self.load_req[h] += sign * self.req[v]
        if self._generic:  # only the sorting tests (IQR, MAD) read the whole history
            self.hist[h] += sign * self.vm_share[v] / dc.total[h]
        was_blank = self.granted[h] == 0
        self.sched[h] += sign * min(self.req[v], dc.pe[h])
        self.granted[h] += sign * min(self.req[v], dc.pe[h])
        if was_blank != (self.granted[h] == 0):
            self._version += 1
        self.count[h] += int(sign)
        self.load_next[h] += sign * self.future[v]
        if self._lr is not None:
            self.a[h] += sign * self.vm_a[v] / dc.total[h]
            self.b[h] += sign * self.vm_b[v] / dc.total[h]
            self.ready_count[h] += int(sign) * int(self.vm_ready[v])
        if sign > 0:
            self.members[h].append(v)
            self.max_ram[h] = max(self.max_ram[h], dc.ram[v])
        else:
            self.members[h].remove(v)
            self.max_ram[h] = max((dc.ram[w] for w in self.members[h]), default=0.0)

    def _find_host(self, v: int, excluded: BoolArray) -> int:
        """Power-aware best fit: the suitable host whose power grows least (-1 if none)."""
        dc = self.dc
        need = self.req[v]
        rows = self._candidates(excluded)
        total, sched = dc.total[rows], self.sched[rows]
        # Memory and bandwidth never bind here: CloudSim requests RAM and bandwidth through
        # a null utilisation model, so a VM placed after its creation reserves none.
        ok = (dc.pe[rows] >= need) & (np.where(sched <= total, total - sched, 0.0) >= need)
        rows = rows[ok]
        if not rows.size:
            return -1
        busy = self.granted[rows] != 0
        if busy.any():
            check = rows[busy]
            total = dc.total[check]
            load = (self.load_req[check] + need) / total
            if self._thr:
                after = load > self.test.parameter
            elif self._oracle is not None:
                after = self._oracle.decide((self.load_next[check] + self.future[v]) / total)
            else:
                intervals = self._intervals(np.maximum(self.max_ram[check], dc.ram[v]), check)
                if self._lr is not None:
                    after = self._lr.decide(
                        load,
                        self.a[check] + self.vm_a[v] / total,
                        self.b[check] + self.vm_b[v] / total,
                        (self.ready_count[check] > 0) | self.vm_ready[v],
                        intervals,
                    )
                else:
                    share = self.vm_share[v][None, :] / total[:, None]
                    after = self.test.overloaded(load, self.hist[check] + share, intervals)
            keep = np.ones(rows.size, dtype=bool)
            keep[np.flatnonzero(busy)[after]] = False
            rows = rows[keep]
            if not rows.size:
                return -1
        after_power = power_of(
            dc.table, dc.kind[rows], (self.granted[rows] + need) / dc.total[rows]
        )
        diff = after_power - self.power_now[rows]
        return int(rows[int(np.argmin(diff))])

    def _place(
        self, vms: list[int], excluded: BoolArray, all_or_none: bool
    ) -> list[tuple[int, int]]:
        # Decreasing requested MIPS; Java's sort is stable, so ties keep list order.
        order = sorted(vms, key=lambda v: -self.req[v])
        placed: list[tuple[int, int]] = []
        for v in order:
            h = self._find_host(v, excluded)
            if h < 0:
                if all_or_none:
                    for w, g in placed:
                        self._add(w, g, -1.0)
                    return []
                continue
            self._add(v, h)
            placed.append((v, h))
        return placed

    def plan(self) -> list[tuple[int, int]]:
        dc = self.dc
        H = dc.cluster.n_hosts
        overloaded = np.zeros(H, dtype=bool)
        active = np.flatnonzero(self.count > 0)
        overloaded[active] = self._overloaded(active)
        # Minimum migration time: the VM with least RAM goes first, until the host passes.
        to_move: list[int] = []
        for h in np.flatnonzero(overloaded).tolist():
            while self.members[h]:
                ram = [dc.ram[v] for v in self.members[h]]
                v = self.members[h][int(np.argmin(ram))]
                to_move.append(v)
                self._add(v, h, -1.0)
                if not self._overloaded(np.array([h]))[0]:
                    break
        plan = self._place(to_move, overloaded, all_or_none=False)
        # Consolidation: try to empty every active host, least utilised first.
        off = self.fraction == 0
        skip_source = overloaded | off
        skip_target = overloaded | off
        candidates = np.flatnonzero(~skip_source & (self.fraction > 0) & (self.fraction < 1))
        for h in candidates[np.argsort(self.fraction[candidates], kind="stable")].tolist():
            if skip_source[h] or not self.members[h]:
                continue
            skip_source[h] = skip_target[h] = True
            self._version += 1
            moved = self._place(list(self.members[h]), skip_target, all_or_none=True)
            for _, g in moved:
                skip_source[g] = True
            plan.extend(moved)
        return plan
