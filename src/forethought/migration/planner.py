"""The predictive migration planner: which VMs to move where, from forecast distributions.

Every step it updates the forecasting engine with the VMs' demand, draws joint demand
scenarios over the horizon (:mod:`forethought.migration.scenarios`) and scores every
host's pressure (:mod:`forethought.migration.pressure`). Then:

1. **Relief.** A host whose pressure exceeds ``max_pressure`` sheds VMs, the one that brings
   it under ``target_pressure`` with the least memory to copy first, else the one that
   lowers its pressure most; where no single VM lowers it (a saturated host), the best
   pair is found and its lighter VM moves first.
2. **Placement.** Each VM to move goes to the host where the move's benefit is highest:
   the predicted reduction of overload risk (valued at ``sla_weight_wh``) minus the
   energy the target will draw for it over the horizon (a sleeping host costs its idle
   power, a busy one only the marginal watts), minus the cost of the move itself
   (its duration, and its network price between sites). Only targets that stay under
   ``target_pressure`` qualify; the gap between the two pressures is the hysteresis.
3. **Consolidation.** The least-utilised hosts are emptied, one at a time, only if every
   one of their VMs fits elsewhere at ``target_pressure`` for the whole horizon and the
   energy saved outweighs the moves. No host is woken for consolidation.

Churn guards: a VM moved off a host under pressure is not consolidated again within
``cooldown_steps`` (its demand is the volatile kind), any moved VM waits ``settle_steps``
before it moves again, no VM returns within ``cooldown_steps`` to the host it left, each
VM and each host has a migration budget per day, and each host joins at most
``max_per_host`` migrations per step. With ``oracle=True`` the planner sees the true
future demand instead of forecasts: the bound a forecast can approach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from forethought.cluster.power import power_of
from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.engine import ForecastEngine, make_forecaster
from forethought.migration.learning import ThresholdLearner
from forethought.migration.pressure import HostPressure
from forethought.migration.scenarios import ResidualCopula, quantile_paths

if TYPE_CHECKING:
    from forethought.migration.network import NetworkMap

#: Quantile levels the planner asks the engine for: enough to shape each VM's marginal.
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
#: When no single VM relieves a host, pairs among its this-many busiest VMs are tried.
PAIR_CANDIDATES = 16
DAY = 86_400.0


@dataclass(frozen=True)
class PlannerSettings:
    """The planner's knobs; every one is validated on construction."""

    horizon: int = 12
    draws: int = 48
    threshold: float = 1.0
    max_pressure: float = 0.25
    target_pressure: float = 0.10
    cooldown_steps: int = 12
    settle_steps: int = 3
    vm_budget_per_day: int = 8
    host_budget_per_day: int = 96
    max_per_host: int = 8
    max_consolidations: int = 200
    sla_weight_wh: float = 500.0
    migration_wh_per_second: float = 0.5
    wh_per_currency: float = 100.0
    min_benefit_wh: float = 0.0
    fill_preference_wh: float = 5.0
    learn: bool = True
    model: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (self.horizon >= 1, "horizon must be at least 1 step"),
            (self.draws >= 1, "draws must be at least 1"),
            (0.0 < self.threshold <= 1.5, "threshold must be in (0, 1.5]"),
            (
                0.0 <= self.target_pressure <= self.max_pressure <= 1.0,
                "need 0 <= target_pressure <= max_pressure <= 1",
            ),
            (self.cooldown_steps >= 0, "cooldown_steps must be >= 0"),
            (self.settle_steps >= 0, "settle_steps must be >= 0"),
            (self.vm_budget_per_day >= 1, "vm_budget_per_day must be >= 1"),
            (self.host_budget_per_day >= 1, "host_budget_per_day must be >= 1"),
            (self.max_per_host >= 1, "max_per_host must be >= 1"),
            (self.max_consolidations >= 0, "max_consolidations must be >= 0"),
            (
                min(self.sla_weight_wh, self.migration_wh_per_second, self.wh_per_currency) >= 0,
                "costs and weights must be >= 0",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ForethoughtError(f"planner settings: {message}")


@dataclass(frozen=True)
class ClusterView:
    """What the planner sees of the cluster at one step (host and VM arrays by index).

    ``placed[v]`` is where VM v's demand lands now: its host, or its target while it
    migrates, -1 for a VM that is gone. ``future`` is (vms, horizon) true demand, only for
    the oracle.
    """

    time: float
    demand: FloatArray  # MIPS requested per VM now
    placed: np.ndarray
    movable: BoolArray  # alive and not migrating
    vm_mips: FloatArray
    vm_ram: FloatArray
    host_mips: FloatArray
    host_core: FloatArray
    host_ram: FloatArray  # inf where memory never binds (CloudSim's migrations)
    host_kind: np.ndarray
    host_bandwidth: FloatArray  # Mbit/s; half of it carries migrations
    power_table: FloatArray
    interval: float
    future: FloatArray | None = None
    #: VMs whose allocation alone exceeds their host (from the allocation manager): they
    #: must move, and the planner finds them a host before anything else.
    oversized: BoolArray | None = None
    #: VMs whose demand was measured this step (None: all). For the others ``demand``
    #: holds a stand-in (their allocation) and the forecasts learn nothing from it.
    measured: BoolArray | None = None


@dataclass(frozen=True)
class Move:
    """One planned migration with the figures that justified it."""

    vm: int
    source: int
    target: int
    kind: str  # "relief", "consolidation" or "oversized"
    benefit_wh: float
    source_pressure: float
    target_pressure_after: float
    seconds: float


@dataclass
class _Pending:
    vm: int
    source: int
    target: int
    due: int


@dataclass
class PlannerStats:
    """Counters a run reports next to its metrics."""

    steps: int = 0
    relief: int = 0
    consolidation: int = 0
    unplaced: int = 0
    rejected: int = 0
    oversized: int = 0


class PredictivePlanner:
    """Plans migrations from forecasts (or, with ``oracle``, from the true future)."""

    def __init__(
        self,
        settings: PlannerSettings | None = None,
        *,
        oracle: bool = False,
        network: NetworkMap | None = None,
    ) -> None:
        self.settings = settings or PlannerSettings()
        self.oracle = oracle
        self.network = network
        s = self.settings
        self.learner = ThresholdLearner(
            threshold=s.threshold,
            min_benefit=s.min_benefit_wh,
            ceiling=s.threshold,
            floor=min(0.75, s.threshold),
        )
        self.stats = PlannerStats()
        self.engine: ForecastEngine | None = None
        self.copula: ResidualCopula | None = None
        self._n = 0
        self._predicted: FloatArray | None = None  # last one-step median, % of VM MIPS
        self._next_overload: tuple[np.ndarray, FloatArray] | None = None
        self._pending: list[_Pending] = []
        self.moves: list[Move] = []
        self._before: dict[int, tuple[int, bool]] = {}

    # -- state -------------------------------------------------------------------------
    def _allocate(self, view: ClusterView) -> None:
        n, H = view.demand.size, view.host_mips.size
        self._n = n
        self.last_moved = np.full(n, -(10**9), dtype=np.int64)
        self.relieved = np.zeros(n, dtype=bool)  # was the VM's last move a relief move?
        self.left = np.full(n, -1, dtype=np.int64)
        self.vm_moves = np.zeros(n, dtype=np.int64)
        self.host_moves = np.zeros(H, dtype=np.int64)
        self.day = 0
        if not self.oracle:
            self.engine = make_forecaster(
                self.settings.model, horizon=self.settings.horizon, levels=LEVELS, upper=100.0
            )
            # Deciding every step: the same cost at every step (see steady).
            self.engine.steady()
            window = max(self.settings.draws, 2)
            self.copula = ResidualCopula(n, window=window, min_errors=min(4, window))

    # -- scenarios ---------------------------------------------------------------------
    def _paths(self, view: ClusterView) -> FloatArray:
        """(draws, vms, 1 + horizon) demand in MIPS: now, then the forecast steps."""
        s = self.settings
        now = np.where(view.movable | (view.placed >= 0), view.demand, 0.0)
        if self.oracle:
            if view.future is None or view.future.shape[0] != now.size:
                raise ForethoughtError("the oracle planner needs the true future demand")
            paths = np.concatenate([now[:, None], view.future[:, : s.horizon]], axis=1)[None]
            return np.asarray(paths)
        assert self.engine is not None
        assert self.copula is not None
        alive = view.placed >= 0
        if view.measured is not None:
            alive = alive & view.measured
        util = np.where(alive, 100.0 * view.demand / view.vm_mips, 0.0)
        if self._predicted is not None:
            self.copula.record(util, self._predicted, alive)
        self.engine.update(util[:, None], alive[:, None])
        fc = self.engine.forecast(s.horizon)
        self._predicted = np.asarray(fc.median[:, 0])
        u = self.copula.uniforms(s.draws)
        pct = quantile_paths(fc.quantiles, fc.levels, u)  # (draws, vms, horizon)
        future = np.clip(pct, 0.0, 100.0) / 100.0 * view.vm_mips[None, :, None]
        current = np.broadcast_to(now[None, :, None], (future.shape[0], now.size, 1))
        if view.measured is not None and not view.measured.all():
            # A VM not measured yet has no forecast: it is expected to go on as it is now.
            unseen = ~view.measured
            future[:, unseen] = np.where(
                np.isfinite(future[:, unseen]), future[:, unseen], now[unseen][None, :, None]
            )
        return np.asarray(np.concatenate([current, future], axis=2))

    # -- the step ----------------------------------------------------------------------
    def plan(self, view: ClusterView, step: int, slots: int | None = None) -> list[Move]:
        """The migrations to start now; ``step`` counts the planner's calls from 0.

        ``slots``, where given, is how many migrations can start now: consolidations
        (which only pay when a host is emptied whole) are planned only within what the
        re-homing and relief moves leave of it, so no drain is planned that cannot start.
        """
        if self._n == 0:
            self._allocate(view)
        elif view.demand.size != self._n:
            raise ForethoughtError("the number of VMs changed between steps")
        s = self.settings
        day = int(view.time // DAY)
        if day != self.day:  # budgets are per calendar day of the run
            self.day = day
            self.vm_moves[:] = 0
            self.host_moves[:] = 0
        paths = self._paths(view)
        self._learn(view, step)
        threshold = self.learner.threshold if (s.learn and not self.oracle) else s.threshold
        hp = HostPressure(paths, view.placed, view.host_mips, view.host_core, threshold)
        H = view.host_mips.size
        members = _members(view.placed, H)
        active = np.flatnonzero([len(m) > 0 for m in members])
        pressure = np.zeros(H)
        pressure[active] = hp.pressure(active)
        step_moves = np.zeros(H, dtype=np.int64)
        on = view.placed >= 0
        ram_used = np.bincount(view.placed[on], view.vm_ram[on], H).astype(np.float64)
        ctx = _Step(self, view, hp, members, step, step_moves, ram_used)
        moves = ctx.rehome(view.oversized)
        hot = active[pressure[active] > s.max_pressure]
        hot = hot[np.argsort(-pressure[hot], kind="stable")]
        moves += ctx.relieve(hot, pressure)
        room = None if slots is None else max(0, slots - len(moves))
        moves += ctx.consolidate(active, hot, pressure, room)
        self._before = {
            m.vm: (int(self.last_moved[m.vm]), bool(self.relieved[m.vm])) for m in moves
        }
        for m in moves:
            self.last_moved[m.vm] = step
            self.relieved[m.vm] = m.kind == "relief"
            self.left[m.vm] = m.source
            self.vm_moves[m.vm] += 1
            self.host_moves[m.source] += 1
            self.host_moves[m.target] += 1
            self._pending.append(_Pending(m.vm, m.source, m.target, step + s.horizon))
            if m.kind == "relief":
                self.stats.relief += 1
            elif m.kind == "consolidation":
                self.stats.consolidation += 1
            else:
                self.stats.oversized += 1
        rows = np.flatnonzero(ctx.count > 0)
        self._next_overload = (rows, hp.next_step_overload(rows))
        self.stats.steps += 1
        self.moves.extend(moves)
        return moves

    def rejected(self, moves: list[Move]) -> None:
        """Moves of the last plan that were not carried out (refused by the orchestrator's
        pre-conditions or limits): they do not count against budgets or cooldowns."""
        for m in moves:
            last, relieved = self._before.get(m.vm, (int(self.last_moved[m.vm]), False))
            self.last_moved[m.vm] = last
            self.relieved[m.vm] = relieved
            self.vm_moves[m.vm] -= 1
            self.host_moves[m.source] -= 1
            self.host_moves[m.target] -= 1
            self._pending = [
                p for p in self._pending if (p.vm, p.source, p.target) != (m.vm, m.source, m.target)
            ]
            self.stats.rejected += 1

    def _learn(self, view: ClusterView, step: int) -> None:
        """Compare last step's predictions and past moves with what happened."""
        if not self.settings.learn or self.oracle:
            return
        H = view.host_mips.size
        alive = view.placed >= 0
        hosts = view.placed[alive]
        load = np.bincount(hosts, np.minimum(view.demand[alive], view.host_core[hosts]), H)
        core_over = np.bincount(hosts, view.demand[alive] > view.host_core[hosts], H) > 0
        over = (load > view.host_mips) | core_over
        if self._next_overload is not None:
            rows, predicted = self._next_overload
            self.learner.observe_hosts(view.time, predicted, over[rows])
        still: list[_Pending] = []
        for p in self._pending:
            if over[p.target]:
                self.learner.observe_move(False)
            elif step >= p.due:
                self.learner.observe_move(not over[p.source])
            else:
                still.append(p)
        self._pending = still


class _Step:
    """The what-if state of one planning step: host loads, memberships, step limits."""

    def __init__(
        self,
        planner: PredictivePlanner,
        view: ClusterView,
        hp: HostPressure,
        members: list[list[int]],
        step: int,
        step_moves: np.ndarray,
        ram_used: FloatArray,
    ) -> None:
        self.p, self.view, self.hp = planner, view, hp
        self.s = planner.settings
        self.members = members
        self.step = step
        self.step_moves = step_moves
        self.ram_used = ram_used
        H = view.host_mips.size
        self.hours = self.s.horizon * view.interval / 3600.0
        self.excluded = np.zeros(H, dtype=bool)  # not a target this step
        self.touched = np.zeros(H, dtype=bool)  # not a consolidation source this step
        self.moved: set[int] = set()
        self.count = np.array([len(m) for m in members], dtype=np.int64)
        # Kept current as VMs move, so each what-if reads them instead of recomputing.
        every = np.arange(H)
        self.util = hp.mean_utilisation(every)
        self.press = hp.pressure(every)
        self.watts = self._power(every, self.util)
        # Blank hosts of one type (and site) are interchangeable: offer the first of each.
        site = planner.network.site_of if planner.network is not None else np.zeros(H, int)
        self.group = view.host_kind.astype(np.int64) * (int(site.max()) + 1) + site

    # -- helpers -----------------------------------------------------------------------
    def _power(self, rows: np.ndarray, utilisation: FloatArray) -> FloatArray:
        u = np.clip(utilisation, 0.0, 1.0)
        return power_of(self.view.power_table, self.view.host_kind[rows], u)

    def _seconds_and_cost(self, v: int, source: int, rows: np.ndarray) -> FloatArray:
        """Each candidate move's cost in Wh-equivalents: duration, then network price."""
        ram = np.full(rows.size, self.view.vm_ram[v])
        src = np.full(rows.size, source)
        net = self.p.network
        if net is not None:
            seconds = net.transfer_seconds(ram, src, rows)
            money = net.transfer_cost(ram, src, rows)
        else:
            seconds = ram / (self.view.host_bandwidth[rows] / 16.0)
            money = np.zeros(rows.size)
        return np.asarray(self.s.migration_wh_per_second * seconds + self.s.wh_per_currency * money)

    def _within_budget(self, v: int, host: int) -> bool:
        s = self.s
        if self.p.vm_moves[v] >= s.vm_budget_per_day:
            return False
        return bool(self.p.host_moves[host] < s.host_budget_per_day)

    def _candidates(self, v: int, source: int, wake: bool) -> np.ndarray:
        view, s = self.view, self.s
        busy = self.count > 0
        open_ = (
            ~self.excluded
            & (self.step_moves < s.max_per_host)
            & (self.p.host_moves < s.host_budget_per_day)
            & (self.ram_used + view.vm_ram[v] <= view.host_ram)
        )
        open_[source] = False
        if self.step - self.p.last_moved[v] < s.cooldown_steps and self.p.left[v] >= 0:
            open_[self.p.left[v]] = False  # never straight back where it came from
        rows = np.flatnonzero(open_ & busy)
        if wake:
            blank = np.flatnonzero(open_ & ~busy)
            if blank.size:
                _, first = np.unique(self.group[blank], return_index=True)
                rows = np.union1d(rows, blank[first])
        return rows

    def _best(self, v: int, source: int, wake: bool) -> tuple[int, float, float, float]:
        """(target, score in Wh, target pressure after, seconds) or target -1."""
        rows = self._candidates(v, source, wake)
        if not rows.size:
            return -1, 0.0, 0.0, 0.0
        hp = self.hp
        after = hp.pressure_with(v, rows)
        ok = after <= self.s.target_pressure
        if not ok.any():
            return -1, 0.0, 0.0, 0.0
        rows, after = rows[ok], after[ok]
        before = self.press[rows]
        busy = self.count[rows] > 0
        u0 = self.util[rows]
        u1 = u0 + hp.vm_mean(v) / self.view.host_mips[rows]
        watts = self._power(rows, u1) - np.where(busy, self.watts[rows], 0.0)
        # Best fit: among targets that cost about the same, the fullest one, so that the
        # emptier hosts stay candidates for consolidation instead of receiving VMs.
        cost = (
            watts * self.hours
            - self.s.fill_preference_wh * u0 * busy
            + self.s.sla_weight_wh * (after - before) * self.hours
            + self._seconds_and_cost(v, source, rows)
        )
        k = int(np.argmin(cost))
        seconds = float(self.view.vm_ram[v] / (self.view.host_bandwidth[rows[k]] / 16.0))
        if self.p.network is not None:
            seconds = float(
                self.p.network.transfer_seconds(
                    np.array([self.view.vm_ram[v]]), np.array([source]), rows[k : k + 1]
                )[0]
            )
        return int(rows[k]), float(cost[k]), float(after[k]), seconds

    def _commit(self, v: int, source: int, target: int) -> None:
        self.members[source].remove(v)
        self.members[target].append(v)
        self.count[source] -= 1
        self.count[target] += 1
        self.hp.move(v, source, target, np.array(self.members[source], dtype=np.int64))
        self.ram_used[source] -= self.view.vm_ram[v]
        self.ram_used[target] += self.view.vm_ram[v]
        self.step_moves[source] += 1
        self.step_moves[target] += 1
        both = np.array([source, target])
        self.util[both] = self.hp.mean_utilisation(both)
        self.press[both] = self.hp.pressure(both)
        self.watts[both] = self._power(both, self.util[both])

    def _undo(self, v: int, source: int, target: int) -> None:
        self._commit(v, target, source)
        self.step_moves[source] -= 2
        self.step_moves[target] -= 2

    # -- oversized VMs -----------------------------------------------------------------
    def rehome(self, oversized: BoolArray | None) -> list[Move]:
        """Move each VM too big for its host to a host that fits it (waking one if need be)."""
        if oversized is None or not oversized.any():
            return []
        moves: list[Move] = []
        view = self.view
        for v in np.flatnonzero(oversized & view.movable).tolist():
            h = int(view.placed[v])
            if h < 0 or v in self.moved or not self._within_budget(v, h):
                continue
            # Only hosts that can hold the VM's whole size qualify.
            saved = self.excluded.copy()
            self.excluded |= view.host_mips < view.vm_mips[v]
            target, cost, after, seconds = self._best(v, h, wake=True)
            self.excluded = saved
            if target < 0:
                self.p.stats.unplaced += 1
                continue
            self._commit(v, h, target)
            self.moved.add(v)
            self.touched[target] = True
            moves.append(Move(v, h, target, "oversized", -cost, 1.0, after, seconds))
        return moves

    # -- relief ------------------------------------------------------------------------
    def relieve(self, hot: np.ndarray, pressure: FloatArray) -> list[Move]:
        view, s, hp = self.view, self.s, self.hp
        self.excluded[hot] = True
        self.touched[hot] = True
        moves: list[Move] = []
        for h in hot.tolist():
            p_now = float(pressure[h])
            while p_now > s.target_pressure and self.step_moves[h] < s.max_per_host:
                cands = np.array(
                    [
                        v
                        for v in self.members[h]
                        if view.movable[v] and v not in self.moved and self._within_budget(v, h)
                    ],
                    dtype=np.int64,
                )
                if not cands.size:
                    break
                without = hp.pressure_without(h, cands)
                ram = view.vm_ram[cands]
                enough = without <= s.target_pressure
                if enough.any():
                    pick = np.flatnonzero(enough)[int(np.argmin(ram[enough]))]
                else:
                    pick = int(np.lexsort((ram, without))[0])
                gain = p_now - float(without[pick])
                if gain <= 0:
                    # No single VM lowers the risk (a saturated host). Two together may:
                    # move the lighter-to-copy VM of the best pair now, crediting it half
                    # the pair's relief; the next pass finds its partner lowers the risk.
                    pick, gain = self._half_of_best_pair(h, cands, p_now)
                    if pick < 0:
                        break  # no pair lowers it either: moving would only cost
                v = int(cands[pick])
                target, cost, after, seconds = self._best(v, h, wake=True)
                if target < 0:
                    self.p.stats.unplaced += 1
                    break
                relief = s.sla_weight_wh * gain * self.hours
                benefit = relief - cost
                if benefit <= self.p.learner.min_benefit:
                    break
                self._commit(v, h, target)
                self.moved.add(v)
                self.touched[target] = True
                moves.append(Move(v, h, target, "relief", benefit, p_now, after, seconds))
                p_now = float(without[pick])
        return moves

    def _half_of_best_pair(self, h: int, cands: np.ndarray, p_now: float) -> tuple[int, float]:
        """The candidate to move first from the pair whose removal lowers ``h``'s risk
        most (among the ``PAIR_CANDIDATES`` busiest), and half that pair's gain; (-1, 0)
        when no pair lowers it."""
        busiest = np.argsort(-self.hp.vm[cands].mean(axis=(1, 2)), kind="stable")
        idx = busiest[:PAIR_CANDIDATES]
        pairs = self.hp.pressure_without_pairs(h, cands[idx])
        i, j = np.unravel_index(int(np.argmin(pairs)), pairs.shape)
        if not pairs[i, j] < p_now:
            return -1, 0.0
        ram = self.view.vm_ram[cands[idx]]
        first = int(idx[i] if ram[i] <= ram[j] else idx[j])
        return first, 0.5 * (p_now - float(pairs[i, j]))

    # -- consolidation -----------------------------------------------------------------
    def consolidate(
        self,
        active: np.ndarray,
        hot: np.ndarray,
        pressure: FloatArray,
        room: int | None = None,
    ) -> list[Move]:
        """Empty lightly loaded hosts whole, at most ``room`` moves (None: no cap)."""
        view, s, hp = self.view, self.s, self.hp
        if s.max_consolidations == 0 or room == 0:
            return []
        util = self.util[active]
        order = active[np.argsort(util, kind="stable")]
        moves: list[Move] = []
        tried = 0
        for h in order.tolist():
            if tried >= s.max_consolidations or (room is not None and len(moves) >= room):
                break
            if self.touched[h] or pressure[h] > s.target_pressure or not self.members[h]:
                continue
            vms = list(self.members[h])
            if any(
                not view.movable[v]
                or v in self.moved
                or self.step - self.p.last_moved[v]
                < (s.cooldown_steps if self.p.relieved[v] else s.settle_steps)
                or not self._within_budget(v, h)
                for v in vms
            ):
                continue
            if self.step_moves[h] + len(vms) > s.max_per_host:
                continue
            if room is not None and len(moves) + len(vms) > room:
                continue  # a smaller host further on may still fit in what is left
            tried += 1
            self.excluded[h] = True
            saved = float(self.watts[h]) * self.hours
            planned: list[Move] = []
            total_cost = 0.0
            for v in sorted(vms, key=lambda w: -hp.vm_mean(w)):
                target, cost, after, seconds = self._best(v, h, wake=False)
                if target < 0:
                    break
                self._commit(v, h, target)
                total_cost += cost
                planned.append(Move(v, h, target, "consolidation", 0.0, 0.0, after, seconds))
            benefit = saved - total_cost
            if len(planned) < len(vms) or benefit <= self.p.learner.min_benefit:
                for m in reversed(planned):
                    self._undo(m.vm, m.source, m.target)
                self.excluded[h] = False
                continue
            share = benefit / len(planned)
            for m in planned:
                self.moved.add(m.vm)
                self.touched[m.target] = True
                moves.append(
                    Move(
                        m.vm,
                        h,
                        m.target,
                        m.kind,
                        share,
                        float(pressure[h]),
                        m.target_pressure_after,
                        m.seconds,
                    )
                )
        return moves


def _members(placed: np.ndarray, n_hosts: int) -> list[list[int]]:
    members: list[list[int]] = [[] for _ in range(n_hosts)]
    on = np.flatnonzero(placed >= 0)
    for v, h in zip(on.tolist(), placed[on].tolist(), strict=True):
        members[h].append(v)
    return members
