"""History: windows, carried-forward values, bounded memory and the naive scale."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.forecast.history import History

from .conftest import forward_filled


def filled(n: int, max_length: int, values: np.ndarray) -> History:
    history = History(n, max_length)
    for t in range(values.shape[1]):
        history.append(values[:, t], np.isfinite(values[:, t]))
    return history


def test_windows_are_the_newest_samples() -> None:
    values = np.arange(20.0).reshape(2, 10)
    history = filled(2, 6, values)
    assert history.length == 6
    assert history.steps == 10
    np.testing.assert_array_equal(history.window(3), values[:, -3:])
    np.testing.assert_array_equal(history.window(6), values[:, -6:])
    np.testing.assert_array_equal(history.window(100), values[:, -6:])  # capped at length
    np.testing.assert_array_equal(history.last, values[:, -1])
    assert history.observed_count.tolist() == [10, 10]


def test_short_history_window_is_what_there_is() -> None:
    history = filled(1, 50, np.array([[3.0, 4.0]]))
    assert history.length == 2
    np.testing.assert_array_equal(history.window(10), [[3.0, 4.0]])


def test_missing_samples_are_carried_forward_and_first_values_backfilled() -> None:
    nan = np.nan
    values = np.array(
        [
            [1.0, nan, nan, 4.0, nan],
            [nan, nan, 7.0, nan, 8.0],
            [nan, nan, nan, nan, nan],
        ]
    )
    history = filled(3, 10, values)
    window = history.window(5)
    np.testing.assert_array_equal(window[:2], forward_filled(values)[:2])
    np.testing.assert_array_equal(window[1], [7.0, 7.0, 7.0, 7.0, 8.0])
    assert np.isnan(window[2]).all()
    assert history.observed_count.tolist() == [2, 2, 0]
    np.testing.assert_array_equal(history.last[:2], [4.0, 8.0])
    assert np.isnan(history.last[2])


def test_append_returns_the_stored_values() -> None:
    history = History(2, 4)
    history.append(np.array([1.0, 2.0]), np.array([True, True]))
    stored = history.append(np.array([9.0, 3.0]), np.array([False, True]))
    np.testing.assert_array_equal(stored, [1.0, 3.0])


@pytest.mark.parametrize("max_length", [1, 2, 5, 64, 100])
def test_memory_stays_bounded_and_windows_stay_right(max_length: int) -> None:
    steps = 5 * max_length + 150
    values = np.arange(2 * steps, dtype=np.float64).reshape(2, steps)
    history = History(2, max_length)
    for t in range(steps):
        history.append(values[:, t], np.ones(2, dtype=bool))
        # Bounded whatever the run length (max_length plus a fixed slack for amortised shifts).
        assert history._buf.shape[1] <= 2 * max_length + 64
        w = min(t + 1, max_length)
        np.testing.assert_array_equal(history.window(max_length), values[:, t + 1 - w : t + 1])
    assert history.length == max_length
    assert history.steps == steps


def test_scale_is_the_mean_absolute_one_step_change() -> None:
    nan = np.nan
    values = np.array(
        [
            [1.0, 3.0, 2.0, 6.0],  # |2| + |1| + |4| over 3
            [5.0, nan, 9.0, nan],  # the gap: 9 against the last observed 5
            [4.0, nan, nan, nan],  # one observation: unknown
            [2.0, 2.0, 2.0, 2.0],  # constant: zero
        ]
    )
    history = filled(4, 10, values)
    scale = history.scale()
    assert scale[0] == pytest.approx(7.0 / 3.0)
    assert scale[1] == pytest.approx(4.0)
    assert np.isnan(scale[2])
    assert scale[3] == 0.0


def test_scale_is_not_bounded_by_the_window() -> None:
    values = np.vstack([np.arange(0.0, 100.0, 1.0), np.r_[np.zeros(90), np.arange(10.0) * 3]])
    history = filled(2, 5, values)
    np.testing.assert_allclose(history.scale(), [1.0, (3.0 * 9) / 99.0])


def test_median_and_mean_are_of_the_window_and_refresh_on_append() -> None:
    history = filled(2, 10, np.array([[1.0, 9.0, 2.0, 8.0], [4.0, 4.0, 4.0, 100.0]]))
    np.testing.assert_array_equal(history.median(3), [8.0, 4.0])
    np.testing.assert_array_equal(history.median(4), [5.0, 4.0])
    np.testing.assert_allclose(history.mean(2), [5.0, 52.0])
    history.append(np.array([0.0, 0.0]), np.array([True, True]))
    np.testing.assert_array_equal(history.median(3), [2.0, 4.0])
    np.testing.assert_allclose(history.mean(2), [4.0, 50.0])


def test_median_matches_numpy(rng: np.random.Generator) -> None:
    values = rng.normal(size=(5, 60))
    history = filled(5, 40, values)
    for w in (1, 2, 7, 36, 40, 100):
        np.testing.assert_allclose(history.median(w), np.median(values[:, -min(w, 40) :], axis=1))
        np.testing.assert_allclose(history.mean(w), np.mean(values[:, -min(w, 40) :], axis=1))
