"""`forethought rightsize` and `forethought policy check` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forethought.cli.main import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "policy.yaml"
KEYS = {"slack", "under_provisioned_share", "unmet_share", "resizes_per_vm_hour", "vms_over_1pct"}
SMALL = ["bundled:planetlab-20110303", "--limit", "30", "--no-progress"]


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def invoke_json(*args: str) -> tuple[int, str]:
    """Exit code and standard output only, for JSON."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout


@pytest.mark.parametrize("extra", [[], ["--baseline", "vpa"], ["--policy", str(EXAMPLE)]])
def test_rightsize_json_is_keyed_by_resource(extra: list[str]) -> None:
    code, out = invoke_json("rightsize", *SMALL, "--json", *extra)
    assert code == 0, out
    data = json.loads(out)
    assert list(data) == ["cpu"]
    assert set(data["cpu"]) >= KEYS
    for key in KEYS:
        assert 0.0 <= data["cpu"][key] <= 12.0


def test_rightsize_table_and_resize_delay() -> None:
    code, out = invoke("rightsize", *SMALL, "--baseline", "reactive", "--resize-delay", "2")
    assert code == 0, out
    assert "under-provisioned intervals" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "vpa", "--policy", str(EXAMPLE)], "either --policy or --baseline"),
        (["--resource", "memory"], "no memory series"),
        (["--warmup", "500"], "warm-up"),
        (["--policy", "missing.yaml"], "cannot read the policy file"),
    ],
)
def test_rightsize_refuses_bad_requests(args: list[str], message: str) -> None:
    code, out = invoke("rightsize", *SMALL, *args)
    assert code == 1
    assert message in out


def test_rightsize_sizes_disk_and_network_in_kb_per_s(fixtures_dir: Path) -> None:
    trace = str(fixtures_dir / "bitbrains")
    args = ["--resource", "disk_read", "--resource", "net_tx", "--json", "--no-progress"]
    code, out = invoke_json("rightsize", trace, *args)
    assert code == 0, out
    data = json.loads(out)
    assert list(data) == ["disk_read", "net_tx"]
    for resource in data.values():
        assert set(resource) >= KEYS
    code, out = invoke("rightsize", trace, "--resource", "net_tx", "--baseline", "vpa")
    assert code == 1
    assert "does not give for net_tx" in out


def test_rightsize_refuses_a_policy_that_leaves_vms_out(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\ngroups:\n  - {name: web, match: {name: 'web-*'}}\n")
    code, out = invoke("rightsize", *SMALL, "--policy", str(policy))
    assert code == 1
    assert "no group matches VM" in out


def test_policy_check_explains_and_checks_against_a_trace(tmp_path: Path) -> None:
    code, out = invoke("policy", "check", str(EXAMPLE))
    assert code == 0, out
    assert "group databases (gold)" in out
    assert "policy OK" in out
    code, out = invoke("policy", "check", str(EXAMPLE), "--trace", "bundled:planetlab-20110303")
    assert code == 1
    assert "match no VM" in out  # databases and batch: no db-* or tagged VM in PlanetLab
    code, out = invoke_json("policy", "check", str(EXAMPLE), "--json")
    assert json.loads(out)["groups"][0]["name"] == "databases"


def test_policy_check_names_field_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ngroups:\n  - name: a\n    match: {name: '*'}\n"
        "    resources:\n      cpu: {min: 50, max: 20}\n"
    )
    code, out = invoke("policy", "check", str(bad))
    assert code == 1
    assert "line 6" in out
    assert "min (50) is above max (20)" in out


def test_cross_resource_anomalies_are_counted_and_can_be_turned_off(fixtures_dir: Path) -> None:
    trace = str(fixtures_dir / "bitbrains")
    runner = CliRunner()
    on = runner.invoke(main, ["rightsize", trace, "--json", "--no-progress", "--warmup", "0"])
    off = runner.invoke(
        main,
        ["rightsize", trace, "--json", "--no-progress", "--warmup", "0", "--no-cross-resource"],
    )
    assert on.exit_code == 0, on.output
    assert off.exit_code == 0, off.output
    with_cross, without = json.loads(on.output), json.loads(off.output)
    for resource in ("cpu", "memory"):
        assert with_cross[resource]["anomalies"] >= with_cross[resource]["cross_resource_anomalies"]
        assert without[resource]["cross_resource_anomalies"] == 0
        # Per-series anomalies do not depend on the cross-resource pass.
        per_series = (
            with_cross[resource]["anomalies"] - with_cross[resource]["cross_resource_anomalies"]
        )
        assert per_series == without[resource]["anomalies"]
