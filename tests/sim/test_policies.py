"""Policies by name and the validation of their parameter."""

from __future__ import annotations

import pytest

from forethought.core.errors import ForethoughtError
from forethought.sim.overload import (
    InterQuartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    StaticThreshold,
)
from forethought.sim.policies import POLICIES, policy

DOCUMENTED = ("dvfs", "thr-mmt", "iqr-mmt", "mad-mmt", "lr-mmt", "lrr-mmt")
SAFETY = ("iqr-mmt", "mad-mmt", "lr-mmt", "lrr-mmt")


def test_the_literature_policies_are_all_there() -> None:
    assert set(DOCUMENTED) <= set(POLICIES)
    for name, spec in POLICIES.items():
        assert spec.name == name
        assert policy(name) is spec
        assert spec.meaning


def test_an_unknown_policy_is_named_and_the_known_ones_listed() -> None:
    with pytest.raises(ForethoughtError, match="unknown policy 'thr-mmc'") as err:
        policy("thr-mmc")
    for name in DOCUMENTED:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("name", "kind", "default"),
    [
        ("thr-mmt", StaticThreshold, 0.8),
        ("iqr-mmt", InterQuartileRange, 1.5),
        ("mad-mmt", MedianAbsoluteDeviation, 2.5),
        ("lr-mmt", LocalRegression, 1.2),
        ("lrr-mmt", LocalRegression, 1.2),
    ],
)
def test_each_policy_builds_its_test_with_the_published_default(
    name: str, kind: type, default: float
) -> None:
    spec = policy(name)
    assert spec.default == default
    test = spec.build()
    assert test is not None
    assert isinstance(test, kind)
    assert test.parameter == default
    given = spec.build(0.75)
    assert given is not None
    assert given.parameter == 0.75


def test_lr_and_lrr_differ_only_in_name() -> None:
    lr, lrr = policy("lr-mmt").build(), policy("lrr-mmt").build()
    assert lr is not None
    assert lrr is not None
    assert (lr.name, lrr.name) == ("lr", "lrr")
    assert lr.parameter == lrr.parameter


def test_dvfs_has_no_test_and_takes_no_parameter() -> None:
    assert policy("dvfs").build() is None
    with pytest.raises(ForethoughtError, match="dvfs takes no parameter"):
        policy("dvfs").build(0.5)


@pytest.mark.parametrize("value", [1.5, 1.0001, 0.0, -0.2])
def test_thr_parameter_must_be_a_utilisation(value: float) -> None:
    with pytest.raises(ForethoughtError, match=r"thr-mmt is a utilisation in \(0, 1\]") as err:
        policy("thr-mmt").build(value)
    assert f"{value}" in str(err.value)


@pytest.mark.parametrize("value", [1.0, 0.01])
def test_thr_parameter_inside_zero_one_is_accepted(value: float) -> None:
    test = policy("thr-mmt").build(value)
    assert test is not None
    assert test.parameter == value


@pytest.mark.parametrize("name", SAFETY)
def test_a_negative_safety_parameter_is_rejected(name: str) -> None:
    with pytest.raises(ForethoughtError, match="must be non-negative") as err:
        policy(name).build(-0.5)
    assert name in str(err.value)
    assert "-0.5" in str(err.value)


@pytest.mark.parametrize("name", SAFETY)
def test_safety_parameters_may_exceed_one(name: str) -> None:
    for value in (0.0, 3.0):
        test = policy(name).build(value)
        assert test is not None
        assert test.parameter == value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", ["iqr-mmt", "lr-mmt", "oracle-mmt"])
def test_a_parameter_must_be_finite(name: str, value: float) -> None:
    with pytest.raises(ForethoughtError, match="finite"):
        policy(name).build(value)


def test_an_unknown_overload_test_is_a_clear_error() -> None:
    from forethought.sim.overload import make_test

    with pytest.raises(ForethoughtError, match="unknown overload test 'xyz'"):
        make_test("xyz", 1.0)
    with pytest.raises(ForethoughtError, match="unknown overload test"):
        make_test("xyz")


@pytest.mark.parametrize("name", ["predictive", "oracle"])
def test_planner_policies_build_a_planner_not_a_test(name: str) -> None:
    spec = policy(name)
    assert spec.build() is None
    planner = spec.build_planner(0.9)
    assert planner is not None
    assert planner.oracle == (name == "oracle")
    assert planner.settings.threshold == 0.9
    assert policy("lr-mmt").build_planner() is None


@pytest.mark.parametrize("value", [0.0, -1.0, 2.0, float("nan")])
def test_planner_threshold_out_of_range_is_rejected(value: float) -> None:
    with pytest.raises(ForethoughtError, match="share of host") as err:
        policy("predictive").build_planner(value)
    assert "predictive" in str(err.value)
