"""A full public PlanetLab day under THR-MMT: sanity bounds only.

How close the figures come to CloudSim's published ones is a benchmark's business
(``benchmarks/``); this test only catches a simulator that has gone badly wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from forethought.sim.runner import simulate
from forethought.telemetry.load import load_trace


@pytest.mark.shared
def test_thr_mmt_on_a_full_planetlab_day_is_sane(shared_traces: Path) -> None:
    day = shared_traces / "planetlab" / "20110303"
    if not day.is_dir():
        pytest.skip(f"the PlanetLab day {day} is not present")
    result = simulate(load_trace(day), "thr-mmt")
    assert result.n_hosts == 800
    assert result.migrations > 0
    assert 100.0 < result.energy_kwh < 400.0
    for key in ("slatah", "pdm", "overall_sla_violation"):
        assert 0.0 <= getattr(result, key) <= 1.0
