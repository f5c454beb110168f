"""Commands that simulate a data centre: simulate and compare."""

from collections.abc import Callable

import click
from rich.table import Table

from forethought.allocation.replay import FIGURES
from forethought.cli.base import (
    _errors,
    _fail,
    _format_option,
    _inventory_option,
    _json,
    _limit_option,
    _load,
    _progress,
    _report_writable,
    _skip_option,
    _trace_help,
    _vm_infos,
    _writable,
    main,
    stderr,
    stdout,
)
from forethought.cluster.model import MAX_HOSTS
from forethought.core.errors import ForethoughtError
from forethought.sim.metrics import SimResult
from forethought.sim.policies import POLICIES
from forethought.telemetry.series import Telemetry


def _sim_table(results: list[SimResult], title: str) -> Table:
    """Metrics down, policies across: reads well in a terminal of any width."""
    table = Table(title=title)
    table.add_column("metric")
    for r in results:
        name = r.policy if r.parameter is None else f"{r.policy} {r.parameter:g}"
        table.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[SimResult], str]]] = [
        ("energy (kWh)", lambda r: f"{r.energy_kwh:.2f}"),
        ("SLATAH", lambda r: f"{r.slatah:.2%}"),
        ("PDM", lambda r: f"{r.pdm:.3%}"),
        ("SLAV", lambda r: f"{r.slav:.5%}"),
        ("ESV", lambda r: f"{r.esv:.6f}"),
        ("migrations", lambda r: f"{r.migrations:,}"),
        ("host shutdowns", lambda r: f"{r.host_shutdowns:,}"),
        ("overall SLA violation", lambda r: f"{r.overall_sla_violation:.3%}"),
        ("mean active hosts", lambda r: f"{r.mean_active_hosts:.1f}"),
        ("p99 unmet share (VMs)", lambda r: f"{r.unmet_share_p99_over_vms:.3%}"),
        ("slack", lambda r: f"{r.slack:.1%}"),
        ("policy step, mean (ms)", lambda r: f"{1000 * r.policy_step_seconds_mean:.1f}"),
        ("wall (s)", lambda r: f"{r.wall_seconds:.2f}"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results))
    if any(r.allocation is not None for r in results):
        for key, label, fmt_ in (("recommender", "recommender", "{}"), *FIGURES):
            table.add_row(
                f"allocation: {label}",
                *(
                    "" if r.allocation is None else fmt_.format(getattr(r.allocation, key))
                    for r in results
                ),
            )
    return table


def _run_policies(
    trace: str,
    fmt: str | None,
    skip_bad: bool,
    limit: int | None,
    runs: list[tuple[str, float | None]],
    hosts: int,
    show_progress: bool,
    allocate: str | None = None,
    allocation_policy: str | None = None,
    inventory: str | None = None,
) -> tuple[Telemetry, list[SimResult]]:
    from forethought.allocation.policy import load_policy
    from forethought.sim.runner import simulate

    if allocation_policy is not None and allocate != "forethought":
        _fail("--allocation-policy goes with --allocate forethought")
    if inventory is not None and allocation_policy is None:
        _fail("--inventory goes with --allocation-policy: it says which VM is in which group")
    policy = load_policy(allocation_policy) if allocation_policy is not None else None
    telemetry = _load(trace, fmt, skip_bad, limit)
    vms = _vm_infos(telemetry.vm_ids, inventory) if inventory is not None else None
    results = []
    for name, param in runs:
        with _progress(show_progress, f"simulating {name}") as advance:
            results.append(
                simulate(
                    telemetry,
                    name,
                    param,
                    hosts=hosts,
                    allocate=allocate,
                    allocation_policy=policy,
                    progress=advance,
                    vms=vms,
                )
            )
    return telemetry, results


def _check_outputs(report: str | None, timeline: str | None) -> None:
    """Refuse output files that could not be written (a bad path, the same path for both,
    a library missing) before the simulation, not after it."""
    if report is not None:
        _report_writable(report)
    if timeline is not None:
        _writable(timeline)
    if report is not None and timeline is not None:
        from pathlib import Path

        if Path(report).resolve() == Path(timeline).resolve():
            _fail(f"--report and --timeline both name {report}: the second would overwrite it")
    if timeline is not None:
        from forethought.sim.runner import parquet_writer

        with _errors():
            parquet_writer()


def _outputs(
    telemetry: Telemetry,
    results: list[SimResult],
    as_json: bool,
    report: str | None,
    timeline: str | None,
    title: str,
    as_list: bool = False,
) -> None:
    from pathlib import Path

    from forethought.sim import report as html_report
    from forethought.sim.runner import write_timeline

    # The figures go out first: a file that fails to write must not take them with it.
    if as_json:  # simulate prints its run's object, compare a list of them
        payload = [r.to_dict() for r in results]
        click.echo(_json(payload if as_list else payload[0], indent=2))
    else:
        stdout.print(_sim_table(results, title))
    if report is not None:
        html_report.write(results, Path(report), title, telemetry.source)
    if timeline is not None:
        write_timeline(results, timeline)
    for path in (report, timeline):
        if path is not None:
            stderr.print(f"wrote {path}", highlight=False)


_hosts_option = click.option(
    "--hosts",
    type=click.IntRange(min=1, max=MAX_HOSTS),
    default=800,
    show_default=True,
    help="Hosts in the data centre (half HP ML110 G4, half G5, as in CloudSim; host 0 is "
    "a G4, whose 1,860 MIPS cores hold no 2,500 MIPS VM, so a trace needs at least two).",
)
_report_option = click.option(
    "--report",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write a self-contained HTML report with plots to this file.",
)
_timeline_option = click.option(
    "--timeline",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the timeline as Parquet, a row per run and interval: active hosts and hosts "
    "in SLA violation at that interval, energy and migrations so far (running totals), "
    "and the run's policy and parameter.",
)


_allocate_option = click.option(
    "--allocate",
    type=click.Choice(
        [
            "forethought",
            "vpa",
            "autopilot-peak",
            "autopilot-percentile",
            "autopilot-ml",
            "static-peak",
            "reactive",
        ]
    ),
    default=None,
    help="Also run an allocation recommender inside the simulation: each VM's CPU is capped "
    "at the allocation it decided from the past, and the rightsizing figures are reported.",
)
_allocation_policy_option = click.option(
    "--allocation-policy",
    type=click.Path(dir_okay=False),
    default=None,
    help="Scaling policy file for --allocate forethought (default: the default policy).",
)


def _simulation_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options simulate and compare share: data centre size, outputs, input handling."""
    for option in reversed(
        (
            _hosts_option,
            _allocate_option,
            _allocation_policy_option,
            _inventory_option,
            click.option(
                "--json", "as_json", is_flag=True, help="Print JSON (one object per policy)."
            ),
            _report_option,
            _timeline_option,
            click.option(
                "--progress/--no-progress", default=True, help="Show a progress bar on stderr."
            ),
            _skip_option,
            _limit_option,
        )
    ):
        func = option(func)
    return func


@main.command(name="simulate")
@click.argument("trace", default="bundled:planetlab-20110303")
@_format_option
@click.option(
    "--policy",
    "policy_name",
    type=click.Choice(list(POLICIES)),
    default="lr-mmt",
    show_default=True,
    help="Consolidation policy.",
)
@click.option(
    "--param",
    type=float,
    default=None,
    help="The policy's threshold or safety parameter (defaults: thr 0.8, iqr 1.5, "
    "mad 2.5, lr and lrr 1.2, oracle-mmt 1.0; predictive and oracle: the overload "
    "threshold as a share of host capacity, 1.0).",
)
@_simulation_options
@_trace_help
def simulate_cmd(
    trace: str,
    fmt: str | None,
    policy_name: str,
    param: float | None,
    hosts: int,
    allocate: str | None,
    allocation_policy: str | None,
    inventory: str | None,
    as_json: bool,
    report: str | None,
    timeline: str | None,
    progress: bool,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Simulate a data centre running TRACE's VMs under a consolidation policy.

    The data centre is CloudSim 3.0.3's power-aware one (Beloglazov and Buyya 2012):
    800 hosts, half HP ProLiant ML110 G4 and half G5 with their SPECpower curves, VMs of
    four EC2-like types in trace order, one policy step per trace interval, live migration
    taking RAM over half the host bandwidth with a 10 % slowdown. The figures reproduce
    CloudSim's accounting: energy (kWh), SLATAH, PDM, SLAV = SLATAH x PDM, ESV = energy x
    SLAV, migrations, host shutdowns and the overall SLA violation (fractions, not percent,
    in --json), plus mean active hosts, the p99 over VMs of their unmet demand share, and
    slack (the share of active capacity left unused). As in CloudSim, a VM that requests
    0 MIPS at an update leaves the data centre for good, and a host at zero load at the
    start of a frame draws no energy for it, so an idle trace reports no energy and no
    active hosts.

    Policies: dvfs, thr-mmt, iqr-mmt, mad-mmt, lr-mmt, lrr-mmt, and oracle-mmt, the
    oracle hook: overload judged on the true load of the next interval instead of a
    forecast, to show what a perfect forecast would reach.

    predictive is forethought's own planner: every VM's demand forecast as a
    distribution over the next hour, joint host scenarios, the probability that each
    host overloads (its pressure), relief moves ahead of predicted overloads and
    consolidation only where the VMs fit for the whole hour, with cooldowns and budgets
    against ping-pong and thresholds learned online. oracle is the same planner fed the
    true demand of the next hour.

    --allocate runs an allocation recommender inside the simulation (forethought's manager
    or a rightsizing baseline): each VM's CPU is capped at the allocation it decided from
    the past, and the table, JSON and report add its rightsizing figures (see
    `forethought rightsize --help`). CloudSim's figures then see the capped requests;
    demand above a cap counts in the allocation's unmet share.

    \b
    Examples:
      forethought simulate bundled:planetlab-20110303 --policy thr-mmt --param 0.8
      forethought simulate DAY_DIR --policy predictive --json --report day.html
      forethought simulate DAY_DIR --policy predictive --allocate forethought
    """
    _check_outputs(report, timeline)
    with _errors():
        telemetry, results = _run_policies(
            trace,
            fmt,
            skip_bad,
            limit,
            [(policy_name, param)],
            hosts,
            progress and not as_json,
            allocate,
            allocation_policy,
            inventory,
        )
        _outputs(telemetry, results, as_json, report, timeline, f"simulation of {trace}")


@main.command(name="compare")
@click.argument("trace", default="bundled:planetlab-20110303")
@_format_option
@click.option(
    "--policies",
    default="dvfs,thr-mmt,iqr-mmt,mad-mmt,lr-mmt",
    show_default=True,
    help="Comma-separated policies; NAME:PARAM sets one's parameter (thr-mmt:0.9).",
)
@_simulation_options
@_trace_help
def compare_cmd(
    trace: str,
    fmt: str | None,
    policies: str,
    hosts: int,
    allocate: str | None,
    allocation_policy: str | None,
    inventory: str | None,
    as_json: bool,
    report: str | None,
    timeline: str | None,
    progress: bool,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Simulate TRACE under several policies and put them side by side.

    Every policy runs on the same data centre and the same trace (see `forethought
    simulate --help` for the model and the metrics); the table, the JSON list and the HTML
    report hold one row per policy.

    \b
    Example:
      forethought compare bundled:planetlab-20110303 --policies thr-mmt,lr-mmt:1.1 \\
          --report compare.html
    """
    runs: list[tuple[str, float | None]] = []
    for item in filter(None, (p.strip() for p in policies.split(","))):
        name, _, value = item.partition(":")
        if name not in POLICIES:
            _fail(f"--policies: unknown policy {name!r}; choose from {', '.join(POLICIES)}")
        try:
            parameter = float(value) if value else None
        except ValueError:
            _fail(f"--policies: {item!r}: the parameter after ':' must be a number")
        try:  # every parameter is checked before the first run, not when its turn comes
            POLICIES[name].build(parameter)
            POLICIES[name].build_planner(parameter)
        except ForethoughtError as exc:
            _fail(f"--policies: {item!r}: {exc}")
        if (name, parameter) in runs:
            _fail(f"--policies names {item!r} twice")
        runs.append((name, parameter))
    if not runs:
        _fail("--policies: name at least one policy")
    _check_outputs(report, timeline)
    with _errors():
        telemetry, results = _run_policies(
            trace,
            fmt,
            skip_bad,
            limit,
            runs,
            hosts,
            progress and not as_json,
            allocate,
            allocation_policy,
            inventory,
        )
        _outputs(
            telemetry,
            results,
            as_json,
            report,
            timeline,
            f"policies compared on {trace}",
            as_list=True,
        )
