"""The runner: telemetry to utilisation, a policy by name to a result, the Parquet timeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource, Unit
from forethought.forecast.base import BoolArray, FloatArray
from forethought.sim.runner import cpu_utilisation, simulate, write_timeline
from forethought.telemetry.series import Telemetry

from .conftest import utilisation

nan = np.nan
T, F = True, False


def telemetry(
    values: FloatArray,
    mask: BoolArray | None = None,
    *,
    unit: Unit = Unit.PERCENT,
    capacity: FloatArray | None = None,
    resource: Resource = Resource.CPU,
    step: int = 300,
) -> Telemetry:
    """A one-resource telemetry of (vms, steps) values; missing where ``mask`` is False."""
    v = np.asarray(values, dtype=np.float64)
    m = np.isfinite(v) if mask is None else np.asarray(mask, dtype=bool)
    cap = np.full((v.shape[0], 1), nan) if capacity is None else capacity.reshape(-1, 1)
    return Telemetry(
        vm_ids=tuple(f"vm{i}" for i in range(v.shape[0])),
        resources=(resource,),
        units=(unit,),
        step_seconds=step,
        start=0,
        values=np.where(m, v, nan)[:, None, :],
        mask=m[:, None, :],
        capacity=np.asarray(cap, dtype=np.float64),
        source="synthetic",
    )


def test_missing_samples_repeat_the_last_observed_value() -> None:
    t = telemetry(
        np.array(
            [
                [10.0, nan, 30.0, nan, nan],
                [nan, nan, 50.0, nan, 70.0],  # nothing observed yet: zero
                [nan, nan, nan, nan, nan],
                [40.0, 40.0, 40.0, nan, 20.0],
            ]
        )
    )
    np.testing.assert_allclose(
        cpu_utilisation(t),
        [
            [0.1, 0.1, 0.3, 0.3, 0.3],
            [0.0, 0.0, 0.5, 0.5, 0.7],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.4, 0.4, 0.4, 0.4, 0.2],
        ],
    )


def test_the_mask_decides_what_is_missing_and_values_are_clipped() -> None:
    values = np.array([[120.0, 999.0, -5.0, 999.0, 60.0]])
    mask = np.array([[T, F, T, F, T]])
    np.testing.assert_allclose(
        cpu_utilisation(telemetry(values, mask)), [[1.0, 1.0, 0.0, 0.0, 0.6]]
    )


def test_cpu_in_mhz_is_taken_as_a_share_of_the_provisioned_capacity() -> None:
    t = telemetry(
        np.array([[500.0, 1000.0, nan], [250.0, nan, 1000.0]]),
        unit=Unit.MHZ,
        capacity=np.array([2000.0, 1000.0]),
    )
    np.testing.assert_allclose(cpu_utilisation(t), [[0.25, 0.5, 0.5], [0.25, 0.25, 1.0]])


def test_cpu_in_mhz_without_capacity_is_an_error() -> None:
    t = telemetry(np.array([[500.0, 1000.0]]), unit=Unit.MHZ)
    with pytest.raises(ForethoughtError, match="capacity is unknown"):
        cpu_utilisation(t)


def test_a_trace_without_cpu_cannot_be_simulated() -> None:
    t = telemetry(np.array([[5.0, 6.0]]), unit=Unit.KB, resource=Resource.MEMORY)
    with pytest.raises(ForethoughtError, match="no cpu series"):
        cpu_utilisation(t)
    with pytest.raises(ForethoughtError, match="no cpu series"):
        simulate(t, "dvfs")


def test_simulate_runs_a_policy_over_the_trace_at_its_step() -> None:
    steps: list[tuple[int, int]] = []
    t = telemetry(100.0 * utilisation(5, 24, 20, low=0.05), step=60)
    result = simulate(t, "thr-mmt", 0.7, hosts=16, progress=lambda k, n: steps.append((k, n)))
    assert (result.policy, result.parameter) == ("thr-mmt", 0.7)
    assert (result.n_vms, result.n_hosts) == (24, 16)
    # One policy step per trace interval, CloudSim's 0.1 s after each boundary.
    assert result.timeline["time"][:2] == pytest.approx([60.1, 120.1])
    assert steps == [(k, 19) for k in range(1, 20)]


def test_simulate_rejects_bad_policies_and_small_clusters() -> None:
    t = telemetry(100.0 * utilisation(6, 24, 10))
    with pytest.raises(ForethoughtError, match="unknown policy 'best-fit'"):
        simulate(t, "best-fit")
    with pytest.raises(ForethoughtError, match=r"\(0, 1\]; got 1.5"):
        simulate(t, "thr-mmt", 1.5)
    with pytest.raises(ForethoughtError, match="non-negative; got -2"):
        simulate(t, "mad-mmt", -2.0)
    with pytest.raises(ForethoughtError, match="too small"):
        simulate(t, "dvfs", hosts=3)


def test_the_timeline_is_one_parquet_table_of_every_run(tmp_path: Path) -> None:
    t = telemetry(100.0 * utilisation(9, 24, 12, low=0.05))
    results = [simulate(t, "dvfs", hosts=16), simulate(t, "lr-mmt", hosts=16)]
    path = tmp_path / "timeline.parquet"
    write_timeline(results, str(path))
    table = pq.read_table(path)
    assert set(table.column_names) == {
        "policy",
        "parameter",
        "time",
        "active_hosts",
        "energy_kwh",
        "migrations",
        "sla_violation_hosts",
    }
    assert table.num_rows == 2 * 11
    column = table.to_pydict()
    assert column["policy"] == ["dvfs"] * 11 + ["lr-mmt"] * 11
    expected = [math.nan if r.parameter is None else r.parameter for r in results]
    np.testing.assert_array_equal(column["parameter"], np.repeat(expected, 11))
    assert column["energy_kwh"][:11] == results[0].timeline["energy_kwh"]
    assert column["migrations"][11:] == results[1].timeline["migrations"]


def test_an_unwritable_timeline_is_a_clear_error(tmp_path: Path) -> None:
    t = telemetry(100.0 * utilisation(9, 24, 6, low=0.05))
    path = tmp_path / "no" / "such" / "dir" / "timeline.parquet"
    with pytest.raises(ForethoughtError, match="cannot write the timeline"):
        write_timeline([simulate(t, "dvfs", hosts=16)], str(path))


def test_runs_of_one_policy_are_told_apart_by_their_parameter(tmp_path: Path) -> None:
    t = telemetry(100.0 * utilisation(9, 24, 12, low=0.05))
    results = [simulate(t, "thr-mmt", 0.7, hosts=16), simulate(t, "thr-mmt", 0.9, hosts=16)]
    path = tmp_path / "timeline.parquet"
    write_timeline(results, str(path))
    column = pq.read_table(path).to_pydict()
    assert sorted(set(column["parameter"])) == [0.7, 0.9]


def test_a_timeline_that_fails_to_write_leaves_the_path_as_it_was(tmp_path: Path) -> None:
    t = telemetry(100.0 * utilisation(9, 24, 12, low=0.05))
    target = tmp_path / "taken"
    target.mkdir()  # a directory: opening it for writing fails
    with pytest.raises(ForethoughtError, match="cannot write the timeline"):
        write_timeline([simulate(t, "dvfs", hosts=16)], str(target))
    assert target.is_dir()
