"""No command may write its output over its own input, nor read an empty option as absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from forethought.cli.main import main

POLICY = "version: 1\ngroups:\n  - {name: all, match: {name: '*'}}\n"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


@pytest.fixture
def day(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A copy of the PlanetLab fixture day the test may lose."""
    copy = tmp_path / "day"
    shutil.copytree(fixtures_dir / "planetlab", copy)
    return copy


def contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "{bb}", "--report", "{bb}"], "is the trace"),
        (["forecast", "{day}", "--report", "{vm}"], "is inside the trace"),
        (["rightsize", "{day}", "--policy", "{policy}", "--report", "{policy}"], "is the policy"),
        (["simulate", "{day}", "--timeline", "{day}/t.parquet"], "is inside the trace"),
        (["hybrid", "{day}", "--log-dir", "{day}"], "--log-dir {day} is inside the trace"),
        (["run", "--simulate", "{day}", "--apply", "--log", "{policy}", "--policy", "{policy}"],
         "is the policy file"),
        (["run", "--simulate", "{day}", "--apply", "--log", "{day}/a.jsonl"],
         "--log {day}/a.jsonl is inside the trace"),
    ],
)  # fmt: skip
def test_an_output_over_an_input_is_refused_before_anything_runs(
    day: Path, fixtures_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    vm = next(iter(sorted(day.iterdir())))
    bb = tmp_path / "1.csv"  # a one-file trace (a Bitbrains VM)
    shutil.copy(fixtures_dir / "bitbrains" / "1.csv", bb)
    names = {"bb": str(bb), "vm": str(vm), "day": str(day), "policy": str(policy)}
    before = contents(day), bb.read_bytes()
    code, err = invoke(*[a.format(**names) for a in args])
    assert code == 1, err
    assert message.format(**names) in err
    assert (contents(day), bb.read_bytes()) == before
    assert policy.read_text() == POLICY


def test_a_report_hard_linked_to_the_action_log_is_refused(day: Path, tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    log.write_text("")
    os.link(log, tmp_path / "run.html")
    code, err = invoke(
        "run", "--simulate", str(day), "--apply", "--log", str(log),
        "--report", str(tmp_path / "run.html"),
    )  # fmt: skip
    assert code == 1
    assert "is the action log" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rightsize", "{day}", "--policy", ""], "the policy file name is empty"),
        (["rightsize", "{day}", "--policy", "{policy}", "--inventory", ""],
         "the inventory file name is empty"),
        (["simulate", ""], "the trace is empty"),
        (["simulate", "{day}", "--allocate", "forethought", "--allocation-policy", ""],
         "the policy file name is empty"),
        (["hybrid", "{day}", "--log-dir", ""], "--log-dir is empty"),
        (["run", "--simulate", "{day}", "--log", ""], "--log is empty"),
    ],
)  # fmt: skip
def test_an_empty_file_option_is_an_error_not_the_default(
    day: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    code, err = invoke(*[a.format(day=day, policy=policy) for a in args])
    assert code == 1, err
    assert message in err


def test_a_simulated_run_does_not_settle_another_runs_migrations(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "a.jsonl"
    log.write_text(
        '{"time":0,"action":"act-1","vm":"x","source":"host-0","target":"host-1",'
        '"state":"planned"}\n'
    )
    day = str(fixtures_dir / "planetlab")
    code, err = invoke("run", "--simulate", day, "--apply", "--log", str(log), "--hosts", "4")
    assert code == 1
    assert "holds 1 unsettled migration(s) of an earlier run" in err
    code, err = invoke("run", "--simulate", day, "--log", str(log), "--hosts", "4", "--steps", "1")
    assert code == 0, err  # a dry run reads it and leaves it be


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_dry_run_only_needs_to_read_the_log(fixtures_dir: Path, tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    (shelf / "a.jsonl").write_text("")
    shelf.chmod(0o555)
    try:
        day = str(fixtures_dir / "planetlab")
        log = str(shelf / "a.jsonl")
        code, err = invoke("run", "--simulate", day, "--log", log, "--hosts", "4", "--steps", "1")
        assert code == 0, err
        code, err = invoke("run", "--simulate", day, "--log", log, "--hosts", "4", "--apply")
        assert code == 1
        assert "not writable" in err
    finally:
        shelf.chmod(0o755)


def test_outputs_the_trace_reader_would_not_read_are_allowed(
    day: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    # A Bitbrains folder reads only its .csv and .csv.gz files; a PlanetLab day only its
    # own files, not a subdirectory's; a dry run writes no log at all.
    bitbrains = tmp_path / "bb"
    bitbrains.mkdir()
    shutil.copy(fixtures_dir / "bitbrains" / "1.csv", bitbrains / "1.csv")
    (day / "out").mkdir()
    for args in (
        ["inspect", str(bitbrains), "--json"],
        ["run", "--simulate", str(day), "--hosts", "4", "--steps", "1",
         "--log", str(day / "a.jsonl")],
    ):  # fmt: skip
        code, err = invoke(*args)
        assert code == 0, err
    _not_refused(["backtest", str(bitbrains), "--report", str(bitbrains / "r.html")])
    _not_refused(["backtest", str(day), "--report", str(day / "out" / "r.html")])
    code, err = invoke("backtest", str(bitbrains), "--report", str(bitbrains / "r.csv"))
    assert code == 1
    assert "is inside the trace" in err


def _not_refused(args: list[str]) -> None:
    """The command gets past its output checks (it may still fail on the tiny trace)."""
    _, err = invoke(*args)
    assert "is inside the trace" not in err, err


def test_a_dry_run_will_not_read_its_trace_as_its_log(day: Path, fixtures_dir: Path) -> None:
    vm = next(iter(sorted(day.iterdir())))
    code, err = invoke("run", "--simulate", str(day), "--hosts", "4", "--log", str(vm))
    assert code == 1
    assert "is inside the trace" in err
    assert "corrupt record" not in err
