"""Side-by-side rightsizing: dominance, the baselines named, watched VMs, the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forethought.allocation.compare import (
    Contender,
    compare_rightsizing,
    contenders,
    dominated_by,
    most_varied,
    parse_versus,
)
from forethought.allocation.replay import RightsizeScores
from forethought.allocation.report import render, write
from forethought.allocation.runner import rightsize
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource, Unit
from forethought.telemetry.load import load_trace
from forethought.telemetry.series import Telemetry


def scores(name: str, slack: float, under: float) -> RightsizeScores:
    return RightsizeScores(
        resource="cpu",
        recommender=name,
        slack=slack,
        under_provisioned_share=under,
        unmet_share=0.0,
        resizes_per_vm_hour=0.0,
        vms_over_1pct=0.0,
        n_vms=1,
        scored_steps=1,
        resizes=0,
        cpu_seconds=0.0,
        decision_ms_mean=0.0,
    )


def test_dominated_means_worse_on_both_counts_at_once() -> None:
    runs = {
        "a": scores("a", 0.5, 0.01),
        "b": scores("b", 0.4, 0.005),  # better than a on both
        "c": scores("c", 0.3, 0.05),  # less slack, more shortage: a trade-off
        "d": scores("d", 0.4, 0.005),  # level with b: neither dominates the other
    }
    assert dominated_by(runs) == {"a": ["b", "d"], "b": [], "c": [], "d": []}


def test_versus_names_baselines_or_all() -> None:
    assert parse_versus("vpa, static-peak") == ["vpa", "static-peak"]
    with pytest.raises(ForethoughtError, match="--versus names vpa twice"):
        parse_versus("vpa, static-peak,vpa")  # as backtest --versus refuses a repeat
    with pytest.raises(ForethoughtError, match="all means every baseline; give it alone"):
        parse_versus("all,vpa")
    assert len(parse_versus("all")) == 6
    with pytest.raises(ForethoughtError, match=r"unknown baseline.*nope.*choose from vpa"):
        parse_versus("vpa,nope")
    with pytest.raises(ForethoughtError, match="none given"):
        parse_versus(" , ")


def synthetic(steps: int = 96) -> Telemetry:
    """Three VMs: flat, flickering 0/100 every step, and a level that rises and falls."""
    t = np.arange(steps)
    level = 20.0 + 40.0 * ((t // 24) % 2)
    values = np.stack([np.full(steps, 30.0), 100.0 * (t % 2), level])[:, None, :]
    return Telemetry(
        vm_ids=("flat", "flicker", "level"),
        resources=(Resource.CPU,),
        units=(Unit.PERCENT,),
        step_seconds=300,
        start=0,
        values=values,
        mask=np.ones_like(values, dtype=bool),
        capacity=np.full((3, 1), np.nan),
        source="synthetic",
    )


def test_the_watched_vms_are_those_whose_hourly_level_moves() -> None:
    tel = synthetic()
    assert most_varied(tel, ["cpu"], 1).tolist() == [2]
    assert most_varied(tel, ["cpu"], 0).tolist() == []
    assert most_varied(tel, ["cpu"], 5).tolist() == [0, 1, 2]


def test_every_contender_replays_the_same_data_as_rightsize_alone() -> None:
    tel = load_trace("bundled:planetlab-20110303", limit=25)
    cmp = compare_rightsizing(tel, contenders(["vpa", "static-peak"]), watch=2)
    runs = cmp.scores["cpu"]
    assert list(runs) == ["forethought", "vpa", "static-peak"]
    alone = rightsize(tel, baseline="vpa")["cpu"]
    timing = {"cpu_seconds": 0.0, "decision_ms_mean": 0.0}
    assert runs["vpa"].to_dict() | timing == alone.to_dict() | timing
    ours = rightsize(tel)["cpu"]
    assert runs["forethought"].slack == ours.slack
    assert runs["forethought"].under_provisioned_share == ours.under_provisioned_share
    # The watched VMs' allocations and demand, step by step.
    assert cmp.watched.size == 2
    assert len(cmp.watched_names) == 2
    for s in runs.values():
        assert s.watched_allocation is not None
        assert s.watched_allocation.shape == (2, tel.n_steps)
    assert cmp.demand["cpu"].shape == (2, tel.n_steps)
    data = cmp.to_dict()
    assert set(data["cpu"]) == {"forethought", "vpa", "static-peak"}
    assert "watched_allocation" not in data["cpu"]["vpa"]
    assert isinstance(data["cpu"]["vpa"]["dominated_by"], list)


def test_bad_comparisons_fail_before_anything_runs(fixtures_dir: Path) -> None:
    tel = load_trace(str(fixtures_dir / "bitbrains"))
    with pytest.raises(ForethoughtError, match="net_rx; compare on cpu and memory"):
        compare_rightsizing(tel, contenders(["vpa"]), resources=["net_rx"])
    with pytest.raises(ForethoughtError, match=r"unknown baseline.*bogus"):
        compare_rightsizing(tel, [Contender("x", baseline="bogus")])
    with pytest.raises(ForethoughtError, match="nothing to compare"):
        compare_rightsizing(tel, [])


def test_the_report_shows_table_tradeoff_and_timelines(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    tel = synthetic(steps=192)
    cmp = compare_rightsizing(tel, contenders(["vpa"]), watch=1)
    text = render(cmp, "sizes", "synthetic")
    assert text.startswith("<!DOCTYPE html>")
    assert "dominated by" in text
    assert "<th>vpa</th>" in text
    assert text.count("<svg") == 2  # the trade-off, and one watched VM
    assert "Demand and allocations: level" in text
    out = tmp_path / "r.html"
    write(cmp, out, "sizes", "synthetic")
    assert out.read_text(encoding="utf-8") == text
    with pytest.raises(ForethoughtError, match="cannot write the report"):
        write(cmp, tmp_path / "missing" / "r.html", "sizes", "synthetic")


def test_rightsize_refuses_what_it_would_otherwise_ignore_or_misread(
    fixtures_dir: Path,
) -> None:
    from forethought.allocation.policy import DEFAULT_POLICY_YAML, parse_policy
    from forethought.telemetry.load import load_trace

    trace = load_trace(fixtures_dir / "planetlab")
    with pytest.raises(ForethoughtError, match="a policy goes with forethought's manager"):
        rightsize(trace, baseline="vpa", policy=parse_policy(DEFAULT_POLICY_YAML))
    with pytest.raises(ForethoughtError, match="'cpux' is not a valid Resource; choose from"):
        rightsize(trace, resources=["cpux"])
    one = rightsize(trace, resources="cpu", cross_resource=False)  # a name, not its letters
    assert list(one) == ["cpu"]
