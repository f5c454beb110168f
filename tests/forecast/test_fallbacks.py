"""Fallbacks are never silent, and missing samples neither crash nor poison a forecast."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.forecast.base import FloatArray
from forethought.forecast.engine import make_forecaster, native_model_names

from .conftest import observed_rows, run

ALL_MODELS = native_model_names()
STEPS = 300


def awkward_panel(rng: np.random.Generator) -> FloatArray:
    """Rows: 1, 2 and 3 observations; a constant; never observed; two ordinary series."""
    panel = 40.0 + rng.normal(0.0, 4.0, (7, STEPS))
    panel[:3] = np.nan
    panel[0, 120] = 30.0
    panel[1, [7, 250]] = [10.0, 20.0]
    panel[2, [5, 150, STEPS - 1]] = [10.0, 20.0, 30.0]
    panel[3] = 42.0
    panel[4] = np.nan
    return panel


def assert_no_silent_gap(notes: tuple[str, ...], quantiles: FloatArray) -> None:
    """The contract: a forecast never goes missing without a reason."""
    for note, q in zip(notes, quantiles, strict=True):
        if not np.isfinite(q).all():
            assert note, "a missing forecast without a note"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_sparse_constant_and_empty_series(name: str, rng: np.random.Generator) -> None:
    panel = awkward_panel(rng)
    _, fc = run(name, panel)
    seen = observed_rows(panel)
    assert np.isfinite(fc.quantiles[seen]).all(), [fc.notes[i] for i in np.flatnonzero(seen)]
    assert np.isfinite(fc.mean[seen]).all()
    # One to three observations: too few residuals of their own at least, and it is said.
    for i in range(3):
        assert fc.notes[i], f"series {i} has {i + 1} observations and no note"
    # Never observed: no forecast, and the note says there was no observation.
    assert "no observation" in fc.notes[4]
    assert np.isnan(fc.quantiles[4]).all()
    assert_no_silent_gap(fc.notes, fc.quantiles)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_a_constant_series_forecasts_the_constant(name: str, rng: np.random.Generator) -> None:
    _, fc = run(name, awkward_panel(rng))
    # Exact for the per-series models; the global regression's weights sum to 1 only nearly.
    np.testing.assert_allclose(fc.quantiles[3], 42.0, rtol=1e-6)
    if name in ("auto", "ar", "markov", "seasonal"):
        assert fc.notes[3], "a model that cannot fit a constant series must say so"
    if name == "auto":
        assert "constant" in fc.notes[3]
    if name in ("ar", "markov", "seasonal"):
        assert "fell back" in fc.notes[3]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_very_first_forecasts_are_finite_and_explained(name: str) -> None:
    panel = np.array([[5.0, np.nan, np.nan], [1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]])
    for t in range(1, 4):
        engine = make_forecaster(name)
        engine.update(panel[:, :t])
        fc = engine.forecast()
        assert np.isfinite(fc.quantiles[:2]).all()
        assert all("too few residuals" in note for note in fc.notes[:2])
        # A series never observed says so, and only that: every other reason follows.
        assert fc.notes[2] == "no observation yet: forecast missing"
        assert_no_silent_gap(fc.notes, fc.quantiles)


@pytest.mark.parametrize(("name", "steps"), [("ar", 10), ("seasonal", 100)])
def test_single_models_fall_back_to_the_median_with_a_note(
    name: str, steps: int, rng: np.random.Generator
) -> None:
    panel = rng.uniform(0.0, 10.0, (4, steps))
    _, fc = run(name, panel)
    assert all("fell back to median" in note for note in fc.notes)
    # The next step's median is the fallback's: the moving median of the last 36 samples.
    # (Further ahead the pooled residual quantiles of so short a history can fall below the
    # point path, and sorting the levels then moves another value into the 0.5 column.)
    np.testing.assert_allclose(fc.median[:, 0], np.median(panel[:, -36:], axis=1))
    assert fc.model_weights is not None
    np.testing.assert_array_equal(fc.model_weights, 0.0)


@pytest.mark.parametrize(
    ("name", "steps", "reason"), [("ar", 10, "samples of history"), ("seasonal", 100, "cycle")]
)
def test_single_model_fallback_note_says_why(
    name: str, steps: int, reason: str, rng: np.random.Generator
) -> None:
    _, fc = run(name, rng.uniform(0.0, 10.0, (2, steps)))
    assert all(reason in note for note in fc.notes), fc.notes


def test_auto_notes_name_the_models_left_out(rng: np.random.Generator) -> None:
    _, fc = run("auto", rng.uniform(0.0, 10.0, (3, 20)))
    for note in fc.notes:
        assert "ar: under 24 samples" in note
        assert "global: global model not trained yet" in note
        assert "seasonal:" in note
        assert "fell back" not in note  # the simple models answered


# -- missing samples ----------------------------------------------------------------------------


def gappy_panel(rng: np.random.Generator, steps: int) -> tuple[FloatArray, np.ndarray]:
    values = 30.0 + np.cumsum(rng.normal(0.0, 1.0, (8, steps)), axis=1)
    values = np.abs(values)
    observed = rng.random((8, steps)) > 0.1
    observed[0, 20:40] = False  # a long gap
    observed[1, ::2] = False  # every other sample
    return values, observed


@pytest.mark.parametrize("name", ALL_MODELS)
def test_missing_samples_do_not_crash_or_poison(name: str, rng: np.random.Generator) -> None:
    values, observed = gappy_panel(rng, 90)
    _, fc = run(name, np.where(observed, values, np.nan))
    assert np.isfinite(fc.quantiles).all(), fc.notes
    assert np.isfinite(fc.mean).all()
    assert (np.diff(fc.quantiles, axis=2) >= 0.0).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_masked_samples_are_ignored_whatever_their_value(
    name: str, rng: np.random.Generator
) -> None:
    values, observed = gappy_panel(rng, 150)
    garbage = np.where(observed, values, 1e12)
    nans = np.where(observed, values, np.nan)
    _, with_mask = run(name, garbage, observed)
    _, with_nan = run(name, nans)
    np.testing.assert_allclose(with_mask.quantiles, with_nan.quantiles, rtol=1e-12)
    assert with_mask.notes == with_nan.notes


def test_infinite_values_count_as_missing() -> None:
    values = np.array([[1.0, np.inf, 2.0, -np.inf], [3.0, 3.0, 3.0, 3.0]])
    _, fc = run("last", values)
    np.testing.assert_array_equal(fc.median[:, 0], [2.0, 3.0])
    assert np.isfinite(fc.quantiles).all()


@pytest.mark.parametrize("name", ["median", "auto"])
def test_missing_samples_after_a_long_run_keep_the_forecast_finite(
    name: str, rng: np.random.Generator
) -> None:
    """Regression: once a residual ring had wrapped, a missing sample was still counted
    and the series' high quantiles became NaN, with an empty note."""
    values = 50.0 + rng.normal(0.0, 5.0, (3, 700))
    values[0, 250] = np.nan  # a single missing sample
    values[1, ::10] = np.nan  # one in ten, all along
    _, fc = run(name, values)
    assert np.isfinite(fc.quantiles).all()
    assert (fc.quantile(0.99)[:2] > fc.median[:2]).all()
