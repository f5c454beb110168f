"""The shared resampling helper: averaging per slot, duplicate and gap accounting."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forethought.core.errors import ForethoughtError
from forethought.telemetry.grid import (
    MAX_STEPS,
    Grid,
    exact_duplicates,
    resample,
    slot_accounting,
)


def test_grid_start_is_floored_to_a_multiple_of_the_step() -> None:
    grid = Grid.covering(1_375_308_176.0, 1_375_309_075.0, 300)
    assert grid.start == 1_375_308_000
    assert grid.n_steps == 4  # 000, 300, 600, 900: the last sample (1075 s in) is in slot 3
    slots = grid.slots(np.array([1_375_308_000.0, 1_375_308_299.9, 1_375_308_300.0]))
    assert slots.tolist() == [0, 0, 1]


@pytest.mark.parametrize(("first", "last", "step"), [(10.0, 5.0, 300), (0.0, 10.0, 0)])
def test_grid_rejects_an_empty_range_or_step(first: float, last: float, step: int) -> None:
    with pytest.raises(ForethoughtError):
        Grid.covering(first, last, step)


def test_grid_refuses_an_absurd_span() -> None:
    with pytest.raises(ForethoughtError, match="timestamp is probably wrong"):
        Grid.covering(0.0, float(MAX_STEPS) * 300.0 + 300.0, 300)


def test_resample_averages_counts_and_leaves_gaps_missing() -> None:
    grid = Grid(start=0, step_seconds=10, n_steps=6)
    series = np.array([0, 0, 0, 0, 1])
    timestamps = np.array([0.0, 12.0, 15.0, 41.0, 55.0])
    values = np.array([[1.0, 5.0], [2.0, np.nan], [4.0, 7.0], [8.0, 1.0], [3.0, 3.0]])
    out = resample(series, timestamps, values, 2, grid)

    assert out.values.shape == (2, 2, 6)
    assert out.values[0, 0, :5].tolist()[:2] == [1.0, 3.0]  # slot 1 averages 2 and 4
    assert out.values[0, 1, 1] == 7.0  # a NaN field is left out of its column's mean
    assert out.mask[0, 0].tolist() == [True, True, False, False, True, False]
    assert np.isnan(out.values[0, 0, 2])
    assert out.counts[0].tolist() == [1, 2, 0, 0, 1, 0]
    assert out.duplicates.tolist() == [1, 0]
    # Series 0 spans slots 0-4 with 2 and 3 empty; series 1 has one sample, so no gap, even
    # though slots 0-4 are missing for it.
    assert out.gaps.tolist() == [2, 0]
    assert not out.mask[1, :, :5].any()


def test_resample_rejects_samples_outside_the_grid() -> None:
    grid = Grid(start=100, step_seconds=10, n_steps=2)
    with pytest.raises(ForethoughtError, match="outside the grid"):
        resample(np.array([0]), np.array([99.0]), np.array([[1.0]]), 1, grid)


def test_slot_accounting_of_an_empty_series() -> None:
    duplicates, gaps = slot_accounting(np.array([[0, 0, 0], [2, 0, 1]], dtype=np.int64))
    assert duplicates.tolist() == [0, 1]
    assert gaps.tolist() == [0, 1]


def test_exact_duplicates_are_counted_per_series() -> None:
    series = np.array([0, 0, 0, 1, 1])
    timestamps = np.array([5.0, 5.0, 5.0, 5.0, 6.0])
    assert exact_duplicates(series, timestamps, 3).tolist() == [2, 0, 0]


samples = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),  # series
        st.integers(min_value=0, max_value=3_000),  # seconds after the first slot
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    ),
    min_size=1,
    max_size=60,
)


@given(samples, st.integers(min_value=1, max_value=900), st.integers(min_value=0, max_value=10**9))
def test_resample_matches_a_plain_python_grouping(
    rows: list[tuple[int, int, float]], step: int, origin: int
) -> None:
    series = np.array([r[0] for r in rows])
    timestamps = np.array([float(origin + r[1]) for r in rows])
    values = np.array([[r[2]] for r in rows])
    grid = Grid.covering(float(timestamps.min()), float(timestamps.max()), step)
    out = resample(series, timestamps, values, 3, grid)

    groups: dict[tuple[int, int], list[float]] = defaultdict(list)
    for s, t, v in rows:
        groups[(s, (origin + t - grid.start) // step)].append(v)
    assert int(out.mask.sum()) == len(groups)
    for (s, slot), members in groups.items():
        assert out.values[s, 0, slot] == pytest.approx(sum(members) / len(members), rel=1e-9)
    for s in range(3):
        slots = sorted(slot for (ser, slot) in groups if ser == s)
        n = sum(len(m) for (ser, _), m in groups.items() if ser == s)
        assert out.duplicates[s] == n - len(slots)
        assert out.gaps[s] == (slots[-1] - slots[0] + 1 - len(slots) if slots else 0)


@given(st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=1, max_size=50))
def test_resampling_preserves_the_mean_of_on_grid_samples(values: list[float]) -> None:
    # One sample exactly on each grid point: nothing to merge, nothing missing, same mean.
    step = 300
    timestamps = 1_375_308_000.0 + step * np.arange(len(values), dtype=np.float64)
    out = resample(
        np.zeros(len(values), dtype=np.int64),
        timestamps,
        np.array(values)[:, None],
        1,
        Grid.covering(float(timestamps[0]), float(timestamps[-1]), step),
    )
    assert out.mask.all()
    assert out.values[0, 0].tolist() == values
    assert float(out.values.mean()) == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert out.duplicates.tolist() == [0]
    assert out.gaps.tolist() == [0]


def test_a_grid_almost_all_gaps_is_refused_when_the_sample_count_is_given() -> None:
    day = Grid.covering(0.0, 86_399.0, 300, samples=2)  # under the floor: sparse but fine
    assert day.n_steps == 288
    year = 365 * 86_400.0
    assert Grid.covering(0.0, year, 300, samples=1_000).n_steps == 105_121  # 105 slots each
    with pytest.raises(ForethoughtError, match="but there are only 2"):
        Grid.covering(0.0, 1_375_308_176.0, 300, samples=2)
