"""End-to-end tests of `forethought anomalies` on the Bitbrains fixture (three real VMs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forethought.cli.main import main


def test_table_counts_every_kind(fixtures_dir: Path) -> None:
    trace = str(fixtures_dir / "bitbrains")
    result = CliRunner().invoke(main, ["anomalies", trace, "--no-progress"])
    assert result.exit_code == 0, result.output
    for kind in ("cpu above its own p99", "net_tx above its own p99", "across resources"):
        assert kind in result.output


def test_json_holds_the_evidence(fixtures_dir: Path) -> None:
    trace = str(fixtures_dir / "bitbrains")
    args = ["anomalies", trace, "--resource", "cpu", "--resource", "memory", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["resources"] == ["cpu", "memory"]
    assert len(out["vm_ids"]) == 3
    assert out["count"] == len(out["events"])
    assert out["series"], "the fixture's bursts give per-series anomalies"
    first = out["series"][0]
    assert len(first["observed"]) == 3
    assert all(o > u for o, u in zip(first["observed"], first["upper"], strict=True))


def test_one_resource_gives_the_per_series_anomalies_and_says_so() -> None:
    runner = CliRunner()
    args = ["anomalies", "bundled:planetlab-20110303", "--limit", "40", "--no-progress"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "cpu above its own p99" in result.output
    assert not [line for line in result.output.splitlines() if "│ across resources" in line]
    assert "anomalies per series only" in " ".join(result.output.split())
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["resources"] == ["cpu"]
    assert out["count"] == 0
    assert out["threshold_floor"] is None  # strict JSON: no NaN
    assert all(e["resource"] == "cpu" for e in out["series"])


def test_a_missing_resource_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        main, ["anomalies", "bundled:planetlab-20110303", "--resource", "memory"]
    )
    assert result.exit_code == 1
    assert "no memory series" in result.output


def test_report_draws_the_strongest_vms_with_their_anomalies(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    trace = str(fixtures_dir / "bitbrains")
    out_file = tmp_path / "an.html"
    args = ["anomalies", trace, "--resource", "cpu", "--resource", "memory", "--json"]
    result = CliRunner().invoke(main, [*args, "--report", str(out_file), "--watch", "2"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # --json keeps its shape
    text = out_file.read_text(encoding="utf-8")
    flagged = {e["vm"] for e in out["events"]} | {e["vm"] for e in out["series"]}
    assert text.count("<svg") == min(2, len(flagged))
    assert "across resources" in text
    result = CliRunner().invoke(main, [*args, "--watch", "2"])
    assert result.exit_code == 1
    assert "--watch chooses the VMs drawn in --report" in " ".join(result.output.split())


def test_vms_are_ranked_by_cross_resource_strength_then_by_count() -> None:
    from forethought.allocation.anomaly_report import ranked_vms
    from forethought.allocation.cross import CrossReport
    from forethought.forecast.anomaly import Anomaly, CrossAnomaly

    def cross(vm: int, score: float) -> CrossAnomaly:
        return CrossAnomaly(vm, 10, ("cpu", "memory"), ((1.0, -1.0),), (score,), 10.0, "cpu")

    def single(vm: int) -> tuple[int, str, Anomaly]:
        return vm, "cpu", Anomaly(vm, 5, (9.0,), (1.0,), 0.99)

    report = CrossReport(("cpu", "memory"), 10.0)
    report.events = [cross(3, 20.0), cross(1, 50.0)]
    report.series_events = [single(0), single(4), single(4)]
    assert ranked_vms(report, 6, 10) == [1, 3, 4, 0]
    assert ranked_vms(report, 6, 2) == [1, 3]
    assert ranked_vms(report, 6, 0) == []
    assert report.counts() == [
        ("cpu above its own p99", 3),
        ("memory above its own p99", 0),
        ("across resources", 2),
    ]


def test_one_resource_is_noted_on_stderr_even_with_json() -> None:
    result = CliRunner().invoke(
        main, ["anomalies", "bundled:planetlab-20110303", "--limit", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    assert "anomalies per series only" in result.stderr
