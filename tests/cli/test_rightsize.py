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


def test_rightsize_versus_compares_recommenders_side_by_side() -> None:
    code, out = invoke_json("rightsize", *SMALL, "--versus", "vpa,static-peak", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert list(data) == ["cpu"]
    assert list(data["cpu"]) == ["forethought", "vpa", "static-peak"]
    for figures in data["cpu"].values():
        assert set(figures) >= KEYS | {"dominated_by"}
    code, out = invoke("rightsize", *SMALL, "--versus", "all")
    assert code == 0, out
    for name in ("forethought", "vpa", "autopilot-ml", "reactive", "dominated"):
        assert name in out


def test_rightsize_versus_labels_the_policy_it_ran() -> None:
    code, out = invoke_json(
        "rightsize", *SMALL, "--versus", "vpa", "--policy", str(EXAMPLE), "--json"
    )
    assert code == 0, out
    assert list(json.loads(out)["cpu"]) == ["forethought:policy", "vpa"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--versus", "vpa,bogus"], "unknown baseline(s) bogus"),
        (["--versus", "vpa", "--baseline", "vpa"], "give the baselines to --versus"),
    ],
)
def test_rightsize_versus_rejects_bad_requests(extra: list[str], message: str) -> None:
    code, out = invoke("rightsize", *SMALL, *extra)
    assert code == 1
    assert message in out


def test_rightsize_report_draws_the_comparison(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out_file = tmp_path / "sizes.html"
    code, out = invoke("rightsize", *SMALL, "--versus", "vpa", "--report", str(out_file))
    assert code == 0, out
    text = out_file.read_text(encoding="utf-8")
    assert text.count("<svg") == 4  # the trade-off and three watched VMs
    assert "report written to" in out
    # Without --versus the report holds the one recommender asked for; --json keeps its shape.
    code, out = invoke_json(
        "rightsize",
        *SMALL,
        "--baseline",
        "vpa",
        "--report",
        str(out_file),
        "--json",
        "--watch",
        "1",
    )
    assert code == 0, out
    assert set(json.loads(out)["cpu"]) >= KEYS
    assert out_file.read_text(encoding="utf-8").count("<svg") == 2
    code, out = invoke("rightsize", *SMALL, "--report", str(tmp_path / "no" / "r.html"))
    assert code == 1
    assert "cannot write" in out
