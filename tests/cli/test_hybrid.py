"""End-to-end tests of `forethought hybrid` on a slice of the bundled PlanetLab day."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from forethought.cli.main import main

SLICE = ["bundled:planetlab-20110303", "--vms", "60", "--steps", "36"]


def test_json_has_one_object_per_ranking(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hybrid", *SLICE, "--json", "--log-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [r["ranking"] for r in runs] == ["network-aware", "network-blind"]
    for r in runs:
        assert r["vms"] == 60
        assert r["steps"] == 36
        assert r["vms_lost"] == 0
        assert 0.0 <= r["unmet_share"] <= 1.0
    # The durable logs are kept where asked, one per ranking.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "network-aware.jsonl",
        "network-blind.jsonl",
    ]


def test_table_with_failures_says_they_were_rolled_back() -> None:
    result = CliRunner().invoke(main, ["hybrid", *SLICE, "--fail-every", "3"])
    assert result.exit_code == 0, result.output
    assert "of them across sites" in result.output
    assert "injected: abort" in result.output
    # Each ranking says what the injections hit, not only that nothing went wrong.
    verdicts = [line.strip() for line in result.output.splitlines() if "-aware:" in line]
    verdicts += [line.strip() for line in result.output.splitlines() if "-blind:" in line]
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert verdict.endswith(("no migration was hit", "all rolled back"))
    data = json.loads(
        CliRunner().invoke(main, ["hybrid", *SLICE, "--fail-every", "3", "--json"]).stdout
    )
    assert sum(r["failures_hit"] for r in data) > 0
    assert all(r["failures_rolled_back"] for r in data)


def test_bad_input_exits_with_a_message(tmp_path: Path) -> None:
    runner = CliRunner()
    a_file = tmp_path / "taken"
    a_file.write_text("not a directory")
    result = runner.invoke(main, ["hybrid", *SLICE, "--log-dir", str(a_file)])
    assert result.exit_code != 0
    result = runner.invoke(main, ["hybrid", str(tmp_path / "nowhere"), "--steps", "2"])
    assert result.exit_code == 1
    assert "nowhere" in result.output
    result = runner.invoke(main, ["hybrid", *SLICE, "--private-hosts", "1"])
    assert result.exit_code == 1
    assert "fits on no host" in result.output
    result = runner.invoke(main, ["hybrid", *SLICE, "--link-mbps", "0"])
    assert result.exit_code == 2
    result = runner.invoke(main, ["hybrid", *SLICE, "--host-disk-mibs", "0"])
    assert result.exit_code == 2
    assert "--host-disk-mibs" in result.output


def test_report_is_one_self_contained_html_file(tmp_path: Path) -> None:
    path = tmp_path / "two-sites.html"
    result = CliRunner().invoke(
        main, ["hybrid", *SLICE, "--fail-every", "6", "--report", str(path)]
    )
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<svg") == 6  # one timeline per figure, both rankings in each
    for label in ("network-aware", "network-blind", "across sites", "Injected failures"):
        assert label in text
    # Nothing to fetch: no external scripts, styles or images (XML namespaces only).
    for attribute in ('src="http', "src='http", 'href="http', "<link"):
        assert attribute not in text


def test_report_to_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "r.html"
    result = CliRunner().invoke(main, ["hybrid", *SLICE, "--report", str(path)])
    assert result.exit_code == 1
    # Refused before the runs, naming the directory that is missing.
    assert "the directory" in result.output
    assert "does not exist" in result.output
    assert "migrations proposed" not in result.output


def test_allocate_on_a_trace_with_disk_and_network_throttles_them(fixtures_dir: Path) -> None:
    args = ["hybrid", str(fixtures_dir / "bitbrains"), "--allocate", "--steps", "60"]
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0, table.output
    assert "disk and network demand above throttles" in table.output
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    for run in json.loads(result.stdout):
        assert 0.0 <= run["io_unmet_share"] <= 1.0
        assert run["resizes_live"] > 0


def test_slow_host_disks_leave_more_io_unserved(fixtures_dir: Path) -> None:
    args = ["hybrid", str(fixtures_dir / "bitbrains"), "--allocate", "--steps", "40", "--json"]
    shares = []
    for extra in ([], ["--host-disk-mibs", "0.001"]):
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0, result.output
        shares.append(json.loads(result.stdout)[0]["io_unmet_share"])
    assert shares[1] > shares[0]


def test_allocate_takes_a_policy_and_an_inventory(tmp_path: Path) -> None:
    from forethought.telemetry.load import load_trace

    policy = tmp_path / "pin.yaml"
    policy.write_text(
        "version: 1\ngroups:\n"
        "  - {name: pinned, match: {tags: [pinned]}, resources: {cpu: {min: 100}}}\n"
        "  - {name: rest, match: {name: '*'}}\n"
    )
    names = load_trace("bundled:planetlab-20110303", limit=20).vm_ids
    inventory = tmp_path / "vms.csv"
    inventory.write_text("vm,tags\n" + "".join(f"{n},pinned\n" for n in names))
    args = ["hybrid", "--vms", "20", "--steps", "40", "--allocate", "--json"]
    args += ["--allocation-policy", str(policy)]
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 0, plain.output
    pinned = CliRunner().invoke(main, [*args, "--inventory", str(inventory)])
    assert pinned.exit_code == 0, pinned.output
    # Pinned at full size, the VMs' sizes change only where a short host shares out what
    # it has: far fewer resizes than when the manager follows the forecast.
    live = sum(r["resizes_live"] for r in json.loads(pinned.stdout))
    assert live < sum(r["resizes_live"] for r in json.loads(plain.stdout)) / 2
    for bad, message in (
        (["hybrid", "--vms", "5", "--allocation-policy", str(policy)], "goes with --allocate"),
        (["hybrid", "--vms", "5", "--allocate", "--inventory", str(inventory)], "--inventory"),
    ):
        result = CliRunner().invoke(main, bad)
        assert result.exit_code == 1
        assert message in result.output


def test_a_log_dir_holding_an_earlier_run_is_refused(tmp_path: Path) -> None:
    args = ["hybrid", *SLICE, "--json", "--log-dir", str(tmp_path)]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)  # appending would count both runs' actions
    assert again.exit_code == 1
    assert "already holds the logs of a run" in again.output


def test_a_run_without_a_single_migration_has_an_empty_log_not_an_error() -> None:
    result = CliRunner().invoke(main, ["hybrid", "--vms", "1", "--steps", "12", "--json"])
    assert result.exit_code == 0, result.output
    assert all(r["started"] == r["completed"] == 0 for r in json.loads(result.stdout))


def test_a_float_option_that_is_not_finite_is_refused_naming_it() -> None:
    for option in ("--latency-ms", "--cost-per-gb", "--link-mbps", "--public-share"):
        for value in ("nan", "inf"):
            result = CliRunner().invoke(main, ["hybrid", *SLICE, option, value])
            assert result.exit_code == 2, (option, value, result.output)
            assert f"Invalid value for '{option}'" in result.output
