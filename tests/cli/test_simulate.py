"""End-to-end tests of `forethought simulate` and `forethought compare`.

Runs on the bundled real PlanetLab day are cut down with --limit and --hosts; the error
cases use the three-VM fixture day (one file name has a space), which loads instantly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from forethought.cli.main import main

BUNDLED = "bundled:planetlab-20110303"
SLICE = ["--limit", "120", "--hosts", "100"]
JSON_KEYS = (
    "energy_kwh",
    "slatah",
    "pdm",
    "slav",
    "esv",
    "migrations",
    "host_shutdowns",
    "overall_sla_violation",
    "mean_active_hosts",
    "wall_seconds",
)
FRACTIONS = ("slatah", "pdm", "slav", "overall_sla_violation")
DOCUMENTED = ("dvfs", "thr-mmt", "iqr-mmt", "mad-mmt", "lr-mmt", "lrr-mmt")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def day(fixtures_dir: Path) -> str:
    return str(fixtures_dir / "planetlab")


def clean_exit(result: Result, code: int) -> None:
    """The command ended with ``code`` through sys.exit, not an uncaught exception."""
    assert result.exit_code == code, result.output
    if result.exc_info is not None:
        assert result.exc_info[0] is SystemExit, result.exc_info


def flat(text: str) -> str:
    """Output with rich's line wrapping undone (it wraps at the terminal width)."""
    return " ".join(text.split())


def number(obj: dict[str, object], key: str) -> float:
    value = obj[key]
    assert isinstance(value, int | float), key
    return float(value)


def check_metrics(obj: dict[str, object]) -> None:
    for key in JSON_KEYS:
        assert key in obj, key
        number(obj, key)
    for key in FRACTIONS:
        assert 0.0 <= number(obj, key) <= 1.0, key
    slatah, pdm, slav = number(obj, "slatah"), number(obj, "pdm"), number(obj, "slav")
    assert slav == pytest.approx(slatah * pdm)
    assert number(obj, "esv") == pytest.approx(number(obj, "energy_kwh") * slav)


# -- the bundled day -----------------------------------------------------------------------------


def test_simulate_json_on_a_slice_of_the_bundled_day(runner: CliRunner) -> None:
    args = ["simulate", BUNDLED, *SLICE, "--policy", "thr-mmt", "--json"]
    result = runner.invoke(main, args)
    clean_exit(result, 0)
    out = json.loads(result.stdout)
    assert isinstance(out, dict)
    check_metrics(out)
    assert out["policy"] == "thr-mmt"
    assert out["parameter"] == 0.8
    assert (out["n_vms"], out["n_hosts"]) == (120, 100)
    assert out["migrations"] > 0
    assert out["energy_kwh"] > 0
    assert 0 < out["mean_active_hosts"] <= 100
    assert "timeline" not in out


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path, Path]:
    """One compare run on the bundled slice writing JSON, a report and a timeline."""
    out = tmp_path_factory.mktemp("compare")
    report, timeline = out / "compare.html", out / "compare.parquet"
    args = ["compare", BUNDLED, *SLICE, "--policies", "dvfs,thr-mmt:0.9", "--json"]
    args += ["--report", str(report), "--timeline", str(timeline)]
    return CliRunner().invoke(main, args), report, timeline


def test_compare_json_is_a_list_of_one_object_per_policy(
    compared: tuple[Result, Path, Path],
) -> None:
    result, _, _ = compared
    clean_exit(result, 0)
    out = json.loads(result.stdout)
    assert isinstance(out, list)
    assert [(r["policy"], r["parameter"]) for r in out] == [("dvfs", None), ("thr-mmt", 0.9)]
    for obj in out:
        check_metrics(obj)
        assert (obj["n_vms"], obj["n_hosts"]) == (120, 100)
    dvfs, thr = out
    assert dvfs["migrations"] == 0
    assert thr["migrations"] > 0
    assert thr["energy_kwh"] < dvfs["energy_kwh"]  # consolidation saves energy


def test_compare_report_is_a_self_contained_page(compared: tuple[Result, Path, Path]) -> None:
    result, report, _ = compared
    clean_exit(result, 0)
    page = report.read_text(encoding="utf-8")
    assert "<svg" in page
    assert "thr-mmt 0.9" in page
    # Nothing fetched on opening: no script or stylesheet links, no remote src or href.
    assert not re.search(r"<(script|link)\b", page, re.I)
    remote = re.findall(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I)
    assert remote == []
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)


def test_compare_timeline_is_readable_parquet(compared: tuple[Result, Path, Path]) -> None:
    result, _, timeline = compared
    clean_exit(result, 0)
    table = pq.read_table(timeline).to_pydict()
    steps = 287  # a 288-sample day: one policy step per interval but the last
    assert table["policy"] == ["dvfs"] * steps + ["thr-mmt"] * steps
    for key in ("time", "active_hosts", "energy_kwh", "migrations", "sla_violation_hosts"):
        assert len(table[key]) == 2 * steps
    assert table["migrations"][steps - 1] == 0
    assert table["migrations"][-1] == json.loads(result.stdout)[1]["migrations"]


# -- the fixture day -----------------------------------------------------------------------------


def test_simulate_table_on_the_fixture_day(runner: CliRunner, day: str, tmp_path: Path) -> None:
    report = tmp_path / "day report.html"
    args = ["simulate", day, "--policy", "lr-mmt", "--hosts", "6", "--no-progress"]
    result = runner.invoke(main, [*args, "--report", str(report)])
    clean_exit(result, 0)
    for label in ("energy (kWh)", "SLATAH", "migrations", "lr-mmt 1.2"):
        assert label in result.stdout
    assert "wrote" in result.output
    assert report.is_file()
    assert "<svg" in report.read_text(encoding="utf-8")


def test_every_policy_runs_on_the_fixture_day(runner: CliRunner, day: str) -> None:
    # Three VMs, one of them in a file whose name holds a space.
    names = ",".join(DOCUMENTED)
    result = runner.invoke(main, ["compare", day, "--policies", names, "--hosts", "4", "--json"])
    clean_exit(result, 0)
    out = json.loads(result.stdout)
    assert [r["policy"] for r in out] == list(DOCUMENTED)
    for obj in out:
        check_metrics(obj)
        assert obj["n_vms"] == 3
    assert out[0]["migrations"] == 0


def test_simulate_help_documents_policies_and_metrics(runner: CliRunner) -> None:
    for command in ("simulate", "compare"):
        result = runner.invoke(main, [command, "--help"])
        clean_exit(result, 0)
        assert "bundled:NAME" in result.output
    text = runner.invoke(main, ["simulate", "--help"]).output
    for term in (*DOCUMENTED, "SLATAH", "PDM", "ESV", "--param", "--hosts", "--report"):
        assert term in text


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["simulate", "--policy", "best-fit"], 2, ["best-fit"]),
        (["compare", "--policies", "dvfs,best-fit"], 1, ["unknown policy 'best-fit'", "lr-mmt"]),
        (["simulate", "--policy", "thr-mmt", "--param", "1.5"], 1, ["parameter", "1.5", "(0, 1]"]),
        (
            ["simulate", "--policy", "thr-mmt", "--param", "0"],
            1,
            ["parameter of thr-mmt", "(0, 1]"],
        ),
        (["simulate", "--policy", "iqr-mmt", "--param", "-1"], 1, ["non-negative", "-1"]),
        (["simulate", "--policy", "lr-mmt", "--param", "-0.5"], 1, ["non-negative", "-0.5"]),
        (["simulate", "--policy", "dvfs", "--param", "0.5"], 1, ["dvfs takes no parameter"]),
        (["simulate", "--policy", "thr-mmt", "--param", "high"], 2, ["--param", "high"]),
        (["compare", "--policies", "dvfs,thr-mmt:1.5"], 1, ["thr-mmt", "1.5"]),
        (["compare", "--policies", "mad-mmt:-3"], 1, ["mad-mmt", "non-negative"]),
        (["compare", "--policies", "lr-mmt:fast"], 1, ["'lr-mmt:fast'", "must be a number"]),
        (["compare", "--policies", " , "], 1, ["at least one policy"]),
        (["simulate", "--hosts", "0"], 2, ["--hosts"]),
        (
            ["simulate", "--hosts", "1", "--policy", "dvfs"],
            1,
            ["too small", "VM '146-179_surfsnel_dsl_internl_net_colostate_557'"],
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_policies_and_parameters_fail_with_a_message(
    runner: CliRunner, day: str, args: list[str], code: int, fragments: list[str]
) -> None:
    result = runner.invoke(main, [args[0], day, *args[1:], "--json"])
    clean_exit(result, code)
    for fragment in fragments:
        assert fragment in flat(result.output)
    assert result.stdout.strip() == ""  # no JSON on failure


def test_a_missing_trace_names_the_path(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["simulate", "no such day", "--json"])
    clean_exit(result, 1)
    assert "no such day" in flat(result.output)


@pytest.mark.parametrize("command", ["backtest", "forecast", "inspect", "simulate", "compare"])
def test_help_paragraphs_are_not_indented_like_code(command: str) -> None:
    """The appended TRACE paragraph must not stop click from dedenting the manual text."""
    out = CliRunner().invoke(main, [command, "--help"]).output
    body = out.split("Options:")[0].splitlines()
    prose = [line for line in body[3:] if line.strip() and not line.startswith("Usage")]
    assert prose
    assert any(line.startswith("  TRACE is") for line in prose)
    assert not any(line.startswith("      ") and line.strip()[0].isupper() for line in prose[:2])


@pytest.mark.parametrize("option", ["--report", "--timeline"])
def test_an_unwritable_output_is_refused_before_the_run(
    runner: CliRunner, day: str, tmp_path: Path, option: str
) -> None:
    missing = tmp_path / "no-such-dir" / "out"
    result = runner.invoke(main, ["simulate", day, option, str(missing)])
    clean_exit(result, 1)
    assert "does not exist" in flat(result.output)
    assert "energy" not in result.output  # nothing ran
    result = runner.invoke(main, ["compare", day, option, str(tmp_path)])
    clean_exit(result, 2)  # a directory is a malformed command line, caught by click
    assert "is a directory" in flat(result.output)


def test_results_are_printed_even_when_the_report_fails_late(
    runner: CliRunner, day: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forethought.core.errors import ForethoughtError
    from forethought.sim import report

    def disk_full(*args: object) -> None:
        raise ForethoughtError("cannot write the report: No space left on device")

    monkeypatch.setattr(report, "write", disk_full)
    result = runner.invoke(main, ["simulate", day, "--json", "--report", str(tmp_path / "r.html")])
    clean_exit(result, 1)
    assert "No space left on device" in result.output
    assert '"energy_kwh"' in result.stdout  # the figures were out before the failure


def test_no_progress_bar_outside_a_terminal(runner: CliRunner, day: str) -> None:
    result = runner.invoke(main, ["compare", day, "--policies", "thr-mmt,lr-mmt"])
    clean_exit(result, 0)
    assert result.stderr == ""  # a pipe or a CI log gets no bar and no blank lines


def test_an_inventory_puts_tagged_vms_in_their_group_inside_the_simulation(
    runner: CliRunner, day: str, tmp_path: Path
) -> None:
    policy = tmp_path / "pin.yaml"
    policy.write_text(
        "version: 1\ngroups:\n"
        "  - {name: pinned, match: {tags: [pinned]}, resources: {cpu: {min: 100}}}\n"
        "  - {name: rest, match: {name: '*'}}\n"
    )
    names = sorted(p.name for p in Path(day).iterdir())
    inventory = tmp_path / "vms.csv"
    inventory.write_text("vm,tags\n" + "".join(f'"{n}",pinned\n' for n in names))
    args = ["simulate", day, "--allocate", "forethought", "--allocation-policy", str(policy)]
    plain = runner.invoke(main, [*args, "--json"])
    clean_exit(plain, 0)
    pinned = runner.invoke(main, [*args, "--inventory", str(inventory), "--json"])
    clean_exit(pinned, 0)
    # Every VM held at its full size: never short, and more slack than forecast sizing.
    held = json.loads(pinned.stdout)["allocation"]
    assert "watched_allocation" not in held  # the figures as rightsize --json gives them
    assert held["under_provisioned_share"] == 0.0
    assert held["slack"] > json.loads(plain.stdout)["allocation"]["slack"]
    assert "groups" not in held  # one group took every VM: nothing to split
    # Half the VMs pinned: each group's figures, as `rightsize` gives them.
    half = tmp_path / "half.csv"
    half.write_text("vm,tags\n" + "".join(f'"{n}",pinned\n' for n in names[: len(names) // 2]))
    split = runner.invoke(main, [*args, "--inventory", str(half), "--json"])
    clean_exit(split, 0)
    groups = json.loads(split.stdout)["allocation"]["groups"]
    assert groups["pinned"]["n_vms"] == len(names) // 2
    assert groups["pinned"]["n_vms"] + groups["rest"]["n_vms"] == len(names)
    assert groups["pinned"]["under_provisioned_share"] == 0.0
    alone = runner.invoke(main, ["simulate", day, "--inventory", str(inventory)])
    clean_exit(alone, 1)
    assert "--inventory goes with --allocation-policy" in alone.output


def test_compare_json_is_a_list_even_for_one_policy(runner: CliRunner, day: str) -> None:
    result = runner.invoke(main, ["compare", day, "--policies", "lr-mmt", "--hosts", "4", "--json"])
    clean_exit(result, 0)
    assert [r["policy"] for r in json.loads(result.stdout)] == ["lr-mmt"]


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ("dvfs,lr-mmt:-1", "--policies: 'lr-mmt:-1': the parameter of lr-mmt must be"),
        ("dvfs,thr-mmt:nan", "--policies: 'thr-mmt:nan'"),
        ("lr-mmt,lr-mmt", "--policies names 'lr-mmt' twice"),
    ],
)
def test_compare_checks_every_policy_before_the_first_run(
    runner: CliRunner, day: str, policies: str, message: str
) -> None:
    result = runner.invoke(main, ["compare", day, "--policies", policies, "--hosts", "4"])
    clean_exit(result, 1)
    assert message in " ".join(result.output.split())
    assert result.stdout == ""  # nothing ran


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["--report", ""], "an output path is empty"),
        (["--timeline", ""], "an output path is empty"),
        (["--report", "{tmp}/x", "--timeline", "{tmp}/x"], "both name"),
    ],
)
def test_outputs_that_cannot_both_be_written_are_refused_first(
    runner: CliRunner, day: str, tmp_path: Path, outputs: list[str], message: str
) -> None:
    args = ["simulate", day, "--hosts", "4", *(o.format(tmp=tmp_path) for o in outputs)]
    result = runner.invoke(main, args)
    clean_exit(result, 1)
    assert message in result.output


def test_more_hosts_than_a_run_could_use_are_refused(runner: CliRunner, day: str) -> None:
    result = runner.invoke(main, ["simulate", day, "--hosts", "1000000"])
    assert result.exit_code == 2
    assert "1<=x<=100000" in result.output
