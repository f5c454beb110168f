"""End-to-end tests of `forethought anomalies` on the Bitbrains fixture (three real VMs)."""

from __future__ import annotations

import json
from pathlib import Path

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
    out = json.loads(result.output)
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
