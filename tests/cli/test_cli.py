"""End-to-end tests of the command line on a slice of a real trace."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from forethought.cli.main import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_every_command_has_a_manual(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("backtest", "forecast", "inspect", "datasets"):
        assert command in result.output
        sub = runner.invoke(main, [command, "--help"])
        assert sub.exit_code == 0, sub.output
        assert "Usage:" in sub.output
    backtest_help = runner.invoke(main, ["backtest", "--help"]).output
    for term in ("pinball_95", "coverage_95", "--first-origin", "bundled:NAME"):
        assert term in backtest_help


def test_datasets_lists_the_bundled_day(runner: CliRunner) -> None:
    result = runner.invoke(main, ["datasets", "--json"])
    assert result.exit_code == 0
    names = {d["name"]: d for d in json.loads(result.stdout)["datasets"]}
    assert names["planetlab-20110303"]["bundled"] is True
    assert names["bitbrains-rnd"]["bundled"] is False


def test_backtest_json_on_a_real_slice(runner: CliRunner) -> None:
    # 60 VMs of the bundled real PlanetLab day, reference protocol (origins 144..276).
    args = ["backtest", "bundled:planetlab-20110303", "--limit", "60", "--json"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in (
        "mae",
        "rmse",
        "mase",
        "pinball_95",
        "coverage_95",
        "under_provisioning",
        "over_provisioning",
        "n_series",
        "cpu_seconds",
        "cpu_seconds_per_1k_series_per_origin",
    ):
        assert key in out
    assert out["n_series"] == 60
    assert out["n_origins"] == 12
    assert len(out["per_horizon"]) == 12
    assert out["under_provisioning"] == pytest.approx(1 - out["coverage_95"])
    # Sanity bounds a broken engine would miss: better than naive, roughly calibrated.
    assert 0.4 < out["mase"] < 1.0
    assert 0.85 < out["coverage_95"] <= 1.0


def test_backtest_table_and_model_choice(runner: CliRunner) -> None:
    args = ["backtest", "--limit", "20", "--model", "median", "--every", "36"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "MASE" in result.output
    assert "20 series x 4 origins" in result.output


def test_backtest_report_draws_scores_and_forecasts(runner: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out_file = tmp_path / "bt.html"
    args = ["backtest", "--limit", "20", "--every", "36", "--no-progress", "--json"]
    result = runner.invoke(main, [*args, "--report", str(out_file)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_series"] == 20  # --json keeps its shape
    text = out_file.read_text(encoding="utf-8")
    assert text.count("<svg") == 4  # scores by horizon and three watched series
    assert text.count("<tr><th>h = ") == 12
    assert "report written to" in result.stderr
    result = runner.invoke(main, [*args, "--report", str(out_file), "--watch", "0"])
    assert result.exit_code == 0, result.output
    assert out_file.read_text(encoding="utf-8").count("<svg") == 1


def test_backtest_versus_puts_models_side_by_side(runner: CliRunner, tmp_path: Path) -> None:
    args = ["backtest", "--limit", "20", "--every", "36", "--no-progress"]
    result = runner.invoke(main, [*args, "--versus", "last,median"])
    assert result.exit_code == 0, result.output
    for name in ("auto", "last", "median"):
        assert f"│ {name}" in result.output
    result = runner.invoke(main, [*args, "--model", "median", "--versus", "last", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out["models"]) == ["median", "last"]
    # Same origins for every model, and persistence is the worse of the two here.
    assert out["models"]["median"]["n_origins"] == out["models"]["last"]["n_origins"] == 4
    assert out["models"]["median"]["mase"] < out["models"]["last"]["mase"]
    pytest.importorskip("matplotlib")
    out_file = tmp_path / "vs.html"
    result = runner.invoke(main, [*args, "--versus", "last", "--report", str(out_file)])
    assert result.exit_code == 0, result.output
    text = out_file.read_text(encoding="utf-8")
    assert "Models side by side" in text
    assert text.count("<tr><th>last</th>") == 1


@pytest.mark.parametrize(
    ("versus", "message"),
    [
        ("lastt", "--versus: unknown model(s) lastt"),
        ("last,last", "--versus names last twice"),
        ("auto", "--versus names auto, which --model auto already runs"),
        (",", "--versus needs at least one model name"),
    ],
)
def test_backtest_versus_refuses_bad_names(runner: CliRunner, versus: str, message: str) -> None:
    result = runner.invoke(main, ["backtest", "--limit", "5", "--versus", versus])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def test_forecast_report_draws_the_fleet_and_a_few_vms(runner: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out_file = tmp_path / "fc.html"
    args = ["forecast", "bundled:planetlab-20110303", "--limit", "30", "--jsonl"]
    result = runner.invoke(main, [*args, "--report", str(out_file), "--watch", "2"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 30  # JSON lines untouched by the report
    text = out_file.read_text(encoding="utf-8")
    assert text.count("<svg") == 3  # model weights and two VMs
    assert "Which models the forecasts lean on" in text
    result = runner.invoke(main, [*args[:4], "--model", "median", "--report", str(out_file)])
    assert result.exit_code == 0, result.output
    text = out_file.read_text(encoding="utf-8")
    assert text.count("<svg") == 3  # one model: no weights to draw; three VMs by default
    result = runner.invoke(main, [*args[:4], "--watch", "2"])
    assert result.exit_code == 1
    assert "--watch chooses the VMs drawn in --report" in " ".join(result.output.split())


def test_anomalous_vms_are_drawn_first() -> None:
    import numpy as np

    from forethought.forecast.report import watched_rows

    anomalous = np.array([False, False, True, False])
    spread = np.array([1.0, 3.0, 0.0, 2.0])
    assert watched_rows(anomalous, spread, 3) == [2, 1, 3]
    assert watched_rows(anomalous, spread, 1) == [2]
    assert watched_rows(anomalous, spread, 0) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--watch", "2"], "--watch chooses the series drawn in --report"),
        (["--report", "{tmp}/missing/bt.html"], "the directory {tmp}/missing does not exist"),
    ],
)
def test_backtest_report_misuse_is_refused(
    runner: CliRunner, tmp_path: Path, extra: list[str], message: str
) -> None:
    args = ["backtest", "--limit", "5", "--every", "72", "--no-progress"]
    result = runner.invoke(main, [*args, *(e.format(tmp=tmp_path) for e in extra)])
    assert result.exit_code == 1
    assert message.format(tmp=tmp_path) in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["backtest", "forecast", "anomalies", "rightsize"])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{tmp}/missing/r.html", "the directory {tmp}/missing does not exist"),
        ("{tmp}/a-file/r.html", "{tmp}/a-file is a file, not a directory"),
        ("", "an output path is empty"),
    ],
)
def test_a_report_that_cannot_be_written_is_refused_before_anything_runs(
    runner: CliRunner, tmp_path: Path, command: str, where: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    args = [command, "bundled:planetlab-20110303", "--limit", "3", "--report"]
    result = runner.invoke(main, [*args, where.format(tmp=tmp_path)])
    assert result.exit_code == 1
    assert message.format(tmp=tmp_path) in " ".join(result.output.split())
    assert result.stdout == ""  # nothing ran: no table, no figures


@pytest.mark.parametrize(
    ("model", "module", "extra"),
    [("lstm", "torch", "lstm"), ("autoets", "statsforecast", "statsforecast")],
)
def test_an_optional_model_without_its_extra_says_what_to_install(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, model: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    args = ["backtest", "bundled:planetlab-20110303", "--limit", "5", "--model", model]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert f"pip install 'forethought[{extra}]'" in result.output
    assert "Traceback" not in result.output


def test_forecast_json_is_one_object_and_jsonl_one_line_per_vm(runner: CliRunner) -> None:
    args = ["forecast", "bundled:planetlab-20110303", "--limit", "5", "--horizon", "6"]
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    whole = json.loads(result.stdout)
    assert (whole["n_vms"], whole["horizon"], whole["unit"]) == (5, 6, "percent")
    assert whole["levels"] == [0.5, 0.9, 0.95, 0.99]
    streamed = runner.invoke(main, [*args, "--jsonl"])
    lines = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert lines == whole["vms"]
    assert len(lines) == 5
    both = runner.invoke(main, [*args, "--json", "--jsonl"])
    assert both.exit_code == 2
    assert "choose one of --json and --jsonl" in both.output
    args = [*args, "--json"]
    first = lines[0]
    assert len(first["mean"]) == 6
    qs = [first["quantiles"][k] for k in ("0.5", "0.9", "0.95", "0.99")]
    for lower, upper in itertools.pairwise(qs):
        assert all(a <= b for a, b in zip(lower, upper, strict=True))
    # Which models each VM leans on: the ensemble's weights, summing to one.
    assert {"median36", "markov", "global"} <= set(first["model_weights"])
    assert sum(first["model_weights"].values()) == pytest.approx(1.0, abs=1e-3)
    one = runner.invoke(main, [*args, "--model", "median"])
    assert json.loads(one.stdout)["vms"][0]["model_weights"] == {}


def test_forecast_table_names_the_levels_it_shows(runner: CliRunner) -> None:
    args = ["forecast", "bundled:planetlab-20110303", "--limit", "2", "--level", "0.8"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "p80 max" in result.output
    assert "p95" not in result.output
    assert "p99" not in result.output
    result = runner.invoke(main, [*args[:4], "--level", "0.9", "--level", "0.975"])
    assert "p90 max" in result.output
    assert "p97.5 max" in result.output


@pytest.mark.parametrize("command", ["forecast", "backtest"])
def test_a_horizon_beyond_a_day_is_refused_before_anything_runs(
    runner: CliRunner, command: str
) -> None:
    args = [command, "bundled:planetlab-20110303", "--limit", "1", "--horizon", "100000"]
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert "1<=x<=288" in result.output


def test_json_is_strict_where_a_figure_is_not_a_number(runner: CliRunner, tmp_path: Path) -> None:
    day = tmp_path / "flat"
    day.mkdir()
    for name in ("a", "b"):
        (day / name).write_text("0\n" * 288)
    result = runner.invoke(main, ["backtest", str(day), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"JSON has {c}"))
    assert out["mase"] is None  # no naive scale on a constant history: not a number
    assert out["series_origins_without_scale"] > 0


def test_inspect_reports_repairs(runner: CliRunner, fixtures_dir: Path) -> None:
    result = runner.invoke(main, ["inspect", str(fixtures_dir / "bitbrains"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["vms"] == 3
    assert info["repairs"]["clipped"] > 0
    assert info["resources"]["memory"] == "KB"


def test_bad_trace_names_file_and_line(runner: CliRunner, tmp_path: Path) -> None:
    day = tmp_path / "day"
    day.mkdir()
    (day / "vm a").write_text("1\n2\n3\n")
    (day / "vm b").write_text("1\nabc\n3\n")
    result = runner.invoke(main, ["inspect", str(day), "--format", "planetlab"])
    assert result.exit_code == 1
    assert "vm b" in result.output
    assert "line 2" in result.output
    skipped = runner.invoke(main, ["inspect", str(day), "--format", "planetlab", "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 bad record" in skipped.output


def test_missing_trace_and_wrong_resource_fail_cleanly(runner: CliRunner) -> None:
    missing = runner.invoke(main, ["backtest", "no/such/trace"])
    assert missing.exit_code == 1
    assert "no/such/trace" in missing.output
    wrong = runner.invoke(main, ["backtest", "--resource", "memory"])
    assert wrong.exit_code == 1
    assert "no memory series" in wrong.output
    bad_choice = runner.invoke(main, ["backtest", "--model", "prophet"])
    assert bad_choice.exit_code == 2


def test_short_trace_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["backtest", "--first-origin", "280"])
    assert result.exit_code == 1
    assert "too short" in result.output


def test_brackets_in_cells_and_paths_are_printed_as_text(runner: CliRunner, tmp_path: Path) -> None:
    # "[/x]" is closing markup to rich: printed as such it crashed the command.
    day = tmp_path / "day [" / "y]"  # the path reads "day [/y]"
    day.mkdir(parents=True)
    (day / "vm1").write_text("10\n20\n[/x]\n30\n", encoding="utf-8")
    (day / "vm2").write_text("10\n11\n12\n13\n", encoding="utf-8")
    result = runner.invoke(main, ["inspect", str(day), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "not a number: '[/x]'" in result.output
    assert f"source: {day}" in " ".join(result.output.split())
    result = runner.invoke(main, ["inspect", str(day)])
    assert result.exit_code == 1
    assert f"{day / 'vm1'}, line 3: not a number: '[/x]'" in " ".join(result.output.split())


def test_a_file_the_system_will_not_read_is_an_error_not_a_traceback(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vm1").write_text("10\n20\n", encoding="utf-8")

    def refuse(path: Path, *args: object, **kwargs: object) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    # As an unreadable file does for a user (the tests may run as root, whom no mode stops).
    monkeypatch.setattr(Path, "read_bytes", refuse)
    result = runner.invoke(main, ["inspect", str(tmp_path), "--format", "planetlab"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert ": permission denied" in result.output


def test_repairs_are_said_on_stderr_by_every_command_but_inspect(
    runner: CliRunner, tmp_path: Path
) -> None:
    trace = tmp_path / "dup.csv"
    rows = ["vm,timestamp,resource,value"]
    rows += [f"a,{1_300_000_000 + 300 * t},cpu,{10 + t % 5}" for t in range(300)]
    rows += ["a,1300000000,cpu,90", "a,1300000300,cpu,150"]  # a duplicate, a value clipped
    trace.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = runner.invoke(main, ["backtest", str(trace), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout stays pure JSON
    assert "repaired on reading: 1 value(s) clipped to their range, 2 sample(s)" in result.stderr
    shown = runner.invoke(main, ["inspect", str(trace)])
    assert "repaired on reading" not in shown.stderr  # inspect lists the repairs itself
    assert "clipped 1, duplicates merged 2" in shown.stdout


def test_an_undefined_score_reads_n_a_in_the_table(runner: CliRunner, tmp_path: Path) -> None:
    # A constant series has no in-sample change: its MASE divides by zero.
    trace = tmp_path / "flat.csv"
    rows = ["vm,timestamp,resource,value"] + [
        f"a,{1_300_000_200 + 300 * t},cpu,5" for t in range(60)
    ]
    trace.write_text("\n".join(rows) + "\n")
    args = ["backtest", str(trace), "--first-origin", "24", "--every", "6", "--horizon", "3"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "n/a" in result.stdout
    assert "nan" not in result.stdout
