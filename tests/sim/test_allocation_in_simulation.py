"""The allocation manager inside a full simulation: caps, figures, report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from forethought.allocation.baselines import make_baseline
from forethought.cli.main import main
from forethought.cluster.model import cloudsim_planetlab
from forethought.core.errors import ForethoughtError
from forethought.sim.cloudsim import CloudSimDataCentre
from forethought.sim.report import render
from forethought.sim.runner import simulate
from forethought.telemetry.load import load_trace

from .conftest import utilisation

KEYS = ("slack", "under_provisioned_share", "unmet_share", "resizes_per_vm_hour", "vms_over_1pct")


def test_requests_are_capped_at_the_allocations_decided() -> None:
    u = utilisation(5, 30, 40, low=0.05, high=0.6)
    dc = CloudSimDataCentre(
        cloudsim_planetlab(30, 20), u, None, allocator=make_baseline("reactive", "cpu")
    )
    result = dc.run()
    assert result.allocation is not None
    a = result.allocation
    assert a.recommender == "reactive"
    for share in (a.slack, a.under_provisioned_share, a.unmet_share, a.vms_over_1pct):
        assert 0.0 <= share <= 1.0
    assert a.resizes_per_vm_hour > 0  # it did resize
    state = dc._update(39 * 300.0)
    cap = dc.alloc_pct / 100.0 * dc.mips
    assert (state.req <= cap + 1e-9).all()
    assert (dc.alloc_pct < 100.0).any()


def test_without_an_allocator_nothing_is_capped_or_reported() -> None:
    u = utilisation(6, 20, 30)
    result = CloudSimDataCentre(cloudsim_planetlab(20, 15), u, None).run()
    assert result.allocation is None
    assert "allocation" not in result.to_dict()


def test_forethought_inside_the_simulation_scores_like_rightsize() -> None:
    telemetry = load_trace("bundled:planetlab-20110303", limit=60)
    result = simulate(telemetry, "predictive", hosts=60, allocate="forethought")
    assert result.allocation is not None
    a = result.allocation
    assert (a.recommender, a.n_vms) == ("forethought", 60)
    assert a.under_provisioned_share < 0.05
    assert 0.2 < a.slack < 0.9
    html = render([result], "t", "bundled")
    assert "Allocation inside the simulation" in html


def test_a_policy_file_goes_only_with_forethought(tmp_path: Path) -> None:
    telemetry = load_trace("bundled:planetlab-20110303", limit=10)
    from forethought.allocation.policy import parse_policy

    policy = parse_policy("version: 1\ngroups:\n  - name: all\n    match: {name: '*'}\n")
    with pytest.raises(ForethoughtError, match="allocation policy"):
        simulate(telemetry, "lr-mmt", hosts=20, allocate="vpa", allocation_policy=policy)
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--limit",
            "10",
            "--hosts",
            "20",
            "--allocation-policy",
            str(tmp_path / "p.yaml"),
        ],
    )
    assert result.exit_code == 1
    assert "--allocate forethought" in result.output


def test_cli_json_carries_the_allocation_figures() -> None:
    result = CliRunner().invoke(
        main,
        [
            "compare",
            "--policies",
            "thr-mmt,lr-mmt",
            "--limit",
            "40",
            "--hosts",
            "40",
            "--allocate",
            "vpa",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [r["allocation"]["recommender"] for r in runs] == ["vpa", "vpa"]
    assert all(set(KEYS) <= set(r["allocation"]) for r in runs)
    # The same demand and the same recommender: the same allocation figures.
    assert runs[0]["allocation"]["slack"] == pytest.approx(runs[1]["allocation"]["slack"])
    assert np.isfinite(runs[0]["energy_kwh"])
