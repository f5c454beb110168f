"""Host pressure from scenarios, and what-if moves against a rebuild from scratch."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.core.errors import ForethoughtError
from forethought.migration.pressure import HostPressure
from forethought.migration.scenarios import ResidualCopula, quantile_paths

CAP = np.array([100.0, 100.0, 100.0])
CORE = np.array([50.0, 50.0, 50.0])


def test_pressure_is_the_share_of_draws_that_overload() -> None:
    # Two VMs on host 0; four draws of two steps. The sum exceeds 100 in draws 1 and 3.
    a = np.array([[40, 40], [55, 49], [10, 10], [30, 60]], dtype=float)
    b = np.array([[40, 40], [55, 49], [10, 10], [45, 45]], dtype=float)
    paths = np.stack([a, b], axis=1)  # (draws, vms, steps)
    core = np.full(3, 80.0)
    hp = HostPressure(paths, np.array([0, 0]), CAP, core, 1.0)
    assert hp.pressure(np.array([0, 1])).tolist() == [0.5, 0.0]
    # A lower threshold sees more overload.
    lower = HostPressure(paths, np.array([0, 0]), CAP, core, 0.7)
    assert lower.pressure(np.array([0]))[0] == 0.75


def test_a_vm_wanting_more_than_a_core_overloads_its_host() -> None:
    paths = np.array([[[60.0, 10.0]]])  # one draw, one VM, peak above one core
    hp = HostPressure(paths, np.array([1]), CAP, CORE, 1.0)
    assert hp.pressure(np.array([1]))[0] == 1.0
    assert hp.pressure_without(1, np.array([0]))[0] == 0.0


def test_what_ifs_agree_with_a_rebuild() -> None:
    rng = np.random.default_rng(3)
    paths = rng.uniform(0, 45, (16, 6, 4))
    host_of = np.array([0, 0, 0, 1, 1, 2])
    hp = HostPressure(paths, host_of, CAP, CORE, 0.9)
    rows = np.array([0, 1, 2])
    with_v = hp.pressure_with(5, rows)
    without = hp.pressure_without(0, np.array([0, 1, 2]))
    for k, target in enumerate(rows.tolist()):
        moved = host_of.copy()
        moved[5] = target
        fresh = HostPressure(paths, moved, CAP, CORE, 0.9)
        if target != 2:
            assert with_v[k] == pytest.approx(fresh.pressure(np.array([target]))[0])
    for k, v in enumerate([0, 1, 2]):
        moved = host_of.copy()
        moved[v] = -1
        fresh = HostPressure(paths, moved, CAP, CORE, 0.9)
        assert without[k] == pytest.approx(fresh.pressure(np.array([0]))[0])
    # Committing a move leaves the same state as building it that way.
    hp.move(5, 2, 0, np.array([], dtype=np.int64))
    moved = host_of.copy()
    moved[5] = 0
    fresh = HostPressure(paths, moved, CAP, CORE, 0.9)
    np.testing.assert_allclose(hp.load, fresh.load)
    np.testing.assert_array_equal(hp.over_core, fresh.over_core)


def brute_pressure_with(hp: HostPressure, v: int, rows: np.ndarray) -> np.ndarray:
    """Every host tested step by step: what pressure_with's shortcut must reproduce."""
    core = hp.core[rows]
    add = np.minimum(hp.vm[v][None], core[:, None, None])
    over = (hp.load[rows] + add > hp.limit[rows, None, None]).any(axis=2)
    over |= hp.over_core[rows] | (hp.vm_peak[v][None, :] > core[:, None])
    return np.asarray(over.mean(axis=1))


@pytest.mark.parametrize("seed", range(8))
def test_the_shortcut_of_pressure_with_is_exact_before_and_after_moves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hosts, vms = 12, 40
    capacity = rng.uniform(80.0, 200.0, hosts)
    core = capacity / rng.integers(1, 4, hosts)
    # Loads from idle to past the limit, so hosts fall on both sides of the shortcut.
    paths = rng.gamma(2.0, rng.uniform(2.0, 15.0, (1, vms, 1)), (24, vms, 6))
    host_of = rng.integers(-1, hosts, vms)
    hp = HostPressure(paths, host_of, capacity, core, rng.uniform(0.7, 1.0))
    rows = np.arange(hosts)
    for _ in range(10):
        v = int(rng.integers(vms))
        np.testing.assert_array_equal(hp.pressure_with(v, rows), brute_pressure_with(hp, v, rows))
        source, target = int(host_of[v]), int(rng.integers(hosts))
        host_of[v] = target
        hp.move(v, source, target, np.flatnonzero(host_of == source))
        np.testing.assert_array_equal(hp.peak, hp.load.max(axis=2))


def test_dependence_changes_host_pressure() -> None:
    """Same marginals, errors that move together: a host of them overloads more often."""
    levels = (0.05, 0.5, 0.95)
    q = np.tile(np.array([20.0, 35.0, 55.0]), (2, 1, 1))  # two VMs, one step, MIPS
    rng = np.random.default_rng(5)
    common = rng.normal(size=48)
    together = ResidualCopula(2, window=48)
    apart = ResidualCopula(2, window=48)
    for k in range(48):
        together.record(np.array([common[k], common[k]]), np.zeros(2), np.ones(2, dtype=bool))
        apart.record(np.array([common[k], -common[k]]), np.zeros(2), np.ones(2, dtype=bool))
    cap, core = np.array([90.0]), np.array([90.0])
    p_together = HostPressure(
        quantile_paths(q, levels, together.uniforms(48)), np.array([0, 0]), cap, core, 1.0
    ).pressure(np.array([0]))[0]
    p_apart = HostPressure(
        quantile_paths(q, levels, apart.uniforms(48)), np.array([0, 0]), cap, core, 1.0
    ).pressure(np.array([0]))[0]
    assert p_together > 0.2
    assert p_apart == 0.0  # opposite errors cancel: the sum stays near 70


def test_bad_input() -> None:
    with pytest.raises(ForethoughtError, match="do not match"):
        HostPressure(np.zeros((2, 3, 4)), np.zeros(2, dtype=np.int64), CAP, CORE, 1.0)
    with pytest.raises(ForethoughtError, match="threshold"):
        HostPressure(np.zeros((2, 3, 4)), np.zeros(3, dtype=np.int64), CAP, CORE, 0.0)
