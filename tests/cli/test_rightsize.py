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


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


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
    assert code == 0, out  # an idle group is a warning: a policy may serve several fleets
    assert "warning: group(s) databases, batch take no VM" in flat(out)
    assert "everything-else: 1,052" in out
    code, out = invoke(
        "policy", "check", str(EXAMPLE), "--trace", "bundled:planetlab-20110303", "--strict"
    )
    assert code == 1
    assert "group(s) databases, batch match no VM of the trace" in flat(out)
    # An inventory says which VM carries which tag: the batch group now takes one.
    vm = "dannan_disy_inf_uni-konstanz_de_princeton_codeen"
    inventory = tmp_path / "vms.csv"
    inventory.write_text(f"vm,tags,application\n{vm},batch;eu,\nnot-in-trace,,web\n")
    args = ["--trace", "bundled:planetlab-20110303", "--inventory", str(inventory)]
    code, out = invoke("policy", "check", str(EXAMPLE), *args)
    assert code == 0, out
    assert "batch: 1" in out
    assert "everything-else: 1,051" in out
    assert "1 VM(s) of the inventory are not in the trace: not-in-trace" in flat(out)
    code, out = invoke("policy", "check", str(EXAMPLE), "--inventory", str(inventory))
    assert code == 1
    assert "--inventory goes with --trace" in out
    code, out = invoke_json("policy", "check", str(EXAMPLE), "--json")
    assert json.loads(out)["groups"][0]["name"] == "databases"
    assert "vms_per_group" not in json.loads(out)
    code, out = invoke_json(
        "policy", "check", str(EXAMPLE), "--trace", "bundled:planetlab-20110303", "--json"
    )
    assert code == 0
    counts = json.loads(out)["vms_per_group"]
    assert counts == {"databases": 0, "batch": 0, "everything-else": 1052}


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
    with_cross, without = json.loads(on.stdout), json.loads(off.stdout)
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


def two_groups(tmp_path: Path, first: str) -> Path:
    """A policy file: the group ``first`` (YAML flow mapping), then a catch-all."""
    policy = tmp_path / "p.yaml"
    policy.write_text(
        f"version: 1\ngroups:\n  - {first}\n  - {{name: rest, match: {{name: '*'}}}}\n"
    )
    return policy


def test_rightsize_gives_each_policy_groups_own_figures(tmp_path: Path) -> None:
    policy = two_groups(
        tmp_path, "{name: lean, match: {name: '1*'}, resources: {cpu: {quantile: 0.9}}}"
    )
    code, out = invoke_json("rightsize", *SMALL, "--policy", str(policy), "--json")
    assert code == 0, out
    cpu = json.loads(out)["cpu"]
    groups = cpu["groups"]
    assert set(groups) == {"lean", "rest"}
    assert groups["lean"]["n_vms"] + groups["rest"]["n_vms"] == cpu["n_vms"] == 30
    assert set(groups["lean"]) == KEYS | {"n_vms"}
    code, out = invoke("rightsize", *SMALL, "--policy", str(policy))
    assert code == 0, out
    assert "cpu by policy group" in out
    pytest.importorskip("matplotlib")
    report = tmp_path / "r.html"
    code, out = invoke("rightsize", *SMALL, "--policy", str(policy), "--report", str(report))
    assert code == 0, out
    assert "by policy group</h3>" in report.read_text(encoding="utf-8")
    # One group (the default policy): nothing to split, and the JSON keeps its shape.
    code, out = invoke_json("rightsize", *SMALL, "--json")
    assert "groups" not in json.loads(out)["cpu"]


def test_rightsize_groups_by_tag_from_an_inventory(tmp_path: Path) -> None:
    policy = two_groups(
        tmp_path, "{name: pinned, match: {tags: [pinned]}, resources: {cpu: {min: 100}}}"
    )
    code, out = invoke_json("rightsize", *SMALL, "--policy", str(policy), "--json")
    assert code == 0, out
    base = json.loads(out)["cpu"]
    inventory = tmp_path / "vms.csv"
    from forethought.telemetry.load import load_trace

    vms = load_trace("bundled:planetlab-20110303", limit=30).vm_ids
    inventory.write_text("vm,tags\n" + "".join(f"{v},pinned\n" for v in vms))
    code, out = invoke_json(
        "rightsize", *SMALL, "--policy", str(policy), "--inventory", str(inventory), "--json"
    )
    assert code == 0, out
    pinned = json.loads(out)["cpu"]
    # Every VM held at its full size: no VM short, more slack than the forecast-driven run.
    assert pinned["under_provisioned_share"] == 0.0
    assert pinned["slack"] > base["slack"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("name,tags\nx,a\n", "line 1: the header must name the column vm"),
        ('vm,tags\nx,a\n"y,b\n', "line 3: malformed CSV (unexpected end of data: an unterminated"),
        ('vm,tags\n"x\n2",a\nz,a,b\n', "line 4: 3 column(s), the header has 2"),
        ("vm,tags\nx,a,b\n", "line 2: 3 column(s), the header has 2"),
        ("vm,tags\nx,a\n,b\n", "line 3: the vm column is empty"),
        ("vm\nx\n\nx\n", "line 4: VM 'x' is listed twice"),
    ],
)
def test_a_bad_inventory_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    inventory = tmp_path / "vms.csv"
    inventory.write_text(text)
    policy = ["--policy", str(EXAMPLE)]
    code, out = invoke("rightsize", *SMALL, *policy, "--inventory", str(inventory))
    assert code == 1
    assert message in flat(out)
    assert "vms.csv" in out
    code, out = invoke("rightsize", *SMALL, *policy, "--inventory", str(tmp_path / "none.csv"))
    assert code == 1
    assert "no such file" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["rightsize", *SMALL, "--inventory", "vms.csv"], "--inventory goes with --policy"),
        (["rightsize", *SMALL, "--watch", "2"], "--watch chooses the VMs drawn in --report"),
        (["policy", "check", str(EXAMPLE), "--strict"], "--strict goes with --trace"),
        (["policy", "check", str(EXAMPLE), "--format", "planetlab"], "--format goes with --trace"),
    ],
)
def test_an_option_that_would_do_nothing_is_refused(extra: list[str], message: str) -> None:
    code, out = invoke(*extra)
    assert code == 1
    assert message in flat(out)


def test_an_inventory_ignores_columns_it_does_not_know(tmp_path: Path) -> None:
    from forethought.allocation.inventory import load_inventory

    inventory = tmp_path / "export.csv"
    inventory.write_text('vm,owner,tags\n"web, 01",alice,a;b\n')
    assert load_inventory(inventory)["web, 01"].tags == frozenset({"a", "b"})


def test_an_inventory_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    from forethought.allocation.inventory import load_inventory
    from forethought.core.errors import ForethoughtError

    inventory = tmp_path / "export.csv"
    inventory.write_bytes(b"vm,tags\nweb-1,a\ncaf\xe9,b\n")  # Latin-1, not UTF-8
    with pytest.raises(ForethoughtError, match=r"export.csv, line 3: not UTF-8 text"):
        load_inventory(inventory)


def test_memory_without_a_known_size_names_the_way_out(tmp_path: Path) -> None:
    trace = tmp_path / "kb.csv"
    rows = ["vm,timestamp,resource,value,unit"]
    for t in range(100):
        rows += [f"a,{1_300_000_000 + 300 * t},cpu,{3 + t % 7},percent"]
        rows += [f"a,{1_300_000_000 + 300 * t},memory,{1000 + t},KB"]
    trace.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out = invoke("rightsize", str(trace), "--no-progress")
    assert code == 1
    assert "memory: provisioned capacity is unknown for VM(s) a" in flat(out)
    assert "so leave memory out (--resource cpu)" in flat(out)
    code, out = invoke("rightsize", str(trace), "--resource", "cpu", "--json", "--no-progress")
    assert code == 0
    assert set(json.loads(out)) == {"cpu"}
