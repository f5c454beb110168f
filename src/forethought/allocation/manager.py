"""The allocation manager: forecast distributions in, allocations and resize actions out.

For every VM and resource, forethought provisions for a quantile of its forecast over the
time an allocation must hold, plus headroom, within the policy's limits, and moves the
allocation with hysteresis so it does not flap:

- an **increase** happens at once, when the forecast for the next step exceeds the
  allocation, and goes straight to what the whole horizon needs (one resize, not many);
- a **decrease** waits until the need has stayed well below the allocation for a while,
  is bounded per step, and is spaced by a cooldown: shrinking memory into an
  out-of-memory loop is the classic failure of history-only sizing;
- a **shortfall** (demand above the allocation) raises the VM's floor at once: for memory
  (an out-of-memory or swap signal) the floor is remembered for a day, for CPU
  (throttling) it only forces the next increase;
- a **short target** (a policy's ``short_target``) makes the headroom learn, per VM:
  each shortfall adds to it, each interval that is not short takes a little back, so
  that in the long run the VM is short at most that often whatever the forecaster's
  quantiles do (adaptive conformal inference, applied to the allocation itself);
- an **anomaly** (demand above the forecast's p99 for three steps) is recorded with its
  evidence and handled as the group's policy says: alert, scale up, or isolate (freeze
  the VM's decreases until the anomaly passes).

Everything is vectorised over VMs; the per-VM settings of the policy become arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forethought.allocation.base import checked_reset, checked_short, checked_step
from forethought.allocation.cross import CrossReport
from forethought.allocation.policy import (
    AnomalyAction,
    Group,
    Policy,
    shortfall_floor_minutes,
)
from forethought.cluster.backend import Resize
from forethought.core.clock import DAY_SECONDS
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTH_FLOOR_KBS, BANDWIDTHS, Resource
from forethought.forecast.anomaly import Anomaly, CrossAnomaly
from forethought.forecast.base import DEFAULT_LEVELS, BoolArray, FloatArray
from forethought.forecast.engine import ForecastEngine, make_forecaster

# Learned headroom added per shortfall (taken back at short_target times this per interval
# that is not short), and its ceiling: a VM short whatever it gets must not inflate forever.
# Like any adaptive-conformal step, this one trades how soon the short rate reaches its
# target (the gap shrinks as 1 / (step x intervals)) against how much the headroom swings:
# at 0.05 a replay of half a day was still settling, and VMs short more than 1 % of the
# time were twice as many as at 0.1 (docs/allocation.md).
LEARNED_HEADROOM_STEP = 0.1
LEARNED_HEADROOM_MAX = 1.0

ACTION_CODE = {AnomalyAction.ALERT: 0, AnomalyAction.SCALE_UP: 1, AnomalyAction.ISOLATE: 2}


@dataclass
class Settings:
    """One resource's policy as per-VM arrays (steps already converted from minutes)."""

    minimum: FloatArray
    maximum: FloatArray  # inf where the policy leaves it to the VM's size
    quantile: FloatArray
    headroom: FloatArray
    lookahead: np.ndarray  # steps an allocation must hold
    up_tolerance: FloatArray
    down_tolerance: FloatArray
    step_up: FloatArray  # inf where unbounded
    step_down: FloatArray
    cooldown: np.ndarray
    down_after: np.ndarray
    anomaly_action: np.ndarray
    scale_up_by: FloatArray
    priority: np.ndarray
    # Steps a shortfall's raised floor holds (at least 1: the next decision); None takes
    # the resource's default (a day for memory).
    floor_hold: np.ndarray | None = None
    # The share of intervals a VM may be short, learned toward; NaN where off.
    short_target: FloatArray | None = None

    @classmethod
    def from_policy(
        cls, policy: Policy, groups: list[Group], resource: Resource, step_seconds: int
    ) -> Settings:
        per = [policy.settings(g, resource) for g in groups]

        def steps(minutes: list[float]) -> np.ndarray:
            return np.maximum(np.ceil(np.array(minutes) * 60.0 / step_seconds), 0).astype(np.int64)

        # A throttle never goes below BANDWIDTH_FLOOR_KBS (see there why).
        floor = BANDWIDTH_FLOOR_KBS if resource in BANDWIDTHS else 0.0
        return cls(
            minimum=np.array([max(p.min, floor) for p in per], dtype=np.float64),
            maximum=np.array([np.inf if p.max is None else p.max for p in per]),
            quantile=np.array([p.quantile for p in per]),
            headroom=np.array([p.headroom for p in per]),
            lookahead=np.maximum(steps([p.horizon_minutes for p in per]), 1),
            up_tolerance=np.array([p.up_tolerance for p in per]),
            down_tolerance=np.array([p.down_tolerance for p in per]),
            step_up=np.array([np.inf if p.max_step_up is None else p.max_step_up for p in per]),
            step_down=np.array([p.max_step_down for p in per]),
            cooldown=steps([p.cooldown_minutes for p in per]),
            down_after=steps([p.down_after_minutes for p in per]),
            anomaly_action=np.array([ACTION_CODE[g.anomaly.action] for g in groups]),
            scale_up_by=np.array([g.anomaly.scale_up_by for g in groups]),
            priority=np.array([policy.priority(g) for g in groups], dtype=np.int64),
            floor_hold=np.maximum(steps([shortfall_floor_minutes(p, resource) for p in per]), 1),
            short_target=np.array(
                [np.nan if p.short_target is None else p.short_target for p in per]
            ),
        )


@dataclass(frozen=True)
class AnomalyRecord:
    """An anomaly the manager acted on, with the forecaster's evidence."""

    vm: int
    resource: str
    step: int
    action: str
    evidence: Anomaly | CrossAnomaly


@dataclass
class Decision:
    """Why each VM's allocation changed at the last step (codes, see :data:`REASONS`)."""

    reason: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))


REASONS = (
    "",
    "forecast above allocation",
    "need well below allocation",
    "anomaly: scale up",
    "shortfall: floor raised",
    "first sizing",
)


class PredictiveRecommender:
    """forethought's recommender for one resource (see the module text)."""

    name = "forethought"

    def __init__(
        self,
        settings: Settings,
        resource: Resource | str = Resource.CPU,
        *,
        resize_delay: int = 0,
        model: str = "auto",
        floor_memory_seconds: int = DAY_SECONDS,
    ) -> None:
        self.settings = settings
        self.resource = Resource(resource)
        self.resize_delay = resize_delay
        self.model = model
        self.floor_memory_seconds = floor_memory_seconds
        self.anomalies: list[AnomalyRecord] = []
        # Cross-resource anomalies found over all of the VMs' resources (see
        # forethought.allocation.cross), acted on here like this resource's own.
        self.cross: CrossReport | None = None
        self._n = -1  # until reset

    def reset(self, n: int, capacity: FloatArray, step_seconds: int) -> None:
        s = self.settings
        # A bandwidth has no size: its capacity may be infinite (the policy's max bounds it).
        n, capacity, step_seconds = checked_reset(n, capacity, step_seconds, unbounded=True)
        if s.minimum.shape != (n,):
            raise ForethoughtError(f"settings are for {s.minimum.size} VMs, not {n}")
        self._n = n
        self.capacity = capacity
        self.horizon = int(max(s.lookahead.max(), 1 + self.resize_delay))
        levels = tuple(sorted({*DEFAULT_LEVELS, *s.quantile.tolist()}))
        self.engine: ForecastEngine = make_forecaster(
            self.model, step_seconds=step_seconds, horizon=self.horizon, levels=levels, lower=0.0
        )
        # A decision every step: the same cost at every step (see steady).
        self.engine.steady()
        self.level_index = np.searchsorted(np.array(levels), s.quantile)
        self.upper = np.minimum(s.maximum, self.capacity)
        # The least decrease worth a resize (see recommend): small enough to cost no
        # measurable slack, large enough to end the creep; bandwidths, with no size,
        # stop at their floor instead.
        self.min_change = np.where(np.isfinite(self.capacity), 0.001 * self.capacity, 0.0)
        # A new VM gets its full size; where it has none (a bandwidth), its allocation is
        # unset (NaN) until the first forecast sizes it.
        self.alloc = np.where(np.isfinite(self.upper), self.upper, np.nan)
        self.last = np.zeros(n)
        self.below = np.zeros(n, dtype=np.int64)  # steps the need has stayed well below
        self.since_down = np.full(n, 1 << 30, dtype=np.int64)
        self.floor = np.zeros(n)
        self.floor_left = np.zeros(n, dtype=np.int64)
        self.isolated = np.zeros(n, dtype=bool)
        self.learned = np.zeros(n)  # headroom learned toward the short target
        # Memory remembers an out-of-memory signal for a day by default: shrinking back
        # into it is the loop to avoid. A CPU shortfall (throttling) only forces the next
        # increase. The policy's shortfall_floor_minutes sets it per group.
        if s.floor_hold is not None:
            self.floor_steps = np.asarray(s.floor_hold, dtype=np.int64)
        else:
            remember = self.floor_memory_seconds if self.resource is Resource.MEMORY else 0
            self.floor_steps = np.full(n, max(1, remember // step_seconds), dtype=np.int64)
        self.step = 0
        self._events_seen = 0
        self.decision = Decision(np.zeros(n, dtype=np.int8))

    def observe(self, usage: FloatArray, observed: BoolArray) -> None:
        usage, observed = checked_step(self._n, usage, observed)
        self.engine.update(usage[:, None], observed[:, None])
        self.last = np.where(observed, usage, self.last)
        self.step += 1

    def shortfall(self, short: BoolArray) -> None:
        short = checked_short(self._n, short)
        s = self.settings
        raised = self.last * (1.0 + np.maximum(s.headroom, 0.2))
        self.floor = np.where(short, np.maximum(self.floor, raised), self.floor)
        self.floor_left = np.where(short, self.floor_steps, self.floor_left)
        self._short = short
        if s.short_target is not None:
            self._learn(short)

    def _learn(self, short: BoolArray) -> None:
        """One step of the learned headroom toward each VM's short target.

        A shortfall where the allocation already sits at its upper limit teaches nothing:
        more headroom could not have prevented it.
        """
        assert self.settings.short_target is not None
        target = self.settings.short_target
        # (an unset allocation, NaN, teaches nothing either)
        at_limit = short & ~(self.alloc < self.upper * (1.0 - 1e-9))
        step = LEARNED_HEADROOM_STEP * (short - target)  # NaN where the policy has no target
        learned = np.clip(self.learned + np.where(at_limit, 0.0, step), 0.0, LEARNED_HEADROOM_MAX)
        self.learned = np.where(np.isfinite(target), learned, 0.0)

    def start_at(self, alloc: FloatArray) -> None:
        """Start from these allocations (the VMs' current ones) instead of their full
        sizes; NaN keeps the default. Call after :meth:`reset`, before the first step."""
        alloc = np.asarray(alloc, dtype=np.float64)
        if alloc.shape != self.alloc.shape:
            raise ForethoughtError(f"start_at: one allocation per VM ({self.alloc.size})")
        known = np.isfinite(alloc)
        self.alloc = np.where(known, np.clip(np.nan_to_num(alloc), 0.0, self.capacity), self.alloc)

    def recommend(self) -> FloatArray:
        if self._n < 0:
            raise ForethoughtError("reset must be called before anything else")
        if self.step == 0:
            raise ForethoughtError("recommend needs at least one observe first")
        s = self.settings
        n = self.alloc.size
        fc = self.engine.forecast(self.horizon)
        path = np.take_along_axis(
            fc.quantiles, np.broadcast_to(self.level_index[:, None, None], (n, self.horizon, 1)), 2
        )[:, :, 0]
        within = np.arange(self.horizon)[None, :] < s.lookahead[:, None]
        headroom = s.headroom + self.learned
        target = np.max(np.where(within, path, -np.inf), axis=1) * (1.0 + headroom)
        lead = 1 + self.resize_delay
        need_next = np.max(path[:, :lead], axis=1) * (1.0 + headroom)
        # The floor raised by a shortfall holds for floor_steps decisions, then lapses.
        self.floor = np.where(self.floor_left > 0, self.floor, 0.0)
        lower = np.maximum(s.minimum, self.floor)
        self.floor_left = np.maximum(self.floor_left - 1, 0)
        target = np.clip(np.where(np.isfinite(target), target, self.alloc), lower, self.upper)
        need_next = np.where(np.isfinite(need_next), need_next, 0.0)
        # An unset allocation starts at what the horizon needs (a first sizing).
        unset = np.isnan(self.alloc)
        first = np.clip(np.maximum(np.nan_to_num(target, nan=0.0), need_next), lower, self.upper)
        alloc = np.where(unset, first, self.alloc)
        target = np.where(np.isfinite(target), target, alloc)
        reason = np.zeros(n, dtype=np.int8)

        short = (need_next > alloc * (1.0 + s.up_tolerance)) | (alloc < lower)
        bounded = np.isfinite(s.step_up)
        cap_up = np.where(bounded, alloc * (1.0 + np.where(bounded, s.step_up, 0.0)), np.inf)
        grown = np.minimum(np.maximum(target, need_next), cap_up)
        new = np.where(short, np.clip(np.maximum(grown, lower), lower, self.upper), alloc)
        reason[short & (new != alloc)] = 1
        reason[short & getattr(self, "_short", np.zeros(n, dtype=bool))] = 4

        # A decrease must be worth a resize: at least min_change (0.1 % of the VM's size),
        # else an idle VM would creep toward zero forever, one resize per cooldown.
        slack = (
            ~short
            & (target < alloc * (1.0 - s.down_tolerance))
            & (alloc - target >= self.min_change)
        )
        self.below = np.where(slack, self.below + 1, 0)
        self.since_down += 1
        down = (
            slack & (self.below >= s.down_after) & (self.since_down >= s.cooldown) & ~self.isolated
        )
        shrunk = np.maximum(target, alloc * (1.0 - s.step_down))
        new = np.where(down, shrunk, new)
        reason[down] = 2
        self.since_down = np.where(down, 0, self.since_down)
        self.below = np.where(down, 0, self.below)

        # A limit set for the first time (a bandwidth had none) says so, unless a rule
        # above already said why.
        reason[unset & np.isfinite(new) & (reason == 0)] = 5
        new = self._react_to_anomalies(new, reason)
        self.alloc = np.clip(new, 0.0, self.capacity)
        self.decision = Decision(reason)
        return self.alloc

    def _react_to_anomalies(self, new: FloatArray, reason: np.ndarray) -> FloatArray:
        events = self.engine.events
        fresh, self._events_seen = events[self._events_seen :], len(events)
        # The step just observed is self.step - 1: its cross-resource anomalies count too.
        t = self.step - 1
        crossed = self.cross.by_step.get(t, []) if self.cross is not None else []
        evidence: list[tuple[int, Anomaly | CrossAnomaly]] = [(e.series, e) for e in fresh]
        evidence += [(e.vm, e) for e in crossed]
        for v, event in evidence:  # anomalies are rare: a loop over them, never over all VMs
            self._act(v, event, new, reason)
        # Isolation lasts while the forecaster (or the cross-resource pass) flags the VM.
        flagged = self.engine.anomalies.flags
        if self.cross is not None and 0 <= t < self.cross.flags.shape[1]:
            flagged = flagged | self.cross.flags[:, t]
        s = self.settings
        self.isolated = flagged & (s.anomaly_action == ACTION_CODE[AnomalyAction.ISOLATE])
        return new

    def _act(
        self, v: int, event: Anomaly | CrossAnomaly, new: FloatArray, reason: np.ndarray
    ) -> None:
        """Record one anomaly and apply the VM's group reaction (alert, scale up, isolate)."""
        s = self.settings
        code = int(s.anomaly_action[v])
        self.anomalies.append(
            AnomalyRecord(v, self.resource.value, self.step, list(ACTION_CODE)[code], event)
        )
        if code == ACTION_CODE[AnomalyAction.SCALE_UP]:
            new[v] = min(max(new[v], self.alloc[v] * (1.0 + s.scale_up_by[v])), self.upper[v])
            reason[v] = 3

    def actions(self, vm_ids: list[str], previous: FloatArray) -> list[Resize]:
        """Typed resize actions for the VMs whose allocation changed, each with its reason."""
        changed = np.flatnonzero(self.alloc != previous)
        return [
            Resize(
                vm_ids[v],
                self.resource,
                float(self.alloc[v]),
                REASONS[int(self.decision.reason[v])] or "bounds",
            )
            for v in changed.tolist()
        ]


def allocate_on_hosts(
    desired: FloatArray,
    host_of: np.ndarray,
    host_capacity: FloatArray,
    priority: np.ndarray,
) -> tuple[FloatArray, BoolArray]:
    """Grant desired allocations within each host's capacity, higher SLA classes first.

    Where a host is short, classes are served in priority order (0 first) and the class
    that no longer fits in full shares what is left in proportion to its requests; lower
    classes get nothing more. Returns the grants, and the VMs whose desire alone exceeds
    their host: migration candidates, never unplaceable VMs (their grant is capped).
    """
    desired = np.asarray(desired, dtype=np.float64)
    cap = np.asarray(host_capacity, dtype=np.float64)
    too_big = desired > cap[host_of]
    want = np.minimum(desired, cap[host_of])
    # Total wanted per (host, class), and by the classes ahead of it on the same host.
    classes = int(priority.max()) + 1 if priority.size else 1
    key = host_of * classes + priority
    per_key = np.bincount(key, want, minlength=cap.size * classes).reshape(cap.size, classes)
    ahead = np.cumsum(per_key, axis=1) - per_key
    left = np.maximum(cap[:, None] - ahead, 0.0)
    share = np.where(per_key > 0, np.minimum(1.0, left / np.where(per_key > 0, per_key, 1.0)), 1.0)
    granted = want * share[host_of, priority]
    return granted, too_big
