"""An HTML report of a backtest: the scores per horizon step, and the forecasts of a few VMs
drawn over what they then did."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.core.htmlpage import Drawable, counts_table, page, pyplot, svg
from forethought.evaluation.backtest import BacktestResult

#: The per-horizon table: metric key, heading, format.
COLUMNS = (
    ("mae", "MAE", "{:.3f}"),
    ("mase", "MASE", "{:.3f}"),
    ("pinball_95", "pinball_95", "{:.3f}"),
    ("coverage_95", "coverage_95", "{:.3f}"),
    ("under_provisioning", "above p95", "{:.3f}"),
    ("over_provisioning", "p95 slack", "{:.2f}"),
)
#: Where coverage of the p95 should fall at every horizon step.
COVERAGE_BAND = (0.94, 0.96)


def _table(result: BacktestResult) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    rows = [
        "<tr><th>all</th>"
        + "".join(f"<td>{fmt.format(result.scores.overall[k])}</td>" for k, _, fmt in COLUMNS)
        + "</tr>"
    ]
    for row in result.scores.per_horizon:
        cells = "".join(f"<td>{fmt.format(row[k])}</td>" for k, _, fmt in COLUMNS)
        rows.append(f"<tr><th>h = {int(row['h'])}</th>{cells}</tr>")
    return f"<table><tr><th>horizon</th>{head}</tr>{''.join(rows)}</table>"


def _models_table(results: Mapping[str, BacktestResult]) -> str:
    """One row per model: its overall scores and cost."""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    rows = []
    for name, r in results.items():
        cells = "".join(f"<td>{fmt.format(r.scores.overall[k])}</td>" for k, _, fmt in COLUMNS)
        cost = f"<td>{r.cpu_per_1k_series_per_origin:.3f}</td>"
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}{cost}</tr>")
    return (
        f"<table><tr><th>model</th>{head}<th>CPU s / 1k series / origin</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _by_horizon(results: Mapping[str, BacktestResult]) -> str:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator  # loaded with pyplot: an optional extra

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    keys = ("mase", "pinball_95", "coverage_95")
    for name, result in results.items():
        per = result.scores.per_horizon
        h = [int(r["h"]) for r in per]
        for ax, key in zip(axes, keys, strict=True):
            ax.plot(h, [r[key] for r in per], marker="o", markersize=3, label=name)
    for ax, key in zip(axes, keys, strict=True):
        ax.set_title("MASE" if key == "mase" else key, fontsize="medium")
        ax.set_xlabel("horizon step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    low, high = COVERAGE_BAND
    axes[2].axhspan(low, high, color="tab:green", alpha=0.15, label="target band")
    axes[2].legend(fontsize="small")
    fig.tight_layout()
    text = svg(fig)
    plt.close(fig)
    return text


def _forecasts(
    result: BacktestResult, series: Drawable, rows: Sequence[int]
) -> list[tuple[str, str]]:
    if result.point is None or result.p95 is None or not result.origins:
        return []
    plt = pyplot()
    H = result.point.shape[2]
    step_hours = series.step_seconds / 3600.0
    hours = np.arange(series.values.shape[1]) * step_hours
    out = []
    for row in rows:
        fig, ax = plt.subplots(figsize=(10, 3.2))
        ax.plot(hours, series.observed(row), color="black", linewidth=0.8, label="actual")
        for j, t in enumerate(result.origins):
            steps = (t + np.arange(H)) * step_hours
            first = j == 0
            ax.plot(
                steps,
                result.point[row, j],
                color="tab:blue",
                linewidth=1.2,
                label="median forecast" if first else None,
            )
            ax.plot(
                steps,
                result.p95[row, j],
                color="tab:red",
                linewidth=0.9,
                linestyle="--",
                label="p95 forecast" if first else None,
            )
        warm = result.origins[0] * step_hours
        ax.axvspan(0.0, warm, color="grey", alpha=0.12, label="history before the first origin")
        ax.set_xlabel("hours")
        ax.set_ylabel(series.unit)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="small", ncol=4)
        out.append((series.names[row], svg(fig)))
        plt.close(fig)
    return out


def render(
    result: BacktestResult,
    series: Drawable,
    watched: Sequence[int],
    *,
    title: str,
    source: str,
    model: str = "forecaster",
    others: Mapping[str, BacktestResult] | None = None,
) -> str:
    """The whole backtest as one HTML document; ``others`` are models run beside ``model``
    on the same origins (their scores are drawn with its own, its forecasts alone)."""
    if not result.scores.per_horizon:
        raise ForethoughtError("nothing to report: the backtest scored no forecast")
    first, last = result.origins[0], result.origins[-1]
    intro = (
        f"<p>Trace: {html.escape(source)}. {result.n_series:,} series, "
        f"{result.n_origins} origins (steps {first} to {last}), "
        f"{len(result.scores.per_horizon)} steps ahead from each. At every origin the "
        "model had seen only the samples before it. MASE divides each error by the "
        "series' in-sample one-step naive error; <em>coverage_95</em> is the share of "
        "actuals at or below the p95 forecast (target 0.95); <em>pinball_95</em> scores "
        "the p95 forecast, lower is better. CPU time: "
        f"{result.cpu_per_1k_series_per_origin:.3f} s per 1,000 series per origin.</p>"
    )
    everyone = {model: result, **(others or {})}
    parts = [intro]
    if len(everyone) > 1:
        parts += ["<h2>Models side by side</h2>", _models_table(everyone)]
    parts += [
        f"<h2>Scores by horizon step: {html.escape(model)}</h2>",
        _table(result),
        _by_horizon(everyone),
    ]
    figures = _forecasts(result, series, watched)
    if figures:
        parts.append(
            f"<h2>Forecasts of a few series: {html.escape(model)}</h2><p>The series whose "
            "hourly level moves most. Each origin's median and p95 paths are drawn over "
            "what happened.</p>"
        )
        parts += [f"<h3>{html.escape(name)}</h3>{figure}" for name, figure in figures]
    parts += [
        "<h2>Fallbacks</h2>",
        counts_table(
            result.notes,
            "series",
            "note at the last origin",
            "No series fell back to a simpler model at the last origin.",
        ),
    ]
    return page(title, "".join(parts))
