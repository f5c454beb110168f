"""The allocation manager: hysteresis, floors, anomalies, host capacity and SLA classes."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.allocation.manager import (
    PredictiveRecommender,
    Settings,
    allocate_on_hosts,
)
from forethought.allocation.policy import VmInfo, parse_policy
from forethought.cluster.backend import Resize
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.forecast.anomaly import Anomaly

STEP = 300


def recommender(
    yaml_resources: str = "{}",
    n: int = 4,
    anomaly: str = "alert",
    resource: Resource = Resource.CPU,
) -> PredictiveRecommender:
    policy = parse_policy(
        "version: 1\ngroups:\n  - name: all\n    match: {name: '*'}\n"
        f"    resources: {{{resource.value}: {yaml_resources}}}\n"
        f"    anomaly: {{action: {anomaly}}}\n"
    )
    groups = policy.assign([VmInfo(f"vm-{i}") for i in range(n)])
    rec = PredictiveRecommender(Settings.from_policy(policy, groups, resource, STEP), resource)
    rec.reset(n, np.full(n, 100.0), STEP)
    return rec


def feed(rec: PredictiveRecommender, usage: np.ndarray) -> np.ndarray:
    """Run (n, steps) of usage through the recommender; allocations after each step."""
    out = []
    for t in range(usage.shape[1]):
        rec.observe(usage[:, t], np.ones(usage.shape[0], dtype=bool))
        rec.shortfall(np.zeros(usage.shape[0], dtype=bool))
        out.append(rec.recommend().copy())
    return np.array(out).T


def test_settings_become_per_vm_arrays_in_steps() -> None:
    rec = recommender("{quantile: 0.9, horizon_minutes: 30, cooldown_minutes: 45, max: 80}")
    s = rec.settings
    assert s.quantile.tolist() == [0.9] * 4
    assert s.lookahead.tolist() == [6] * 4
    assert s.cooldown.tolist() == [9] * 4
    assert s.maximum.tolist() == [80.0] * 4


def test_a_steady_vm_comes_down_in_bounded_steps_and_settles() -> None:
    rng = np.random.default_rng(1)
    usage = 20 + rng.normal(0, 1, (4, 200))
    alloc = feed(recommender("{max_step_down: 0.25, cooldown_minutes: 60}"), usage)
    drops = alloc[:, :-1] / np.maximum(alloc[:, 1:], 1e-9)
    assert alloc[:, 0].tolist() == [100.0] * 4  # starts at the VM's size
    assert (alloc[:, 1:] >= alloc[:, :-1] * 0.75 - 1e-9).all()  # at most 25 % per step
    changes = np.flatnonzero(np.diff(alloc[0]) < 0)
    assert np.all(np.diff(changes) >= 12)  # a decrease at most once an hour
    assert alloc[:, -1].min() > 20
    assert alloc[:, -1].max() < 40
    assert drops.max() > 1.0


def test_an_increase_happens_at_once() -> None:
    usage = np.full((4, 160), 10.0)
    usage[:, 150:] = 60.0
    alloc = feed(recommender(), usage)
    before, after = alloc[:, 148], alloc[:, 151]
    assert (before < 60).all()
    assert (after >= 60).all()  # one step after the jump was seen


def test_a_memory_shortfall_raises_the_floor_and_it_is_remembered() -> None:
    rec = recommender("{quantile: 0.5, headroom: 0.0}", n=2, resource=Resource.MEMORY)
    feed(rec, np.full((2, 100), 10.0))
    rec.observe(np.array([30.0, 10.0]), np.ones(2, dtype=bool))
    rec.shortfall(np.array([True, False]))
    first = rec.recommend().copy()
    assert first[0] >= 30.0 * 1.2 - 1e-9
    later = feed(rec, np.full((2, 50), 10.0))
    assert (later[0] >= 36.0 - 1e-9).all()  # remembered for a day, not forgotten at once


def test_the_policy_sets_how_long_a_shortfall_floor_holds() -> None:
    # Memory that may shrink back two hours after an out-of-memory signal, not a day.
    rec = recommender(
        "{quantile: 0.5, headroom: 0.0, shortfall_floor_minutes: 120, down_after_minutes: 5,"
        " cooldown_minutes: 5, max_step_down: 1.0}",
        n=2,
        resource=Resource.MEMORY,
    )
    assert rec.settings.floor_hold is not None
    assert rec.settings.floor_hold.tolist() == [24, 24]  # 120 min of 5-min steps
    feed(rec, np.full((2, 100), 10.0))
    rec.observe(np.array([30.0, 10.0]), np.ones(2, dtype=bool))
    rec.shortfall(np.array([True, False]))
    rec.recommend()
    later = feed(rec, np.full((2, 60), 10.0))
    assert (later[0, :20] >= 36.0 - 1e-9).all()  # held while the two hours last
    assert later[0, -1] < 36.0  # then the VM comes down again
    # A CPU group can keep one too (throttling taken as seriously as memory pressure).
    cpu = recommender("{shortfall_floor_minutes: 60}")
    assert cpu.settings.floor_hold is not None
    assert cpu.settings.floor_hold.tolist() == [12] * 4


def test_a_cpu_shortfall_forces_an_increase_but_is_not_remembered() -> None:
    rec = recommender(
        "{quantile: 0.5, headroom: 0.0, down_after_minutes: 5, cooldown_minutes: 5}", n=1
    )
    feed(rec, np.full((1, 100), 10.0))
    rec.observe(np.array([30.0]), np.ones(1, dtype=bool))
    rec.shortfall(np.array([True]))
    assert rec.recommend()[0] >= 36.0 - 1e-9
    later = feed(rec, np.full((1, 150), 10.0))
    assert later[0, -1] < 36.0


def test_scale_up_on_anomaly_is_recorded_with_evidence() -> None:
    rng = np.random.default_rng(3)
    usage = 10 + rng.normal(0, 0.5, (3, 220))
    usage[1, 200:] = 80.0
    rec = recommender(n=3, anomaly="scale_up")
    alloc = feed(rec, usage)
    assert any(a.vm == 1 and a.action == "scale_up" for a in rec.anomalies)
    record = next(a for a in rec.anomalies if a.vm == 1)
    assert isinstance(record.evidence, Anomaly)
    assert len(record.evidence.observed) == 3
    assert alloc[1, -1] >= 80.0


def test_actions_say_why() -> None:
    rec = recommender(n=2)
    previous = np.full(2, 100.0)
    feed(rec, np.full((2, 60), 5.0))
    actions = rec.actions(["a", "b"], previous)
    assert actions
    assert all(isinstance(a, Resize) and a.reason for a in actions)


def test_hosts_serve_sla_classes_in_order_and_share_within_a_class() -> None:
    desired = np.array([60.0, 30.0, 30.0, 50.0])
    host_of = np.array([0, 0, 0, 1])
    priority = np.array([0, 1, 1, 0])
    granted, too_big = allocate_on_hosts(desired, host_of, np.array([100.0, 40.0]), priority)
    assert granted[0] == pytest.approx(60.0)  # gold in full
    assert granted[1:3] == pytest.approx([20.0, 20.0])  # silver shares the 40 left
    assert granted[3] == pytest.approx(40.0)  # capped at its host
    assert too_big.tolist() == [False, False, False, True]  # a migration candidate


def test_hosts_with_room_grant_everything() -> None:
    desired = np.array([10.0, 20.0, 30.0])
    granted, too_big = allocate_on_hosts(
        desired, np.array([0, 0, 1]), np.array([100.0, 100.0]), np.array([2, 0, 1])
    )
    assert granted.tolist() == desired.tolist()
    assert not too_big.any()


def test_a_cross_resource_anomaly_is_acted_on_as_the_policy_says() -> None:
    from forethought.allocation.cross import CrossReport
    from forethought.forecast.anomaly import CrossAnomaly

    rec = recommender(n=3, anomaly="scale_up")
    event = CrossAnomaly(1, 99, ("cpu", "memory"), ((1.0, -1.0),) * 3, (20.0,) * 3, 10.0, "cpu")
    flags = np.zeros((3, 200), dtype=bool)
    flags[1, 99:102] = True
    rec.cross = CrossReport(("cpu", "memory"), 10.0, [event], {99: [event]}, flags)
    usage = np.full((3, 100), 10.0)
    before = feed(rec, usage[:, :99])[:, -1]
    after = feed(rec, usage[:, 99:100])[:, -1]
    crossed = [a for a in rec.anomalies if isinstance(a.evidence, CrossAnomaly)]
    assert [(a.vm, a.action) for a in crossed] == [(1, "scale_up")]
    assert after[1] >= before[1] * 1.2 - 1e-9  # scaled up by the group's scale_up_by
    assert after[0] <= before[0] + 1e-9


def _bandwidth(yaml_resources: str = "{}", n: int = 3) -> PredictiveRecommender:
    policy = parse_policy(
        "version: 1\ngroups:\n  - name: all\n    match: {name: '*'}\n"
        f"    resources: {{net_tx: {yaml_resources}}}\n"
    )
    groups = policy.assign([VmInfo(f"vm-{i}") for i in range(n)])
    settings = Settings.from_policy(policy, groups, Resource.NET_TX, STEP)
    rec = PredictiveRecommender(settings, Resource.NET_TX)
    rec.reset(n, np.full(n, np.inf), STEP)  # a bandwidth: no provisioned size
    return rec


def test_a_bandwidth_without_a_size_starts_unset_and_is_sized_by_its_first_forecast() -> None:
    rec = _bandwidth("{quantile: 0.95, headroom: 0.1}")
    assert np.isnan(rec.alloc).all()
    rng = np.random.default_rng(4)
    usage = np.array([[500.0], [20_000.0], [0.0]]) + rng.uniform(0, 50, (3, 60))  # KB/s
    alloc = feed(rec, usage)
    assert np.isfinite(alloc).all()
    # Sized to each VM's own level (1.1 x its forecast at least), not to one fleet number.
    # (up to the float32 in which the engine keeps its forecasts)
    assert (alloc[:, 0] >= usage[:, 0] * 1.1 * (1 - 1e-6)).all()
    assert alloc[1, -1] > 10 * alloc[0, -1]
    assert (alloc[:, -1] >= usage[:, -1]).all()
    # An idle VM keeps a throttle it can start its I/O under, never a zero limit.
    assert (alloc >= 1024.0).all()


def test_a_bandwidth_with_a_policy_max_starts_at_that_max() -> None:
    rec = _bandwidth("{max: 8000}")
    assert rec.alloc.tolist() == [8000.0] * 3
    alloc = feed(rec, np.full((3, 10), 50_000.0))
    assert (alloc <= 8000.0).all()  # never above the policy's max, however high the demand


def test_an_idle_vm_stops_being_resized_once_the_change_is_negligible() -> None:
    usage = np.zeros((4, 3 * 288))  # three idle days
    alloc = feed(recommender("{max_step_down: 0.25, cooldown_minutes: 60}"), usage)
    changes = np.count_nonzero(np.diff(alloc, axis=1), axis=1)
    # 100 % x 0.75^k falls under 0.1 % of the VM's size after 25 decreases; then it holds.
    assert changes.max() <= 25
    assert (np.diff(alloc[:, -288:], axis=1) == 0).all()
    assert alloc[:, -1].max() < 0.15


def test_a_mistaken_call_is_refused_before_any_state_moves() -> None:
    rec = recommender()
    with pytest.raises(ForethoughtError, match=r"usage and observed must have shape \(4,\)"):
        rec.observe(np.ones(3), np.ones(3, dtype=bool))
    with pytest.raises(ForethoughtError, match=r"short must have shape \(4,\)"):
        rec.shortfall(np.ones(2, dtype=bool))
    with pytest.raises(ForethoughtError, match="at least one observe"):
        rec.recommend()
    # The right shapes still work: nothing was sized on the refused call.
    alloc = feed(rec, np.full((4, 5), 20.0))
    assert np.isfinite(alloc).all()


@pytest.mark.parametrize(
    ("n", "capacity", "step", "message"),
    [
        (4, np.full(2, 100.0), STEP, r"capacity must have shape \(4,\)"),
        (4, np.array([np.nan, 100.0, 100.0, 100.0]), STEP, "positive \\(or infinite\\)"),
        (4, np.array([-5.0, 100.0, 100.0, 100.0]), STEP, "positive \\(or infinite\\)"),
        (4, np.full(4, 100.0), 0, "step_seconds must be a positive integer"),
    ],
)
def test_a_bad_reset_is_refused(n: int, capacity: np.ndarray, step: int, message: str) -> None:
    rec = recommender()
    with pytest.raises(ForethoughtError, match=message):
        rec.reset(n, capacity, step)


def test_nothing_before_reset() -> None:
    policy = parse_policy("version: 1\ngroups:\n  - {name: all, match: {name: '*'}}\n")
    groups = policy.assign([VmInfo("a")])
    rec = PredictiveRecommender(Settings.from_policy(policy, groups, Resource.CPU, STEP))
    with pytest.raises(ForethoughtError, match="reset must be called before anything else"):
        rec.observe(np.ones(1), np.ones(1, dtype=bool))
    with pytest.raises(ForethoughtError, match="reset must be called before anything else"):
        rec.recommend()


def test_a_bandwidths_first_limit_says_it_is_the_first_sizing() -> None:
    rec = _bandwidth()
    previous = rec.alloc.copy()  # unset: NaN
    feed(rec, np.full((3, 1), 5_000.0))
    actions = rec.actions([f"vm-{i}" for i in range(3)], previous)
    assert [a.reason for a in actions] == ["first sizing"] * 3
