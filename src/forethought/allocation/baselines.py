"""Rightsizing baselines from the literature, each a :class:`~.base.Recommender`.

* :class:`VpaRecommender`: the Kubernetes Vertical Pod Autoscaler's recommender and updater.
* :class:`AutopilotPeak`, :class:`AutopilotPercentile`: the moving-window recommenders of
  Google's Autopilot (Rzadca et al., EuroSys 2020).
* :class:`AutopilotML`: Autopilot's recommender that follows, per VM, the cheapest of a set of
  (decay, safety margin) arms.
* :class:`StaticPeak`: the peak seen so far, plus a margin.
* :class:`ReactiveThreshold`: a threshold scaler that multiplies the allocation up or down.

Shared rules. Quantities are in the resource's unit (usually percent of the VM's provisioned
capacity). Every VM gets its full capacity until its first observed sample. Missing samples
(``observed`` False, or a non-finite usage) never enter a history, a histogram or a peak;
time still passes for them, so decays go on. Negative usage is read as zero. Allocations
always lie in ``[floor, capacity]`` (just ``capacity`` where ``floor`` exceeds it). Every
step is vectorised over VMs; nothing loops over VMs in Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from forethought.allocation.base import Recommender, checked_reset, checked_short, checked_step
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource, parse_resource
from forethought.forecast.base import BoolArray, FloatArray

IntArray = npt.NDArray[np.intp]

_HOUR = 3600.0

#: Smallest allocation a baseline gives by default, in the resource's unit (1 % of the VM
#: when the unit is percent of its capacity).
DEFAULT_FLOOR = 1.0


# -- parameter checks ----------------------------------------------------------------------------


def _finite(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ForethoughtError(f"{name} must be a finite number, got {value!r}")
    return number


def _positive(name: str, value: float) -> float:
    if _finite(name, value) <= 0.0:
        raise ForethoughtError(f"{name} must be positive, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if _finite(name, value) < 0.0:
        raise ForethoughtError(f"{name} must be non-negative, got {value!r}")
    return float(value)


def _level(name: str, value: float) -> float:
    if not 0.0 < _finite(name, value) < 1.0:
        raise ForethoughtError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)


def _count(name: str, value: int, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ForethoughtError(f"{name} must be an integer >= {least}, got {value!r}")
    return value


def _resource(resource: str) -> Resource:
    """The resource called ``resource``; only memory is treated as incompressible."""
    try:
        return parse_resource(resource)
    except (ValueError, AttributeError):
        known = ", ".join(r.value for r in Resource)
        raise ForethoughtError(f"unknown resource {resource!r}; known: {known}") from None


# -- the shared skeleton -------------------------------------------------------------------------


class _Baseline:
    """Checks inputs and applies the shared rules; subclasses keep the state.

    Subclasses implement ``_start`` (after ``reset``), ``_observe`` (with cleaned usage and
    the mask of usable samples), optionally ``_shortfall``, and ``_allocation`` (the raw
    allocation of every VM, clipped here).
    """

    name = "baseline"

    def __init__(self, floor: float) -> None:
        self.floor = _non_negative("floor", floor)
        self._n = -1

    # The protocol.

    def reset(self, n: int, capacity: FloatArray, step_seconds: int) -> None:
        self._n, cap, self._step_seconds = checked_reset(n, capacity, step_seconds)
        self._cap = cap
        self._low = np.minimum(self.floor, cap)
        self._step = -1  # index of the step last observed; its time is step * step_seconds
        self._seen = np.zeros(self._n, dtype=bool)
        self._start()

    def observe(self, usage: FloatArray, observed: BoolArray) -> None:
        self._ready()
        u, ok = checked_step(self._n, usage, observed)
        u = np.where(ok, np.maximum(u, 0.0), 0.0)
        self._step += 1
        self._seen |= ok
        self._observe(u, ok)

    def shortfall(self, short: BoolArray) -> None:
        self._ready()
        s = checked_short(self._n, short)
        if s.any():
            self._shortfall(s)

    def recommend(self) -> FloatArray:
        self._ready()
        return np.asarray(np.where(self._seen, self._clip(self._allocation()), self._unseen()))

    # Helpers for subclasses.

    @property
    def _now(self) -> float:
        """Seconds since reset at the step last observed (0 before any)."""
        return float(max(self._step, 0) * self._step_seconds)

    def _clip(self, values: FloatArray) -> FloatArray:
        return np.asarray(np.minimum(np.maximum(values, self._low), self._cap))

    def _ready(self) -> None:
        if self._n < 0:
            raise ForethoughtError(f"{self.name}: reset must be called before anything else")

    def _unseen(self) -> FloatArray:
        """What a VM never observed is given: its full capacity."""
        return self._cap

    # To implement.

    def _start(self) -> None:
        raise NotImplementedError

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        raise NotImplementedError

    def _shortfall(self, short: BoolArray) -> None:
        """Most baselines do not react to a shortfall beyond the usage they observe."""

    def _allocation(self) -> FloatArray:
        raise NotImplementedError


# -- decaying histograms (VPA and Autopilot's percentile) ----------------------------------------


class _DecayingHistograms:
    """One histogram per VM on exponential buckets, with exponentially decaying weights.

    Buckets are relative to each VM's capacity: bucket ``i`` starts at
    ``first * (growth**i - 1) / (growth - 1)`` of it, so each is ``growth`` times wider than
    the one before, as in VPA; enough buckets cover ``[0, capacity]`` and a last one holds
    everything above. A sample at time ``t`` weighs ``2 ** ((t - ref) / half_life)``: newer
    samples weigh more, which is the same as halving every older weight each half-life.
    When the exponent would pass 100 the reference moves up and all weights are rescaled
    (VPA does the same), so nothing overflows.
    """

    _MAX_EXPONENT = 100.0

    def __init__(
        self, capacity: FloatArray, half_life_seconds: float, growth: float, first: float
    ) -> None:
        regular = math.ceil(math.log1p((growth - 1.0) / first) / math.log(growth))
        self.starts = first * (growth ** np.arange(regular + 1, dtype=np.float64) - 1.0)
        self.starts /= growth - 1.0
        # A percentile is reported as the end of its bucket (the start of the last one).
        self.ends = np.append(self.starts[1:], self.starts[-1])
        # (buckets, VMs): a step touches one row per VM, and the cumulative sums run over
        # contiguous rows of VMs.
        self.weights = np.zeros((regular + 1, capacity.size))
        self._cum = np.empty_like(self.weights)
        self._cap = capacity
        self._half_life = half_life_seconds
        self._ref = 0.0
        self._log_growth = math.log(growth)
        self._scale = (growth - 1.0) / first

    @property
    def size(self) -> int:
        return int(self.starts.size)

    def bucket(self, rows: IntArray, values: FloatArray) -> IntArray:
        """The bucket of ``values[k]`` in the histogram of VM ``rows[k]``."""
        x = values / self._cap[rows]
        last = self.size - 1
        i = np.floor(np.log1p(x * self._scale) / self._log_growth)
        i = np.clip(np.nan_to_num(i, nan=0.0, posinf=last), 0, last).astype(np.intp)
        # Rounding of the logarithm at a bucket edge: step to the bucket really holding x.
        i = np.where(self.starts[i] > x, np.maximum(i - 1, 0), i)
        after = np.minimum(i + 1, last)
        return np.asarray(np.where((i < last) & (self.starts[after] <= x), after, i))

    def weight(self, t: float) -> float:
        """The weight of a sample taken at ``t`` seconds."""
        exponent = (t - self._ref) / self._half_life
        if exponent > self._MAX_EXPONENT:
            self.weights *= 2.0**-exponent
            self._ref = t
            exponent = 0.0
        return float(2.0**exponent)

    def add(self, rows: IntArray, buckets: IntArray, weight: float) -> None:
        self.weights[buckets, rows] += weight

    def subtract(self, rows: IntArray, buckets: IntArray, weight: float) -> None:
        self.weights[buckets, rows] = np.maximum(self.weights[buckets, rows] - weight, 0.0)

    def _cumulative(self, rows: IntArray) -> FloatArray:
        """Cumulative weights over buckets (buckets, VMs): of ``rows``, or of all VMs."""
        if 4 * rows.size < self._cap.size:
            return np.asarray(np.cumsum(self.weights[:, rows], axis=0))
        # NumPy's cumsum over the first axis is slow for wide arrays; a loop over the
        # buckets, each a vector over VMs, is several times faster.
        cum = self._cum
        cum[0] = self.weights[0]
        for b in range(1, self.size):
            np.add(cum[b - 1], self.weights[b], out=cum[b])
        return cum

    def percentiles(
        self, rows: IntArray, levels: Sequence[float]
    ) -> tuple[list[FloatArray], BoolArray]:
        """The weighted ``levels`` of VMs ``rows``, in the resource's unit, and which have data.

        A level ``q`` is the end of the first bucket whose cumulative weight reaches ``q``
        times the total, as VPA reports it (so a constant usage ``u`` reads as the end of
        ``u``'s bucket, at most ``growth`` times ``u`` plus the first bucket).
        """
        cum = self._cumulative(rows)
        width = cum.shape[1]
        total = cum[-1]
        threshold = np.asarray(levels, dtype=np.float64)[:, None] * total
        # Bisection for the first bucket reaching each threshold, all levels and VMs at once
        # (a loop over the log2(buckets) halvings).
        flat, cols = cum.ravel(), np.arange(width)
        lo = np.zeros(threshold.shape, dtype=np.intp)
        hi = np.full(threshold.shape, self.size - 1, dtype=np.intp)
        for _ in range(math.ceil(math.log2(self.size))):
            mid = (lo + hi) >> 1
            below = flat[mid * width + cols] < threshold
            lo = np.where(below, mid + 1, lo)
            hi = np.where(below, hi, mid)
        if width != rows.size:
            lo, total = lo[:, rows], total[rows]
        values = self.ends[lo] * self._cap[rows]
        return list(values), np.asarray(total > 0.0)

    def relative(self, now: float) -> FloatArray:
        """The weights (VMs, buckets) scaled so that a sample taken at ``now`` weighs 1."""
        return np.asarray(self.weights.T * 2.0 ** ((self._ref - now) / self._half_life))


def _histogram_args(bucket_growth: float, first_bucket: float) -> tuple[float, float]:
    if not 1.0 < _finite("bucket_growth", bucket_growth) <= 2.0:
        raise ForethoughtError(f"bucket_growth must lie in (1, 2], got {bucket_growth!r}")
    if not 0.0 < _finite("first_bucket", first_bucket) < 1.0:
        raise ForethoughtError(
            f"first_bucket is a fraction of capacity in (0, 1), got {first_bucket!r}"
        )
    return float(bucket_growth), float(first_bucket)


# -- VPA -----------------------------------------------------------------------------------------


class VpaRecommender(_Baseline):
    """The Kubernetes Vertical Pod Autoscaler: decaying histogram, percentiles, updater.

    Per VM a histogram of usage samples on exponential buckets (5 % growth; the first is
    ``first_bucket`` of the capacity wide, 0.01 unit when the capacity is 100 %) with weights
    halving every ``half_life_hours`` (24 h). From it: target = P90, lower bound = P50 and
    upper bound = P95, each times ``1 + safety_margin`` (1.15). Like VPA's updater, the
    allocation changes only when it falls outside [lower, upper], and then becomes the
    target; it is recomputed when a VM's histogram changes.

    For CPU (and every resource but memory) each observed sample enters the histogram. For
    ``resource="memory"`` only one sample per VM per aggregation interval does
    (``aggregation_hours``, 24 h): the peak of that interval, the running peak of the
    current one included (a higher usage replaces it), weighted at the interval's end.
    Intervals are aligned on ``reset`` for every VM (VPA starts them at a container's first
    sample). On a memory shortfall (out of memory) the VM's used memory, the larger of the
    allocation it held during the step and this interval's peak, is bumped to
    ``max(used + oom_bump_abs, used * oom_bump_ratio)``; that value enters the histogram as
    the interval's peak and the next allocation is at least it. ``oom_bump_abs`` is VPA's
    100 MB in the resource's unit, one number or one per VM; its default 0 stands for
    "unknown" (with a capacity in percent, 100 MB of a VM with ``m`` MB of memory is
    ``1e4 / m``). A CPU shortfall (throttling) is ignored, as VPA ignores it.

    Left out of VPA: the confidence multipliers widening the bounds while history is short,
    the weighting of CPU samples by the container's request (every sample weighs the same
    here), and the updater's other eviction rules.
    """

    name = "vpa"

    def __init__(
        self,
        resource: str = "cpu",
        *,
        half_life_hours: float = 24.0,
        target_percentile: float = 0.9,
        lower_percentile: float = 0.5,
        upper_percentile: float = 0.95,
        safety_margin: float = 0.15,
        aggregation_hours: float = 24.0,
        oom_bump_ratio: float = 1.2,
        oom_bump_abs: float | FloatArray = 0.0,
        bucket_growth: float = 1.05,
        first_bucket: float = 1e-4,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        super().__init__(floor)
        self.resource = _resource(resource)
        self.memory = self.resource is Resource.MEMORY
        self.half_life_hours = _positive("half_life_hours", half_life_hours)
        self.target_percentile = _level("target_percentile", target_percentile)
        self.lower_percentile = _level("lower_percentile", lower_percentile)
        self.upper_percentile = _level("upper_percentile", upper_percentile)
        if not lower_percentile <= target_percentile <= upper_percentile:
            raise ForethoughtError(
                "percentiles must be ordered lower_percentile <= target_percentile <= "
                f"upper_percentile, got {lower_percentile}, {target_percentile}, "
                f"{upper_percentile}"
            )
        self.safety_margin = _non_negative("safety_margin", safety_margin)
        self.aggregation_hours = _positive("aggregation_hours", aggregation_hours)
        if _finite("oom_bump_ratio", oom_bump_ratio) < 1.0:
            raise ForethoughtError(f"oom_bump_ratio must be at least 1, got {oom_bump_ratio!r}")
        self.oom_bump_ratio = float(oom_bump_ratio)
        bump = np.array(oom_bump_abs, dtype=np.float64)
        if bump.ndim > 1 or not (np.isfinite(bump) & (bump >= 0.0)).all():
            raise ForethoughtError(
                "oom_bump_abs must be a non-negative finite number or one per VM"
            )
        self.oom_bump_abs = bump
        self.bucket_growth, self.first_bucket = _histogram_args(bucket_growth, first_bucket)

    def _start(self) -> None:
        if self.oom_bump_abs.ndim == 1 and self.oom_bump_abs.shape != (self._n,):
            raise ForethoughtError(
                f"oom_bump_abs must have one value per VM ({self._n}), "
                f"got {self.oom_bump_abs.shape[0]}"
            )
        self._bump = np.broadcast_to(self.oom_bump_abs, (self._n,))
        self._hist = _DecayingHistograms(
            self._cap, self.half_life_hours * _HOUR, self.bucket_growth, self.first_bucket
        )
        self._alloc = self._cap.copy()
        self._rows = np.arange(self._n)
        self._interval = -1
        self._peak = np.full(self._n, -np.inf)
        self._peak_bucket = np.zeros(self._n, dtype=np.intp)
        self._held = self._alloc.copy()  # the allocation in force during the last step

    @property
    def weights(self) -> FloatArray:
        """Each VM's histogram (VMs, buckets), a sample taken at the last step weighing 1."""
        self._ready()
        return self._hist.relative(self._now)

    @property
    def bucket_starts(self) -> FloatArray:
        """Where each bucket starts, as a fraction of the VM's capacity."""
        self._ready()
        return np.asarray(self._hist.starts.copy())

    def bounds(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """VPA's (lower bound, target, upper bound) of every VM now; capacity where unseen."""
        self._ready()
        lower, target, upper = self._bounds(self._rows)[:3]
        return (
            np.asarray(np.where(self._seen, lower, self._cap)),
            np.asarray(np.where(self._seen, target, self._cap)),
            np.asarray(np.where(self._seen, upper, self._cap)),
        )

    def _bounds(self, rows: IntArray) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
        levels = (self.lower_percentile, self.target_percentile, self.upper_percentile)
        values, has = self._hist.percentiles(rows, levels)
        cap, low = self._cap[rows], self._low[rows]
        lower, target, upper = (
            np.minimum(np.maximum(v * (1.0 + self.safety_margin), low), cap) for v in values
        )
        return lower, target, upper, has

    def _update(self, rows: IntArray) -> None:
        """The updater: where the allocation left [lower, upper], it becomes the target."""
        lower, target, upper, has = self._bounds(rows)
        alloc = self._alloc[rows]
        outside = has & ((alloc < lower) | (alloc > upper))
        self._alloc[rows] = np.where(outside, target, alloc)

    def _interval_end(self) -> float:
        return (self._interval + 1) * self.aggregation_hours * _HOUR

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        self._held = self._alloc.copy()
        if not self.memory:
            rows = np.flatnonzero(ok)
            if rows.size:
                weight = self._hist.weight(self._now)
                self._hist.add(rows, self._hist.bucket(rows, usage[rows]), weight)
                self._update(rows)
            return
        interval = math.floor(self._now / (self.aggregation_hours * _HOUR))
        if interval != self._interval:
            self._interval = interval
            self._peak.fill(-np.inf)
        self._set_peaks(ok & (usage > self._peak), usage)

    def _set_peaks(self, mask: BoolArray, values: FloatArray) -> None:
        """``values`` become the interval's peak sample of the VMs in ``mask``."""
        rows = np.flatnonzero(mask)
        if not rows.size:
            return
        weight = self._hist.weight(self._interval_end())
        had = rows[np.isfinite(self._peak[rows])]
        self._hist.subtract(had, self._peak_bucket[had], weight)
        buckets = self._hist.bucket(rows, values[rows])
        self._hist.add(rows, buckets, weight)
        self._peak[rows] = values[rows]
        self._peak_bucket[rows] = buckets
        self._update(rows)

    def _shortfall(self, short: BoolArray) -> None:
        if not self.memory:
            return
        rows = np.flatnonzero(short & self._seen)
        if not rows.size:
            return
        # VPA bumps the larger of the memory the VM was given and the interval's peak.
        used = np.maximum(self._held[rows], np.maximum(self._peak[rows], 0.0))
        bumped = np.maximum(used + self._bump[rows], used * self.oom_bump_ratio)
        bumped = np.minimum(bumped, self._cap[rows])
        values = np.zeros(self._n)
        values[rows] = bumped
        higher = np.zeros(self._n, dtype=bool)
        higher[rows] = bumped > self._peak[rows]
        self._set_peaks(higher, values)
        self._alloc[rows] = np.maximum(self._alloc[rows], bumped)

    def _allocation(self) -> FloatArray:
        return self._alloc


# -- Autopilot's moving windows ------------------------------------------------------------------


class AutopilotPeak(_Baseline):
    """Autopilot's peak recommender: the largest recent sample, times ``1 + margin``.

    By default the peak is the paper's windowed maximum, over the samples of the last
    ``window_hours`` (24 h, the current step included). With ``half_life_hours`` set it is
    the decayed peak instead, ``max_j usage[t - j] * 2 ** (-j * step / half_life)``, with no
    window. The recommendation follows the peak every step (Autopilot changes limits often).
    A VM with no sample in its window keeps its last recommendation.
    """

    name = "autopilot-peak"

    def __init__(
        self,
        *,
        window_hours: float = 24.0,
        half_life_hours: float | None = None,
        margin: float = 0.0,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        super().__init__(floor)
        self.window_hours = _positive("window_hours", window_hours)
        self.half_life_hours = (
            None if half_life_hours is None else _positive("half_life_hours", half_life_hours)
        )
        self.margin = _non_negative("margin", margin)

    def _start(self) -> None:
        self._rec = self._cap.copy()
        if self.half_life_hours is None:
            steps = self.window_hours * _HOUR / self._step_seconds
            self._window = max(1, math.ceil(steps - 1e-9))
            # (steps in the window, VMs): one contiguous row written per step.
            self._ring = np.full((self._window, self._n), -np.inf)
            self._pos = 0
        else:
            self._decay = 2.0 ** (-self._step_seconds / (self.half_life_hours * _HOUR))
            self._peak = np.full(self._n, -np.inf)

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        sample = np.where(ok, usage, -np.inf)
        if self.half_life_hours is None:
            self._ring[self._pos] = sample
            self._pos = (self._pos + 1) % self._window
            peak = self._ring.max(axis=0)
        else:
            self._peak = np.maximum(self._peak * self._decay, sample)
            peak = self._peak
        self._rec = np.where(np.isfinite(peak), peak * (1.0 + self.margin), self._rec)

    def _allocation(self) -> FloatArray:
        return self._rec


class AutopilotPercentile(_Baseline):
    """Autopilot's percentile recommender: a weighted percentile of the decayed history.

    Every observed 5-minute sample enters a per-VM histogram (the buckets of
    :class:`VpaRecommender`) whose weights halve every ``half_life_hours`` (the paper's 12 h
    for CPU); the recommendation is its ``level`` percentile (P95) times ``1 + margin``,
    recomputed at every observed step: Autopilot changes limits often and has no updater
    band like VPA's.
    """

    name = "autopilot-percentile"

    def __init__(
        self,
        *,
        level: float = 0.95,
        half_life_hours: float = 12.0,
        margin: float = 0.0,
        bucket_growth: float = 1.05,
        first_bucket: float = 1e-4,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        super().__init__(floor)
        self.level = _level("level", level)
        self.half_life_hours = _positive("half_life_hours", half_life_hours)
        self.margin = _non_negative("margin", margin)
        self.bucket_growth, self.first_bucket = _histogram_args(bucket_growth, first_bucket)

    def _start(self) -> None:
        self._hist = _DecayingHistograms(
            self._cap, self.half_life_hours * _HOUR, self.bucket_growth, self.first_bucket
        )
        self._rec = self._cap.copy()

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        rows = np.flatnonzero(ok)
        if not rows.size:
            return
        weight = self._hist.weight(self._now)
        self._hist.add(rows, self._hist.bucket(rows, usage[rows]), weight)
        (value,), has = self._hist.percentiles(rows, (self.level,))
        self._rec[rows] = np.where(has, value * (1.0 + self.margin), self._rec[rows])

    def _allocation(self) -> FloatArray:
        return self._rec


# -- Autopilot's ML recommender ------------------------------------------------------------------


class AutopilotML(_Baseline):
    """Autopilot's ML recommender: per VM, follow the arm whose past choices cost least.

    Each arm is a pair (half-life ``h``, margin ``m``) and recommends its decayed peak
    ``max_j usage[t - j] * 2 ** (-j * step / h)`` times ``1 + m`` (clipped to
    ``[floor, capacity]``). At each observed step every arm's recommendation from the step
    before is charged, as fractions of the VM's capacity, ``w_over * overrun`` (usage above
    it) + ``w_under * underrun`` (its slack above usage) + ``w_delta`` if its recommendation
    moved by more than ``change_tolerance`` of the capacity; costs are exponentially weighted
    averages forgetting with a half-life of ``cost_half_life_hours``. The VM then follows the
    arm of least cost, where every arm but the one it follows pays ``w_switch`` more. A VM
    starts on the most generous arm (longest half-life, then largest margin).

    Defaults: half-lives {1, 6, 24} h x margins {0, 0.1, 0.2, 0.4}; ``w_over = 20``,
    ``w_under = 1`` (for a steady usage distribution the cost then favours limits near its
    20/21 ~ P95); ``w_delta = 0.05`` and ``w_switch = 0.05`` (a change costs like 5 % of
    slack for one step; a switch needs an average gain of 5 % of capacity); costs forget
    over a day. The paper tunes its weights offline and publishes none; it reports 23 %
    slack for Autopilot against 46 % for hand-set limits. Its overrun counts the samples
    above the limit; here it is their excess, in proportion to slack.
    """

    name = "autopilot-ml"

    def __init__(
        self,
        *,
        half_lives_hours: Sequence[float] = (1.0, 6.0, 24.0),
        margins: Sequence[float] = (0.0, 0.1, 0.2, 0.4),
        w_over: float = 20.0,
        w_under: float = 1.0,
        w_delta: float = 0.05,
        w_switch: float = 0.05,
        cost_half_life_hours: float = 24.0,
        change_tolerance: float = 0.01,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        super().__init__(floor)
        if not half_lives_hours or not margins:
            raise ForethoughtError("half_lives_hours and margins must each hold at least one value")
        lives = [_positive("half_lives_hours", h) for h in half_lives_hours]
        extra = [_non_negative("margins", m) for m in margins]
        self.arms: tuple[tuple[float, float], ...] = tuple((h, m) for h in lives for m in extra)
        self.w_over = _non_negative("w_over", w_over)
        self.w_under = _non_negative("w_under", w_under)
        self.w_delta = _non_negative("w_delta", w_delta)
        self.w_switch = _non_negative("w_switch", w_switch)
        self.cost_half_life_hours = _positive("cost_half_life_hours", cost_half_life_hours)
        self.change_tolerance = _non_negative("change_tolerance", change_tolerance)
        self._generous = max(range(len(self.arms)), key=lambda a: self.arms[a])

    def _start(self) -> None:
        lives = np.array([h for h, _ in self.arms])[:, None] * _HOUR
        self._decay = 2.0 ** (-self._step_seconds / lives)
        self._mult = 1.0 + np.array([m for _, m in self.arms])[:, None]
        self._forget = 2.0 ** (-self._step_seconds / (self.cost_half_life_hours * _HOUR))
        arms = len(self.arms)
        self._peak = np.full((arms, self._n), -np.inf)
        self._arm_rec = np.broadcast_to(self._cap, (arms, self._n)).copy()
        self._cost = np.zeros((arms, self._n))
        self._current = np.full(self._n, self._generous, dtype=np.intp)
        self._index = np.arange(arms)[:, None]
        self._cols = np.arange(self._n)

    @property
    def chosen(self) -> IntArray:
        """The index in :attr:`arms` each VM follows now."""
        self._ready()
        return np.asarray(self._current.copy())

    @property
    def costs(self) -> FloatArray:
        """Each arm's running cost (arms, VMs)."""
        self._ready()
        return np.asarray(self._cost.copy())

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        cap = self._cap
        before = self._arm_rec
        self._peak = np.maximum(self._peak * self._decay, np.where(ok, usage, -np.inf))
        live = np.isfinite(self._peak)
        after = np.where(live, np.minimum(np.maximum(self._peak * self._mult, self._low), cap), cap)
        over = np.maximum(usage - before, 0.0) / cap
        under = np.maximum(before - usage, 0.0) / cap
        moved = np.abs(after - before) > self.change_tolerance * cap
        step_cost = self.w_over * over + self.w_under * under + self.w_delta * moved
        blended = self._forget * self._cost + (1.0 - self._forget) * step_cost
        self._cost = np.where(ok, blended, self._cost)
        self._arm_rec = after
        score = self._cost + self.w_switch * (self._index != self._current)
        self._current = np.where(ok, np.argmin(score, axis=0), self._current)

    def _allocation(self) -> FloatArray:
        return np.asarray(self._arm_rec[self._current, self._cols])


# -- simple baselines ----------------------------------------------------------------------------


class StaticPeak(_Baseline):
    """The peak usage seen so far times ``1 + margin``: it only ever rises, on a new peak."""

    name = "static-peak"

    def __init__(self, *, margin: float = 0.0, floor: float = DEFAULT_FLOOR) -> None:
        super().__init__(floor)
        self.margin = _non_negative("margin", margin)

    def _start(self) -> None:
        self._peak = np.full(self._n, -np.inf)

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        self._peak = np.where(ok, np.maximum(self._peak, usage), self._peak)

    def _allocation(self) -> FloatArray:
        return np.asarray(self._peak * (1.0 + self.margin))


class ReactiveThreshold(_Baseline):
    """A reactive threshold scaler, per VM.

    When usage exceeds ``up_threshold`` of the allocation, the allocation is multiplied by
    ``up_factor``; once usage has stayed below ``down_threshold`` of it for ``down_after``
    consecutive observed steps, by ``down_factor``. After any change the next ``cooldown``
    steps change nothing (a low streak keeps counting through them and acts when they end).
    Missing samples neither extend nor break a low streak. A shortfall at a step whose usage
    is missing counts as usage above the threshold (an observed one already triggered it).
    The allocation starts at ``initial`` times the capacity (the full capacity by default,
    as every baseline gives an unobserved VM) and stays in ``[floor, capacity]``.
    """

    name = "reactive"

    def __init__(
        self,
        *,
        up_threshold: float = 0.8,
        up_factor: float = 1.5,
        down_threshold: float = 0.3,
        down_factor: float = 0.8,
        down_after: int = 6,
        cooldown: int = 3,
        initial: float = 1.0,
        floor: float = DEFAULT_FLOOR,
    ) -> None:
        super().__init__(floor)
        if self.floor <= 0.0:
            raise ForethoughtError(
                f"floor must be positive for the reactive scaler (it scales by factors), "
                f"got {floor!r}"
            )
        self.up_threshold = _positive("up_threshold", up_threshold)
        self.down_threshold = _positive("down_threshold", down_threshold)
        if self.down_threshold >= self.up_threshold:
            raise ForethoughtError(
                f"down_threshold ({down_threshold}) must be below up_threshold ({up_threshold})"
            )
        if _finite("up_factor", up_factor) <= 1.0:
            raise ForethoughtError(f"up_factor must exceed 1, got {up_factor!r}")
        self.up_factor = float(up_factor)
        if not 0.0 < _finite("down_factor", down_factor) < 1.0:
            raise ForethoughtError(
                f"down_factor must lie strictly between 0 and 1, got {down_factor!r}"
            )
        self.down_factor = float(down_factor)
        self.down_after = _count("down_after", down_after, 1)
        self.cooldown = _count("cooldown", cooldown, 0)
        if not 0.0 < _finite("initial", initial) <= 1.0:
            raise ForethoughtError(f"initial is a fraction of capacity in (0, 1], got {initial!r}")
        self.initial = float(initial)

    def _start(self) -> None:
        self._alloc = self._clip(self.initial * self._cap)
        self._low_streak = np.zeros(self._n, dtype=np.int64)
        self._since = np.full(self._n, self.cooldown + 1, dtype=np.int64)
        self._ok = np.zeros(self._n, dtype=bool)

    def _unseen(self) -> FloatArray:
        return self._alloc

    def _scale(self, up: BoolArray, down: BoolArray) -> None:
        factor = np.where(up, self.up_factor, np.where(down, self.down_factor, 1.0))
        new = self._clip(self._alloc * factor)
        changed = new != self._alloc
        self._alloc = new
        self._since[changed] = 0
        self._low_streak[changed] = 0

    def _observe(self, usage: FloatArray, ok: BoolArray) -> None:
        self._ok = ok
        self._since += 1
        ready = self._since > self.cooldown
        high = ok & (usage > self.up_threshold * self._alloc)
        low = ok & (usage < self.down_threshold * self._alloc)
        self._low_streak = np.where(ok, np.where(low, self._low_streak + 1, 0), self._low_streak)
        self._scale(high & ready, ~high & ready & (self._low_streak >= self.down_after))

    def _shortfall(self, short: BoolArray) -> None:
        up = short & ~self._ok & (self._since > self.cooldown)
        self._scale(up, np.zeros(self._n, dtype=bool))

    def _allocation(self) -> FloatArray:
        return self._alloc


# -- by name -------------------------------------------------------------------------------------


def _vpa(resource: str) -> Recommender:
    return VpaRecommender(resource)


def _autopilot_peak(resource: str) -> Recommender:
    _resource(resource)
    return AutopilotPeak()


def _autopilot_percentile(resource: str) -> Recommender:
    # The paper's half-lives: 12 h for CPU, 48 h for memory.
    memory = _resource(resource) is Resource.MEMORY
    return AutopilotPercentile(half_life_hours=48.0 if memory else 12.0)


def _autopilot_ml(resource: str) -> Recommender:
    _resource(resource)
    return AutopilotML()


def _static_peak(resource: str) -> Recommender:
    _resource(resource)
    return StaticPeak()


def _reactive(resource: str) -> Recommender:
    _resource(resource)
    return ReactiveThreshold()


#: Every baseline by name: a factory taking the resource ("cpu", "memory"...) it allocates.
BASELINES: dict[str, Callable[[str], Recommender]] = {
    "vpa": _vpa,
    "autopilot-peak": _autopilot_peak,
    "autopilot-percentile": _autopilot_percentile,
    "autopilot-ml": _autopilot_ml,
    "static-peak": _static_peak,
    "reactive": _reactive,
}


def make_baseline(name: str, resource: str = "cpu") -> Recommender:
    """The baseline called ``name``, with its defaults, for ``resource``."""
    try:
        factory = BASELINES[name]
    except (KeyError, TypeError):
        known = ", ".join(BASELINES)
        raise ForethoughtError(f"unknown baseline {name!r}; known baselines: {known}") from None
    return factory(resource)
