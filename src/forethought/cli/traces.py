"""Commands on traces and forecasts: datasets, inspect, backtest, forecast."""

import math
from functools import partial
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from forethought.cli.base import (
    Finite,
    _errors,
    _fail,
    _format_option,
    _json,
    _limit_option,
    _load,
    _progress,
    _report_options,
    _resource_option,
    _skip_option,
    _trace_help,
    _watch_needs_report,
    main,
    stderr,
    stdout,
)
from forethought.core.htmlpage import Drawable, write_page
from forethought.core.resources import Resource, Unit
from forethought.evaluation.backtest import BacktestConfig, BacktestResult, backtest
from forethought.forecast.base import Forecast
from forethought.forecast.engine import make_forecaster, model_names
from forethought.telemetry.datasets import DATASETS
from forethought.telemetry.select import hourly_level_spread, top_rows
from forethought.telemetry.series import Telemetry

#: The longest horizon the commands accept: a day of five-minute steps.
MAX_HORIZON = 288


@main.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object instead of a table: the datasets under `datasets`.",
)
def datasets(as_json: bool) -> None:
    """List the datasets bundled with forethought and the public traces it reads.

    Bundled datasets are used as `bundled:NAME` wherever a TRACE is expected. The full
    public traces are not shipped; the ORIGIN column says where to download them.
    """
    if as_json:
        click.echo(_json({"datasets": [d.__dict__ for d in DATASETS]}, indent=2))
        return
    table = Table(title="datasets")
    for col in ("name", "bundled", "description", "origin", "licence"):
        table.add_column(col, overflow="fold")
    for d in DATASETS:
        table.add_row(d.name, "yes" if d.bundled else "no", d.description, d.origin, d.licence)
    stdout.print(table)


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
        t = _load(trace, fmt, skip_bad, limit, repairs=False)  # shown in full below
    info: dict[str, object] = {
        "source": t.source,
        "vms": t.n_vms,
        "steps": t.n_steps,
        "step_seconds": t.step_seconds,
        "start": t.start,
        "resources": dict(_units(t)),
        "observed_share": float(t.mask.mean()) if t.mask.size else 0.0,
        "repairs": t.repairs.to_dict(),
    }
    if as_json:
        click.echo(_json(info, indent=2))
        return
    for key, value in info.items():
        if key == "resources":
            value = ", ".join(f"{r} ({u})" for r, u in _units(t))
        elif key == "observed_share":
            value = f"{float(value):.2%}"  # type: ignore[arg-type]
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


def _units(t: Telemetry) -> list[tuple[str, str]]:
    """(resource, unit) of each series of a trace, in the trace's order."""
    return [(r.value, u.value) for r, u in zip(t.resources, t.units, strict=True)]


def _series(t: Telemetry, resource: Resource, percent: bool) -> tuple[np.ndarray, np.ndarray, Unit]:
    values, mask = t.series(resource)
    unit = t.unit(resource)
    if percent and unit is not Unit.PERCENT:
        values = t.percent_of_capacity(resource)
        unit = Unit.PERCENT
    return values, mask, unit


def _drawable(
    t: Telemetry, values: np.ndarray, mask: np.ndarray, resource: Resource, unit: Unit
) -> Drawable:
    """The series of one resource, as a report draws them."""
    return Drawable(values, mask, t.vm_ids, t.step_seconds, f"{resource.value} ({unit.value})")


def _versus_models(versus: str | None, model: str) -> list[str]:
    """The models named by --versus, checked before anything runs."""
    if versus is None:
        return []
    names = [n.strip() for n in versus.split(",") if n.strip()]
    known = model_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        _fail(f"--versus: unknown model(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if not names:
        _fail("--versus needs at least one model name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        _fail(f"--versus names {', '.join(repeated)} twice")
    if model in names:
        _fail(f"--versus names {model}, which --model {model} already runs")
    return names


def _figure(value: float) -> str:
    """A score for a table: three decimals, or "n/a" where it is undefined (a MASE with
    no in-sample variation, a coverage with no observation)."""
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def _print_side_by_side(results: dict[str, BacktestResult], title: str) -> None:
    table = Table(title=f"backtest of {title}")
    headers = ("MASE", "pinball_95", "coverage_95", "over h", "MAE", "CPU s*")
    table.add_column("model")
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    for name, r in results.items():
        o = r.scores.overall
        cov = [c for row in r.scores.per_horizon if math.isfinite(c := row["coverage_95"])]
        cov = cov or [math.nan]
        table.add_row(
            name,
            _figure(o["mase"]),
            _figure(o["pinball_95"]),
            _figure(o["coverage_95"]),
            f"{_figure(min(cov))}-{_figure(max(cov))}",
            _figure(o["mae"]),
            _figure(r.cpu_per_1k_series_per_origin),
        )
    stdout.print(table)
    first = next(iter(results.values()))
    stdout.print(
        f"{first.n_series} series x {first.n_origins} origins, the same for every model; "
        "over h: coverage_95 min-max over the horizon steps; *CPU s per 1,000 series per "
        "origin",
        highlight=False,
    )


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
        table.add_row(*(f"{int(row['h'])}" if k == "h" else _figure(row[k]) for k, _ in cols))
    overall = result.scores.overall
    table.add_row(*("all" if k == "h" else _figure(overall[k]) for k, _ in cols), style="bold")
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
    type=click.IntRange(min=1, max=MAX_HORIZON),
    default=12,
    show_default=True,
    help=f"Steps ahead to forecast from each origin (at most {MAX_HORIZON}).",
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
    help=(
        "Model to evaluate; auto is the adaptive ensemble of the native models. "
        "autoets, autoarima and autotheta need forethought[statsforecast], "
        "lstm needs forethought[lstm] (PyTorch)."
    ),
)
@click.option(
    "--versus",
    default=None,
    metavar="NAMES",
    help="Also backtest these models on the same data and put them side by side: "
    "comma-separated names from the --model list (median,ewma,last).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object instead of a table (with --versus: keyed by model under `models`).",
)
@_report_options(
    "the scores by horizon step, drawn (every model of --versus too), and the forecasts "
    "of --watch series over what happened",
    "series",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
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
    versus: str | None,
    as_json: bool,
    report: str | None,
    watch: int | None,
    progress: bool,
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
    With no TRACE the bundled PlanetLab day is used. --versus runs more models on the
    same origins and puts them side by side. --report writes the scores and a few
    series' forecasts, drawn, to one HTML file.

    \b
    Examples:
      forethought backtest bundled:planetlab-20110303 --versus median,ewma,last
      forethought backtest DAY_DIR --json --report backtest.html
    """
    shown = _watch_needs_report(watch, report, "series")
    models = [model, *_versus_models(versus, model)]
    with _errors():
        t = _load(trace, fmt, skip_bad, limit)
        resource = Resource(resource_name.lower())
        values, mask, unit = _series(t, resource, percent)
        cfg = BacktestConfig(horizon=horizon, first_origin=first_origin, every=every)
        upper = 100.0 if unit is Unit.PERCENT else None
        results: dict[str, BacktestResult] = {}
        for name in models:
            with _progress(progress and not as_json, f"backtest {name}") as advance:
                results[name] = backtest(
                    partial(
                        make_forecaster,
                        name,
                        step_seconds=t.step_seconds,
                        horizon=horizon,
                        upper=upper,
                    ),
                    values,
                    mask,
                    cfg,
                    progress=advance,
                )
    result = results[model]
    if as_json:
        out: dict[str, object] = {
            "trace": t.source,
            "resource": resource.value,
            "unit": unit.value,
            "horizon": horizon,
            "first_origin": first_origin,
            "every": every,
        }
        if len(models) > 1:
            out["models"] = {name: r.to_dict() for name, r in results.items()}
        else:
            out = {**out, "model": model, **result.to_dict()}
        click.echo(_json(out, indent=2))
    elif len(models) > 1:
        _print_side_by_side(results, f"{t.source} ({resource.value}, errors in {unit.value})")
    else:
        _print_backtest(result, f"{model} on {t.source} ({resource.value})", unit)
    if report is not None:
        from forethought.evaluation.report import render

        rows = top_rows(hourly_level_spread(values, mask, t.step_seconds), shown)
        series = _drawable(t, values, mask, resource, unit)
        # Written after the scores are out: a failing disk must not take them with it.
        with _errors():
            text = render(
                result,
                series,
                rows.tolist(),
                title=f"backtest of {model} on {t.source}",
                source=f"{t.source} ({resource.value}, {unit.value})",
                model=model,
                others={name: r for name, r in results.items() if name != model},
            )
            write_page(Path(report), text)
        stderr.print(f"report written to {report}", highlight=False)


@main.command(name="forecast")
@click.argument("trace")
@_format_option
@_resource_option
@click.option(
    "--horizon",
    type=click.IntRange(min=1, max=MAX_HORIZON),
    default=12,
    show_default=True,
    help=f"Steps ahead to forecast after the last sample (at most {MAX_HORIZON}: the "
    "engine keeps every path it issued within the horizon, so its memory grows with the "
    "square of the horizon).",
)
@click.option(
    "--model",
    type=click.Choice(model_names()),
    default="auto",
    show_default=True,
    help=(
        "Model to use; auto is the adaptive ensemble of the native models. "
        "autoets, autoarima and autotheta need forethought[statsforecast], "
        "lstm needs forethought[lstm] (PyTorch)."
    ),
)
@click.option(
    "--level",
    "levels",
    type=Finite(0, 1, min_open=True, max_open=True),
    multiple=True,
    help="Quantile level to forecast (repeatable; default 0.5 0.9 0.95 0.99).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object: the trace, resource and unit, and under `vms` each VM's "
    "forecast (vm, mean, quantiles by level, anomalous, note, model_weights).",
)
@click.option(
    "--jsonl",
    "as_jsonl",
    is_flag=True,
    help="Print one JSON object per VM per line instead (JSON Lines), to stream a large "
    "fleet into another tool.",
)
@_report_options(
    "which models the forecasts lean on, and the last day and the forecast distribution "
    "of --watch VMs",
    "VMs",
    "the anomalous ones, then those whose hourly level moves most",
)
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
    as_jsonl: bool,
    report: str | None,
    watch: int | None,
    skip_bad: bool,
    limit: int | None,
) -> None:
    """Forecast the next HORIZON steps of every VM in TRACE after its last sample.

    For each VM: the mean and the quantiles per step, the note of any fallback that shaped
    the forecast (too little history, a constant series, a model that could not fit) and
    whether the VM is in an anomalous spell (its last observations above the p99 forecast).
    --report draws the forecasts of a few VMs, anomalous ones first, in one HTML file.
    """
    from forethought.forecast.base import DEFAULT_LEVELS

    drawn = _watch_needs_report(watch, report, "VMs")
    if as_json and as_jsonl:
        raise click.UsageError("choose one of --json and --jsonl")
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
    if as_json or as_jsonl:
        per_vm = _forecast_records(t, fc, flags, resource, unit)
        if as_jsonl:
            for record in per_vm:
                click.echo(_json(record, indent=None))
        else:
            head = {
                "trace": t.source,
                "resource": resource.value,
                "unit": unit.value,
                "step_seconds": t.step_seconds,
                "horizon": horizon,
                "model": model,
                "levels": list(fc.levels),
                "n_vms": t.n_vms,
                "anomalous": int(np.count_nonzero(flags)),
            }
            click.echo(_json({**head, "vms": per_vm}, indent=2))
    else:
        _print_forecast(t, fc, flags, resource, unit, horizon)
    if report is not None:
        from forethought.forecast.report import render, watched_rows

        rows = watched_rows(flags, hourly_level_spread(values, mask, t.step_seconds), drawn)
        series = _drawable(t, values, mask, resource, unit)
        # Written after the forecasts are out: a failing disk must not take them with it.
        with _errors():
            text = render(
                fc,
                series,
                flags,
                rows,
                title=f"{resource.value} forecast of {t.source}",
                source=f"{t.source} ({resource.value}, {unit.value}), model {model}",
            )
            write_page(Path(report), text)
        stderr.print(f"report written to {report}", highlight=False)


def _forecast_records(
    t: Telemetry, fc: Forecast, flags: np.ndarray, resource: Resource, unit: Unit
) -> list[dict[str, object]]:
    """Each VM's forecast as a JSON-ready record (what --json and --jsonl print)."""
    weights = fc.model_weights if len(fc.model_names) > 1 else None
    return [
        {
            "vm": vm,
            "resource": resource.value,
            "unit": unit.value,
            "step_seconds": t.step_seconds,
            "mean": np.round(fc.mean[i], 4).tolist(),
            "quantiles": {
                str(q): np.round(fc.quantiles[i, :, k], 4).tolist() for k, q in enumerate(fc.levels)
            },
            "anomalous": bool(flags[i]),
            "note": fc.notes[i],
            # Which models this VM's forecast leans on (empty: one model, or the fallback
            # answered; the note says which).
            "model_weights": {
                name: round(float(w), 4) for name, w in zip(fc.model_names, weights[i], strict=True)
            }
            if weights is not None and weights[i].sum() > 0
            else {},
        }
        for i, vm in enumerate(t.vm_ids)
    ]


def _print_forecast(
    t: Telemetry, fc: Forecast, flags: np.ndarray, resource: Resource, unit: Unit, horizon: int
) -> None:
    table = Table(title=f"{resource.value} forecast, next {horizon} steps ({unit.value})")
    # The upper levels actually forecast (at most the top two), each under its own name.
    upper = [(k, q) for k, q in enumerate(fc.levels) if q > 0.5][-2:]
    headers = ["vm", "median h=1", f"median h={horizon}"]
    headers += [f"p{100 * q:g} max" for _, q in upper] + ["note"]
    for col in headers:
        table.add_column(col, overflow="fold")
    for i, vm in enumerate(t.vm_ids[:50]):
        table.add_row(
            vm,
            f"{fc.median[i, 0]:.2f}",
            f"{fc.median[i, -1]:.2f}",
            *(f"{fc.quantiles[i, :, k].max():.2f}" for k, _ in upper),
            ("ANOMALY; " if flags[i] else "") + fc.notes[i],
        )
    stdout.print(table)
    if t.n_vms > 50:
        stdout.print(f"(first 50 of {t.n_vms} VMs; use --json or --jsonl for all)")
