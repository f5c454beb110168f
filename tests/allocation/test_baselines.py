"""The rightsizing baselines on hand-made traces whose answers are known, and their contract.

Traces are (VMs, steps) arrays at the reference 300 s step, in percent of a capacity of 100
unless a test says otherwise; NaN marks a missing sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from forethought.allocation.base import Recommender
from forethought.allocation.baselines import (
    BASELINES,
    DEFAULT_FLOOR,
    AutopilotML,
    AutopilotPeak,
    AutopilotPercentile,
    ReactiveThreshold,
    StaticPeak,
    VpaRecommender,
    make_baseline,
)
from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray

STEP = 300
#: Steps per day at the reference step.
DAY = 288
NAMES = ("vpa", "autopilot-peak", "autopilot-percentile", "autopilot-ml", "static-peak", "reactive")
SMALL = settings(max_examples=30, deadline=None)


def run(
    rec: Recommender,
    usage: FloatArray,
    capacity: float | FloatArray = 100.0,
    observed: BoolArray | None = None,
    short: BoolArray | None = None,
) -> FloatArray:
    """Reset ``rec`` and feed it ``usage`` one step at a time, as the replay harness does.

    Returns the recommendation after every step, shape (VMs, steps).
    """
    values = np.atleast_2d(np.asarray(usage, dtype=np.float64))
    n, steps = values.shape
    cap = np.array(np.broadcast_to(np.asarray(capacity, dtype=np.float64), (n,)))
    seen = np.isfinite(values) if observed is None else np.atleast_2d(observed)
    rec.reset(n, cap, STEP)
    out = np.empty((n, steps))
    for t in range(steps):
        rec.observe(values[:, t], seen[:, t])
        if short is not None:
            rec.shortfall(np.atleast_2d(short)[:, t])
        out[:, t] = rec.recommend()
    return out


def trace(*pieces: tuple[float, int]) -> FloatArray:
    """One VM's trace from (value, steps) pieces, shape (1, steps)."""
    return np.concatenate([np.full(k, v) for v, k in pieces])[None, :]


def bucket_end(u: float, capacity: float = 100.0, growth: float = 1.05) -> float:
    """The end of the VPA bucket holding ``u``.

    Buckets start at ``0.0001 * capacity * (growth**i - 1) / (growth - 1)``: the first is
    0.01 % of the capacity wide and each is ``growth`` times wider than the one before.
    """
    i = 0
    while 1e-4 * capacity * (growth ** (i + 1) - 1.0) / (growth - 1.0) <= u:
        i += 1
    return 1e-4 * capacity * (growth ** (i + 1) - 1.0) / (growth - 1.0)


# -- names and the protocol ----------------------------------------------------------------------


def test_the_baselines_are_all_there_by_name() -> None:
    assert tuple(BASELINES) == NAMES
    for name in NAMES:
        assert make_baseline(name, "cpu").name == name


def test_an_unknown_baseline_is_named_and_the_known_ones_listed() -> None:
    with pytest.raises(ForethoughtError, match="unknown baseline 'vpa2'") as err:
        make_baseline("vpa2", "cpu")
    for name in NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_resource_is_rejected(name: str) -> None:
    with pytest.raises(ForethoughtError, match="unknown resource 'gpu'"):
        make_baseline(name, "gpu")


@pytest.mark.parametrize("resource", ["cpu", "memory"])
@pytest.mark.parametrize("name", NAMES)
def test_every_baseline_satisfies_the_protocol(name: str, resource: str) -> None:
    rec: Recommender = BASELINES[name](resource)
    assert rec.name == name
    cap = np.array([100.0, 50.0, 8.0])
    rec.reset(3, cap, STEP)
    first = rec.recommend()
    assert first.shape == (3,)
    assert first.dtype == np.float64
    np.testing.assert_array_equal(first, cap)  # a new VM gets its full size
    rng = np.random.default_rng(7)
    for _ in range(50):
        usage = rng.uniform(0.0, 1.0, 3) * cap
        rec.observe(usage, np.array([True, True, False]))
        rec.shortfall(usage > rec.recommend())
        alloc = rec.recommend()
        assert ((alloc >= np.minimum(DEFAULT_FLOOR, cap)) & (alloc <= cap)).all()
    assert rec.recommend()[2] == 8.0  # never observed: still its capacity


# -- properties of every baseline ----------------------------------------------------------------

sample = st.one_of(st.floats(0.0, 150.0), st.just(np.nan))


@st.composite
def cases(draw: st.DrawFn) -> tuple[FloatArray, FloatArray, BoolArray]:
    n = draw(st.integers(1, 4))
    steps = draw(st.integers(1, 40))
    usage: FloatArray = draw(arrays(np.float64, (n, steps), elements=sample))
    cap: FloatArray = draw(arrays(np.float64, (n,), elements=st.floats(0.5, 200.0)))
    short: BoolArray = draw(arrays(np.bool_, (n, steps)))
    return usage, cap, short


@SMALL
@given(case=cases(), name=st.sampled_from(NAMES), resource=st.sampled_from(["cpu", "memory"]))
def test_allocations_stay_within_floor_and_capacity(
    case: tuple[FloatArray, FloatArray, BoolArray], name: str, resource: str
) -> None:
    usage, cap, short = case
    rec = make_baseline(name, resource)
    out = run(rec, usage, cap, short=short)
    assert np.isfinite(out).all()
    low = np.minimum(DEFAULT_FLOOR, cap)[:, None]
    assert (out >= low).all()
    assert (out <= cap[:, None]).all()
    never = ~np.isfinite(usage).any(axis=1)
    if name != "reactive":  # the reactive scaler answers a shortfall even before any sample
        np.testing.assert_array_equal(
            out[never], np.broadcast_to(cap[never, None], out[never].shape)
        )
    np.testing.assert_array_equal(rec.recommend(), rec.recommend())


@SMALL
@given(
    case=cases(),
    junk=st.floats(0.0, 1e6),
    name=st.sampled_from(NAMES),
    resource=st.sampled_from(["cpu", "memory"]),
)
def test_missing_samples_never_count(
    case: tuple[FloatArray, FloatArray, BoolArray], junk: float, name: str, resource: str
) -> None:
    usage, cap, _ = case
    observed = np.isfinite(usage)
    zeros = np.where(observed, usage, 0.0)
    noise = np.where(observed, usage, junk)
    a = run(make_baseline(name, resource), zeros, cap, observed)
    b = run(make_baseline(name, resource), noise, cap, observed)
    c = run(make_baseline(name, resource), usage, cap, np.ones_like(observed))  # NaN: missing
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


peak_based: list[Callable[[], Recommender]] = [
    StaticPeak,
    AutopilotPeak,
    lambda: AutopilotPeak(window_hours=0.5),
    lambda: AutopilotPeak(half_life_hours=1.0),
    lambda: StaticPeak(margin=0.3),
]


@SMALL
@given(
    case=cases(),
    extra=arrays(np.float64, (4, 40), elements=st.floats(0.0, 50.0)),
    which=st.integers(0, len(peak_based) - 1),
)
def test_more_usage_never_lowers_a_peak_based_recommendation(
    case: tuple[FloatArray, FloatArray, BoolArray], extra: FloatArray, which: int
) -> None:
    usage, cap, _ = case
    more = usage + extra[: usage.shape[0], : usage.shape[1]]
    low = run(peak_based[which](), usage, cap)
    high = run(peak_based[which](), more, cap)
    assert (high >= low).all()


@pytest.mark.parametrize(
    "make",
    [StaticPeak, AutopilotPeak, lambda: AutopilotPeak(half_life_hours=6.0), AutopilotML],
)
def test_a_spike_raises_the_peak_based_recommendations(make: Callable[[], Recommender]) -> None:
    flat = trace((30.0, 100))
    spiky = flat.copy()
    spiky[0, 60] = 90.0
    before, after = run(make(), flat), run(make(), spiky)
    np.testing.assert_array_equal(before[:, :60], after[:, :60])
    assert after[0, 60] >= 90.0 > before[0, 60]


# -- VPA -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("u", [3.0, 40.0, 77.0])
def test_vpa_target_of_a_constant_usage_is_115_percent_of_its_bucket(u: float) -> None:
    vpa = VpaRecommender()
    out = run(vpa, trace((u, 300)))
    want = 1.15 * bucket_end(u)
    assert 1.15 * u < want <= 1.15 * (1.05 * u + 0.01)
    np.testing.assert_allclose(out[0], want, rtol=1e-12)
    lower, target, upper = vpa.bounds()
    np.testing.assert_allclose([lower[0], target[0], upper[0]], want, rtol=1e-12)


def test_vpa_weights_halve_every_24_hours_of_5_minute_steps() -> None:
    vpa = VpaRecommender()
    vpa.reset(1, np.array([100.0]), STEP)
    vpa.observe(np.array([40.0]), np.array([True]))
    assert vpa.weights.sum() == pytest.approx(1.0)
    for day in (1, 2):
        for _ in range(DAY):
            vpa.observe(np.array([0.0]), np.array([False]))
        assert vpa.weights.sum() == pytest.approx(0.5**day, rel=1e-12)
    assert np.count_nonzero(vpa.weights) == 1


def test_vpa_weights_shift_its_percentiles_to_recent_usage() -> None:
    # 24 h at 20 then 16 h at 60: 60 holds 40 % of the samples but 54 % of the decayed
    # weight, so the median (lower bound) is 60 only with the 24 h half-life.
    usage = trace((20.0, DAY), (60.0, 192))
    decayed, flat = VpaRecommender(), VpaRecommender(half_life_hours=1e6)
    run(decayed, usage)
    run(flat, usage)
    assert decayed.bounds()[0][0] == pytest.approx(1.15 * bucket_end(60.0))
    assert flat.bounds()[0][0] == pytest.approx(1.15 * bucket_end(20.0))


def test_vpa_changes_the_allocation_only_outside_its_bounds() -> None:
    assert bucket_end(44.0) > bucket_end(40.0)
    vpa = VpaRecommender()
    vpa.reset(1, np.array([100.0]), STEP)
    held, target_moved = [], []
    for u in [40.0] * 50 + [44.0] * 200:
        vpa.observe(np.array([u]), np.array([True]))
        alloc = vpa.recommend()[0]
        lower, target, upper = (b[0] for b in vpa.bounds())
        assert lower <= alloc <= upper or alloc == target
        held.append(alloc)
        target_moved.append(target != alloc)
    old, new = 1.15 * bucket_end(40.0), 1.15 * bucket_end(44.0)
    assert held[49] == pytest.approx(old)
    assert held[-1] == pytest.approx(new)
    # The target moved to 44's bucket long before the allocation followed it.
    assert sum(target_moved) > 10
    assert set(np.round(held, 9)) == {round(old, 9), round(new, 9)}


def test_vpa_memory_keeps_one_peak_sample_per_day() -> None:
    day1 = np.full(DAY, 10.0)
    day1[100], day1[200] = 50.0, 30.0
    usage = np.concatenate([day1, np.full(DAY, 30.0)])[None, :]
    vpa = VpaRecommender("memory")
    vpa.reset(1, np.array([100.0]), STEP)
    starts = vpa.bucket_starts * 100.0
    for t in range(2 * DAY):
        vpa.observe(usage[:, t], np.array([True]))
        peak = usage[0, t - t % DAY : t + 1].max()
        nonzero = np.flatnonzero(vpa.weights[0])
        if t < DAY:
            # One sample only, in the bucket of the running peak of the day.
            assert nonzero.size == 1
            assert starts[nonzero[0]] <= peak < starts[nonzero[0] + 1]
    w = vpa.weights[0][np.flatnonzero(vpa.weights[0])]
    assert w.size == 2
    assert w[0] / w[1] == pytest.approx(2.0)  # day 2's peak (30) weighs twice day 1's (50)
    lower, target, upper = (b[0] for b in vpa.bounds())
    assert target == pytest.approx(1.15 * bucket_end(50.0))
    assert upper == pytest.approx(1.15 * bucket_end(50.0))
    assert lower == pytest.approx(1.15 * bucket_end(30.0))
    cpu = VpaRecommender("cpu")
    run(cpu, usage)
    assert cpu.weights.sum() > 100.0  # every sample counts for CPU


def test_vpa_memory_bumps_after_an_out_of_memory() -> None:
    # Two VMs at 10 for an hour, then 20 with an out-of-memory: used = max(held, 20) = 20.
    usage = np.repeat(trace((10.0, 12), (20.0, 1)), 2, axis=0)
    short = np.zeros_like(usage, dtype=bool)
    short[:, -1] = True
    vpa = VpaRecommender("memory", oom_bump_abs=np.array([30.0, 0.0]))
    bumped = run(vpa, usage, short=short)[:, -1]
    quiet = run(VpaRecommender("memory"), usage)[:, -1]
    assert bumped[0] >= 50.0  # 20 + 30
    assert 24.0 <= bumped[1] < 50.0  # 20 * 1.2
    np.testing.assert_allclose(quiet, 1.15 * bucket_end(20.0))
    assert (bumped > quiet).all()
    # The bump entered the histogram as the day's peak.
    assert vpa.bounds()[1][0] == pytest.approx(1.15 * bucket_end(50.0))


def test_vpa_memory_bump_by_ratio_and_capped_at_capacity() -> None:
    usage = trace((10.0, 12), (70.0, 1))
    short = np.zeros_like(usage, dtype=bool)
    short[:, -1] = True
    plain = VpaRecommender("memory", safety_margin=0.0)
    assert run(plain, usage)[0, -1] < 84.0
    bumped = run(VpaRecommender("memory", safety_margin=0.0), usage, short=short)[0, -1]
    assert bumped >= 84.0  # 70 * 1.2
    near_full = trace((10.0, 12), (95.0, 1))
    assert run(VpaRecommender("memory"), near_full, short=short)[0, -1] == 100.0


def test_vpa_memory_bump_applies_where_the_updater_would_hold() -> None:
    # Three days at 40 keep the 30th percentile, the lower bound here, at 40's bucket: the
    # updater alone would keep the allocation it held, 1.15 x the end of 40's bucket.
    held = 1.15 * bucket_end(40.0)
    usage = trace((40.0, 3 * DAY), (45.0, 1))
    short = np.zeros_like(usage, dtype=bool)
    short[:, -1] = True
    vpa = VpaRecommender("memory", lower_percentile=0.3)
    assert run(vpa, usage)[0, -1] == pytest.approx(held)
    assert run(vpa, usage, short=short)[0, -1] == pytest.approx(1.2 * held)


def test_vpa_cpu_ignores_shortfalls() -> None:
    usage = trace((10.0, 12), (20.0, 5))
    short = np.ones_like(usage, dtype=bool)
    np.testing.assert_array_equal(
        run(VpaRecommender("cpu"), usage, short=short), run(VpaRecommender("cpu"), usage)
    )


def test_vpa_bump_per_vm_must_match_the_vms() -> None:
    vpa = VpaRecommender("memory", oom_bump_abs=np.array([1.0, 2.0]))
    with pytest.raises(ForethoughtError, match="oom_bump_abs"):
        vpa.reset(3, np.full(3, 100.0), STEP)


def test_vpa_floor_holds_an_idle_vm() -> None:
    assert run(VpaRecommender(floor=5.0), trace((0.0, 20)))[0, -1] == 5.0


# -- Autopilot's moving windows ------------------------------------------------------------------


def test_autopilot_peak_is_the_max_of_the_last_24_hours() -> None:
    usage = trace((20.0, 10), (90.0, 1), (20.0, DAY + 5))
    out = run(AutopilotPeak(), usage)[0]
    assert (out[:10] == 20.0).all()
    assert (out[10 : 10 + DAY] == 90.0).all()  # the spike and the 287 steps after it
    assert (out[10 + DAY :] == 20.0).all()
    np.testing.assert_allclose(run(AutopilotPeak(margin=0.1), usage)[0], out * 1.1)


def test_autopilot_decayed_peak_halves_every_half_life() -> None:
    usage = trace((20.0, 10), (80.0, 1), (20.0, 40))
    out = run(AutopilotPeak(half_life_hours=1.0), usage)[0]
    k = np.arange(41)
    np.testing.assert_allclose(out[10:], np.maximum(80.0 * 0.5 ** (k / 12.0), 20.0), rtol=1e-12)


def test_autopilot_peak_holds_when_its_window_is_empty() -> None:
    usage = trace((35.0, 1), (np.nan, 30))
    assert (run(AutopilotPeak(window_hours=1.0), usage)[0] == 35.0).all()


@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_autopilot_percentile_of_a_constant_usage(margin: float) -> None:
    out = run(AutopilotPercentile(margin=margin), trace((40.0, 50)))
    np.testing.assert_allclose(out[0], bucket_end(40.0) * (1.0 + margin), rtol=1e-12)


def test_autopilot_percentile_weighs_recent_samples_by_its_half_life() -> None:
    # 12 h at 20 then 8 h at 80: 80 holds 40 % of the samples but 54 % of the weight.
    usage = trace((20.0, 144), (80.0, 96))
    decayed = run(AutopilotPercentile(level=0.5), usage)[0, -1]
    flat = run(AutopilotPercentile(level=0.5, half_life_hours=1e6), usage)[0, -1]
    assert decayed == pytest.approx(bucket_end(80.0))
    assert flat == pytest.approx(bucket_end(20.0))


def test_autopilot_percentile_follows_usage_down_every_step() -> None:
    out = run(AutopilotPercentile(), trace((80.0, DAY), (20.0, 3 * DAY)))[0]
    assert out[DAY - 1] == pytest.approx(bucket_end(80.0))
    assert out[-1] == pytest.approx(bucket_end(20.0))
    assert (np.diff(out[DAY:]) <= 0.0).all()


# -- Autopilot's ML recommender ------------------------------------------------------------------


def flat_and_spiky(days: int = 3) -> FloatArray:
    """VM 0 flat at 50; VM 1 at 30 with a spike to 90 every 2 hours."""
    spiky = np.full(days * DAY, 30.0)
    spiky[::24] = 90.0
    return np.stack([np.full(days * DAY, 50.0), spiky])


def test_autopilot_ml_is_tight_on_a_flat_trace_and_generous_on_a_spiky_one() -> None:
    ml = AutopilotML()
    usage = flat_and_spiky()
    out = run(ml, usage)
    flat_arm, spiky_arm = (ml.arms[a] for a in ml.chosen)
    assert flat_arm[1] == 0.0
    assert out[0, -1] == 50.0
    assert spiky_arm[0] >= 6.0  # a long memory keeps the limit up between spikes
    before_spikes = out[1, 2 * DAY + 23 :: 24]
    assert (before_spikes >= 0.8 * 90.0).all()
    tight = AutopilotML(half_lives_hours=(1.0,), margins=(0.0,))
    assert (run(tight, usage)[1, 2 * DAY + 23 :: 24] == 30.0).all()


def test_autopilot_ml_without_an_overrun_cost_hugs_the_usage() -> None:
    ml = AutopilotML(w_over=0.0, w_delta=0.0)
    run(ml, flat_and_spiky())
    assert ml.arms[ml.chosen[1]] == (1.0, 0.0)


def test_autopilot_ml_switching_penalty_keeps_its_first_arm() -> None:
    ml = AutopilotML(w_switch=1e9)
    out = run(ml, flat_and_spiky(1))
    assert (ml.chosen == ml.arms.index((24.0, 0.4))).all()
    assert out[0, -1] == pytest.approx(70.0)


def test_autopilot_ml_charges_only_observed_steps() -> None:
    ml = AutopilotML()
    run(ml, trace((50.0, 5), (np.nan, 50)))
    costs = ml.costs.copy()
    ml.observe(np.array([0.0]), np.array([False]))
    np.testing.assert_array_equal(ml.costs, costs)


# -- static peak ---------------------------------------------------------------------------------


def test_static_peak_only_rises_on_a_new_peak() -> None:
    usage = np.array([[10.0, 30.0, 20.0, 25.0, 40.0, 5.0]])
    np.testing.assert_array_equal(run(StaticPeak(), usage)[0], [10, 30, 30, 30, 40, 40])
    np.testing.assert_allclose(run(StaticPeak(margin=0.5), usage)[0], [15, 45, 45, 45, 60, 60])
    np.testing.assert_array_equal(run(StaticPeak(margin=2.0), usage)[0], [30, 90, 90, 90, 100, 100])


# -- reactive threshold --------------------------------------------------------------------------


def test_reactive_scales_up_above_the_threshold() -> None:
    out = run(ReactiveThreshold(initial=0.4, cooldown=0), trace((35.0, 1), (70.0, 3)))[0]
    # 35 > 0.8 * 40 -> 60; 70 > 0.8 * 60 -> 90; 70 < 72: stays.
    np.testing.assert_allclose(out, [60.0, 90.0, 90.0, 90.0])
    capped = run(ReactiveThreshold(initial=0.8, cooldown=0), trace((79.0, 2)))[0]
    np.testing.assert_array_equal(capped, [100.0, 100.0])


def test_reactive_scales_down_after_six_low_steps() -> None:
    out = run(ReactiveThreshold(), trace((10.0, 12)))[0]
    np.testing.assert_allclose(out, [100.0] * 5 + [80.0] * 6 + [64.0])


def test_reactive_cooldown_spaces_the_changes() -> None:
    usage = trace((60.0, 10))
    slow = run(ReactiveThreshold(initial=0.2, cooldown=3), usage)[0]
    np.testing.assert_allclose(slow, [30.0] * 4 + [45.0] * 4 + [67.5] * 2)
    fast = run(ReactiveThreshold(initial=0.2, cooldown=0), usage)[0]
    np.testing.assert_allclose(fast, [30.0, 45.0, 67.5, 100.0, 100.0, 100, 100, 100, 100, 100])


def test_reactive_low_streak_is_broken_by_a_normal_sample_not_by_a_missing_one() -> None:
    broken = run(ReactiveThreshold(), trace((10.0, 5), (50.0, 1), (10.0, 5)))[0]
    assert (broken == 100.0).all()
    gap = run(ReactiveThreshold(), trace((10.0, 3), (np.nan, 2), (10.0, 3)))[0]
    np.testing.assert_allclose(gap, [100.0] * 7 + [80.0])


def test_reactive_shortfall_scales_up_where_usage_is_missing() -> None:
    usage = trace((30.0, 1), (np.nan, 1), (30.0, 1))
    short = np.array([[False, True, True]])
    out = run(ReactiveThreshold(initial=0.4, cooldown=0), usage, short=short)[0]
    # 30 < 32 stays at 40; a shortfall without usage -> 60; with usage 30 < 48 it stays.
    np.testing.assert_allclose(out, [40.0, 60.0, 60.0])


def test_reactive_never_leaves_floor_and_capacity() -> None:
    out = run(ReactiveThreshold(floor=5.0), trace((0.0, 200)))[0]
    assert out[-1] == 5.0
    assert (out >= 5.0).all()


# -- bad parameters and misuse -------------------------------------------------------------------

BAD: list[tuple[Callable[[], object], str]] = [
    (lambda: VpaRecommender("gpu"), "unknown resource"),
    (lambda: VpaRecommender(half_life_hours=0.0), "half_life_hours must be positive"),
    (lambda: VpaRecommender(target_percentile=1.0), "target_percentile"),
    (lambda: VpaRecommender(lower_percentile=0.95, upper_percentile=0.9), "ordered"),
    (lambda: VpaRecommender(safety_margin=-0.1), "safety_margin must be non-negative"),
    (lambda: VpaRecommender(oom_bump_ratio=0.9), "oom_bump_ratio"),
    (lambda: VpaRecommender(oom_bump_abs=-1.0), "oom_bump_abs"),
    (lambda: VpaRecommender(bucket_growth=1.0), "bucket_growth"),
    (lambda: VpaRecommender(first_bucket=0.0), "first_bucket"),
    (lambda: VpaRecommender(floor=float("nan")), "floor must be a finite number"),
    (lambda: VpaRecommender(floor=-1.0), "floor must be non-negative"),
    (lambda: AutopilotPeak(window_hours=0.0), "window_hours"),
    (lambda: AutopilotPeak(half_life_hours=-2.0), "half_life_hours"),
    (lambda: AutopilotPeak(margin=float("inf")), "margin"),
    (lambda: AutopilotPercentile(level=0.0), "level"),
    (lambda: AutopilotPercentile(half_life_hours=0.0), "half_life_hours"),
    (lambda: AutopilotML(half_lives_hours=()), "at least one"),
    (lambda: AutopilotML(margins=(0.0, -0.1)), "margins"),
    (lambda: AutopilotML(w_over=-1.0), "w_over"),
    (lambda: AutopilotML(w_switch=float("nan")), "w_switch"),
    (lambda: AutopilotML(cost_half_life_hours=0.0), "cost_half_life_hours"),
    (lambda: StaticPeak(margin=-0.5), "margin"),
    (lambda: ReactiveThreshold(up_threshold=0.2), "down_threshold"),
    (lambda: ReactiveThreshold(up_factor=1.0), "up_factor"),
    (lambda: ReactiveThreshold(down_factor=1.0), "down_factor"),
    (lambda: ReactiveThreshold(down_after=0), "down_after"),
    (lambda: ReactiveThreshold(cooldown=-1), "cooldown"),
    (lambda: ReactiveThreshold(initial=1.5), "initial"),
    (lambda: ReactiveThreshold(floor=0.0), "floor must be positive"),
]


@pytest.mark.parametrize(("build", "message"), BAD)
def test_bad_parameters_are_rejected_by_name(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ForethoughtError, match=message):
        build()


@pytest.mark.parametrize("name", NAMES)
def test_misuse_is_a_clear_error(name: str) -> None:
    rec = make_baseline(name, "cpu")
    with pytest.raises(ForethoughtError, match="reset must be called"):
        rec.recommend()
    with pytest.raises(ForethoughtError, match="capacity must have shape"):
        rec.reset(2, np.full(3, 100.0), STEP)
    with pytest.raises(ForethoughtError, match="capacity must be positive"):
        rec.reset(2, np.array([100.0, 0.0]), STEP)
    with pytest.raises(ForethoughtError, match="step_seconds"):
        rec.reset(2, np.full(2, 100.0), 0)
    rec.reset(2, np.full(2, 100.0), STEP)
    with pytest.raises(ForethoughtError, match="usage and observed must have shape"):
        rec.observe(np.zeros(3), np.ones(3, dtype=bool))
    with pytest.raises(ForethoughtError, match="short must have shape"):
        rec.shortfall(np.ones(3, dtype=bool))


def test_no_vms_is_allowed() -> None:
    for name in NAMES:
        rec = make_baseline(name, "memory")
        rec.reset(0, np.zeros(0), STEP)
        rec.observe(np.zeros(0), np.zeros(0, dtype=bool))
        rec.shortfall(np.zeros(0, dtype=bool))
        assert rec.recommend().shape == (0,)
