"""Allocation commands: policy check, rightsize, anomalies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.table import Table

from forethought.allocation.replay import FIGURES
from forethought.cli.base import (
    _RESOURCE_CHOICE,
    _errors,
    _fail,
    _format_option,
    _inventory_option,
    _json,
    _limit_option,
    _load,
    _progress,
    _report_options,
    _skip_option,
    _trace_help,
    _vm_infos,
    _watch_needs_report,
    main,
    stderr,
    stdout,
)
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource

if TYPE_CHECKING:  # imported where used: the command line starts faster without them
    from forethought.allocation.compare import Comparison
    from forethought.allocation.cross import CrossReport
    from forethought.telemetry.series import Telemetry

#: Short headers for the side-by-side table, one per entry of FIGURES.
COMPACT_HEADERS = ("slack", "short", "unmet", "resizes\n/VM-h", "VMs\n>1% short")


@main.group(name="policy")
def policy_group() -> None:
    """Scaling policy files: validate them and see what they will do."""


@policy_group.command(name="check")
@click.argument("policy_file", type=click.Path(dir_okay=False))
@click.option(
    "--trace",
    default=None,
    help="Also check that every VM of this trace falls in a group, and count each group's VMs.",
)
@_inventory_option
@click.option(
    "--strict",
    is_flag=True,
    help="With --trace, a group that takes no VM of the trace is an error, not a warning.",
)
@_format_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the validated policy as JSON (with --trace, plus vms_per_group).",
)
def policy_check_cmd(
    policy_file: str,
    trace: str | None,
    inventory: str | None,
    strict: bool,
    fmt: str | None,
    as_json: bool,
) -> None:
    """Validate POLICY_FILE and explain, group by group, what it will do.

    A policy file is YAML: version 1, optional sla_classes (highest priority first),
    host_capacity and defaults, and a list of groups. Each group matches VMs by name
    pattern, tags or application, and sets per resource: min, max, the forecast quantile
    to provision for, headroom, the horizon an allocation must hold, the tolerances that
    trigger scaling up and down, the largest step each way, the cooldown between
    decreases and how long the need must stay low first, its SLA class, and the reaction
    to anomalies (alert, scale_up with scale_up_by, isolate). Errors name the file, the
    line and the field, and exit with status 1 before anything runs.

    With --trace, a VM that no group takes is an error; a group that takes no VM of the
    trace is a warning (a policy may serve several fleets), or with --strict an error.
    A trace gives VM names only:
    groups that match on tags or an application need --inventory to say which VM is what.

    \b
    Examples:
      forethought policy check examples/policy.yaml --trace bundled:planetlab-20110303
      forethought policy check examples/policy.yaml --trace DAY_DIR --inventory vms.csv
    """
    from collections import Counter

    from forethought.allocation.policy import load_policy

    if inventory is not None and trace is None:
        _fail("--inventory goes with --trace: it says what the trace's VMs are")
    if strict and trace is None:
        _fail("--strict goes with --trace: it makes a group with no VM of the trace an error")
    if fmt is not None and trace is None:
        _fail("--format goes with --trace: it says how to read the trace")
    counts: Counter[str] = Counter()
    with _errors():
        policy = load_policy(policy_file)
        if trace is not None:
            telemetry = _load(trace, fmt, False, None)
            vms = _vm_infos(telemetry.vm_ids, inventory)
            counts.update(g.name for g in policy.assign(vms, require_all_groups=strict))
    idle = [g.name for g in policy.groups if not counts[g.name]] if trace is not None else []
    if idle:
        hint = "" if inventory else " (tags and applications come from --inventory)"
        stderr.print(
            f"warning: group(s) {', '.join(idle)} take no VM of this trace{hint}",
            highlight=False,
            soft_wrap=True,
        )
    if as_json:
        out = policy.model.model_dump(mode="json")
        if trace is not None:  # what the check found, beside the validated policy
            out["vms_per_group"] = {g.name: counts[g.name] for g in policy.groups}
        click.echo(_json(out))
        return
    stdout.print(policy.explain(), highlight=False)
    if trace is not None:
        stdout.print(f"\nVMs of {trace} per group (first match wins):", highlight=False)
        for group in policy.groups:
            stdout.print(f"  {group.name}: {counts[group.name]:,}", highlight=False)
    stdout.print("\npolicy OK", style="bold green")


@main.command(name="rightsize")
@click.argument("trace", default="bundled:planetlab-20110303")
@_format_option
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Scaling policy file (default: one catch-all group with the default settings).",
)
@click.option(
    "--baseline",
    type=click.Choice(
        ["vpa", "autopilot-peak", "autopilot-percentile", "autopilot-ml", "static-peak", "reactive"]
    ),
    default=None,
    help="Replay a baseline recommender instead of forethought.",
)
@click.option(
    "--resource",
    "resources",
    multiple=True,
    type=_RESOURCE_CHOICE,
    help="Resource to size (repeatable; default: cpu and memory where the trace has them). "
    "Disk and network bandwidths (disk_read, disk_write, net_rx, net_tx) are sized in "
    "KB/s, bounded only by the policy's max, and only by forethought's policies.",
)
@click.option(
    "--resize-delay",
    type=click.IntRange(min=0, max=288),
    default=0,
    show_default=True,
    help="Steps between a decision and the resize taking effect (at most 288, a day of "
    "five-minute steps; forethought forecasts that much further ahead).",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=None,
    help="Steps left out of the scores at the start (default: a day, at most half the trace).",
)
@click.option(
    "--cross-resource/--no-cross-resource",
    default=True,
    show_default=True,
    help="With two or more resources, also detect anomalies across each VM's resources "
    "and act on them as the policy says.",
)
@_inventory_option
@click.option(
    "--versus",
    metavar="NAMES",
    default=None,
    help="Also replay these baselines on the same data and compare them side by side: "
    "comma-separated names (vpa,autopilot-ml) or `all`.",
)
@_report_options(
    "the figures, the slack / shortage trade-off and the demand and allocations of --watch VMs",
    "VMs",
    "those whose hourly level moves most, where recommenders differ",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object keyed by resource (with --versus: by resource, then "
    "recommender, each with `dominated_by`).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
@_skip_option
@_limit_option
@_trace_help
def rightsize_cmd(
    trace: str,
    fmt: str | None,
    policy_file: str | None,
    baseline: str | None,
    resources: tuple[str, ...],
    resize_delay: int,
    warmup: int | None,
    cross_resource: bool,
    inventory: str | None,
    versus: str | None,
    report: str | None,
    watch: int | None,
    as_json: bool,
    progress: bool,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Replay TRACE's demand against allocations decided from the past only.

    Every step the recommender sees the usage so far and sets each VM's allocation; the
    decision takes effect --resize-delay steps later. forethought provisions for a
    forecast quantile plus headroom with hysteresis (see `forethought policy check`);
    the baselines are the Kubernetes VPA recommender (`vpa`), Google Autopilot's
    moving-window and ML recommenders (`autopilot-peak`, `autopilot-percentile`,
    `autopilot-ml`), static peak sizing (`static-peak`) and a reactive threshold scaler
    (`reactive`). Reported per resource (CPU and memory in percent of each VM's
    provisioned size, disk and network bandwidths in KB/s; the figures are ratios):

    \b
      slack                    unused allocation over all allocation
      under_provisioned_share  VM-intervals with demand above allocation
      unmet_share              demand above allocation over all demand
      resizes_per_vm_hour      changes of allocation per VM and hour
      vms_over_1pct            VMs under-provisioned in more than 1 % of intervals
      anomalies                anomalies forethought's manager recorded and acted on
      cross_resource_anomalies of them, found across the VM's resources at once

    With --versus, forethought and the named baselines are replayed on the same data and
    shown side by side, with the recommenders that dominate each one (less slack and
    fewer under-provisioned intervals at once). --report draws the comparison.

    \b
    Examples:
      forethought rightsize bundled:planetlab-20110303
      forethought rightsize path/to/bitbrains/2013-8 --baseline vpa --json
      forethought rightsize bundled:planetlab-20110303 --versus all --report sizes.html
    """
    if policy_file and baseline:
        _fail("give either --policy or --baseline, not both")
    if versus and baseline:
        _fail("--versus compares forethought with baselines; give the baselines to --versus")
    drawn = _watch_needs_report(watch, report, "VMs")
    if inventory is not None and policy_file is None:
        _fail("--inventory goes with --policy: it says which VM is in which group")

    from forethought.allocation.compare import (
        Contender,
        compare_rightsizing,
        contenders,
        parse_versus,
    )
    from forethought.allocation.policy import load_policy

    with _errors():
        baselines = parse_versus(versus) if versus is not None else []
        policy = load_policy(policy_file) if policy_file is not None else None
        telemetry = _load(trace, fmt, skip_bad, limit)
        vms = _vm_infos(telemetry.vm_ids, inventory)
        if policy is not None:
            idle = policy.idle_groups(vms)
            if idle:
                stderr.print(
                    f"note: group(s) {', '.join(idle)} match no VM of this trace",
                    highlight=False,
                    soft_wrap=True,
                )
        label = f"forethought:{Path(policy_file).stem}" if policy_file else "forethought"
        runs = (
            [Contender(baseline, baseline=baseline)]
            if baseline is not None
            else contenders(baselines, policy, label)
        )
        with _progress(progress and not as_json, "replaying") as advance:
            comparison = compare_rightsizing(
                telemetry,
                runs,
                resources=list(resources) or None,
                resize_delay=resize_delay,
                warmup=warmup,
                cross_resource=cross_resource,
                watch=drawn if report is not None else 0,
                progress=lambda label, done, total: advance(done, total),
                vms=vms,
            )
    if as_json and versus is not None:
        click.echo(_json(comparison.to_dict(), indent=2))
    elif as_json:
        only = {r: next(iter(by.values())) for r, by in comparison.scores.items()}
        click.echo(_json({k: v.to_dict() for k, v in only.items()}, indent=2))
    elif versus is not None:
        _side_by_side(trace, comparison)
    else:
        _one_recommender(trace, runs[0].label, comparison)
    if report is not None:
        from forethought.allocation.report import write

        # Written after the figures are out: a failing disk must not take them with it.
        with _errors():
            write(comparison, Path(report), f"rightsizing {trace}", telemetry.source)
        stderr.print(f"report written to {report}", highlight=False)


def _one_recommender(trace: str, name: str, comparison: Comparison) -> None:
    scores = {r: by[name] for r, by in comparison.scores.items()}
    table = Table(title=f"rightsizing {trace} with {name}")
    table.add_column("metric")
    for resource in scores:
        table.add_column(resource, justify="right")
    rows = [
        *FIGURES,
        ("decision_ms_mean", "decision step (ms)", "{:.2f}"),
        ("anomalies", "anomalies acted on", "{:,}"),
        ("cross_resource_anomalies", "  of them cross-resource", "{:,}"),
    ]
    for key, label, fmt_ in rows:
        table.add_row(label, *(fmt_.format(s.to_dict()[key]) for s in scores.values()))
    stdout.print(table)
    for resource, s in scores.items():
        if not s.groups:
            continue
        # The same figures per policy group: does each group hold its own targets?
        by_group = Table(title=f"{resource} by policy group", box=box.SIMPLE_HEAD, pad_edge=False)
        by_group.add_column("group", overflow="fold")
        by_group.add_column("VMs", justify="right")
        for header in COMPACT_HEADERS:
            by_group.add_column(header, justify="right", no_wrap=True)
        for group, g in s.groups.items():
            figures = (fmt_.format(getattr(g, key)) for key, _, fmt_ in FIGURES)
            by_group.add_row(group, f"{g.n_vms:,}", *figures)
        stdout.print(by_group)


def _side_by_side(trace: str, comparison: Comparison) -> None:
    for resource, runs_of in comparison.scores.items():
        table = Table(title=f"rightsizing {trace}: {resource}", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("recommender", overflow="fold")
        for header in COMPACT_HEADERS:
            table.add_column(header, justify="right", no_wrap=True)
        for name, s in runs_of.items():
            d = s.to_dict()
            table.add_row(name, *(fmt_.format(d[key]) for key, _, fmt_ in FIGURES))
        stdout.print(table)
        # Below the table, not in a column: at 80 characters a column would be cut.
        beaten = {n: by for n, by in comparison.dominated_by(resource).items() if by}
        if not beaten:
            stdout.print(
                "no recommender is dominated: none is beaten on slack and shortage at once"
            )
        for name, by in beaten.items():
            stdout.print(f"{name} is dominated by {', '.join(by)}", highlight=False)


@main.command(name="anomalies")
@click.argument("trace", default="bundled:planetlab-20110303")
@_format_option
@click.option(
    "--resource",
    "resources",
    multiple=True,
    type=_RESOURCE_CHOICE,
    help="Resource to watch (repeatable; default: every resource of the trace).",
)
@click.option(
    "--run",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Consecutive steps a deviation must last to count.",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Strongest anomalies across resources listed under the counts (all anomalies of "
    "both kinds with --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every anomaly with its evidence.")
@_report_options(
    "the counts, and every resource of the --watch VMs with their anomalies marked",
    "VMs",
    "those with the strongest anomalies",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
@_skip_option
@_limit_option
@_trace_help
def anomalies_cmd(
    trace: str,
    fmt: str | None,
    resources: tuple[str, ...],
    run: int,
    top: int,
    as_json: bool,
    report: str | None,
    watch: int | None,
    progress: bool,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Find the anomalies in TRACE, per series and across each VM's resources.

    Every (VM, resource) series is forecast one step ahead from its past only, as the
    allocation manager does. A series is anomalous when it stays above its own one-step
    p99 for --run steps. A VM is anomalous across resources when one resource's error,
    given the others' (its partial residual against their usual relation, learned per
    VM), stays above the VM's own 0.999 quantile of that score for --run steps: CPU
    surging while memory falls, network silent while CPU is busy. That catches breaks
    that stay inside every resource's own band, and lets a burst that keeps the usual
    relation pass. Each anomaly keeps its evidence (observations and bounds, or the
    residuals and scores of the run). Resources are taken in percent of each VM's
    capacity where the trace knows it, else in their own unit (KB/s for disk and
    network); a VM needs a day of history before it can be flagged across resources.

    --report draws the VMs with the strongest anomalies, resource by resource, with
    every anomaly marked where it happened.

    \b
    Examples:
      forethought anomalies path/to/bitbrains/2013-8 --resource cpu --resource memory
      forethought anomalies path/to/bitbrains/2013-8 --json > anomalies.json
      forethought anomalies path/to/bitbrains/2013-8 --report anomalies.html --watch 5
    """
    from forethought.allocation.cross import cross_resource_anomalies
    from forethought.allocation.runner import percent_series

    drawn = _watch_needs_report(watch, report, "VMs")

    with _errors():
        telemetry = _load(trace, fmt, skip_bad, limit)
        chosen = [Resource(r) for r in resources] or list(telemetry.resources)
        missing = [r.value for r in chosen if r not in telemetry.resources]
        if missing:
            _fail(f"{telemetry.source}: no {', '.join(missing)} series in the trace")
        if len(set(chosen)) < 2:  # on stderr: the JSON on stdout stays clean
            stderr.print(
                f"note: one resource ({chosen[0].value}): anomalies per series only; "
                "anomalies across resources need two or more",
                highlight=False,
                soft_wrap=True,
            )
        series = {}
        units = {}  # for the report's axes
        for r in dict.fromkeys(chosen):
            try:  # in percent of each VM's capacity where the trace knows it
                series[r] = percent_series(telemetry, r)
                units[r] = "% of capacity"
            except ForethoughtError:  # else in the resource's own unit (KB/s for I/O)
                series[r] = telemetry.series(r)
                units[r] = telemetry.unit(r).value
        with _progress(progress and not as_json, "forecasting") as advance:
            found = cross_resource_anomalies(
                series,
                step_seconds=telemetry.step_seconds,
                run=run,
                progress=advance,
            )
    if as_json:
        out = found.to_dict()
        out["vm_ids"] = list(telemetry.vm_ids)
        out["step_seconds"] = telemetry.step_seconds
        click.echo(_json(out, indent=2))
    else:
        _print_anomalies(trace, telemetry, found, top)
    if report is not None:
        from forethought.allocation.anomaly_report import ranked_vms, render
        from forethought.core.htmlpage import write_page

        # Written after the anomalies are out: a failing disk must not take them with it.
        with _errors():
            text = render(
                found,
                list(series.values()),
                list(units.values()),
                telemetry.vm_ids,
                ranked_vms(found, telemetry.n_vms, drawn),
                title=f"anomalies in {trace}",
                source=telemetry.source,
                step_seconds=telemetry.step_seconds,
                run=run,
            )
            write_page(Path(report), text)
        stderr.print(f"report written to {report}", highlight=False)


def _print_anomalies(trace: str, telemetry: Telemetry, report: CrossReport, top: int) -> None:
    ids = telemetry.vm_ids
    days = telemetry.n_steps * telemetry.step_seconds / 86_400
    summary = Table(title=f"anomalies in {trace} ({telemetry.n_vms} VMs, {days:.1f} days)")
    summary.add_column("kind")
    summary.add_column("anomalies", justify="right")
    summary.add_column("per VM-day", justify="right")
    vm_days = max(telemetry.n_vms * days, 1e-9)
    for kind, count in report.counts():
        summary.add_row(kind, f"{count:,}", f"{count / vm_days:.3f}")
    stdout.print(summary)
    if top and report.events:
        listed = sorted(report.events, key=lambda e: -e.peak)[:top]
        table = Table(title=f"strongest {len(listed)} across resources")
        table.add_column("VM")
        table.add_column("step", justify="right")
        table.add_column("broke ranks")
        table.add_column("errors, last step (" + ", ".join(report.resources) + ")")
        table.add_column("peak score / bar", justify="right")
        for e in listed:
            table.add_row(
                ids[e.vm],
                str(e.step),
                e.dominant,
                ", ".join(f"{x:+.1f}" for x in e.residuals[-1]),
                f"{e.peak:.0f} / {e.threshold:.0f}",
            )
        stdout.print(table)
