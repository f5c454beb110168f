"""The bound scripts in ``benchmarks/`` still run and still measure what they say.

They are research instruments, run by hand on the full traces; these tests run their core on
the bundled day so that a change elsewhere cannot silently break them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from forethought.core.resources import Resource
from forethought.telemetry.load import load_trace

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_forecast_ceiling_orders_engine_estimate_and_oracle() -> None:
    ceiling = _script("forecast_ceiling")
    values, _ = load_trace("bundled:planetlab-20110303", limit=120).series(Resource.CPU)
    figures = ceiling.day_figures(values, seed=0)
    engine = figures["forethought auto"]
    bound = figures["cross-fitted estimate"]
    oracle = figures["oracle flat (knows the next hour)"]
    # Knowing the VM's own next hour beats everything that only knows the past.
    assert oracle["mase"] < min(engine["mase"], bound["mase"])
    assert oracle["pinball_95"] < min(engine["pinball_95"], bound["pinball_95"])
    # The estimate is a real quantile fit: its p95 covers near 95 %, on VMs it was not fitted on.
    assert 0.85 < bound["coverage_95"] < 1.0
    assert all(np.isfinite(v) for row in figures.values() for v in row.values())


def test_frontier_reads_slack_at_a_share_by_interpolation() -> None:
    frontier = _script("allocation_frontier")
    curve = [(0.30, 0.20), (0.10, 0.40), (0.01, 0.70)]  # (under-provisioned, slack)
    assert frontier.slack_at(0.20, curve) == pytest.approx(0.30)
    assert frontier.slack_at(0.01, curve) == pytest.approx(0.70)
    assert frontier.slack_at(0.001, curve) is None  # the curve never gets that low
    assert frontier.slack_at(0.5, curve) is None


def test_fleet_step_times_every_step_of_the_loop() -> None:
    bench = _script("fleet_step")
    row = bench.fleet_steps(120, steps=6)
    assert row["vms"] == 120
    assert row["hosts"] == 60
    assert row["steps"] == 6
    assert 0.0 < row["median_cpu_seconds"] <= row["p95_cpu_seconds"] <= row["max_cpu_seconds"]
    assert row["resizes_applied"] > 0  # it sized the VMs: a step that did nothing is not timed
