"""The Telemetry value: what its constructor accepts and refuses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource, Unit
from forethought.telemetry.series import Telemetry


def panel(**changes: Any) -> Telemetry:
    values = np.full((2, 1, 4), 40.0)
    fields: dict[str, Any] = {
        "vm_ids": ("a", "b"),
        "resources": (Resource.CPU,),
        "units": (Unit.PERCENT,),
        "step_seconds": 300,
        "start": 0,
        "values": values,
        "mask": np.ones(values.shape, dtype=bool),
        "capacity": np.full((2, 1), np.nan),
        "source": "t.csv",
    }
    fields.update(changes)
    return Telemetry(**fields)


def test_names_given_as_text_become_the_units_and_resources_they_name() -> None:
    t = panel(resources=("cpu",), units=("percent",))
    assert t.units == (Unit.PERCENT,)
    assert t.resources == (Resource.CPU,)
    # A percent series needs no capacity to be in percent (it was refused as "unknown").
    np.testing.assert_array_equal(t.percent_of_capacity(Resource.CPU), 40.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"units": ("furlongs",)}, "'furlongs' is not a valid Unit"),
        ({"resources": ("cpux",)}, "'cpux' is not a valid Resource"),
        ({"values": [[[1.0]]]}, "values must be a NumPy array"),
        ({"mask": np.ones((2, 1, 4))}, "mask booleans"),
        ({"values": np.full((2, 1, 4), "1")}, "values must be floats"),
        ({"step_seconds": 2.5}, "step_seconds must be a whole number"),
    ],
)
def test_a_malformed_telemetry_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ForethoughtError, match=message):
        panel(**changes)


def test_each_resource_appears_once() -> None:
    values = np.full((2, 2, 4), 40.0)
    with pytest.raises(ForethoughtError, match="each resource may appear once"):
        panel(
            resources=(Resource.CPU, Resource.CPU),
            units=(Unit.PERCENT, Unit.PERCENT),
            values=values,
            mask=np.ones(values.shape, dtype=bool),
            capacity=np.full((2, 2), np.nan),
        )


def test_a_unit_without_a_capacity_names_the_trace() -> None:
    t = panel(units=(Unit.MHZ,))
    with pytest.raises(ForethoughtError, match=r"t\.csv: cpu: provisioned capacity is unknown"):
        t.percent_of_capacity(Resource.CPU)
