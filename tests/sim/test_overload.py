"""Overload tests on hand-made host histories whose answers are known.

A history row holds a host's utilisation, newest first, zero where it has none yet (as the
simulator keeps 30 values per host); ``load`` is the host's requested CPU now.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forethought.forecast.base import FloatArray
from forethought.sim.overload import (
    InterQuartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    StaticThreshold,
    leading_nonzero,
    make_test,
    trimmed_length,
)

WIDTH = 30


def histories(*rows: Sequence[float], width: int = WIDTH) -> FloatArray:
    """Rows given newest first, padded with zeros (no history yet) to ``width`` values."""
    out = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def loads(*values: float) -> FloatArray:
    return np.array(values, dtype=np.float64)


def no_migration(n: int) -> FloatArray:
    return np.zeros(n)


def line(a: float, b: float, n: int = 10) -> list[float]:
    """y = a + b x at x = 1 (oldest) .. n (newest), returned newest first."""
    return [a + b * x for x in range(n, 0, -1)]


# -- trimmed_length and leading_nonzero ----------------------------------------------------------


def test_trimmed_length_and_leading_nonzero_on_known_rows() -> None:
    h = histories(
        [0.5, 0.2, 0.0, 0.3],  # a gap, then an older value: 4 long, 2 before the gap
        [],  # no history at all
        [0.1] * WIDTH,  # full
        [0.0, 0.4],  # newest value zero
        [0.3] * 12,
    )
    np.testing.assert_array_equal(trimmed_length(h), [4, 0, WIDTH, 2, 12])
    np.testing.assert_array_equal(leading_nonzero(h), [2, 0, WIDTH, 0, 12])


@given(st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0]), min_size=1, max_size=40))
def test_trimmed_length_and_leading_nonzero_match_their_definitions(row: list[float]) -> None:
    h = np.array([row])
    expected_trimmed = max((i + 1 for i, v in enumerate(row) if v != 0), default=0)
    expected_leading = next((i for i, v in enumerate(row) if v == 0), len(row))
    assert int(trimmed_length(h)[0]) == expected_trimmed
    assert int(leading_nonzero(h)[0]) == expected_leading


# -- THR -----------------------------------------------------------------------------------------


def test_static_threshold_is_strictly_above_the_parameter() -> None:
    h = histories([0.9] * 20, [], [0.1] * 5, [0.5])  # the history plays no part
    got = StaticThreshold(0.8).overloaded(loads(0.5, 0.8, 0.81, 1.2), h, no_migration(4))
    np.testing.assert_array_equal(got, [False, False, True, True])
    low = StaticThreshold(0.3).overloaded(loads(0.29, 0.31), h[:2], no_migration(2))
    np.testing.assert_array_equal(low, [False, True])


# -- IQR -----------------------------------------------------------------------------------------

# Twelve values, half 0.1 and half 0.3: Q1 = 0.1 and Q3 = 0.3 under any quartile rule.
IQR_02 = [0.1, 0.3] * 6


@pytest.mark.parametrize(
    ("safety", "below", "above"),
    [(2.0, 0.55, 0.65), (1.0, 0.75, 0.85), (0.5, 0.85, 0.95), (0.0, 0.99, 1.01)],
)
def test_iqr_threshold_is_one_minus_s_times_iqr(safety: float, below: float, above: float) -> None:
    # IQR 0.2: the threshold is 1 - 0.2 s (0.6 for s = 2, where THR 0.7 would disagree).
    h = histories(IQR_02, IQR_02)
    got = InterQuartileRange(safety).overloaded(loads(below, above), h, no_migration(2))
    np.testing.assert_array_equal(got, [False, True])


def test_iqr_ignores_the_zeros_of_a_short_history() -> None:
    # 14 values then 16 zeros: the quartiles of the 14 give IQR 0.2 (threshold 0.6 at s = 2);
    # counting the zeros would give 0.1 (threshold 0.8) and leave a load of 0.65 alone.
    h = histories([0.1, 0.3] * 7)
    assert InterQuartileRange(2.0).overloaded(loads(0.65), h, no_migration(1))[0]


def test_iqr_falls_back_to_thr_07_with_fewer_than_12_leading_values() -> None:
    short = IQR_02[:11]  # 11 values, then zeros
    gap = [*IQR_02[:5], 0.0, *IQR_02]  # 18 values, but a zero at position 5
    test = InterQuartileRange(2.0)
    h = histories(short, short, gap, gap)
    got = test.overloaded(loads(0.65, 0.75, 0.65, 0.75), h, no_migration(4))
    np.testing.assert_array_equal(got, [False, True, False, True])
    assert test.fallback == StaticThreshold(0.7)


def test_iqr_uses_the_history_from_12_leading_values_on() -> None:
    # Exactly 12 values before the first zero: adaptive (0.6 at s = 2), not THR 0.7.
    h = histories([*IQR_02, 0.0, 0.5, 0.5])
    assert InterQuartileRange(2.0).overloaded(loads(0.65), h, no_migration(1))[0]


def test_iqr_on_an_empty_history_falls_back_quietly() -> None:
    # A host with no VMs, or whose VMs all just left: no quartiles, no numpy warning (the
    # suite turns warnings into errors), THR 0.7.
    h = histories([], [])
    got = InterQuartileRange().overloaded(loads(0.0, 0.75), h, no_migration(2))
    np.testing.assert_array_equal(got, [False, True])


# -- MAD -----------------------------------------------------------------------------------------


def test_mad_threshold_on_an_even_history() -> None:
    # Median 0.3, every deviation 0.1: MAD 0.1, threshold 1 - 2.5 x 0.1 = 0.75.
    row = [0.2, 0.4] * 6
    h = histories(row, row)
    got = MedianAbsoluteDeviation(2.5).overloaded(loads(0.72, 0.78), h, no_migration(2))
    np.testing.assert_array_equal(got, [False, True])  # THR 0.7 would flag 0.72 too


def test_mad_threshold_on_an_odd_history() -> None:
    # 13 values: median 0.5; deviations 0 (x5) and 0.04 (x8): MAD 0.04, threshold 0.9.
    row = [0.5] * 5 + [0.46, 0.54] * 4
    h = histories(row, row)
    got = MedianAbsoluteDeviation(2.5).overloaded(loads(0.88, 0.92), h, no_migration(2))
    np.testing.assert_array_equal(got, [False, True])
    at_zero = MedianAbsoluteDeviation(0.0).overloaded(loads(0.99, 1.01), h, no_migration(2))
    np.testing.assert_array_equal(at_zero, [False, True])  # s = 0: the threshold is 1


def test_mad_falls_back_to_thr_07_with_fewer_than_12_leading_values() -> None:
    row = ([0.2, 0.4] * 6)[:11]
    h = histories(row, row)
    got = MedianAbsoluteDeviation(2.5).overloaded(loads(0.68, 0.72), h, no_migration(2))
    np.testing.assert_array_equal(got, [False, True])


# -- LR ------------------------------------------------------------------------------------------


def test_lr_extrapolates_a_rising_line_past_the_migration() -> None:
    # y = 0.3 + 0.03 x over the last 10 intervals (0.33 .. 0.60, newest 0.60); older values
    # beyond the window play no part. The forecast at x = 10 + m is 0.6 + 0.03 m, and 1/s is
    # 0.833 for s = 1.2: m = 7 gives 0.81 (below), m = 8 gives 0.84 (above).
    rising = line(0.3, 0.03) + [0.95] * 20
    h = histories(rising, rising, rising)
    got = LocalRegression(1.2).overloaded(loads(0.6, 0.6, 0.6), h, np.array([1.0, 7.0, 8.0]))
    np.testing.assert_array_equal(got, [False, False, True])


@pytest.mark.parametrize(("safety", "expected"), [(1.55, False), (1.6, True)])
def test_lr_decision_on_both_sides_of_one_over_s(safety: float, expected: bool) -> None:
    # One interval ahead the rising line predicts 0.63: overloaded once s > 1 / 0.63 = 1.587.
    h = histories(line(0.3, 0.03))
    got = LocalRegression(safety).overloaded(loads(0.6), h, np.array([1.0]))
    assert bool(got[0]) is expected


def test_lr_on_a_flat_history_forecasts_its_level() -> None:
    flat = histories([0.5] * 10)  # slope 0: the forecast is 0.5 however far ahead
    for intervals in (0.0, 3.0, 50.0):
        m = np.array([intervals])
        assert LocalRegression(2.05).overloaded(loads(0.1), flat, m)[0]
        assert not LocalRegression(1.95).overloaded(loads(0.9), flat, m)[0]


def test_lr_follows_the_trend_not_the_current_load() -> None:
    falling = line(1.0, -0.05)  # 0.95 .. 0.50, newest 0.5: forecast 0.45 one step ahead
    rising = line(0.3, 0.05)  # 0.35 .. 0.80: forecast 0.85, x 1.2 = 1.02
    h = histories(falling, rising)
    # The loads say the opposite (and THR 0.7 would agree with them): LR ignores them.
    got = LocalRegression(1.2).overloaded(loads(0.95, 0.1), h, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(got, [False, True])


def test_lr_falls_back_to_thr_07_with_fewer_than_10_values() -> None:
    steep = line(0.3, 0.1)[:9]  # 9 values up to 1.2: a forecast far above 1 if it were used
    h = histories(steep, steep)
    got = LocalRegression(1.2).overloaded(loads(0.65, 0.75), h, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(got, [False, True])


# -- make_test -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "default"),
    [
        ("thr", StaticThreshold, 0.8),
        ("iqr", InterQuartileRange, 1.5),
        ("mad", MedianAbsoluteDeviation, 2.5),
        ("lr", LocalRegression, 1.2),
        ("lrr", LocalRegression, 1.2),
    ],
)
def test_make_test_builds_each_test_with_its_default(name: str, kind: type, default: float) -> None:
    test = make_test(name)
    assert isinstance(test, kind)
    assert test.name == name
    assert test.parameter == default
    assert make_test(name, 0.55).parameter == 0.55


def test_local_regression_falls_back_on_a_history_shorter_than_its_window() -> None:
    from forethought.sim.overload import LocalRegression

    lr = LocalRegression(1.2)
    short = np.full((2, 5), 0.9)
    load = np.array([0.75, 0.5])
    # Not enough values for the line: THR 0.7 decides on the current load.
    assert lr.overloaded(load, short, np.ones(2)).tolist() == [True, False]
