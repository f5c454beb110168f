"""Cross-resource anomalies: a broken relation between a VM's resources is flagged even
when each resource stays inside its own band, and a burst that keeps the relation is not."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.allocation.cross import cross_resource_anomalies
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.forecast.anomaly import CrossResourceDetector, chi2_quantile

N, T, SIGMA = 20, 700, 5.0


def correlated_residuals(seed: int) -> np.ndarray:
    """(steps, vms, 2) errors with correlation 0.9 and standard deviation 5."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 1, (T, N))
    own = rng.normal(0, 1, (T, N, 2))
    rho = 0.9
    z = np.sqrt(rho) * common[:, :, None] + np.sqrt(1 - rho) * own
    return np.asarray(SIGMA * z)


def run(residuals: np.ndarray, observed: np.ndarray | None = None) -> CrossResourceDetector:
    det = CrossResourceDetector(N, ("cpu", "memory"))
    mask = np.ones((T, N, 2), dtype=bool) if observed is None else observed
    for t in range(T):
        det.check(t, residuals[t], mask[t])
    return det


def test_a_broken_relation_is_flagged_a_joint_burst_is_not() -> None:
    r = correlated_residuals(0)
    # VM 3: CPU errs up and memory down by 2.4 sigma each, inside a per-series p99 band,
    # for four steps. VM 5: both burst up together by 4 sigma, outside their own bands.
    r[600:604, 3] = [2.4 * SIGMA, -2.4 * SIGMA]
    r[600:604, 5] = [4.0 * SIGMA, 4.0 * SIGMA]
    det = run(r)
    fired = {e.vm for e in det.events}
    assert 3 in fired
    assert 5 not in fired
    event = next(e for e in det.events if e.vm == 3)
    assert 600 <= event.step <= 603
    assert event.resources == ("cpu", "memory")
    assert len(event.residuals) == 3  # the run's evidence, oldest first
    assert event.residuals[-1] == pytest.approx((2.4 * SIGMA, -2.4 * SIGMA))
    assert min(event.distance) > event.threshold
    # Few false alarms on the untouched VMs (heavy use of the bar: level 0.999, run 3).
    assert len(fired - {3}) <= 1


def test_missing_samples_neither_score_nor_reset_a_run() -> None:
    r = correlated_residuals(1)
    r[600:605, 3] = [2.4 * SIGMA, -2.4 * SIGMA]
    observed = np.ones((T, N, 2), dtype=bool)
    observed[601, 3, 1] = False  # memory missing for one step mid-run
    det = run(r, observed)
    assert any(e.vm == 3 for e in det.events)


def test_a_run_bridging_unobserved_steps_fires_once_with_observed_evidence() -> None:
    r = correlated_residuals(1)
    r[600:603, 3] = [2.4 * SIGMA, -2.4 * SIGMA]
    r[605, 3] = [2.4 * SIGMA, -2.4 * SIGMA]
    observed = np.ones((T, N, 2), dtype=bool)
    observed[603:605, 3, 1] = False  # memory missing for two steps after the run fired
    det = run(r, observed)
    mine = [e for e in det.events if e.vm == 3 and 600 <= e.step <= 606]
    assert [e.step for e in mine] == [602]  # once, when the run reached three steps
    event = mine[0]
    assert event.began == event.first_step == 600
    assert all(np.isfinite(event.distance))
    assert event.peak == max(event.distance)
    assert np.isfinite(np.array(event.residuals)).all()


def test_evidence_skips_an_unobserved_step_inside_the_run() -> None:
    r = correlated_residuals(1)
    r[600:604, 3] = [2.4 * SIGMA, -2.4 * SIGMA]
    observed = np.ones((T, N, 2), dtype=bool)
    observed[601, 3, 0] = False  # CPU missing mid-run: the run bridges it
    det = run(r, observed)
    event = next(e for e in det.events if e.vm == 3 and 600 <= e.step <= 605)
    assert event.step == 603
    assert event.first_step == 600
    assert len(event.distance) == 3
    assert all(np.isfinite(event.distance))


def test_nothing_fires_before_the_detector_has_history() -> None:
    r = correlated_residuals(2)
    r[100:110, 3] = [3.0 * SIGMA, -3.0 * SIGMA]  # before min_steps (a day)
    det = run(r)
    assert all(e.step >= 288 for e in det.events)


def test_chi2_quantiles_are_close_to_the_tables() -> None:
    assert chi2_quantile(1, 0.999) == pytest.approx(10.828, rel=0.04)
    assert chi2_quantile(2, 0.99) == pytest.approx(9.210, rel=0.01)
    assert chi2_quantile(6, 0.999) == pytest.approx(22.458, rel=0.01)
    with pytest.raises(ValueError, match="df >= 1"):
        chi2_quantile(0, 0.9)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="two resources"):
        CrossResourceDetector(3, ("cpu",))
    det = CrossResourceDetector(3, ("cpu", "memory"))
    with pytest.raises(ValueError, match="shape"):
        det.check(0, np.zeros((2, 2)), np.ones((2, 2), dtype=bool))
    with pytest.raises(ForethoughtError, match="at least one resource"):
        cross_resource_anomalies({}, step_seconds=300)
    # One resource: the per-series pass alone, nothing across resources.
    one = cross_resource_anomalies(
        {Resource.CPU: (np.zeros((2, 5)), np.ones((2, 5), bool))}, step_seconds=300
    )
    assert one.resources == ("cpu",)
    assert one.events == []
    with pytest.raises(ForethoughtError, match="same grid"):
        cross_resource_anomalies(
            {
                Resource.CPU: (np.zeros((2, 5)), np.ones((2, 5), bool)),
                Resource.MEMORY: (np.zeros((2, 6)), np.ones((2, 6), bool)),
            },
            step_seconds=300,
        )


def test_the_trace_pass_finds_a_relation_break_in_real_looking_series() -> None:
    rng = np.random.default_rng(4)
    steps = 500
    base = 30 + 10 * np.sin(np.arange(steps) / 20)[None, :] + rng.normal(0, 2, (6, steps))
    cpu = np.clip(base, 0, 100)
    memory = np.clip(20 + 0.8 * base + rng.normal(0, 1, (6, steps)), 0, 100)
    cpu[2, 400:406] += 25  # CPU surges while memory drops: a stuck or leaking process
    memory[2, 400:406] -= 15
    mask = np.ones((6, steps), dtype=bool)
    report = cross_resource_anomalies(
        {Resource.CPU: (cpu, mask), Resource.MEMORY: (memory, mask)}, step_seconds=300
    )
    assert any(e.vm == 2 and 400 <= e.step < 410 for e in report.events)
    assert report.flags.shape == (6, steps)
    assert report.flags[2, 400:410].any()
    assert report.to_dict()["count"] == len(report.events)


@pytest.mark.parametrize(("run_steps", "fires"), [(1, True), (4, True), (5, False)])
def test_the_run_length_also_sets_the_per_series_detector(run_steps: int, fires: bool) -> None:
    rng = np.random.default_rng(7)
    cpu = 20.0 + rng.normal(0.0, 1.0, (1, 300))
    cpu[0, 250:254] = 90.0  # four steps far above the series' own p99
    report = cross_resource_anomalies(
        {Resource.CPU: (cpu, np.ones_like(cpu, dtype=bool))}, step_seconds=300, run=run_steps
    )
    spike = [e for _, _, e in report.series_events if 250 <= e.step <= 253]
    assert bool(spike) is fires
    if fires:
        assert spike[0].step == 250 + run_steps - 1
        assert len(spike[0].observed) == run_steps
