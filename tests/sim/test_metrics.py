"""The metric sums and ratios, on hand-made frames whose figures are computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forethought.sim.metrics import JOULES_PER_KWH, Accumulator, SimResult

T, F = True, False


def two_frames() -> Accumulator:
    """Two hosts, two VMs; a 10 s frame with VM 0 migrating and short of 10 MIPS, then a
    20 s frame where both hosts serve everything."""
    acc = Accumulator(n_hosts=2, n_vms=2)
    acc.frame(
        10.0,
        power_start=np.array([100.0, 0.0]),
        power_end=np.array([120.0, 0.0]),
        host_mips=np.array([50.0, 0.0]),
        host_req=np.array([60.0, 0.0]),
        alloc=np.array([50.0, 0.0]),
        req=np.array([60.0, 0.0]),
        in_migration=np.array([T, F]),
        capacity=np.array([100.0, 100.0]),
    )
    acc.frame(
        20.0,
        power_start=np.array([110.0, 90.0]),
        power_end=np.array([110.0, 90.0]),
        host_mips=np.array([40.0, 30.0]),
        host_req=np.array([40.0, 30.0]),
        alloc=np.array([40.0, 30.0]),
        req=np.array([40.0, 30.0]),
        in_migration=np.array([F, F]),
        capacity=np.array([100.0, 100.0]),
    )
    return acc


def finish(acc: Accumulator, migrations: int = 0) -> SimResult:
    return acc.result(
        name="thr-mmt",
        parameter=0.8,
        migrations=migrations,
        n_vms=2,
        n_hosts=2,
        wall_seconds=1.5,
        policy_seconds=[0.1, 0.3],
    )


def test_metrics_of_two_hand_made_frames() -> None:
    r = finish(two_frames(), migrations=1)
    # Energy: trapezoids (100 + 120) / 2 x 10 s + (110 + 90) x 20 s = 5100 J.
    assert r.energy_kwh == pytest.approx(5100.0 / JOULES_PER_KWH)
    # Host 0 short for 10 s of 50 active host-seconds.
    assert r.slatah == pytest.approx(10.0 / 50.0)
    # 10 MIPS x 10 s short during migration, of 60 x 10 + 70 x 20 = 2000 MIPS-s requested.
    assert r.pdm == pytest.approx(100.0 / 2000.0)
    assert r.slav == pytest.approx(0.2 * 0.05)
    assert r.esv == pytest.approx(r.energy_kwh * 0.2 * 0.05)
    assert r.overall_sla_violation == pytest.approx(100.0 / 2000.0)
    assert r.unmet_share == r.overall_sla_violation
    # VM 0 missed 100 of 1400 MIPS-s, VM 1 nothing: numpy's p99 of the two shares.
    assert r.unmet_share_p99_over_vms == pytest.approx(0.99 * 100.0 / 1400.0)
    assert r.mean_active_hosts == pytest.approx(50.0 / 30.0)
    # Capacity of active hosts 100 x 10 + 200 x 20 = 5000 MIPS-s, of which 1900 used.
    assert r.slack == pytest.approx(1.0 - 1900.0 / 5000.0)
    assert r.policy_step_seconds_mean == pytest.approx(0.2)
    assert r.policy_step_seconds_max == pytest.approx(0.3)
    assert (r.policy, r.parameter, r.migrations, r.n_vms, r.n_hosts) == ("thr-mmt", 0.8, 1, 2, 2)


def test_empty_and_backward_frames_count_for_nothing() -> None:
    acc = two_frames()
    for dt in (0.0, -5.0):
        acc.frame(
            dt,
            np.array([1e6, 1e6]),
            np.array([1e6, 1e6]),
            np.array([1.0, 1.0]),
            np.array([9.0, 9.0]),
            np.array([1.0, 1.0]),
            np.array([9.0, 9.0]),
            np.array([T, T]),
        )
    assert finish(acc).to_dict() == finish(two_frames()).to_dict()


def test_nothing_accounted_gives_zeros_not_divisions_by_zero() -> None:
    r = finish(Accumulator(n_hosts=3, n_vms=4))
    for key in ("energy_kwh", "slatah", "pdm", "slav", "esv", "overall_sla_violation", "slack"):
        assert getattr(r, key) == 0.0
    assert r.mean_active_hosts == 0.0
    assert r.host_shutdowns == 0
    assert r.host_utilisation.size == 0


def test_shutdowns_count_active_to_inactive_transitions() -> None:
    acc = Accumulator(n_hosts=3, n_vms=0)
    acc.host_entry(np.array([T, T, F]), 1.0)
    acc.host_entry(np.array([F, F, F]), 1.0)  # a later entry at the same time replaces it
    acc.host_entry(np.array([T, T, T]), 1.0)
    acc.host_entry(np.array([T, F, F]), 2.0)  # hosts 1 and 2 switch off
    acc.host_entry(np.array([T, T, F]), 3.0)  # host 1 back on
    acc.host_entry(np.array([F, F, F]), 4.0)  # hosts 0 and 1 off, counted at the end
    assert finish(acc).host_shutdowns == 4


def test_every_host_starts_switched_on() -> None:
    acc = Accumulator(n_hosts=4, n_vms=0)
    acc.host_entry(np.array([F, T, F, T]), 300.1)  # hosts 0 and 2 got no VM
    assert finish(acc).host_shutdowns == 2


def test_samples_make_the_timeline_and_the_utilisation_matrix() -> None:
    acc = two_frames()
    acc.sample(300.1, np.array([0.5, 0.0]), migrations=3, violating=1)
    acc.sample(600.1, np.array([0.4, 0.3]), migrations=5, violating=0)
    r = finish(acc)
    assert r.timeline["time"] == [300.1, 600.1]
    assert r.timeline["active_hosts"] == [1.0, 2.0]
    assert r.timeline["migrations"] == [3.0, 5.0]
    assert r.timeline["sla_violation_hosts"] == [1.0, 0.0]
    assert r.timeline["energy_kwh"] == pytest.approx([5100.0 / JOULES_PER_KWH] * 2)
    assert r.host_utilisation.dtype == np.float32
    np.testing.assert_allclose(r.host_utilisation, [[0.5, 0.0], [0.4, 0.3]], rtol=1e-6)


def test_to_dict_is_the_json_object() -> None:
    acc = two_frames()
    acc.sample(300.1, np.array([0.5, 0.0]), migrations=0, violating=0)
    r = finish(acc)
    plain = r.to_dict()
    assert "host_utilisation" not in plain
    assert "timeline" not in plain
    for key in ("energy_kwh", "slatah", "pdm", "slav", "esv", "migrations", "host_shutdowns"):
        assert plain[key] == getattr(r, key)
    full = r.to_dict(timeline=True)
    assert "host_utilisation" not in full
    assert full["timeline"] == r.timeline
    assert json.loads(json.dumps(full)) == full
