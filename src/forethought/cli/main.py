"""The ``forethought`` command line: every command's --help reads like a manual page."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from inspect import cleandoc
from typing import NoReturn

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forethought import __version__
from forethought.allocation.replay import FIGURES
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource, Unit
from forethought.evaluation.backtest import BacktestConfig, BacktestResult, backtest
from forethought.forecast.engine import make_forecaster, model_names
from forethought.sim.metrics import SimResult
from forethought.sim.policies import POLICIES
from forethought.telemetry.datasets import DATASETS
from forethought.telemetry.load import FORMATS, load_trace
from forethought.telemetry.series import Telemetry

stdout = Console()
stderr = Console(stderr=True)

EXIT_ERROR = 1


def _fail(message: str) -> NoReturn:
    # Escaped: messages quote user input and paths, where "[...]" is not markup.
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(EXIT_ERROR)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn forethought's documented errors into a message and a non-zero exit."""
    try:
        yield
    except ForethoughtError as exc:
        _fail(str(exc))


_RESOURCE_CHOICE = click.Choice([r.value for r in Resource], case_sensitive=False)


TRACE_HELP = (
    "TRACE is a PlanetLab day directory, a Bitbrains GWA-T-12 directory or file (.csv or "
    ".csv.gz), a long-format CSV or Parquet file (vm,timestamp,resource,value[,unit]), or "
    "bundled:NAME for a dataset shipped with forethought (see `forethought datasets`)."
)


def _trace_help(func: Callable[..., None]) -> Callable[..., None]:
    """Append the description of TRACE to a command's manual text."""
    # Dedent first: click dedents the whole text by its smallest indent, which the
    # appended paragraph (at column 0) would otherwise bring down to nothing.
    func.__doc__ = cleandoc(func.__doc__ or "") + "\n\n" + TRACE_HELP
    return func


def _load(trace: str, fmt: str | None, skip_bad: bool, limit: int | None) -> Telemetry:
    telemetry = load_trace(trace, fmt, skip_bad=skip_bad, limit=limit)
    rep = telemetry.repairs
    if rep.skipped:
        stderr.print(f"skipped {len(rep.skipped)} bad record(s) (--skip-bad):", highlight=False)
        for rec in rep.skipped[:20]:
            where = rec.path if rec.line is None else f"{rec.path}, line {rec.line}"
            stderr.print(f"  {where}: {rec.reason}", highlight=False)
        if len(rep.skipped) > 20:
            stderr.print(f"  ... and {len(rep.skipped) - 20} more", highlight=False)
    return telemetry


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="forethought")
def main() -> None:
    """forethought: predict every VM's demand and act before it arrives.

    forethought reads VM telemetry (CPU, memory, disk and network), forecasts every series
    as a calibrated probability distribution, and evaluates those forecasts on real traces.

    \b
    Start here:
      forethought datasets                      what is bundled, where the public traces are
      forethought inspect bundled:planetlab-20110303
      forethought backtest bundled:planetlab-20110303
      forethought forecast TRACE --json > forecast.json

    Every command exits with status 0 on success, 1 on a data or usage error (the message
    names the file, line or field), and 2 on a malformed command line.
    """


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def datasets(as_json: bool) -> None:
    """List the datasets bundled with forethought and the public traces it reads.

    Bundled datasets are used as `bundled:NAME` wherever a TRACE is expected. The full
    public traces are not shipped; the ORIGIN column says where to download them.
    """
    if as_json:
        click.echo(json.dumps([d.__dict__ for d in DATASETS], indent=2))
        return
    table = Table(title="datasets")
    for col in ("name", "bundled", "description", "origin", "licence"):
        table.add_column(col, overflow="fold")
    for d in DATASETS:
        table.add_row(d.name, "yes" if d.bundled else "no", d.description, d.origin, d.licence)
    stdout.print(table)


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Trace format; detected from the files when omitted.",
)
_resource_option = click.option(
    "--resource",
    "resource_name",
    type=_RESOURCE_CHOICE,
    default="cpu",
    show_default=True,
    help="Which resource's series to forecast.",
)
_skip_option = click.option(
    "--skip-bad",
    is_flag=True,
    help="Skip bad records (listed on stderr) instead of stopping at the first one.",
)
_limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Read only the first N VMs."
)


@main.command()
@click.argument("trace")
@_format_option
@_skip_option
@_limit_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@_trace_help
def inspect(trace: str, fmt: str | None, skip_bad: bool, limit: int | None, as_json: bool) -> None:
    """Read TRACE and describe it: VMs, resources, units, grid, and what was repaired."""
    with _errors():
        t = _load(trace, fmt, skip_bad, limit)
    info: dict[str, object] = {
        "source": t.source,
        "vms": t.n_vms,
        "steps": t.n_steps,
        "step_seconds": t.step_seconds,
        "start": t.start,
        "resources": {r.value: u.value for r, u in zip(t.resources, t.units, strict=True)},
        "observed_share": float(t.mask.mean()) if t.mask.size else 0.0,
        "repairs": t.repairs.to_dict(),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if key != "repairs":
            stdout.print(f"{key:>15}: {value}", highlight=False)
    rep = t.repairs
    stdout.print(
        f"{'repairs':>15}: clipped {rep.clipped}, duplicates merged {rep.duplicates_merged}, "
        f"gaps {rep.gaps}, skipped {len(rep.skipped)}",
        highlight=False,
    )
    for note in rep.notes:
        stdout.print(f"{'':>15}  {note}", highlight=False)


def _series(t: Telemetry, resource: Resource, percent: bool) -> tuple[np.ndarray, np.ndarray, Unit]:
    values, mask = t.series(resource)
    unit = t.unit(resource)
    if percent and unit is not Unit.PERCENT:
        values = t.percent_of_capacity(resource)
        unit = Unit.PERCENT
    return values, mask, unit


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None]]:
    if not enabled:
        yield lambda done, total: None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _print_backtest(result: BacktestResult, title: str, unit: Unit) -> None:
    table = Table(title=title)
    cols = [
        ("h", "h"),
        ("mae", "MAE"),
        ("rmse", "RMSE"),
        ("mase", "MASE"),
        ("pinball_95", "pinball@0.95"),
        ("coverage_95", "p95 coverage"),
        ("under_provisioning", "under-prov."),
        ("over_provisioning", "over-prov."),
    ]
    for _, header in cols:
        table.add_column(header, justify="right")
    for row in result.scores.per_horizon:
        table.add_row(*(f"{int(row['h'])}" if k == "h" else f"{row[k]:.3f}" for k, _ in cols))
    overall = result.scores.overall
    table.add_row(*("all" if k == "h" else f"{overall[k]:.3f}" for k, _ in cols), style="bold")
    stdout.print(table)
    stdout.print(
        f"{result.n_series} series x {result.n_origins} origins; errors in {unit.value}; "
        f"CPU {result.cpu_seconds:.2f} s = "
        f"{result.cpu_per_1k_series_per_origin:.3f} s per 1,000 series per origin; "
        f"{result.anomalies} anomalies flagged",
        highlight=False,
    )
    for text, count in sorted(result.notes.items(), key=lambda kv: -kv[1])[:8]:
        stdout.print(f"  {count} series: {text}", highlight=False)


@main.command(name="backtest")
@click.argument("trace", default="bundled:planetlab-20110303")
@_format_option
@_resource_option
@click.option(
    "--percent",
    is_flag=True,
    help="Express the resource in percent of each VM's provisioned capacity.",
)
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Steps ahead to forecast from each origin.",
)
@click.option(
    "--first-origin",
    type=click.IntRange(min=2),
    default=144,
    show_default=True,
    help="Step index of the first forecast origin (history before it warms up).",
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Steps between successive origins.",
)
@click.option(
    "--model",
    type=click.Choice(model_names()),
    default="auto",
    show_default=True,
    help="Model to evaluate; auto is the adaptive ensemble of all of them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@_skip_option
@_limit_option
@_trace_help
def backtest_cmd(
    trace: str,
    fmt: str | None,
    resource_name: str,
    percent: bool,
    horizon: int,
    first_origin: int,
    every: int,
    model: str,
    as_json: bool,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Evaluate forecasts on TRACE by rolling-origin backtest.

    From each origin t = FIRST_ORIGIN, FIRST_ORIGIN + EVERY, ... the model, having seen
    only samples before t, forecasts the next HORIZON steps; the samples up to the next
    origin are then fed to it, as a live service would see them. Scores, overall and per
    horizon step:

    \b
      mae, rmse            error of the median forecast, in the resource's unit
      mase                 MAE over the in-sample one-step naive MAE, mean over series/origins
      pinball_95           quantile loss of the p95 forecast
      coverage_95          share of actuals at or below the p95 forecast (target 0.95)
      under_provisioning   share of actuals above p95 (demand a p95 allocation would miss)
      over_provisioning    mean amount by which p95 exceeds the actual (slack)

    CPU time covers every update and forecast, reported per 1,000 series per origin.
    With no TRACE the bundled PlanetLab day is used.
    """
    with _errors():
        t = _load(trace, fmt, skip_bad, limit)
        resource = Resource(resource_name.lower())
        values, mask, unit = _series(t, resource, percent)
        cfg = BacktestConfig(horizon=horizon, first_origin=first_origin, every=every)
        upper = 100.0 if unit is Unit.PERCENT else None
        label = f"backtest {model}"
        with _progress(not as_json, label) as advance:
            result = backtest(
                lambda: make_forecaster(
                    model, step_seconds=t.step_seconds, horizon=horizon, upper=upper
                ),
                values,
                mask,
                cfg,
                progress=advance,
            )
    if as_json:
        out = {
            "trace": t.source,
            "resource": resource.value,
            "unit": unit.value,
            "model": model,
            "horizon": horizon,
            "first_origin": first_origin,
            "every": every,
            **result.to_dict(),
        }
        click.echo(json.dumps(out, indent=2))
        return
    _print_backtest(result, f"{model} on {t.source} ({resource.value})", unit)


@main.command(name="forecast")
@click.argument("trace")
@_format_option
@_resource_option
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Steps ahead to forecast after the last sample.",
)
@click.option(
    "--model",
    type=click.Choice(model_names()),
    default="auto",
    show_default=True,
    help="Model to use; auto is the adaptive ensemble.",
)
@click.option(
    "--level",
    "levels",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    multiple=True,
    help="Quantile level to forecast (repeatable; default 0.5 0.9 0.95 0.99).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per VM (JSON lines).")
@_skip_option
@_limit_option
@_trace_help
def forecast_cmd(
    trace: str,
    fmt: str | None,
    resource_name: str,
    horizon: int,
    model: str,
    levels: tuple[float, ...],
    as_json: bool,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Forecast the next HORIZON steps of every VM in TRACE after its last sample.

    For each VM: the mean and the quantiles per step, the note of any fallback that shaped
    the forecast (too little history, a constant series, a model that could not fit) and
    whether the VM is in an anomalous spell (its last observations above the p99 forecast).
    """
    from forethought.forecast.base import DEFAULT_LEVELS

    with _errors():
        t = _load(trace, fmt, skip_bad, limit)
        resource = Resource(resource_name.lower())
        values, mask, unit = _series(t, resource, False)
        engine = make_forecaster(
            model,
            step_seconds=t.step_seconds,
            horizon=horizon,
            levels=tuple(levels) or DEFAULT_LEVELS,
            upper=100.0 if unit is Unit.PERCENT else None,
        )
        engine.update(values, mask)
        fc = engine.forecast(horizon)
    flags = engine.anomalies.flags
    if as_json:
        for i, vm in enumerate(t.vm_ids):
            click.echo(
                json.dumps(
                    {
                        "vm": vm,
                        "resource": resource.value,
                        "unit": unit.value,
                        "step_seconds": t.step_seconds,
                        "mean": np.round(fc.mean[i], 4).tolist(),
                        "quantiles": {
                            str(q): np.round(fc.quantiles[i, :, k], 4).tolist()
                            for k, q in enumerate(fc.levels)
                        },
                        "anomalous": bool(flags[i]),
                        "note": fc.notes[i],
                    }
                )
            )
        return
    table = Table(title=f"{resource.value} forecast, next {horizon} steps ({unit.value})")
    for col in ("vm", "median h=1", f"median h={horizon}", "p95 max", "p99 max", "note"):
        table.add_column(col, overflow="fold")
    p95 = fc.quantile(0.95) if 0.95 in fc.levels else fc.quantiles[:, :, -1]
    for i, vm in enumerate(t.vm_ids[:50]):
        table.add_row(
            vm,
            f"{fc.median[i, 0]:.2f}",
            f"{fc.median[i, -1]:.2f}",
            f"{p95[i].max():.2f}",
            f"{fc.quantiles[i, :, -1].max():.2f}",
            ("ANOMALY; " if flags[i] else "") + fc.notes[i],
        )
    stdout.print(table)
    if t.n_vms > 50:
        stdout.print(f"(first 50 of {t.n_vms} VMs; use --json for all)")


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
) -> tuple[Telemetry, list[SimResult]]:
    from forethought.allocation.policy import load_policy
    from forethought.sim.runner import simulate

    if allocation_policy is not None and allocate != "forethought":
        _fail("--allocation-policy goes with --allocate forethought")
    policy = load_policy(allocation_policy) if allocation_policy else None
    telemetry = _load(trace, fmt, skip_bad, limit)
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
                )
            )
    return telemetry, results


def _outputs(
    telemetry: Telemetry,
    results: list[SimResult],
    as_json: bool,
    report: str | None,
    timeline: str | None,
    title: str,
) -> None:
    from pathlib import Path

    from forethought.sim import report as html_report
    from forethought.sim.runner import write_timeline

    if report:
        html_report.write(results, Path(report), title, telemetry.source)
    if timeline:
        write_timeline(results, timeline)
    if as_json:
        payload = [r.to_dict() for r in results]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        stdout.print(_sim_table(results, title))
        for path in (report, timeline):
            if path:
                stderr.print(f"wrote {path}", highlight=False)


_hosts_option = click.option(
    "--hosts",
    type=click.IntRange(min=1),
    default=800,
    show_default=True,
    help="Hosts in the data centre (half HP ML110 G4, half G5, as in CloudSim).",
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
    help="Write the per-interval timeline (active hosts, energy, migrations) as Parquet.",
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
    slack (the share of active capacity left unused).

    \b
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
    Examples:
      forethought simulate bundled:planetlab-20110303 --policy thr-mmt --param 0.8
      forethought simulate DAY_DIR --policy predictive --json --report day.html
      forethought simulate DAY_DIR --policy predictive --allocate forethought
    """
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
            runs.append((name, float(value) if value else None))
        except ValueError:
            _fail(f"--policies: {item!r}: the parameter after ':' must be a number")
    if not runs:
        _fail("--policies: name at least one policy")
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
        )
        _outputs(telemetry, results, as_json, report, timeline, f"policies compared on {trace}")


@main.group(name="policy")
def policy_group() -> None:
    """Scaling policy files: validate them and see what they will do."""


@policy_group.command(name="check")
@click.argument("policy_file", type=click.Path(dir_okay=False))
@click.option(
    "--trace",
    default=None,
    help="Also check that every VM of this trace falls in a group and every group has VMs.",
)
@_format_option
@click.option("--json", "as_json", is_flag=True, help="Print the validated policy as JSON.")
def policy_check_cmd(policy_file: str, trace: str | None, fmt: str | None, as_json: bool) -> None:
    """Validate POLICY_FILE and explain, group by group, what it will do.

    A policy file is YAML: version 1, optional sla_classes (highest priority first),
    host_capacity and defaults, and a list of groups. Each group matches VMs by name
    pattern, tags or application, and sets per resource: min, max, the forecast quantile
    to provision for, headroom, the horizon an allocation must hold, the tolerances that
    trigger scaling up and down, the largest step each way, the cooldown between
    decreases and how long the need must stay low first, its SLA class, and the reaction
    to anomalies (alert, scale_up with scale_up_by, isolate). Errors name the file, the
    line and the field, and exit with status 1 before anything runs.

    \b
    Example:
      forethought policy check examples/policy.yaml --trace bundled:planetlab-20110303
    """
    from forethought.allocation.policy import VmInfo, load_policy

    with _errors():
        policy = load_policy(policy_file)
        if trace is not None:
            telemetry = _load(trace, fmt, False, None)
            policy.assign([VmInfo(v) for v in telemetry.vm_ids])
    if as_json:
        click.echo(policy.model.model_dump_json(indent=2))
        return
    stdout.print(policy.explain(), highlight=False)
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
    type=click.Choice(["cpu", "memory"]),
    help="Resource to size (repeatable; default: cpu and memory where the trace has them).",
)
@click.option(
    "--resize-delay",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Steps between a decision and the resize taking effect.",
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object keyed by resource.")
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
    (`reactive`). Reported per resource, in percent of each VM's provisioned size:

    \b
      slack                    unused allocation over all allocation
      under_provisioned_share  VM-intervals with demand above allocation
      unmet_share              demand above allocation over all demand
      resizes_per_vm_hour      changes of allocation per VM and hour
      vms_over_1pct            VMs under-provisioned in more than 1 % of intervals
      anomalies                anomalies forethought's manager recorded and acted on
      cross_resource_anomalies of them, found across the VM's resources at once

    \b
    Examples:
      forethought rightsize bundled:planetlab-20110303
      forethought rightsize path/to/bitbrains/2013-8 --baseline vpa --json
    """
    if policy_file and baseline:
        _fail("give either --policy or --baseline, not both")
    from forethought.allocation.policy import load_policy
    from forethought.allocation.runner import rightsize

    with _errors():
        policy = load_policy(policy_file) if policy_file else None
        telemetry = _load(trace, fmt, skip_bad, limit)
        if policy is not None:
            from forethought.allocation.policy import VmInfo

            idle = policy.idle_groups([VmInfo(v) for v in telemetry.vm_ids])
            if idle:
                stderr.print(
                    f"note: group(s) {', '.join(idle)} match no VM of this trace",
                    highlight=False,
                    soft_wrap=True,
                )
        with _progress(progress and not as_json, "replaying") as advance:
            scores = rightsize(
                telemetry,
                policy=policy,
                baseline=baseline,
                resources=list(resources) or None,
                resize_delay=resize_delay,
                warmup=warmup,
                cross_resource=cross_resource,
                progress=lambda label, done, total: advance(done, total),
            )
    if as_json:
        click.echo(json.dumps({k: v.to_dict() for k, v in scores.items()}, indent=2))
        return
    name = baseline or "forethought"
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


@main.command(name="hybrid")
@click.argument("trace", default="bundled:planetlab-20110303")
@_format_option
@click.option(
    "--vms",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Take the trace's first N VMs.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Control-loop steps to run (default: the whole trace).",
)
@click.option("--private-hosts", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--public-hosts", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--public-share",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.3,
    show_default=True,
    help="Share of the VMs that start on the public site.",
)
@click.option(
    "--link-mbps",
    type=click.FloatRange(min=0.0, min_open=True),
    default=100.0,
    show_default=True,
    help="Bandwidth of the link between the sites.",
)
@click.option("--latency-ms", type=click.FloatRange(min=0.0), default=30.0, show_default=True)
@click.option(
    "--cost-per-gb",
    type=click.FloatRange(min=0.0),
    default=0.09,
    show_default=True,
    help="Price of a GB sent across the link.",
)
@click.option(
    "--fail-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Inject a failure every N steps, in turn: aborted migrations, overruns, "
    "full targets, the link going down (0: none).",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep each run's durable action log (JSON lines) in this directory.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a self-contained HTML report (table and timelines of both runs).",
)
@click.option(
    "--allocate",
    is_flag=True,
    help="Also size every VM's CPU with forethought's allocation manager (default policy); "
    "its resizes go to the backend, which says whether each was applied live.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per ranking.")
@_skip_option
@_trace_help
def hybrid_cmd(
    trace: str,
    fmt: str | None,
    vms: int,
    steps: int | None,
    private_hosts: int,
    public_hosts: int,
    public_share: float,
    link_mbps: float,
    latency_ms: float,
    cost_per_gb: float,
    fail_every: int,
    log_dir: str | None,
    report: str | None,
    allocate: bool,
    as_json: bool,
    skip_bad: bool,
) -> None:
    """Run the migration control loop on a simulated two-site cluster, twice.

    The full loop, observe, forecast, decide, act, learn, drives the simulated backend:
    the planner scores every host's overload risk from forecast distributions and proposes
    moves, the orchestrator checks each against its pre-conditions and limits (2
    migrations per host, 4 per link, 16 in all), shares the inter-site tunnel among the
    migrations crossing it, logs every state to a durable log and rolls back every
    failure. The private site has HP ML110 G4 hosts (4 GB); the public site G5 hosts with
    8 GB, so more VMs fit on each; the link between them is slow and priced per GB.

    The same run is made with a network-aware ranking (each move's transfer time and price
    count against its benefit) and a network-blind one (energy and risk only), and the
    table sets them side by side: cross-site moves, GB and money sent across, time spent
    migrating, unmet demand, energy. --fail-every injects failures to show each one
    rolled back with no VM lost. --allocate adds the allocation manager to the same loop:
    each VM's CPU is resized through the backend, which reports each change as applied
    live or needing a restart.

    \b
    Examples:
      forethought hybrid bundled:planetlab-20110303 --vms 100
      forethought hybrid DAY_DIR --fail-every 6 --log-dir logs --json
      forethought hybrid --report two-sites.html
    """
    import tempfile
    from pathlib import Path

    from forethought.migration.hybrid import HybridResult, HybridSetup, run_hybrid
    from forethought.sim.runner import cpu_utilisation

    with _errors():
        setup = HybridSetup(
            private_hosts=private_hosts,
            public_hosts=public_hosts,
            link_mbps=link_mbps,
            link_latency_ms=latency_ms,
            cost_per_gb=cost_per_gb,
            public_share=public_share,
            failure_every=fail_every,
        )
        u = cpu_utilisation(_load(trace, fmt, skip_bad, vms))
        results = []
        with tempfile.TemporaryDirectory() as scratch:
            where = Path(log_dir) if log_dir else Path(scratch)
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                _fail(f"--log-dir {log_dir}: {exc.strerror or exc}")
            for aware in (True, False):
                name = "network-aware" if aware else "network-blind"
                results.append(
                    run_hybrid(
                        u,
                        setup,
                        network_aware=aware,
                        log_path=where / f"{name}.jsonl",
                        steps=steps,
                        allocate=allocate,
                    )
                )
        if report:
            from forethought.sim.report import write_hybrid

            write_hybrid(results, Path(report), f"two-site control loop on {trace}", trace)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    table = Table(title=f"two-site control loop on {trace} ({u.shape[0]} VMs)")
    table.add_column("metric")
    for r in results:
        table.add_column(r.ranking, justify="right")
    rows: list[tuple[str, Callable[[HybridResult], str]]] = [
        ("migrations proposed", lambda r: f"{r.proposed:,}"),
        ("started (passed pre-conditions)", lambda r: f"{r.started:,}"),
        ("completed", lambda r: f"{r.completed:,}"),
        ("of them across sites", lambda r: f"{r.cross_site_completed:,}"),
        ("GB sent across / price", lambda r: f"{r.cross_site_gb:.1f} / {r.transfer_cost:.2f}"),
        ("time migrating (VM-s)", lambda r: f"{r.migration_seconds:,.0f}"),
        ("rolled back", lambda r: f"{r.rolled_back:,}"),
        ("failed (VM not found safe)", lambda r: f"{r.failed:,}"),
        ("VMs lost", lambda r: f"{r.vms_lost:,}"),
        ("unmet demand", lambda r: f"{r.unmet_share:.3%}"),
        ("  with the migrations' slowdown", lambda r: f"{r.unmet_share_with_migration:.4%}"),
        ("energy (kWh)", lambda r: f"{r.energy_kwh:.1f}"),
        ("mean active hosts", lambda r: f"{r.mean_active_hosts:.1f}"),
    ]
    if allocate:
        rows.append(
            (
                "resizes live / need restart / refused",
                lambda r: f"{r.resizes_live:,} / {r.resizes_restart:,} / {r.resizes_refused:,}",
            )
        )
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results))
    stdout.print(table)
    if fail_every:
        injected = ", ".join(f"{k} x{v}" for k, v in results[0].injected.items())
        verdict = "all rolled back" if all(r.failures_rolled_back for r in results) else "NOT all"
        stdout.print(f"injected: {injected}; failed migrations: {verdict}")


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
    help="Anomalies listed in the table (all of them with --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every anomaly with its evidence.")
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

    \b
    Examples:
      forethought anomalies path/to/bitbrains/2013-8 --resource cpu --resource memory
      forethought anomalies path/to/bitbrains/2013-8 --json > anomalies.json
    """
    from forethought.allocation.cross import cross_resource_anomalies
    from forethought.allocation.runner import percent_series

    with _errors():
        telemetry = _load(trace, fmt, skip_bad, limit)
        chosen = [Resource(r) for r in resources] or list(telemetry.resources)
        missing = [r.value for r in chosen if r not in telemetry.resources]
        if missing:
            _fail(f"{telemetry.source}: no {', '.join(missing)} series in the trace")
        if len(set(chosen)) < 2:
            _fail(
                f"{telemetry.source}: anomalies across resources need two or more "
                f"(the trace has {', '.join(r.value for r in telemetry.resources)})"
            )
        series = {}
        for r in dict.fromkeys(chosen):
            try:  # in percent of each VM's capacity where the trace knows it
                series[r] = percent_series(telemetry, r)
            except ForethoughtError:  # else in the resource's own unit (KB/s for I/O)
                series[r] = telemetry.series(r)
        with _progress(progress and not as_json, "forecasting") as advance:
            report = cross_resource_anomalies(
                series,
                step_seconds=telemetry.step_seconds,
                run=run,
                progress=advance,
            )
    if as_json:
        out = report.to_dict()
        out["vm_ids"] = list(telemetry.vm_ids)
        out["step_seconds"] = telemetry.step_seconds
        click.echo(json.dumps(out, indent=2))
        return
    ids = telemetry.vm_ids
    days = telemetry.n_steps * telemetry.step_seconds / 86_400
    summary = Table(title=f"anomalies in {trace} ({telemetry.n_vms} VMs, {days:.1f} days)")
    summary.add_column("kind")
    summary.add_column("anomalies", justify="right")
    summary.add_column("per VM-day", justify="right")
    vm_days = max(telemetry.n_vms * days, 1e-9)
    for name in report.resources:
        count = sum(1 for _, res, _ in report.series_events if res == name)
        summary.add_row(f"{name} above its own p99", f"{count:,}", f"{count / vm_days:.3f}")
    n = len(report.events)
    summary.add_row("across resources", f"{n:,}", f"{n / vm_days:.3f}")
    stdout.print(summary)
    if top and report.events:
        listed = sorted(report.events, key=lambda e: -max(e.distance))[:top]
        table = Table(title=f"strongest {len(listed)} across resources")
        table.add_column("VM")
        table.add_column("step", justify="right")
        table.add_column("broke ranks")
        table.add_column("errors, last step (" + ", ".join(report.resources) + ")")
        table.add_column("score / bar", justify="right")
        for e in listed:
            table.add_row(
                ids[e.vm],
                str(e.step),
                e.dominant,
                ", ".join(f"{x:+.1f}" for x in e.residuals[-1]),
                f"{e.distance[-1]:.0f} / {e.threshold:.0f}",
            )
        stdout.print(table)


@main.command(name="hosts")
@click.option(
    "--connect",
    "uris",
    multiple=True,
    required=True,
    help="A libvirt connection URI, one per host (repeatable): qemu+ssh://host/system, "
    "qemu:///system, or test:///default for libvirt's test hypervisor.",
)
@click.option(
    "--site",
    "site_pairs",
    multiple=True,
    help="URI=SITE: the site a host belongs to (repeatable; default: private).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the inventory and a sample as JSON.")
def hosts_cmd(uris: tuple[str, ...], site_pairs: tuple[str, ...], as_json: bool) -> None:
    """Connect to real hypervisors through libvirt and show what forethought sees.

    The same backend protocol the simulator implements: each host's CPUs x MHz and
    memory, its running VMs (vCPUs, memory, migrating or not), and one telemetry sample
    (CPU from each domain's CPU time over a second, memory from the balloon statistics).
    Use it to check connections and permissions before pointing the control loop at a
    fleet. Needs libvirt-python (pip install 'forethought[libvirt]'); an unreachable
    hypervisor is an error naming its URI.

    \b
    Examples:
      forethought hosts --connect test:///default
      forethought hosts --connect qemu+ssh://kvm1/system --connect qemu+ssh://kvm2/system \\
          --site qemu+ssh://kvm2/system=public --json
    """
    import time as _time

    from forethought.cluster.libvirt_backend import LibvirtBackend

    sites = {}
    for pair in site_pairs:
        uri, sep, site = pair.rpartition("=")
        if not sep or not uri or not site:
            _fail(f"--site {pair!r}: write URI=SITE")
        sites[uri] = site
    with _errors():
        backend = LibvirtBackend(list(uris), sites=sites)
        try:
            inventory = backend.inventory()
            backend.telemetry()
            _time.sleep(1.0)
            sample = backend.telemetry()
        finally:
            backend.close()
    usage = dict(zip(sample.vm_ids, sample.demand.tolist(), strict=True))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "hosts": [h.__dict__ for h in inventory.hosts],
                    "vms": [
                        {
                            **v.__dict__,
                            "cpu_used_mips": usage[v.id][0],
                            "memory_used_mb": usage[v.id][1],
                        }
                        for v in inventory.vms
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"{len(inventory.hosts)} host(s) through libvirt")
    for column in ("host", "site", "CPU (MIPS)", "memory (MB)", "VMs"):
        table.add_column(column, justify="left" if column in ("host", "site") else "right")
    for h in inventory.hosts:
        count = sum(v.host == h.id for v in inventory.vms)
        table.add_row(h.id, h.site, f"{h.cpu_mips:,.0f}", f"{h.memory_mb:,.0f}", str(count))
    stdout.print(table)
    vms = Table(title="running VMs")
    for column in ("VM", "host", "CPU (MIPS)", "used", "memory (MB)", "used (MB)", "migrating"):
        vms.add_column(column, justify="left" if column in ("VM", "host") else "right")
    for v in inventory.vms:
        cpu, memory = usage.get(v.id, (0.0, 0.0))
        vms.add_row(
            v.id,
            v.host,
            f"{v.cpu_mips:,.0f}",
            f"{cpu:,.0f}",
            f"{v.memory_mb:,.0f}",
            f"{memory:,.0f}",
            "yes" if v.migrating else "no",
        )
    stdout.print(vms)
