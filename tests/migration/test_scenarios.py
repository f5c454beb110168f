"""Joint scenarios: error ranks (the empirical copula) and quantile inversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forethought.core.errors import ForethoughtError
from forethought.migration.scenarios import ResidualCopula, quantile_paths


def feed(copula: ResidualCopula, errors: np.ndarray) -> None:
    """Record (series, steps) errors as actual - 0."""
    n = errors.shape[0]
    for k in range(errors.shape[1]):
        copula.record(errors[:, k], np.zeros(n), np.ones(n, dtype=bool))


def test_ranks_follow_each_series_own_errors() -> None:
    copula = ResidualCopula(2, window=10, min_errors=5)
    rising = np.arange(10.0)
    feed(copula, np.stack([rising, -rising]))
    u = copula.uniforms(10)
    assert u.shape == (10, 2)
    # Newest first: series 0's newest error is its largest, series 1's its smallest.
    np.testing.assert_allclose(u[:, 0], (np.arange(9, -1, -1) + 0.5) / 10)
    np.testing.assert_allclose(u[:, 0] + u[:, 1], 1.0)


def test_series_that_err_together_draw_together() -> None:
    rng = np.random.default_rng(1)
    common = rng.normal(size=40)
    copula = ResidualCopula(3, window=40)
    feed(copula, np.stack([common, 3 * common + 1, rng.normal(size=40)]))
    u = copula.uniforms(40)
    np.testing.assert_allclose(u[:, 0], u[:, 1])  # same ranks: comonotone
    assert abs(np.corrcoef(u[:, 0], u[:, 2])[0, 1]) < 0.5


def test_short_history_gets_the_cautious_rank() -> None:
    copula = ResidualCopula(2, window=20, min_errors=12)
    feed(copula, np.ones((2, 5)))
    np.testing.assert_allclose(copula.uniforms(3), copula.cautious_rank)
    # A series with invalid steps (NaN prediction) does not count them.
    copula.record(np.ones(2), np.array([0.0, np.nan]), np.ones(2, dtype=bool))
    assert np.isnan(copula.errors[1, 5])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ForethoughtError, match="window"):
        ResidualCopula(3, window=1)
    copula = ResidualCopula(3)
    with pytest.raises(ForethoughtError, match="shape"):
        copula.record(np.zeros(2), np.zeros(3), np.ones(3, dtype=bool))
    with pytest.raises(ForethoughtError, match="draws"):
        copula.uniforms(0)


def test_quantile_inversion_known_answers() -> None:
    levels = (0.1, 0.5, 0.9)
    q = np.array([[[1.0, 5.0, 9.0], [2.0, 2.0, 2.0]]])  # one series, two steps
    u = np.array([[0.5], [0.3], [0.05], [0.95]])
    paths = quantile_paths(q, levels, u)
    assert paths.shape == (4, 1, 2)
    np.testing.assert_allclose(paths[:, 0, 0], [5.0, 3.0, 1.0, 9.0])
    np.testing.assert_allclose(paths[:, 0, 1], 2.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_quantile_inversion_matches_interpolation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    q = np.sort(rng.uniform(0, 100, (4, 3, 5)), axis=2)
    u = rng.uniform(0, 1, (6, 4))
    paths = quantile_paths(q, levels, u)
    for s in range(6):
        for i in range(4):
            for h in range(3):
                want = np.interp(u[s, i], levels, q[i, h])
                assert paths[s, i, h] == pytest.approx(want)


def test_quantile_inversion_rejects_mismatched_shapes() -> None:
    with pytest.raises(ForethoughtError, match="disagree"):
        quantile_paths(np.zeros((2, 3, 4)), (0.1, 0.5, 0.9), np.zeros((5, 2)))
