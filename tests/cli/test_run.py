"""`forethought run`: the control loop on hypervisors, until stopped.

Most tests put the simulator behind the command (it replaces the libvirt backend through
the command's one seam, ``_libvirt``), so they run without libvirt-python; the ones marked
``needs_libvirt`` drive libvirt's test hypervisor through the real driver.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from forethought.cli import fleet as fleet_cli
from forethought.cli.main import main
from forethought.cluster.backend import BackendError, Observation
from forethought.cluster.model import CLOUDSIM_VM_TYPES, G5, Cluster
from forethought.cluster.simulated import SimulatedBackend
from forethought.migration.log import ActionLog

needs_libvirt = pytest.mark.skipif(
    importlib.util.find_spec("libvirt") is None,
    reason="libvirt-python is not installed (forethought[libvirt])",
)
STEPS = 30


class Ticking(SimulatedBackend):
    """The simulator advancing one interval between the loop's telemetry reads, as a
    hypervisor's clock does between steps."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reads = 0

    def telemetry(self) -> Observation:
        if self.reads:
            self.advance(self.interval)
        self.reads += 1
        return super().telemetry()


def crowded() -> Ticking:
    """Eight VMs on four hosts; the four on host 0 turn busy at step 15."""
    cluster = Cluster(
        [G5], [CLOUDSIM_VM_TYPES[0]], np.zeros(4, dtype=np.int64), np.zeros(8, dtype=np.int64)
    )
    u = np.full((8, STEPS + 5), 0.2)
    u[:4, 15:] = 0.9
    return Ticking(cluster, u, np.array([0, 0, 0, 0, 1, 2, 3, 3]), interval=300.0)


@pytest.fixture
def simulated(monkeypatch: pytest.MonkeyPatch) -> Ticking:
    backend = crowded()
    monkeypatch.setattr(fleet_cli, "_libvirt", lambda uris, sites, mbps: backend)
    no_wait(monkeypatch)  # steps back to back
    return backend


def no_wait(monkeypatch: pytest.MonkeyPatch, wait: Callable[[float], None] | None = None) -> None:
    """The run's wait for the next step returns at once (after calling ``wait``)."""
    monkeypatch.setattr(
        fleet_cli._Stopping, "wait", lambda self, seconds: wait(seconds) if wait else None
    )


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["run", "--connect", "qemu:///system", *args])
    return result.exit_code, result.stdout, result.stderr


def steps_of(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_by_default_it_is_a_dry_run_that_changes_nothing(
    simulated: Ticking, tmp_path: Path
) -> None:
    code, out, err = invoke(
        "--size", "cpu", "--steps", str(STEPS), "--log", str(tmp_path / "a.jsonl"), "--json"
    )
    assert code == 0, err
    assert "dry run: nothing will be changed (add --apply)" in err
    assert "the backend is simulated" in err  # never passed off as a real fleet
    steps = steps_of(out)
    assert len(steps) == STEPS
    resizes = [r for s in steps for r in s["resizes"]]  # type: ignore[attr-defined]
    assert resizes
    assert not any(r["applied"] for r in resizes)
    assert any(s["planned"] for s in steps)
    assert not any(s["proposed"] for s in steps)
    assert simulated.host_of.tolist() == [0, 0, 0, 0, 1, 2, 3, 3]
    assert np.all(simulated.cpu_alloc == 2500.0)
    assert f"{STEPS} step(s): {len(resizes):,} resize(s) decided, 0 applied; " in err


def test_apply_resizes_and_migrates_and_logs_every_action(
    simulated: Ticking, tmp_path: Path
) -> None:
    log = tmp_path / "actions.jsonl"
    code, out, err = invoke("--size", "cpu", "--steps", str(STEPS), "--log", str(log), "--apply")
    assert code == 0, err
    assert "acting (--apply)" in err
    assert "step 0:" in out
    assert " live" in out  # a resize line
    assert "): started" in out  # a move line
    assert "migration of vm-" in out  # and its settling
    assert simulated.host_of[:4].tolist().count(0) < 4
    assert not np.all(simulated.cpu_alloc == 2500.0)
    records = ActionLog.read(log)
    assert {r.state.value for r in records} >= {"started", "completed"}


def test_no_migrate_sizes_but_moves_nothing(simulated: Ticking, tmp_path: Path) -> None:
    code, out, err = invoke(
        "--size", "cpu", "--steps", str(STEPS), "--log", str(tmp_path / "a.jsonl"),
        "--no-migrate", "--apply", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "migrations planned only (--no-migrate)" in err
    steps = steps_of(out)
    assert any(r["applied"] for s in steps for r in s["resizes"])  # type: ignore[attr-defined]
    assert any(s["planned"] for s in steps)
    assert not any(s["proposed"] for s in steps)
    assert simulated.host_of.tolist() == [0, 0, 0, 0, 1, 2, 3, 3]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_between_steps_and_keeps_the_log(
    simulated: Ticking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    waits = [0]

    def wait(seconds: float) -> None:  # the third wait for a step: the signal arrives
        waits[0] += 1
        if waits[0] == 3:
            os.kill(os.getpid(), signum)

    no_wait(monkeypatch, wait)
    log = tmp_path / "actions.jsonl"
    code, out, err = invoke("--size", "cpu", "--log", str(log), "--json")  # no --steps: forever
    assert code == 0, err
    assert [s["step"] for s in steps_of(out)] == [0, 1, 2]  # no step was cut short
    assert "stopped after 3 step(s)" in err
    # The handlers are put back: a later Ctrl-C is Python's own again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "cpu,gpu"], "--size: unknown resource(s) gpu"),
        (["--size", "cpu,CPU"], "--size names a resource twice"),
        (["--size", " , "], "--size needs at least one resource"),
        (["--site", "lab"], "--site 'lab': write URI=SITE"),
        (["--site", "qemu:///other=lab"], "qemu:///other is not one of the --connect URIs"),
        (["--policy", "missing.yaml"], "missing.yaml"),
        (["--log", "no/such/dir/log.jsonl"], "the directory no/such/dir does not exist"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    simulated: Ticking, args: list[str], message: str
) -> None:
    code, out, err = invoke(*args)
    assert code == 1
    assert message in err
    assert out == ""
    assert simulated.reads == 0


def test_a_bad_policy_file_names_the_field(simulated: Ticking, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\ndefaults:\n  cpu: {quantile: 2}\ngroups: []\n")
    code, _, err = invoke("--policy", str(policy))
    assert code == 1
    assert "quantile" in err


@pytest.mark.parametrize("interval", ["0.5", "nan"])
def test_an_interval_under_a_second_is_a_usage_error(simulated: Ticking, interval: str) -> None:
    code, _, err = invoke("--interval", interval)
    assert code == 2
    assert "--interval" in err


def test_an_unreachable_hypervisor_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(uris: list[str], sites: dict[str, str], mbps: float) -> SimulatedBackend:
        raise BackendError(f"cannot reach the hypervisor at {uris[0]}: connection refused")

    monkeypatch.setattr(fleet_cli, "_libvirt", refuse)
    code, _, err = invoke()
    assert code == 1
    assert "cannot reach the hypervisor at qemu:///system" in err


def test_without_libvirt_python_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt now fails
    code, _, err = invoke()
    assert code == 1
    assert "forethought[libvirt]" in err


@needs_libvirt
def test_the_test_hypervisor_runs_step_by_step(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "run", "--connect", "test:///default", "--interval", "1", "--steps", "2",
            "--log", str(tmp_path / "a.jsonl"), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "libvirt: 1 VM(s) on 1 host(s); dry run" in result.stderr
    assert "simulated" not in result.stderr
    steps = steps_of(result.stdout)
    assert [s["step"] for s in steps] == [0, 1]
    assert all(s["unmanaged"] == [] for s in steps)


@needs_libvirt
def test_an_unreachable_test_node_is_an_error_naming_it() -> None:
    result = CliRunner().invoke(main, ["run", "--connect", "test:///nowhere/node.xml"])
    assert result.exit_code == 1
    assert "cannot reach the hypervisor at test:///nowhere/node.xml" in result.stderr


# ------------------------------------------------------------------------ --serve

needs_service = pytest.mark.skipif(
    importlib.util.find_spec("fastapi") is None
    or importlib.util.find_spec("prometheus_client") is None,
    reason="the service extra is not installed (forethought[service])",
)


@needs_service
def test_serve_exposes_status_and_metrics_while_the_run_lasts(
    simulated: Ticking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.error
    import urllib.request

    from forethought.service import server

    started: list[server.Serving] = []
    real = server.serve_in_background

    def capture(app: object, host: str, port: int) -> server.Serving:
        started.append(real(app, host, port))
        return started[-1]

    monkeypatch.setattr(server, "serve_in_background", capture)
    seen: dict[str, str] = {}

    def wait(seconds: float) -> None:  # between steps 2 and 3: look, as Prometheus would
        if len(seen) == 0 and simulated.reads == 2:
            for path in ("/status", "/metrics"):
                with urllib.request.urlopen(started[0].url + path, timeout=10) as reply:
                    seen[path] = reply.read().decode()

    no_wait(monkeypatch, wait)
    code, out, err = invoke(
        "--size", "cpu", "--steps", "4", "--log", str(tmp_path / "a.jsonl"),
        "--serve", "127.0.0.1:0", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert f"serving {started[0].url}" in err
    status = json.loads(seen["/status"])
    assert status["steps"] == 2
    assert status["last_step"] == steps_of(out)[1]
    assert status["dry_run"] is True
    assert "forethought_steps_total 2.0" in seen["/metrics"]
    # The run is over: so is the server.
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(started[0].url + "/healthz", timeout=2)


@needs_service
@pytest.mark.parametrize(
    ("address", "message"),
    [("somewhere", "write HOST:PORT or PORT"), ("99999", "the port must be in 0..65535")],
)
def test_a_bad_serve_address_is_refused_before_anything_runs(
    simulated: Ticking, address: str, message: str
) -> None:
    code, _, err = invoke("--serve", address)
    assert code == 1
    assert message in err
    assert simulated.reads == 0


@needs_service
def test_a_busy_port_is_an_error_naming_it(simulated: Ticking, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = invoke(
            "--serve", f"127.0.0.1:{port}", "--log", str(tmp_path / "a"), "--apply"
        )
    assert code == 1
    assert f"cannot serve on 127.0.0.1:{port}" in err
    assert out == ""
    assert not (tmp_path / "a").exists()  # no empty log left of a run that never ran


def test_serve_without_the_service_extra_says_what_to_install(
    simulated: Ticking, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # its import now fails
    code, _, err = invoke("--serve", "9187")
    assert code == 1
    assert "forethought[service]" in err
    assert simulated.reads == 0


def test_a_corrupt_action_log_is_an_error_naming_its_line(
    simulated: Ticking, tmp_path: Path
) -> None:
    log = tmp_path / "actions.jsonl"
    log.write_text('{"action": "act-1"}\n')
    code, out, err = invoke("--log", str(log), "--steps", "1")
    assert code == 1
    assert f"{log}, line 1: corrupt record" in err
    assert out == ""
    assert log.read_text() == '{"action": "act-1"}\n'  # what was recorded is kept


def test_a_step_with_many_actions_lists_some_and_counts_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    resize = {
        "resource": "cpu", "amount": 1000.0, "reason": "forecast",
        "applied": True, "live": True, "message": "",
    }  # fmt: skip
    record: dict[str, object] = {
        "step": 7,
        "resizes": [{**resize, "vm": f"vm-{i}"} for i in range(50)],
        "planned": [
            {
                "vm": f"vm-{i}",
                "source": "a",
                "target": "b",
                "kind": "consolidation",
                "benefit_wh": 1.0,
            }
            for i in range(30)
        ],
        "proposed": [
            {"vm": f"vm-{i}", "accepted": i == 29, "why": "" if i == 29 else "limit"}
            for i in range(30)
        ],
        "settled": [],
        "unmanaged": [],
    }
    fleet_cli._print_step(record, dry_run=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("step 7: 50 resize(s) (50 live")
    moves = [line for line in lines if line.startswith("  move ")]
    assert len(moves) == fleet_cli.SHOWN
    assert moves[0].endswith("): started")  # the one started comes first
    assert "  ... and 10 more moves (--json lists every one)" in lines
    assert len([line for line in lines if line.startswith("  resize ")]) == fleet_cli.SHOWN
    assert "  ... and 30 more resizes (--json lists every one)" in lines


# ------------------------------------------------------------------------ --simulate


def simulate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["run", *args])
    return result.exit_code, result.stdout, result.stderr


def small_trace(tmp_path: Path, vms: int = 3, samples: int = 10) -> Path:
    """A long-format trace: ``vms`` VMs' CPU over ``samples`` five-minute samples."""
    rows = ["vm,timestamp,resource,value,unit"]
    rows += [
        f"vm-{v},{1_300_000_000 + 300 * t},cpu,{10 + 5 * v + (t % 3)},percent"
        for v in range(vms)
        for t in range(samples)
    ]
    path = tmp_path / "small.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_simulate_runs_the_loop_on_a_trace_until_it_ends(tmp_path: Path) -> None:
    trace = small_trace(tmp_path)
    code, out, err = simulate(
        "--simulate", str(trace), "--hosts", "4", "--log", str(tmp_path / "a.jsonl"), "--json"
    )
    assert code == 0, err
    assert "simulator: 3 VM(s) on 4 host(s); dry run" in err
    assert "the backend is simulated" in err
    assert "assumed:" not in err  # the simulator's hardware is known, not assumed
    assert [s["step"] for s in steps_of(out)] == list(range(10))  # one per sample
    # Stamped with the trace's own times (its first sample, 1,300,000,000 s, on the
    # reader's five-minute grid), not from 0.
    times = [s["time"] for s in steps_of(out)]
    assert times == [1_299_999_900.0 + 300.0 * k for k in range(10)]


def test_simulate_applies_on_the_bundled_day(tmp_path: Path) -> None:
    code, out, err = simulate(
        "--simulate", "bundled:planetlab-20110303", "--steps", "30", "--apply",
        "--log", str(tmp_path / "a.jsonl"), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "simulator: 1,052 VM(s) on 800 host(s); acting (--apply)" in err
    steps = steps_of(out)
    assert len(steps) == 30
    resizes = [r for s in steps for r in s["resizes"]]  # type: ignore[attr-defined]
    assert resizes
    assert all(r["applied"] and r["live"] for r in resizes)
    assert {r["resource"] for r in resizes} == {"cpu"}  # the default with --simulate
    # The run ends with what it did, summed.
    assert f"30 step(s): {len(resizes):,} resize(s) decided, {len(resizes):,} applied; " in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --connect URI (one per host), or --simulate TRACE to run on the simulator"),
        (
            ["--connect", "qemu:///system", "--simulate", "bundled:planetlab-20110303"],
            "--connect and --simulate exclude each other",
        ),
        (
            ["--simulate", "bundled:planetlab-20110303", "--interval", "60"],
            "--interval goes with --connect",
        ),
        (
            ["--simulate", "bundled:planetlab-20110303", "--site", "x=a"],
            "--site goes with --connect",
        ),
        (["--simulate", "bundled:planetlab-20110303", "--hosts", "1"], "do not fit on 1 hosts"),
        (["--simulate", "no/such/trace"], "no/such/trace"),
    ],
)
def test_simulate_refuses_what_cannot_run(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = simulate(*args, "--log", str(tmp_path / "a.jsonl"))
    assert code == 1
    assert message in err
    assert out == ""


def test_pace_waits_between_simulated_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []
    no_wait(monkeypatch, waited.append)
    trace = small_trace(tmp_path, samples=4)
    code, _, err = simulate(
        "--simulate", str(trace), "--hosts", "4", "--pace", "0.5",
        "--log", str(tmp_path / "a.jsonl"),
    )  # fmt: skip
    assert code == 0, err
    assert waited == [0.5, 0.5, 0.5]  # between the four steps, not after the last
    code, _, err = simulate("--connect", "qemu:///system", "--pace", "1")
    assert code == 1
    assert "--pace goes with --simulate" in err


class Flaky(Ticking):
    """The simulator out of reach at the telemetry reads listed in ``fail``."""

    fail: frozenset[int] = frozenset()

    def telemetry(self) -> Observation:
        calls = self.calls = getattr(self, "calls", 0) + 1
        if calls in self.fail:
            raise BackendError("cannot reach the hypervisor at qemu:///system: timed out")
        return super().telemetry()


def flaky(monkeypatch: pytest.MonkeyPatch, fail: set[int]) -> Flaky:
    base = crowded()
    backend = Flaky(base.cluster, base.u, base.host_of.copy(), interval=300.0)
    backend.fail = frozenset(fail)
    monkeypatch.setattr(fleet_cli, "_libvirt", lambda uris, sites, mbps: backend)
    no_wait(monkeypatch)
    return backend


def test_a_step_the_backend_fails_is_reported_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flaky(monkeypatch, {3, 4})
    code, out, err = invoke("--size", "cpu", "--steps", "8", "--log", str(tmp_path / "a"), "--json")
    assert code == 0, err
    assert "step 2 failed: cannot reach the hypervisor at qemu:///system: timed out; " in err
    assert "(1 of 3 in a row)" in err
    assert "(2 of 3 in a row)" in err
    # Eight steps done, as asked: the two failed attempts are not steps.
    assert [s["step"] for s in steps_of(out)] == [0, 1, 4, 5, 6, 7, 8, 9]


def test_too_many_failures_in_a_row_stop_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flaky(monkeypatch, {2, 3})
    code, out, err = invoke(
        "--size", "cpu", "--steps", "8", "--max-failures", "2", "--log", str(tmp_path / "a"),
        "--json",
    )  # fmt: skip
    assert code == 1
    assert "2 steps in a row failed; the last: cannot reach the hypervisor" in err
    assert [s["step"] for s in steps_of(out)] == [0]  # what was done is printed


def test_anomalies_are_reported_with_their_evidence(tmp_path: Path) -> None:
    code, out, err = simulate(
        "--simulate", "bundled:planetlab-20110303", "--steps", "40",
        "--log", str(tmp_path / "a.jsonl"), "--json",
    )  # fmt: skip
    assert code == 0, err
    anomalies = [a for s in steps_of(out) for a in s["anomalies"]]  # type: ignore[attr-defined]
    assert anomalies
    first = anomalies[0]
    assert first["resource"] == "cpu"
    assert first["action"] == "alert"  # the default policy's reaction
    assert first["kind"] == "series"
    evidence = first["evidence"]
    # Each of the run's observations exceeded the forecast's p99 it was held to.
    assert len(evidence["observed"]) == len(evidence["upper"]) == 3
    assert all(o > u for o, u in zip(evidence["observed"], evidence["upper"], strict=True))
    assert evidence["level"] == 0.99


def test_an_inventory_puts_vms_in_the_policys_groups(simulated: Ticking, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\n"
        "groups:\n"
        "  - {name: web, match: {tags: [web]}}\n"
        "  - {name: rest, match: {name: '*'}}\n"
    )
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("vm,tags,application\nvm-0,web;front,\nvm-5,web,\n")
    code, _, err = invoke(
        "--size", "cpu", "--steps", "1", "--policy", str(policy), "--inventory", str(inventory),
        "--log", str(tmp_path / "a.jsonl"),
    )  # fmt: skip
    assert code == 0, err
    assert "(web: 2, rest: 6)" in err
    code, _, err = invoke("--inventory", str(inventory))
    assert code == 1
    assert "--inventory goes with --policy" in err


needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (forethought[report])",
)


@needs_matplotlib
def test_report_shows_what_the_run_managed_and_did(tmp_path: Path) -> None:
    report = tmp_path / "run.html"
    code, _, err = simulate(
        "--simulate", str(small_trace(tmp_path)), "--hosts", "4", "--apply",
        "--log", str(tmp_path / "a.jsonl"), "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {report}" in err
    text = report.read_text()
    assert "3 VMs on 4 hosts; acting (--apply)" in text
    assert "simulated: no real hypervisor is behind these figures" in text
    summary = err.strip().splitlines()[-2]  # the summary line, then "wrote ..."
    assert summary.startswith("10 step(s): ")
    assert f"<p>{summary}.</p>" in text
    for heading in ("active hosts", "resizes decided per step", "anomalies per step"):
        assert f"<h2>{heading}</h2>" in text
    assert text.count("<svg") == 5


@needs_matplotlib
def test_report_keeps_what_was_done_when_the_run_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flaky(monkeypatch, {3, 4, 5})
    report = tmp_path / "run.html"
    code, _, err = invoke(
        "--size", "cpu", "--steps", "8", "--log", str(tmp_path / "a"), "--report", str(report)
    )
    assert code == 1
    assert "3 steps in a row failed" in err
    assert "2 step(s): " in report.read_text()  # the two steps before the failures


def test_a_report_that_cannot_be_written_is_refused_before_the_run(
    simulated: Ticking, tmp_path: Path
) -> None:
    code, out, err = invoke("--report", str(tmp_path / "no" / "such" / "run.html"))
    assert code == 1
    assert "does not exist" in err
    assert out == ""
    assert simulated.reads == 0


def test_a_run_that_acts_holds_its_log_alone(simulated: Ticking, tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    with ActionLog.open(log, exclusive=True):  # another run, acting on the same log
        code, out, err = invoke("--log", str(log), "--steps", "1", "--size", "cpu", "--apply")
        assert code == 1
        assert f"{log}: in use by another run" in err
        assert out == ""
        assert simulated.reads == 0
        # A dry run only reads the log: it may run beside the other.
        code, _, err = invoke("--log", str(log), "--steps", "1", "--size", "cpu")
        assert code == 0, err
    code, _, err = invoke("--log", str(log), "--steps", "1", "--size", "cpu", "--apply")
    assert code == 0, err


def open_migration_log(path: Path) -> str:
    """A log whose run stopped with vm-0's move to host-1 started and unsettled."""
    started = {
        "time": 0.0, "action": "act-1", "vm": "vm-0", "source": "host-0", "target": "host-1",
        "reason": "pressure", "message": "", "migration": "mig-9", "predicted": {},
        "facts": {"started": 0.0, "expected_end": 60.0},
    }  # fmt: skip
    text = "".join(
        json.dumps({**started, "state": state}) + "\n" for state in ("planned", "started")
    )
    path.write_text(text)
    return text


def test_a_dry_run_leaves_another_runs_migrations_be(simulated: Ticking, tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    text = open_migration_log(log)
    code, _, err = invoke("--log", str(log), "--steps", "3", "--size", "cpu")
    assert code == 0, err
    assert "note: the action log holds 1 unsettled migration(s) of another run" in err
    assert log.read_text() == text  # neither settled nor written to
    code, out, err = invoke("--log", str(log), "--steps", "1", "--size", "cpu", "--apply")
    assert code == 0, err
    assert "note: taking over 1 unsettled migration(s) from the action log" in err
    assert "migration of vm-0 " in out  # settled by the run that acts
    # The summary keeps it apart from the run's own moves, and counts those not yet ended.
    summary = err.strip().splitlines()[-1]
    assert "; 1 taken over from an earlier run (1 rolled_back); " in summary
    started = int(summary.split(" started")[0].rsplit(" ", 1)[1])
    if started:
        assert f"{started} still open" in summary  # one step: none of them has ended yet
    assert ActionLog.open(log).latest["act-1"].state.value == "rolled_back"  # never moved


def test_a_torn_log_line_is_noted(simulated: Ticking, tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    log.write_text(open_migration_log(log) + '{"time": 1')  # a crash cut the last write
    code, _, err = invoke("--log", str(log), "--steps", "1", "--size", "cpu")
    assert code == 0, err
    assert f"note: {log}, line 3: torn last line ignored" in err


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_log_that_is_not_a_file_is_refused(simulated: Ticking, device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"no {device} here")
    code, _, err = invoke("--log", device, "--steps", "1")
    assert code == 1
    assert f"--log {device}: not a regular file" in err
    assert simulated.reads == 0


def test_the_report_may_not_overwrite_the_log(simulated: Ticking, tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    code, _, err = invoke("--log", str(log), "--report", str(tmp_path / "." / "actions.jsonl"))
    assert code == 1
    assert "is the action log: give the report its own file" in err
    assert not log.exists()


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--interval", "1e10"], "--interval", 2),
        (["--hosts", "10"], "--hosts goes with --simulate", 1),
        (["--limit", "5"], "--limit goes with --simulate", 1),
        (["--format", "planetlab"], "--format goes with --simulate", 1),
        (["--size", ""], "--size needs at least one resource", 1),
        (["--policy", ""], "the policy file name is empty", 1),
        (["--link-mbps", "10"], "--link-mbps goes with --site naming two sites or more", 1),
        (["--site", "qemu:///system=a", "--site", "qemu:///system=b"], "in two sites", 1),
    ],
)
def test_options_a_hypervisor_run_cannot_use_are_refused(
    simulated: Ticking, tmp_path: Path, args: list[str], message: str, code: int
) -> None:
    exit_code, out, err = invoke(*args, "--log", str(tmp_path / "a.jsonl"))
    assert exit_code == code
    assert message in err
    assert out == ""
    assert simulated.reads == 0


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--steps", "11"], "--steps 11: the trace", 1),
        (["--size", "cpu,memory"], "--size memory: the simulator plays only cpu", 1),
        (["--size", "disk_read"], "--size disk_read: the simulator plays only cpu", 1),
        (["--pace", "1e10"], "--pace", 2),
        (["--host-mbps", "100"], "--host-mbps goes with --connect", 1),
        (["--latency-ms", "5"], "--latency-ms goes with --connect", 1),
        (["--max-failures", "5"], "--max-failures goes with --connect", 1),
    ],
)
def test_options_a_simulated_run_cannot_use_are_refused(
    tmp_path: Path, args: list[str], message: str, code: int
) -> None:
    trace = small_trace(tmp_path)
    exit_code, out, err = simulate(
        "--simulate", str(trace), "--hosts", "4", *args, "--log", str(tmp_path / "a.jsonl")
    )
    assert exit_code == code
    assert message in err
    assert out == ""
    assert "simulator:" not in err  # refused before the run is announced


def named_trace(tmp_path: Path) -> Path:
    """Four VMs named as in a real inventory, one of them idle throughout."""
    names = ["web a", "web-b", "db-1", "idle-1"]
    rows = ["vm,timestamp,resource,value,unit"]
    rows += [
        f"{name},{1_300_000_000 + 300 * t},cpu,"
        f"{0 if name == 'idle-1' else 20 + 10 * v + 15 * (t % 4 == 0)},percent"
        for v, name in enumerate(names)
        for t in range(60)
    ]
    path = tmp_path / "named.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_simulate_keeps_the_traces_vm_names_for_policies_and_output(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\n"
        "groups:\n"
        "  - {name: web, match: {name: 'web*'}}\n"
        "  - {name: batch, match: {name: 'batch-*'}}\n"
        "  - {name: rest, match: {name: '*'}}\n"
    )
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("vm,tags,application\ndb-1,db,\nvm-99,web,\n")
    code, out, err = simulate(
        "--simulate", str(named_trace(tmp_path)), "--hosts", "4", "--policy", str(policy),
        "--inventory", str(inventory), "--log", str(tmp_path / "a.jsonl"), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "(web: 2, rest: 2)" in err
    assert "note: group(s) batch of the policy take no VM" in err
    assert "note: 1 VM(s) of the inventory are not among this run's: vm-99" in err
    steps = steps_of(out)
    resized = {r["vm"] for s in steps for r in s["resizes"]}  # type: ignore[attr-defined]
    assert resized <= {"web a", "web-b", "db-1", "idle-1"}
    assert resized
    # Each resize says why the manager made it, not a blanket "forecast".
    reasons = {r["reason"] for s in steps for r in s["resizes"]}  # type: ignore[attr-defined]
    assert reasons <= {
        "forecast above allocation", "need well below allocation", "anomaly: scale up",
        "shortfall: floor raised", "bounds", "host short: SLA class",
    }  # fmt: skip
    assert "need well below allocation" in reasons
    # A VM idle throughout never lies above its forecast's p99.
    flagged = {a["vm"] for s in steps for a in s["anomalies"]}  # type: ignore[attr-defined]
    assert "idle-1" not in flagged


def test_no_report_is_written_when_no_step_was_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flaky(monkeypatch, {1})
    report = tmp_path / "run.html"
    code, _, err = invoke(
        "--size", "cpu", "--max-failures", "1", "--log", str(tmp_path / "a"),
        "--report", str(report),
    )  # fmt: skip
    assert code == 1
    assert f"no report written to {report}: the run made no step" in err
    assert not report.exists()


@pytest.mark.parametrize("as_json", [False, True])
def test_a_closed_stdout_stops_the_run_and_keeps_what_it_did(tmp_path: Path, as_json: bool) -> None:
    # `forethought run ... | head -1`: the reader is gone before the first line.
    read_end, write_end = os.pipe()
    os.close(read_end)
    log = tmp_path / "a.jsonl"
    args = [
        sys.executable, "-m", "forethought", "run", "--simulate", str(small_trace(tmp_path)),
        "--hosts", "4", "--apply", "--log", str(log),
    ]  # fmt: skip
    if as_json:
        args.append("--json")
    try:
        done = subprocess.run(
            args, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "stdout was closed: stopped after 1 step(s)" in done.stderr
    assert "1 step(s): " in done.stderr  # the summary of what was done
    assert "Traceback" not in done.stderr
    assert log.exists()


def test_simulate_reads_its_trace_as_simulate_does(tmp_path: Path) -> None:
    trace = small_trace(tmp_path, vms=3)
    with trace.open("a") as f:
        f.write("vm-9,1300000000,cpu,lots,percent\n")  # one bad record
    args = ["--simulate", str(trace), "--hosts", "4", "--log", str(tmp_path / "a.jsonl")]
    code, _, err = simulate(*args, "--steps", "1")
    assert code == 1
    assert "lots" in err
    code, _, err = simulate(
        *args, "--steps", "1", "--skip-bad", "--limit", "2", "--format", "long-csv"
    )
    assert code == 0, err
    assert "simulator: 2 VM(s) on 4 host(s)" in err


def test_simulated_runs_leave_no_migration_open_so_the_next_may_use_the_log(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.jsonl"
    args = [
        "--simulate",
        "bundled:planetlab-20110303",
        "--steps",
        "2",
        "--apply",
        "--log",
        str(log),
    ]
    code, _, err = simulate(*args)
    assert code == 0, err
    assert "simulated migration(s) still under way were run to their end" in err
    assert "still open" not in err
    assert ActionLog.open(log).open_actions() == []
    code, _, err = simulate(*args)  # the same log again
    assert code == 0, err


def test_a_real_run_refuses_a_log_with_a_simulations_open_moves(
    simulated: Ticking, tmp_path: Path
) -> None:
    log = tmp_path / "a.jsonl"
    log.write_text(
        '{"time":0,"action":"act-1","vm":"x","source":"host-0","target":"host-99",'
        '"state":"planned"}\n'
    )
    code, out, err = invoke("--log", str(log), "--size", "cpu", "--apply", "--steps", "1")
    assert code == 1
    assert "another fleet's or a simulation's log" in err
    assert out == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_stdout_that_cannot_be_written_stops_the_run_and_says_why(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "forethought", "run", "--simulate",
             str(small_trace(tmp_path)), "--hosts", "4", "--log", str(tmp_path / "a.jsonl")],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert "stdout failed (No space left on device): stopped after 1 step(s)" in done.stderr
    assert "Traceback" not in done.stderr
