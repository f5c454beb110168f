"""The rightsizing replay: known figures from a fixed recommender, delays, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forethought.allocation.replay import RightsizeScores, replay
from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray


class Fixed:
    """Recommends a fixed allocation per VM; counts the calls it gets."""

    name = "fixed"

    def __init__(self, alloc: list[float]) -> None:
        self.value = np.array(alloc)
        self.shortfalls = 0

    def reset(self, n: int, capacity: FloatArray, step_seconds: int) -> None:
        self.n = n

    def observe(self, usage: FloatArray, observed: BoolArray) -> None:
        pass

    def shortfall(self, short: BoolArray) -> None:
        self.shortfalls += int(short.sum())

    def recommend(self) -> FloatArray:
        return self.value


def test_figures_of_a_fixed_allocation() -> None:
    usage = np.array([[10.0, 10.0, 30.0, 10.0], [50.0, 50.0, 50.0, 50.0]])
    rec = Fixed([20.0, 50.0])
    s = replay(
        usage,
        np.ones_like(usage, dtype=bool),
        rec,
        np.array([100.0, 100.0]),
        step_seconds=300,
        resource="cpu",
        warmup=1,
    )
    # Steps 1..3 are scored; the allocation in force from step 1 on is [20, 50].
    # VM 0: used 10, 30, 10 against 20 -> unused 10 + 0 + 10, short 10 once.
    assert s.under_provisioned_share == pytest.approx(1 / 6)
    assert s.slack == pytest.approx(20 / (3 * 20 + 3 * 50))
    assert s.unmet_share == pytest.approx(10 / (50 + 150))
    assert s.vms_over_1pct == pytest.approx(0.5)
    assert s.resizes == 2  # full size -> fixed takes effect at step 1, which is scored
    assert rec.shortfalls == 1


def _fixed_replay(
    usage: FloatArray, alloc: list[float], groups: list[str] | None = None
) -> RightsizeScores:
    mask = np.ones_like(usage, dtype=bool)
    capacity = np.full(usage.shape[0], 100.0)
    return replay(
        usage,
        mask,
        Fixed(alloc),
        capacity,
        step_seconds=300,
        resource="cpu",
        warmup=1,
        groups=groups,
    )


def test_figures_per_policy_group_are_each_groups_own() -> None:
    usage = np.array([[10.0, 10.0, 30.0, 10.0], [50.0, 50.0, 50.0, 50.0], [5.0, 5.0, 5.0, 40.0]])
    alloc = [20.0, 50.0, 10.0]
    s = _fixed_replay(usage, alloc, ["web", "db", "web"])
    assert list(s.groups) == ["web", "db"]
    for name, rows in (("web", [0, 2]), ("db", [1])):
        alone = _fixed_replay(usage[rows], [alloc[r] for r in rows])
        g = s.groups[name]
        assert g.n_vms == len(rows)
        for key in ("slack", "under_provisioned_share", "unmet_share", "vms_over_1pct"):
            assert getattr(g, key) == pytest.approx(getattr(alone, key)), (name, key)
        assert g.resizes_per_vm_hour == pytest.approx(alone.resizes_per_vm_hour)
    # The overall figures are unchanged by the split; JSON gains the groups' figures.
    whole = _fixed_replay(usage, alloc)
    assert whole.slack == pytest.approx(s.slack)
    assert "groups" not in whole.to_dict()
    assert s.to_dict()["groups"]["db"]["n_vms"] == 1  # type: ignore[index]
    assert not _fixed_replay(usage, alloc, ["a"] * 3).groups  # one group: nothing to split


def test_resizes_are_counted_per_vm_and_hour() -> None:
    usage = np.full((2, 13), 5.0)
    s = replay(
        usage,
        np.ones_like(usage, dtype=bool),
        Fixed([10.0, 10.0]),
        np.array([100.0, 100.0]),
        step_seconds=300,
        resource="cpu",
        warmup=0,
    )
    assert s.resizes == 2  # 100 -> 10 for both VMs
    assert s.resizes_per_vm_hour == pytest.approx(2 / (2 * 13 * 300 / 3600))


def test_a_resize_delay_keeps_the_old_allocation_longer() -> None:
    usage = np.full((1, 10), 50.0)
    quick = replay(
        usage,
        np.ones_like(usage, dtype=bool),
        Fixed([10.0]),
        np.array([100.0]),
        step_seconds=300,
        resource="cpu",
        warmup=0,
    )
    slow = replay(
        usage,
        np.ones_like(usage, dtype=bool),
        Fixed([10.0]),
        np.array([100.0]),
        step_seconds=300,
        resource="cpu",
        warmup=0,
        resize_delay=3,
    )
    assert quick.under_provisioned_share == pytest.approx(9 / 10)
    assert slow.under_provisioned_share == pytest.approx(6 / 10)


def test_missing_samples_are_not_scored() -> None:
    usage = np.array([[10.0, np.nan, 90.0]])
    observed = np.array([[True, True, False]])
    s = replay(
        usage,
        observed,
        Fixed([20.0]),
        np.array([100.0]),
        step_seconds=300,
        resource="cpu",
        warmup=0,
    )
    assert s.under_provisioned_share == 0.0


def test_bad_arguments_are_refused() -> None:
    usage = np.ones((2, 5))
    ok = np.ones_like(usage, dtype=bool)
    with pytest.raises(ForethoughtError, match="warm-up"):
        replay(usage, ok, Fixed([1.0, 1.0]), np.ones(2), step_seconds=300, resource="cpu", warmup=5)
    with pytest.raises(ForethoughtError, match="resize-delay"):
        replay(
            usage,
            ok,
            Fixed([1.0, 1.0]),
            np.ones(2),
            step_seconds=300,
            resource="cpu",
            resize_delay=-1,
        )
    with pytest.raises(ForethoughtError, match="mask"):
        replay(usage, ok[:, :3], Fixed([1.0, 1.0]), np.ones(2), step_seconds=300, resource="cpu")
    # A delay as long as the trace: no decision could ever take effect.
    with pytest.raises(
        ForethoughtError, match="no decision could take effect within the trace's 5"
    ):
        replay(
            usage, ok, Fixed([1.0, 1.0]), np.ones(2), step_seconds=300, resource="cpu",
            warmup=1, resize_delay=4,
        )  # fmt: skip
    s = replay(
        usage, ok, Fixed([1.0, 1.0]), np.ones(2), step_seconds=300, resource="cpu",
        warmup=1, resize_delay=3,
    )  # fmt: skip
    assert s.scored_steps == 4


def test_bandwidths_are_rightsized_in_their_own_unit_by_forethought_only(
    fixtures_dir: Path,
) -> None:
    from forethought.allocation.runner import rightsize
    from forethought.telemetry.load import load_trace

    telemetry = load_trace(str(fixtures_dir / "bitbrains"))
    scores = rightsize(telemetry, resources=["disk_write", "net_rx"], warmup=0)
    assert list(scores) == ["disk_write", "net_rx"]
    for s in scores.values():
        # Warm-up 0: the steps before the first sizing are left out, not scored as infinite.
        for value in (s.slack, s.under_provisioned_share, s.unmet_share, s.vms_over_1pct):
            assert 0.0 <= value <= 1.0
        assert s.resizes > 0
    with pytest.raises(ForethoughtError, match="does not give for net_rx"):
        rightsize(telemetry, baseline="vpa", resources=["net_rx"])


@pytest.mark.parametrize(("step_seconds", "scored"), [(300, 3000 - 288), (60, 3000 - 1440)])
def test_the_default_warm_up_is_a_day_whatever_the_sampling_step(
    step_seconds: int, scored: int
) -> None:
    usage = np.full((1, 3000), 10.0)
    s = replay(
        usage, np.ones_like(usage, dtype=bool), Fixed([20.0]), np.array([100.0]),
        step_seconds=step_seconds, resource="cpu",
    )  # fmt: skip
    assert s.scored_steps == scored


def test_steps_per_day() -> None:
    from forethought.core.clock import steps_per_day

    assert steps_per_day(300) == 288
    assert steps_per_day(60) == 1440
    assert steps_per_day(7 * 86_400) == 1  # at least one
    with pytest.raises(ValueError, match="positive"):
        steps_per_day(0)


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        (np.full((0, 10), 5.0), "no VM to replay"),
        (np.array([[5.0, 5.0, -3.0, 5.0]]), r"negative usage -3 \(VM 0, step 2\)"),
        (np.array([[5.0, 5.0, np.nan, np.nan]]), "no observed sample after the warm-up"),
    ],
)
def test_usage_that_cannot_be_scored_is_refused(usage: np.ndarray, message: str) -> None:
    with pytest.raises(ForethoughtError, match=message):
        replay(
            usage, np.isfinite(usage), Fixed([10.0] * usage.shape[0]),
            np.full(usage.shape[0], 100.0), step_seconds=300, resource="cpu", warmup=2,
        )  # fmt: skip
