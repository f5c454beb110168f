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


def test_one_resource_or_a_missing_one_is_a_clear_error(fixtures_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["anomalies", "bundled:planetlab-20110303", "--limit", "5"])
    assert result.exit_code == 1
    assert "two or more" in result.output
    result = runner.invoke(
        main, ["anomalies", "bundled:planetlab-20110303", "--resource", "memory"]
    )
    assert result.exit_code == 1
    assert "no memory series" in result.output
