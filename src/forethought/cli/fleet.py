"""``forethought run``: the control loop on real hypervisors, step by step until stopped."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from forethought.cli.base import (
    Finite,
    _connect_options,
    _errors,
    _fail,
    _inventory_option,
    _json,
    _load,
    _not_an_input,
    _reading_options,
    _report_writable,
    _sites,
    _writable,
    main,
    stderr,
)
from forethought.cluster.model import MAX_HOSTS
from forethought.core.resources import Resource

if TYPE_CHECKING:  # imported lazily at run time: the CLI starts faster without it
    from forethought.cluster.backend import Backend
    from forethought.cluster.simulated import SimulatedBackend
    from forethought.migration.fleet import FleetLoop
    from forethought.migration.loop import LoopStep
    from forethought.service.server import Serving
    from forethought.service.state import RunState

DEFAULT_LOG = "forethought-actions.jsonl"
#: Longest wait between steps: a day, far below what a timed wait can hold.
MAX_INTERVAL = 86_400.0
#: Longest --pace: an hour per simulated step.
MAX_PACE = 3_600.0


def _libvirt(uris: list[str], sites: dict[str, str], bandwidth_mbps: float) -> Backend:
    """The backend the command drives (a seam the tests replace with the simulator)."""
    from forethought.cluster.libvirt_backend import LibvirtBackend

    return LibvirtBackend(uris, sites=sites, bandwidth_mbps=bandwidth_mbps)


def _resources(text: str) -> tuple[Resource, ...]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        _fail("--size needs at least one resource (cpu, memory, disk_read, ...)")
    known = {r.value: r for r in Resource}
    odd = [n for n in names if n not in known]
    if odd:
        _fail(f"--size: unknown resource(s) {', '.join(odd)}; choose from {', '.join(known)}")
    if len(set(names)) != len(names):
        _fail(f"--size names a resource twice: {text}")
    return tuple(known[n] for n in names)


class _Stopping:
    """Ctrl-C or SIGTERM asks the run to stop between steps (a step is never cut short,
    and the wait for the next one ends at once); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __enter__(self) -> _Stopping:
        self._previous = {s: signal.signal(s, self._ask) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _ask(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def wait(self, seconds: float) -> None:
        self.event.wait(seconds)


def _connect_or_simulate(func: Callable[..., None]) -> Callable[..., None]:
    return _connect_options(func, required=False)


@main.command(name="run")
@_connect_or_simulate
@click.option(
    "--simulate",
    "trace",
    default=None,
    metavar="TRACE",
    help="Run on the simulator instead of hypervisors: TRACE's VMs (a trace as for "
    "`forethought simulate`, e.g. bundled:planetlab-20110303) in CloudSim's data centre, "
    "one step per sample, as fast as it computes. For trying the loop, --serve and "
    "policies without a hypervisor; the run says it is simulated.",
)
@_reading_options("With --simulate: ")
@click.option(
    "--hosts",
    type=click.IntRange(min=1, max=MAX_HOSTS),
    default=800,
    show_default=True,
    help="With --simulate: hosts of the simulated data centre (HP ML110 G4 and G5).",
)
@click.option(
    "--pace",
    type=Finite(min=0.0, max=MAX_PACE),
    default=0.0,
    show_default=True,
    help="With --simulate: wall-clock seconds between steps (0: as fast as it computes; "
    "at most an hour), to watch a run through --serve.",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Carry out the decisions: resize VMs and start migrations. Without it the run is "
    "a dry run that decides and reports, and changes nothing.",
)
@click.option(
    "--policy",
    type=click.Path(dir_okay=False),
    default=None,
    help="Scaling policy file (see `forethought policy check`); default: the default "
    "policy. Its groups are matched on the VMs' names (and on --inventory's tags and "
    "applications).",
)
@_inventory_option
@click.option(
    "--size",
    "size_text",
    default=None,
    help="Resources to size, comma-separated: cpu, memory, disk_read, disk_write, net_rx, "
    "net_tx (disk and network as throttles in KB/s). Default: cpu,memory; with --simulate, "
    "cpu.",
)
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Move VMs off hosts about to overload (and consolidate). With --no-migrate the "
    "moves are still planned and reported, never started.",
)
@click.option(
    "--interval",
    type=Finite(min=1.0, max=MAX_INTERVAL),
    default=None,
    help="With --connect: seconds between steps (default 300, at most a day). Each step "
    "reads telemetry as rates since the last one. (--simulate steps at the trace's own "
    "interval.)",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after N steps, not counting those the backend failed (default: run until "
    "Ctrl-C or SIGTERM; with --simulate, until the trace ends, one step per sample).",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --connect: steps the backend may fail in a row (a hypervisor out of reach) "
    "before the run stops with an error; each failure is reported and the next step tries "
    "again.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False),
    default=DEFAULT_LOG,
    show_default=True,
    help="The durable action log (JSON lines). A run with --apply holds it alone, and "
    "takes over and settles the migrations a stopped run left open in it; a dry run only "
    "reads it.",
)
@click.option(
    "--host-mbps",
    type=Finite(min=0.0, min_open=True),
    default=1000.0,
    show_default=True,
    help="With --connect: each host's migration network in Mbit/s (libvirt does not report it).",
)
@click.option(
    "--link-mbps",
    type=Finite(min=0.0, min_open=True),
    default=1000.0,
    show_default=True,
    help="With --site naming two sites or more: the bandwidth between two sites in Mbit/s.",
)
@click.option(
    "--latency-ms",
    type=Finite(min=0.0),
    default=1.0,
    show_default=True,
    help="With --site naming two sites or more: the latency between two sites in milliseconds.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per step (JSON lines): resizes, planned and proposed "
    "moves, settled migrations, anomalies with their evidence, VMs not managed.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="When the run ends, write a self-contained HTML report: what it managed, what it "
    "did, and each step's demand, active hosts, resizes, migrations and anomalies "
    "(needs matplotlib: pip install 'forethought[report]').",
)
@click.option(
    "--serve",
    "address",
    default=None,
    metavar="[HOST:]PORT",
    help="Serve a REST API (/status, /vms, /steps, /healthz, OpenAPI at /docs) and Prometheus "
    "metrics (/metrics) on this address while the run lasts; HOST defaults to 127.0.0.1. "
    "Needs pip install 'forethought[service]'.",
)
def run_cmd(
    uris: tuple[str, ...],
    site_pairs: tuple[str, ...],
    trace: str | None,
    fmt: str | None,
    skip_bad: bool,
    limit: int | None,
    hosts: int,
    pace: float,
    apply: bool,
    policy: str | None,
    inventory: str | None,
    size_text: str | None,
    migrate: bool,
    interval: float | None,
    steps: int | None,
    max_failures: int,
    log_path: str,
    host_mbps: float,
    link_mbps: float,
    latency_ms: float,
    as_json: bool,
    report: str | None,
    address: str | None,
) -> None:
    """Run the control loop on real hypervisors: observe, forecast, decide, act, learn.

    Every --interval seconds forethought reads each running VM's CPU, memory, disk and
    network through libvirt, updates its forecasts, and sizes the --size resources of
    every VM within the policy. Where a host is about to overload it plans moves to
    hosts with room, which the orchestrator starts within its limits (2 migrations per
    host, 4 per link between sites, 16 in all), logs durably, and rolls back if they
    fail.

    By default nothing is changed: the run is a dry run that prints what it would do.
    Add --apply to act. Resizes are made live where the hypervisor allows it (vCPU
    hot-plug and a CPU quota, balloon, block I/O and interface throttles); a change
    that needs a restart is written to the VM's configuration and reported as such,
    and no VM is ever restarted.

    The VMs managed are those running when the run starts; one started later is listed
    as not managed, and its load is not counted on its host. Restart the run to include
    it. What libvirt cannot report is assumed and said so: every host's power curve
    (an HP ML110 G5's, for the energy side of the planner) and the links between sites
    (--link-mbps, --latency-ms). Needs libvirt-python (pip install
    'forethought[libvirt]').

    Without a hypervisor, --simulate TRACE runs the same loop on the simulator: the
    trace's VMs in CloudSim's data centre, one step per sample, as fast as it computes,
    with the same output, action log and --serve; the run says it is simulated.

    \b
    Examples:
      forethought run --connect qemu+ssh://kvm1/system --connect qemu+ssh://kvm2/system
      forethought run --connect qemu:///system --size cpu --no-migrate --apply
      forethought run --connect test:///default --interval 5 --steps 3 --json
      forethought run --simulate bundled:planetlab-20110303 --apply --pace 1 --serve 9187
    """
    from forethought.allocation.inventory import load_inventory
    from forethought.allocation.policy import load_policy
    from forethought.migration.fleet import FleetLoop, FleetSettings
    from forethought.migration.fleet_report import RunTimeline, write_run

    if not uris and trace is None:
        _fail("give --connect URI (one per host), or --simulate TRACE to run on the simulator")
    if uris and trace is not None:
        _fail("--connect and --simulate exclude each other: hypervisors or the simulator")
    if trace is not None and interval is not None:
        _fail("--interval goes with --connect: --simulate steps at the trace's interval")
    if trace is not None and site_pairs:
        _fail("--site goes with --connect: --simulate runs on one site")
    if inventory is not None and policy is None:
        _fail("--inventory goes with --policy: it says which VM is in which group")
    if trace is None and pace:
        _fail("--pace goes with --simulate (a hypervisor's steps are --interval apart)")
    _only_with("--simulate", trace is not None, "hosts", "fmt", "skip_bad", "limit")
    _only_with("--connect", trace is None, "host_mbps", "link_mbps", "latency_ms", "max_failures")
    sites = _sites(uris, site_pairs)
    if len({sites.get(u, "private") for u in uris}) < 2:  # one site: no link between any
        _only_with("--site naming two sites or more", False, "link_mbps", "latency_ms")
    if size_text is None:
        size_text = "cpu" if trace is not None else "cpu,memory"
    sized = _resources(size_text)
    _log_usable(log_path, apply)
    if report is not None:
        _report_writable(report)
        if _same_file(report, log_path):
            _fail(f"--report {report} is the action log: give the report its own file")
    with _errors():
        where = _service_address(address) if address is not None else None
        simulated = _simulated(trace, hosts, fmt, skip_bad, limit) if trace is not None else None
        if simulated is not None:
            _simulator_sizes(simulated, sized)
            interval = simulated.interval
            samples = simulated.u.shape[1]
            if steps is not None and steps > samples:
                _fail(f"--steps {steps}: the trace {trace} has {samples} sample(s), one per step")
            steps = steps or samples
            if apply:
                _fresh_log_for_the_simulator(log_path)
        settings = FleetSettings(
            interval=300.0 if interval is None else interval,
            sized=sized,
            migrate=migrate,
            dry_run=not apply,
            link_mbps=link_mbps,
            latency_ms=latency_ms,
        )
        rules = load_policy(policy) if policy is not None else None
        tags = load_inventory(inventory) if inventory is not None else None
        backend = simulated if simulated is not None else _libvirt(list(uris), sites, host_mbps)
    try:
        with _errors():
            had_log = Path(log_path).exists()
            fleet = FleetLoop(
                backend,
                settings,
                Path(log_path),
                rules,
                cluster=simulated.cluster if simulated is not None else None,
                tags=tags,
            )
            try:
                serving, state = _serve(fleet, where) if where is not None else (None, None)
            except BaseException:  # a busy port, say: leave no empty log of a run never run
                fleet.log.close()
                if not had_log and Path(log_path).exists() and not Path(log_path).stat().st_size:
                    Path(log_path).unlink()
                raise
        _announce(fleet, backend, apply, log_path)
        for note in fleet.notes:
            stderr.print(f"note: {note}", highlight=False, soft_wrap=True)
        if serving is not None:
            stderr.print(
                f"serving {serving.url}: /status, /vms, /steps, /healthz, /metrics "
                "(OpenAPI at /docs)",
                highlight=False,
                soft_wrap=True,
            )
        done = 0
        timeline = RunTimeline()

        stopping = _Stopping()
        output_closed = False
        output_failure = "stdout was closed"

        def on_step(k: int, step: LoopStep) -> None:
            nonlocal done, output_closed, output_failure
            record = fleet.record(k, step)
            timeline.add(record)
            done += 1  # the step is done, whether or not its lines reach a reader
            if state is not None:
                state.observe(record, fleet.last_step_seconds, fleet.vms())
            if output_closed:
                return
            try:
                if as_json:
                    click.echo(_json(record, indent=None))
                else:
                    _print_step(record, not apply)
            except OSError as failed:  # the reader went away (`| head`), or a full disk
                if not isinstance(failed, BrokenPipeError):
                    output_failure = f"stdout failed ({failed.strerror or failed})"
                _discard_stdout()
                output_closed = True
                stopping.event.set()

        try:
            with _errors(), stopping:
                if simulated is not None:  # "sleeping" moves the simulator to the next step
                    sim = simulated

                    def tick(seconds: float) -> None:
                        if pace:
                            stopping.wait(pace)
                        sim.advance(seconds)

                    def run_out() -> None:  # the simulator's clock moves on at will
                        ended = fleet.drain(sim.advance)
                        timeline.settle({"action": o.action, "state": o.state.value} for o in ended)
                        if ended:
                            stderr.print(
                                f"the {len(ended)} simulated migration(s) still under way "
                                "were run to their end",
                                highlight=False,
                                soft_wrap=True,
                            )

                    fleet.run(
                        steps,
                        on_step,
                        clock=sim.now,
                        sleep=tick,
                        stop=stopping.event.is_set,
                        finish=run_out if apply else None,
                    )
                else:
                    fleet.run(
                        steps,
                        on_step,
                        sleep=stopping.wait,
                        on_failure=_failed(max_failures, state),
                        max_failures=max_failures,
                        stop=stopping.event.is_set,
                    )
        except KeyboardInterrupt:  # a second Ctrl-C, mid-step
            stopping.event.set()
        finally:
            if stopping.event.is_set():
                why = f"{output_failure}: " if output_closed else ""
                kept = (
                    "nothing was changed (a dry run)"
                    if not apply
                    else f"the action log {log_path} holds every migration"
                    if simulated is not None
                    else f"the action log {log_path} holds every migration, and a run with "
                    "--apply started on it settles those still open"
                )
                stderr.print(
                    f"{why}stopped after {done} step(s); {kept}",
                    highlight=False,
                    soft_wrap=True,
                )
            if done:
                stderr.print(timeline.summary(), highlight=False, soft_wrap=True)
                if report is not None:  # what was done is reported, even after an error
                    with _errors():
                        write_run(Path(report), fleet.describe(), timeline, "forethought run")
                    stderr.print(f"wrote {report}", highlight=False)
            elif report is not None:
                stderr.print(
                    f"no report written to {report}: the run made no step",
                    highlight=False,
                    soft_wrap=True,
                )
            if serving is not None:
                serving.stop()
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    if output_closed:
        raise SystemExit(1)  # what was printed is incomplete: not a clean end


def _discard_stdout() -> None:
    """Point stdout at /dev/null once its reader is gone, so that nothing written later
    (nor the interpreter's flush at exit) fails again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _only_with(option: str, given: bool, *names: str) -> None:
    """Refuse options that only ``option``'s kind of run reads, given to the other kind."""
    ctx = click.get_current_context()
    for name in names:
        if not given and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
            flag = "--" + {"fmt": "format"}.get(name, name).replace("_", "-")
            _fail(f"{flag} goes with {option}; this run does not use it")


def _log_usable(path: str, apply: bool) -> None:
    """Refuse an action log that is not a regular file (/dev/null would lose every
    record, /dev/zero never end its replay), or that a run with --apply could not write
    (a dry run only reads it, if it exists)."""
    if not path.strip():
        _fail("--log is empty; give a file name for the action log")
    target = Path(path)
    if target.exists() and not target.is_file():
        _fail(f"--log {path}: not a regular file; the action log must be one")
    if apply:
        _writable(path, f"--log {path}")
    elif target.exists() and not os.access(target, os.R_OK):
        _fail(f"--log {path}: not readable")
    elif not target.parent.is_dir():  # a mistyped path, most likely: say so now
        _fail(f"--log {path}: the directory {target.parent} does not exist")
    elif target.exists():  # read, not written: but a trace or policy is no action log
        _not_an_input(target, f"--log {path}")


def _fresh_log_for_the_simulator(path: str) -> None:
    """A simulated run starts a fresh simulator, which knows nothing of the migrations an
    earlier run left open in its log: settling them against it would make up outcomes."""
    from forethought.migration.log import ActionLog

    if not Path(path).exists():
        return
    still_open = ActionLog.open(path, read_only=True).open_actions()
    if still_open:
        _fail(
            f"--log {path} holds {len(still_open)} unsettled migration(s) of an earlier run, "
            "which a fresh simulator cannot settle: give this simulated run its own --log"
        )


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (by path, link or hard link)."""
    first, second = Path(a), Path(b)
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


def _simulator_sizes(simulated: SimulatedBackend, sized: tuple[Resource, ...]) -> None:
    """Refuse to size what the simulator does not play: it has the trace's CPU, and its
    disk and network where the trace has them."""
    played = (Resource.CPU, *simulated.io)
    odd = [r.value for r in sized if r not in played]
    if odd:
        _fail(
            f"--size {', '.join(odd)}: the simulator plays only "
            f"{', '.join(r.value for r in played)} from this trace"
        )


def _failed(limit: int, state: RunState | None) -> Callable[[int, Exception, int], None]:
    def report(k: int, failure: Exception, in_a_row: int) -> None:
        if state is not None:  # --serve says so too: /healthz, /status and the metrics
            state.failed(str(failure))
        stderr.print(
            f"step {k} failed: {failure}; trying again at the next step "
            f"({in_a_row} of {limit} in a row)",
            highlight=False,
            soft_wrap=True,
        )

    return report


def _simulated(
    trace: str, hosts: int, fmt: str | None, skip_bad: bool, limit: int | None
) -> SimulatedBackend:
    """The trace's VMs in CloudSim's data centre, with its disk and network if it has them."""
    import numpy as np

    from forethought.core.resources import BANDWIDTHS
    from forethought.migration.fleet import simulated_fleet
    from forethought.sim.runner import cpu_utilisation

    telemetry = _load(trace, fmt, skip_bad, limit)
    u = cpu_utilisation(telemetry)
    io = {
        r: np.nan_to_num(telemetry.series(r)[0], nan=0.0)[:, : u.shape[1]]
        for r in BANDWIDTHS
        if r in telemetry.resources
    }
    return simulated_fleet(
        u,
        hosts,
        interval=float(telemetry.step_seconds),
        io=io or None,
        names=telemetry.vm_ids,
        start=float(telemetry.start),
    )


def _service_address(address: str) -> tuple[str, int]:
    """The --serve address, checked with the service's packages before anything runs."""
    from forethought.service.server import parse_address
    from forethought.service.state import prometheus

    where = parse_address(address)
    prometheus()  # the extra is installed, or the error says how to install it
    return where


def _serve(fleet: FleetLoop, where: tuple[str, int]) -> tuple[Serving, RunState]:
    from forethought.service.api import create_app
    from forethought.service.server import serve_in_background
    from forethought.service.state import RunState

    state = RunState(fleet.describe())
    return serve_in_background(create_app(state), *where), state


def _announce(fleet: FleetLoop, backend: Backend, apply: bool, log_path: str) -> None:
    """What the run manages and what it assumes, on stderr (stdout stays the steps')."""
    s = fleet.settings
    mode = "acting (--apply)" if apply else "dry run: nothing will be changed (add --apply)"
    groups: dict[str, int] = {}
    for g in fleet.groups.values():
        groups[g] = groups.get(g, 0) + 1
    lines = [
        f"{backend.name}: {len(fleet.vm_ids):,} VM(s) on {len(fleet.host_ids):,} host(s); {mode}",
        f"sizing {', '.join(r.value for r in s.sized)} under {fleet.policy.source} "
        f"({', '.join(f'{g}: {n}' for g, n in groups.items())}); migrations "
        + ("on" if s.migrate else "planned only (--no-migrate)"),
        f"every {s.interval:g} s; action log {log_path}",
    ]
    assumed = fleet.assumptions()
    if assumed:
        mbps = assumed["host_migration_mbps"]
        each = ", ".join(f"{m:g}" for m in (mbps if isinstance(mbps, list) else [mbps]))
        lines.append(
            f"assumed: every host draws power as an {s.power.name}; its migration network "
            f"{each} Mbit/s (--host-mbps)"
            + (
                f"; links between sites {s.link_mbps:g} Mbit/s, {s.latency_ms:g} ms"
                if "link_mbps" in assumed
                else ""
            )
        )
    if backend.simulated:
        lines.append("the backend is simulated: no real hypervisor is behind these figures")
    for line in lines:
        stderr.print(line, highlight=False, soft_wrap=True)


#: The unit of each resource's allocation in the step lines (disk and network: KB/s).
UNITS = {"cpu": "MIPS", "memory": "MB"}
#: Lines listed per kind of action and step; the rest are counted (--json lists all).
SHOWN = 20


def _say(line: str) -> None:
    click.echo(line)  # plain text: a VM's name may hold brackets, which rich reads as markup


def _listed(lines: list[str], what: str) -> None:
    """The first :data:`SHOWN` lines, then how many more there are."""
    for line in lines[:SHOWN]:
        _say(line)
    if len(lines) > SHOWN:
        _say(f"  ... and {len(lines) - SHOWN:,} more {what} (--json lists every one)")


def _print_step(record: dict[str, object], dry_run: bool) -> None:
    """One step in words: a summary line, then a line per action, the started moves and
    the settled migrations first (a large fleet makes many; the rest are counted)."""
    resizes = record["resizes"]
    planned = record["planned"]
    proposed = record["proposed"]
    settled = record["settled"]
    unmanaged = record["unmanaged"]
    assert isinstance(resizes, list)
    assert isinstance(planned, list)
    assert isinstance(proposed, list)
    assert isinstance(settled, list)
    assert isinstance(unmanaged, list)
    live = sum(r["applied"] and r["live"] for r in resizes)
    restart = sum(r["applied"] and not r["live"] for r in resizes)
    other = len(resizes) - live - restart
    started = sum(p["accepted"] for p in proposed)
    _say(
        f"step {record['step']}: {len(resizes)} resize(s) ({live} live, {restart} at restart, "
        f"{other} not applied); {len(planned)} move(s) planned, {started} started, "
        f"{len(settled)} settled"
    )
    _listed(
        [
            f"  migration of {o['vm']} {o['state']}" + (f": {o['message']}" if o["message"] else "")
            for o in settled
        ],
        "settled migrations",
    )
    refused = {p["vm"]: p["why"] for p in proposed if not p["accepted"]}
    unproposed = "dry run: not started" if dry_run else "not proposed"
    begun = {p["vm"] for p in proposed if p["accepted"]}

    def move(m: dict[str, object]) -> str:
        state = (
            "started"
            if m["vm"] in begun
            else f"refused: {refused[m['vm']]}"
            if m["vm"] in refused
            else unproposed
        )
        benefit = m["benefit_wh"]
        assert isinstance(benefit, float)
        return (
            f"  move {m['vm']} {m['source']} -> {m['target']} ({m['kind']}, "
            f"{benefit:,.1f} Wh): {state}"
        )

    first = [m for m in planned if m["vm"] in begun]
    _listed([move(m) for m in first + [m for m in planned if m["vm"] not in begun]], "moves")
    _listed(
        [
            f"  resize {r['vm']} {r['resource']} to {r['amount']:,.1f} "
            f"{UNITS.get(str(r['resource']), 'KB/s')} ({r['reason']}): "
            + (r["message"] or ("live" if r["live"] else "at the next restart"))
            for r in resizes
        ],
        "resizes",
    )
    anomalies = record.get("anomalies", [])
    assert isinstance(anomalies, list)
    _listed(
        [f"  anomaly {a['vm']} {a['resource']} ({a['kind']}): {a['action']}" for a in anomalies],
        "anomalies",
    )
    if unmanaged:
        _say(f"  not managed (started after this run): {', '.join(map(str, unmanaged))}")
