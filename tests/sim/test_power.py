"""Host power models: the SPECpower tables, interpolation between 10 % steps, clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forethought.cluster.model import G4, G5, cloudsim_planetlab
from forethought.cluster.power import HP_ML110_G4, HP_ML110_G5, PowerModel, power_of, power_table
from forethought.core.errors import ForethoughtError

MODELS = (HP_ML110_G4, HP_ML110_G5)
TABLE = power_table(list(MODELS))
loads = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)


@pytest.mark.parametrize(
    ("model", "load", "watts"),
    [
        (HP_ML110_G4, 0.0, 86.0),
        (HP_ML110_G4, 0.1, 89.4),
        (HP_ML110_G4, 0.45, 100.75),  # halfway between 99.5 W at 40 % and 102 W at 50 %
        (HP_ML110_G4, 0.5, 102.0),
        (HP_ML110_G4, 0.95, 115.5),
        (HP_ML110_G4, 1.0, 117.0),
        (HP_ML110_G5, 0.0, 93.7),
        (HP_ML110_G5, 0.45, 113.0),
        (HP_ML110_G5, 0.72, 125.8),  # 125 W at 70 %, + 0.2 x (129 - 125)
        (HP_ML110_G5, 1.0, 135.0),
    ],
    ids=lambda v: v.name[-2:] if isinstance(v, PowerModel) else None,
)
def test_known_values_of_the_specpower_tables(model: PowerModel, load: float, watts: float) -> None:
    assert float(model.power(load)) == pytest.approx(watts)
    kind = np.array([MODELS.index(model)])
    assert float(power_of(TABLE, kind, np.array([load]))[0]) == pytest.approx(watts)


def test_the_cluster_hosts_use_the_cloudsim_tables() -> None:
    assert G4.power is HP_ML110_G4
    assert G5.power is HP_ML110_G5
    assert G4.mips == 2 * 1860.0
    assert G5.mips == 2 * 2660.0
    cluster = cloudsim_planetlab(4, 6)
    np.testing.assert_array_equal(cluster.power_table, TABLE)
    np.testing.assert_array_equal(cluster.host_type, [0, 1, 0, 1, 0, 1])  # G4 even, G5 odd


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_load_outside_zero_one_is_clipped(model: PowerModel) -> None:
    np.testing.assert_allclose(
        model.power(np.array([-0.5, -1e-9, 1.0 + 1e-9, 1.7, 25.0])),
        [model.watts[0], model.watts[0], model.watts[-1], model.watts[-1], model.watts[-1]],
    )
    kind = np.full(3, MODELS.index(model))
    np.testing.assert_allclose(
        power_of(TABLE, kind, np.array([-3.0, 1.2, 1e6])),
        [model.watts[0], model.watts[-1], model.watts[-1]],
    )


def test_power_of_evaluates_mixed_host_types_at_once() -> None:
    u = np.linspace(-0.2, 1.2, 57)
    kind = np.arange(u.size) % 2
    expected = np.where(kind == 0, HP_ML110_G4.power(u), HP_ML110_G5.power(u))
    np.testing.assert_allclose(power_of(TABLE, kind, u), expected)


@given(loads, loads)
def test_power_never_falls_as_load_rises(a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    for i, model in enumerate(MODELS):
        assert float(model.power(low)) <= float(model.power(high))
        pair = power_of(TABLE, np.array([i, i]), np.array([low, high]))
        assert pair[0] <= pair[1]
        assert model.watts[0] <= pair[0] <= model.watts[-1]


@given(loads)
def test_power_of_agrees_with_the_model(load: float) -> None:
    for i, model in enumerate(MODELS):
        value = float(power_of(TABLE, np.array([i]), np.array([load]))[0])
        assert value == pytest.approx(float(model.power(load)), rel=1e-12)


def test_power_rises_strictly_between_idle_and_full_load() -> None:
    grid = np.linspace(0.0, 1.0, 201)
    for model in MODELS:
        assert np.all(np.diff(model.power(grid)) > 0)


@pytest.mark.parametrize(
    ("watts", "message"),
    [
        ((86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0), "needs 11 values"),
        (tuple(float(w) for w in range(12)), "needs 11 values"),
        ((), "needs 11 values"),
        ((86.0, 89.4, 92.6, 96.0, 99.5, 98.0, 106.0, 108.0, 112.0, 114.0, 117.0), "must not fall"),
        (tuple(float(200 - w) for w in range(11)), "must not fall"),
    ],
    ids=["10 values", "12 values", "empty", "a dip", "falling"],
)
def test_bad_tables_are_rejected(watts: tuple[float, ...], message: str) -> None:
    with pytest.raises(ForethoughtError, match=message) as err:
        PowerModel("broken server", watts)
    assert "broken server" in str(err.value)


def test_a_flat_table_is_accepted() -> None:
    flat = PowerModel("flat", (50.0,) * 11)
    np.testing.assert_allclose(flat.power(np.array([0.0, 0.33, 1.0])), 50.0)


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf")])
def test_power_tables_need_finite_non_negative_watts(bad: float) -> None:
    watts = (bad, *HP_ML110_G4.watts[1:])
    with pytest.raises(ForethoughtError, match="finite and >= 0"):
        PowerModel("broken", watts)
