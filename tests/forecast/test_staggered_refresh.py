"""Refreshing the calibration one horizon band at a time gives the same quantiles."""

from __future__ import annotations

import numpy as np

from forethought.forecast.calibration import ResidualCalibrator


def test_band_by_band_refresh_equals_a_full_refresh() -> None:
    rng = np.random.default_rng(5)
    full = ResidualCalibrator(50, 12, (0.5, 0.95), size=64, min_count=8, adapt_rate=0.0)
    parts = ResidualCalibrator(50, 12, (0.5, 0.95), size=64, min_count=8, adapt_rate=0.0)
    for _ in range(80):
        r = rng.standard_normal((50, 12))
        ok = rng.random((50, 12)) > 0.1
        full.add(r, ok)
        parts.add(r, ok)
    scale = np.ones(50)
    full.refresh(scale)
    parts.refresh(scale)  # the first refresh is always whole
    for _ in range(5):
        r = rng.standard_normal((50, 12))
        full.add(r, np.ones((50, 12), dtype=bool))
        parts.add(r, np.ones((50, 12), dtype=bool))
    full.refresh(scale)
    before = parts.residual_quantiles(scale, fresh=False)[0].copy()
    for band in range(len(parts.bands)):
        parts.refresh(scale, [band])
    np.testing.assert_allclose(
        parts.residual_quantiles(scale, fresh=False)[0],
        full.residual_quantiles(scale, fresh=False)[0],
    )
    np.testing.assert_allclose(parts.upper_one_step(), full.upper_one_step())
    assert not np.allclose(before, full.residual_quantiles(scale, fresh=False)[0])
