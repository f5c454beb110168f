"""Whole runs of the CloudSim-compatible data centre on small synthetic clusters.

These check what must hold for any trace (no VM lost, metrics that are fractions, the
identities between them) and the few figures that can be derived by hand for the ``dvfs``
baseline, which places once, first fit, and never migrates.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forethought.cluster.model import Cluster, cloudsim_planetlab
from forethought.cluster.power import HP_ML110_G4, HP_ML110_G5
from forethought.core.errors import ForethoughtError
from forethought.sim.cloudsim import CloudSimDataCentre
from forethought.sim.metrics import JOULES_PER_KWH, SimResult
from forethought.sim.overload import make_test
from forethought.sim.policies import POLICIES, policy

from .conftest import INTERVAL, data_centre, run, utilisation

MIGRATING = sorted(name for name, spec in POLICIES.items() if spec.test is not None)
FRACTIONS = (
    "slatah",
    "pdm",
    "slav",
    "overall_sla_violation",
    "unmet_share",
    "unmet_share_p99_over_vms",
    "slack",
)


@st.composite
def small_runs(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(vms, hosts, samples, seed): 20-60 VMs on enough of 10-40 hosts, 20-40 samples."""
    vms = draw(st.integers(min_value=20, max_value=60))
    hosts = draw(st.integers(min_value=max(10, vms // 2 + 2), max_value=40))
    samples = draw(st.integers(min_value=20, max_value=40))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    return vms, hosts, samples, seed


def assert_consistent(result: SimResult, dc: CloudSimDataCentre, name: str) -> None:
    """What every run must satisfy, whatever the trace and the policy."""
    n, hosts = dc.cluster.n_vms, dc.cluster.n_hosts
    # No VM lost or duplicated: each has exactly one host, and it exists.
    assert dc.host_of.shape == (n,)
    assert dc.host_of.min() >= 0
    assert dc.host_of.max() < hosts
    assert (result.n_vms, result.n_hosts) == (n, hosts)
    assert result.policy == name
    assert result.parameter == policy(name).default
    # Counters.
    assert result.migrations >= 0
    assert result.host_shutdowns >= 0
    if name == "dvfs":
        assert result.migrations == 0
    # Fractions and the identities between CloudSim's metrics.
    for key in FRACTIONS:
        value = getattr(result, key)
        assert 0.0 <= value <= 1.0, (key, value)
    assert result.slav == pytest.approx(result.slatah * result.pdm, rel=1e-12, abs=1e-300)
    assert result.esv == pytest.approx(result.energy_kwh * result.slav, rel=1e-12, abs=1e-300)
    assert result.energy_kwh >= 0.0
    assert 0.0 <= result.mean_active_hosts <= hosts
    # The timeline: one point per policy step, cumulative counters never fall.
    tl = result.timeline
    steps = len(tl["time"])
    assert all(len(values) == steps for values in tl.values())
    assert result.host_utilisation.shape == (steps, hosts)
    assert all(a < b for a, b in itertools.pairwise(tl["time"]))
    assert all(a <= b for a, b in itertools.pairwise(tl["energy_kwh"]))
    assert all(a <= b for a, b in itertools.pairwise(tl["migrations"]))
    assert tl["migrations"][-1] == result.migrations
    assert tl["energy_kwh"][-1] == pytest.approx(result.energy_kwh)
    assert all(0 <= a <= hosts for a in tl["active_hosts"])
    assert all(0 <= v <= hosts for v in tl["sla_violation_hosts"])


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=3, deadline=None)
@given(small_runs())
def test_every_run_keeps_every_vm_and_reports_fractions(
    name: str, case: tuple[int, int, int, int]
) -> None:
    vms, hosts, samples, seed = case
    u = utilisation(seed, vms, samples, low=0.01)  # every VM busy all day
    dc, result = run(u, hosts, name)
    assert_consistent(result, dc, name)
    assert result.energy_kwh > 0.0
    assert result.host_utilisation.shape == (samples - 1, hosts)
    # Every VM still runs: after the last step exactly the hosts holding a VM are busy.
    busy = np.flatnonzero(result.host_utilisation[-1] > 0)
    np.testing.assert_array_equal(busy, np.unique(dc.host_of))
    assert result.timeline["active_hosts"][-1] == np.unique(dc.host_of).size


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_runs_with_idle_samples_stay_consistent(name: str) -> None:
    # A third of the samples are exactly zero: VMs that request nothing may leave the data
    # centre (as in CloudSim), but none is lost from the placement.
    u = utilisation(7, 40, 30)
    u[np.random.default_rng(8).uniform(size=u.shape) < 0.33] = 0.0
    dc, result = run(u, 24, name)
    assert_consistent(result, dc, name)


@pytest.mark.parametrize("name", ["dvfs", "thr-mmt", "lr-mmt"])
def test_a_run_is_deterministic(name: str) -> None:
    u = utilisation(3, 30, 24)
    first_dc, first = run(u, 20, name)
    second_dc, second = run(u, 20, name)
    timing = {"wall_seconds", "policy_step_seconds_mean", "policy_step_seconds_max"}
    a = {k: v for k, v in first.to_dict(timeline=True).items() if k not in timing}
    b = {k: v for k, v in second.to_dict(timeline=True).items() if k not in timing}
    assert a == b
    np.testing.assert_array_equal(first_dc.host_of, second_dc.host_of)
    np.testing.assert_array_equal(first.host_utilisation, second.host_utilisation)


# -- dvfs: figures derived by hand from the placement ---------------------------------------------


def first_fit(cluster: Cluster) -> list[int]:
    """The reference placement: each VM, in trace order, on the first host with room for
    its full MIPS on one core, its memory and its bandwidth."""
    pe = cluster.host_column("pe_mips")
    free = cluster.host_column("mips").copy()
    ram = cluster.host_column("ram_mb").copy()
    bw = cluster.host_column("bandwidth_mbps").copy()
    mips, vm_ram, vm_bw = (cluster.vm_column(c) for c in ("mips", "ram_mb", "bandwidth_mbps"))
    out = []
    for v in range(cluster.n_vms):
        h = next(
            h
            for h in range(cluster.n_hosts)
            if pe[h] >= mips[v] and free[h] >= mips[v] and ram[h] >= vm_ram[v] and bw[h] >= vm_bw[v]
        )
        free[h] -= mips[v]
        ram[h] -= vm_ram[v]
        bw[h] -= vm_bw[v]
        out.append(h)
    return out


@pytest.mark.parametrize(("vms", "hosts"), [(20, 12), (37, 25), (60, 40)])
def test_dvfs_places_first_fit_in_trace_order_and_never_moves(vms: int, hosts: int) -> None:
    dc, result = run(utilisation(vms, vms, 24), hosts, "dvfs")
    assert dc.host_of.tolist() == first_fit(dc.cluster)
    assert result.migrations == 0
    # The full MIPS of every VM is reserved, so no host is ever short: no SLA violation.
    assert result.slatah == 0.0
    assert result.overall_sla_violation == 0.0
    assert result.unmet_share_p99_over_vms == 0.0
    # CloudSim starts every host switched on; the hosts that get no VM switch off once.
    assert result.host_shutdowns == hosts - np.unique(dc.host_of).size


def constant_power(dc: CloudSimDataCentre, level: float) -> float:
    """Watts the dvfs data centre draws when every VM requests ``level`` of its MIPS."""
    cluster = dc.cluster
    load = np.bincount(dc.host_of, cluster.vm_column("mips") * level, cluster.n_hosts)
    fraction = load / cluster.host_column("mips")
    models = [t.power for t in cluster.host_types]
    return sum(
        float(models[cluster.host_type[h]].power(fraction[h])) for h in np.unique(dc.host_of)
    )


@pytest.mark.parametrize("level", [1e-6, 0.3, 0.77, 1.0])
def test_dvfs_energy_of_a_constant_trace(level: float) -> None:
    vms, hosts, samples = 30, 20, 30
    dc, result = run(np.full((vms, samples), level), hosts, "dvfs")
    occupied = np.unique(dc.host_of)
    times = result.timeline["time"]
    seconds = times[-1] - times[0]
    assert seconds == pytest.approx((samples - 2) * INTERVAL)  # energy is kept between steps
    expected = constant_power(dc, level) * seconds / JOULES_PER_KWH
    assert result.energy_kwh == pytest.approx(expected, rel=1e-9)
    assert result.mean_active_hosts == pytest.approx(occupied.size)
    capacity = dc.cluster.host_column("mips")[occupied].sum()
    used = level * dc.cluster.vm_column("mips").sum()
    assert result.slack == pytest.approx(1.0 - used / capacity)
    assert result.slav == 0.0


def test_dvfs_energy_of_a_nearly_idle_trace_is_idle_power_times_hosts_times_time() -> None:
    vms, hosts, samples = 40, 30, 24
    dc, result = run(np.full((vms, samples), 1e-7), hosts, "dvfs")
    kinds = dc.cluster.host_type[np.unique(dc.host_of)]
    g4, g5 = int((kinds == 0).sum()), int((kinds == 1).sum())
    assert g4 > 0
    assert g5 > 0
    idle_watts = g4 * HP_ML110_G4.watts[0] + g5 * HP_ML110_G5.watts[0]
    seconds = (samples - 2) * INTERVAL
    assert result.energy_kwh == pytest.approx(idle_watts * seconds / JOULES_PER_KWH, rel=1e-5)
    assert result.mean_active_hosts == pytest.approx(g4 + g5)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_trace_requesting_nothing_draws_nothing(name: str) -> None:
    # CloudSim counts a host at zero load as switched off (and destroys VMs that request
    # nothing): an all-zero trace uses no energy and violates nothing.
    dc, result = run(np.zeros((30, 24)), 20, name)
    assert_consistent(result, dc, name)
    assert result.energy_kwh == 0.0
    assert result.mean_active_hosts == 0.0
    assert result.migrations == 0
    assert (result.slatah, result.pdm, result.overall_sla_violation) == (0.0, 0.0, 0.0)


def test_dvfs_energy_of_a_varying_trace_is_the_trapezoid_between_steps() -> None:
    # Each VM's utilisation is interpolated linearly between samples and read at every
    # policy step; energy is the trapezoid of each host's power between consecutive steps.
    vms, hosts, samples = 30, 20, 16
    u = utilisation(21, vms, samples, low=0.05)
    dc, result = run(u, hosts, "dvfs")
    cluster = dc.cluster
    times = np.array(result.timeline["time"])
    grid = INTERVAL * np.arange(samples)
    at = np.array([[np.interp(t, grid, row) for t in times] for row in u])  # (vms, steps)
    load = np.zeros((hosts, times.size))
    np.add.at(load, dc.host_of, cluster.vm_column("mips")[:, None] * at)
    fraction = load / cluster.host_column("mips")[:, None]
    models = [t.power for t in cluster.host_types]
    watts = np.array([models[cluster.host_type[h]].power(fraction[h]) for h in range(hosts)])
    watts[fraction == 0] = 0.0
    frames = 0.5 * (watts[:, 1:] + watts[:, :-1]) * np.diff(times)
    expected = np.concatenate([[0.0], np.cumsum(frames.sum(axis=0))]) / JOULES_PER_KWH
    np.testing.assert_allclose(result.timeline["energy_kwh"], expected, rtol=1e-9)
    assert result.energy_kwh == pytest.approx(expected[-1], rel=1e-9)
    np.testing.assert_allclose(result.host_utilisation, fraction.T, rtol=1e-5, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.floats(min_value=1.01, max_value=3.0),
)
def test_dvfs_energy_rises_when_every_utilisation_rises(seed: int, scale: float) -> None:
    u = utilisation(seed, 30, 24, low=0.01, high=1.0 / scale)
    low_dc, low = run(u, 20, "dvfs")
    high_dc, high = run(np.minimum(u * scale, 1.0), 20, "dvfs")
    np.testing.assert_array_equal(low_dc.host_of, high_dc.host_of)  # the same placement
    assert high.energy_kwh > low.energy_kwh
    assert high.mean_active_hosts == low.mean_active_hosts


# -- the migration policies ----------------------------------------------------------------------


@pytest.mark.parametrize("name", MIGRATING)
def test_a_light_load_is_consolidated(name: str) -> None:
    # 20 VMs at 10 % start spread out (power-aware placement sees empty hosts as cheapest);
    # consolidation must pack them onto fewer hosts, and save energy against dvfs.
    u = np.full((20, 24), 0.1)
    dc, result = run(u, 40, name)
    _, baseline = run(u, 40, "dvfs")
    assert result.migrations > 0
    assert np.unique(dc.host_of).size < 20
    assert result.timeline["active_hosts"][-1] < result.timeline["active_hosts"][0]
    assert result.energy_kwh < baseline.energy_kwh


@pytest.mark.parametrize("name", MIGRATING)
def test_a_load_surge_spreads_the_vms_out_again(name: str) -> None:
    # Light load for 15 intervals (consolidated), then every VM at 95 %: overloaded hosts
    # must shed VMs, so active hosts and migrations rise after the surge.
    u = np.full((20, 30), 0.1)
    u[:, 15:] = 0.95
    dc, result = run(u, 40, name)
    assert_consistent(result, dc, name)
    active = result.timeline["active_hosts"]
    migrations = result.timeline["migrations"]
    before = 11  # the step at 12 intervals, well before the surge
    assert max(active[before + 1 :]) > active[before]
    assert migrations[-1] > migrations[before]
    assert result.slatah > 0.0


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.nan, "VM 4 at sample 6 is not a number"),
        (np.inf, "VM 4 at sample 6 is not a number"),
        (-0.1, r"VM 4 at sample 6 is -0.1: must be in \[0, 1\]"),
        (1.5, r"VM 4 at sample 6 is 1.5: must be in \[0, 1\]"),
    ],
)
@pytest.mark.parametrize("name", ["dvfs", "thr-mmt"])
def test_bad_utilisation_values_are_rejected(value: float, message: str, name: str) -> None:
    u = utilisation(1, 20, 10)
    u[4, 6] = value
    with pytest.raises(ForethoughtError, match=message):
        data_centre(u, 12, name).run()


@pytest.mark.parametrize(
    "shape", [(20,), (21, 10), (19, 10), (20, 10, 1), (10, 20), (0, 10)], ids=str
)
def test_a_utilisation_of_the_wrong_shape_is_rejected(shape: tuple[int, ...]) -> None:
    cluster = cloudsim_planetlab(20, 12)
    with pytest.raises(ForethoughtError, match=r"utilisation must be \(vms=20, samples\)") as err:
        CloudSimDataCentre(cluster, np.full(shape, 0.5), None).run()
    assert f"got {shape}" in str(err.value)


def test_a_single_sample_is_not_a_trace() -> None:
    with pytest.raises(ForethoughtError, match="at least two samples"):
        CloudSimDataCentre(cloudsim_planetlab(20, 12), np.full((20, 1), 0.5), None).run()


@pytest.mark.parametrize("name", ["dvfs", "thr-mmt", "lr-mmt"])
def test_a_cluster_too_small_for_the_vms_is_a_clear_error(name: str) -> None:
    u = utilisation(2, 40, 10)
    with pytest.raises(ForethoughtError, match="too small for the trace") as err:
        data_centre(u, 4, name).run()
    assert "fits on no host" in str(err.value)
    assert "MIPS" in str(err.value)


def test_a_cluster_needs_hosts_and_vms() -> None:
    with pytest.raises(ForethoughtError, match="at least one host"):
        cloudsim_planetlab(10, 0)
    with pytest.raises(ForethoughtError, match="no VM"):
        cloudsim_planetlab(0, 10)
    good = cloudsim_planetlab(10, 4)
    with pytest.raises(ForethoughtError, match="host_type"):
        Cluster(good.host_types, good.vm_types, np.array([0, 2]), good.vm_type)
    with pytest.raises(ForethoughtError, match="vm_type"):
        Cluster(good.host_types, good.vm_types, good.host_type, np.array([0, -1]))


def test_cloudsim_vm_types_come_in_quarters_of_the_trace() -> None:
    cluster = cloudsim_planetlab(10, 4)
    # ceil(10 / 4) = 3 VMs per type, in trace order.
    assert cluster.vm_type.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    np.testing.assert_array_equal(
        cluster.vm_column("mips"), [2500] * 3 + [2000] * 3 + [1000] * 3 + [500]
    )


@pytest.mark.parametrize("interval", [0.0, -300.0, float("nan")])
def test_a_bad_interval_is_rejected(interval: float) -> None:
    u = utilisation(1, 10, 10)
    cluster = cloudsim_planetlab(10, 10)
    with pytest.raises(ForethoughtError, match="interval must be a positive"):
        CloudSimDataCentre(cluster, u, None, interval=interval)


def test_the_oracle_sees_the_next_interval() -> None:
    """A load that jumps at one interval: the oracle moves VMs one step before THR does."""
    n, steps = 16, 12
    u = np.full((n, steps), 0.05)
    u[:, 6:] = 0.95
    cluster = cloudsim_planetlab(n, 16)
    oracle = CloudSimDataCentre(cluster, u, make_test("oracle", 1.0))
    threshold = CloudSimDataCentre(cluster, u, make_test("thr", 0.8))
    r_oracle, r_threshold = oracle.run(), threshold.run()
    hosts_o = r_oracle.timeline["active_hosts"]
    hosts_t = r_threshold.timeline["active_hosts"]
    # The step at sample 5 (timeline index 4) is the last before the jump: the oracle
    # already spreads the VMs out, while the threshold policy is still consolidating and
    # spreads them only one step later.
    assert hosts_o[4] > hosts_o[3]
    assert hosts_t[4] <= hosts_t[3]
    assert hosts_t[5] > hosts_t[4]
    with pytest.raises(ForethoughtError, match="needs the future"):
        make_test("oracle").overloaded(np.zeros(1), np.zeros((1, 30)), np.zeros(1))


@pytest.mark.parametrize("name", ["thr-mmt", "lr-mmt", "mad-mmt"])
def test_hosts_never_grant_more_than_their_capacity(name: str) -> None:
    """Over-subscription scales requests down: no host is ever above 100 % utilisation."""
    rng = np.random.default_rng(7)
    u = np.clip(rng.gamma(0.6, 0.4, size=(40, 24)), 0.0, 1.0)
    _, result = run(u, 40, name)
    assert result.host_utilisation.size
    assert float(result.host_utilisation.max()) <= 1.0 + 1e-6
