"""An HTML report of a forecast: which models the fleet's forecasts lean on, and the
predicted distribution of a few VMs drawn after their recent history."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence

import numpy as np

from forethought.core.htmlpage import Drawable, counts_table, page, pyplot, svg
from forethought.forecast.base import BoolArray, FloatArray, Forecast

#: History drawn before the forecast, in horizons (at least six hours of five-minute
#: samples): enough to judge the forecast by, little enough that it stays readable.
HISTORY_HORIZONS = 4
HISTORY_MIN_STEPS = 72


def _weights(fc: Forecast) -> str:
    """Mean weight of each model over the VMs the ensemble forecast (a bar chart)."""
    if fc.model_weights is None or len(fc.model_names) < 2:
        return ""
    answered = fc.model_weights.sum(axis=1) > 0
    if not answered.any():
        return ""
    mean = fc.model_weights[answered].mean(axis=0)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.0))
    ax.bar(list(fc.model_names), mean, color="tab:blue")
    ax.set_ylabel("mean weight")
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(axis="y", alpha=0.3)
    text = svg(fig)
    plt.close(fig)
    return (
        "<h2>Which models the forecasts lean on</h2><p>Each VM weighs the models by their "
        f"recent error; the mean weight over the {int(answered.sum()):,} VMs the ensemble "
        "forecast.</p>" + text
    )


def _fan(fc: Forecast, row: int, series: Drawable) -> str:
    plt = pyplot()
    steps = series.values.shape[1]
    shown = min(steps, max(HISTORY_HORIZONS * fc.horizon, HISTORY_MIN_STEPS))
    step_hours = series.step_seconds / 3600.0
    hours = (np.arange(steps - shown, steps) - steps) * step_hours
    ahead = np.arange(1, fc.horizon + 1) * step_hours
    fig, ax = plt.subplots(figsize=(10, 3.2))
    past = series.observed(row)[-shown:]
    ax.plot(hours, past, color="black", linewidth=0.8, label="history")
    levels = list(fc.levels)
    # Bands between the median and each upper level, paler further out; the same below.
    centre = fc.quantile(0.5)[row] if 0.5 in levels else fc.mean[row]
    upper = [q for q in levels if q > 0.5]
    lower = [q for q in levels if q < 0.5]
    for i, q in enumerate(upper):
        alpha = 0.35 - 0.25 * i / max(len(upper), 1)
        ax.fill_between(
            ahead,
            centre,
            fc.quantile(q)[row],
            color="tab:red",
            alpha=alpha,
            linewidth=0,
            label=f"up to p{100 * q:g}",
        )
    for i, q in enumerate(reversed(lower)):
        alpha = 0.35 - 0.25 * i / max(len(lower), 1)
        ax.fill_between(
            ahead,
            fc.quantile(q)[row],
            centre,
            color="tab:green",
            alpha=alpha,
            linewidth=0,
            label=f"down to p{100 * q:g}",
        )
    ax.plot(
        ahead, centre, color="tab:blue", linewidth=1.4, label="median" if 0.5 in levels else "mean"
    )
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("hours from the last sample")
    ax.set_ylabel(series.unit)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="small", ncol=6)
    text = svg(fig)
    plt.close(fig)
    return text


def render(
    fc: Forecast,
    series: Drawable,
    anomalous: BoolArray,
    watched: Sequence[int],
    *,
    title: str,
    source: str,
) -> str:
    """The forecast as one HTML document."""
    flagged = int(np.count_nonzero(anomalous))
    noted = sum(1 for note in fc.notes if note)
    intro = (
        f"<p>Trace: {html.escape(source)}. {fc.n_series:,} VMs forecast "
        f"{fc.horizon} steps ({fc.horizon * series.step_seconds / 60:g} minutes) past their last "
        f"sample, at levels {', '.join(f'{q:g}' for q in fc.levels)}. {flagged:,} VM(s) "
        "are in an anomalous spell (their last observations above the p99 forecast), and "
        f"{noted:,} carry a note on how their forecast was made.</p>"
    )
    parts = [intro, _weights(fc)]
    if watched:
        parts.append(
            "<h2>A few VMs</h2><p>Anomalous VMs first, then those whose hourly level moves "
            "most: their recent history, then the forecast distribution.</p>"
        )
        for row in watched:
            tag = " (anomalous)" if anomalous[row] else ""
            note = f"<p>{html.escape(fc.notes[row])}</p>" if fc.notes[row] else ""
            figure = _fan(fc, row, series)
            parts.append(f"<h3>{html.escape(series.names[row])}{tag}</h3>{note}{figure}")
    parts += [
        "<h2>Notes</h2>",
        counts_table(
            Counter(note for note in fc.notes if note),
            "VMs",
            "note",
            "Every VM was forecast by the models asked for, with no fallback.",
        ),
    ]
    return page(title, "".join(parts))


def watched_rows(anomalous: BoolArray, spread: FloatArray, count: int) -> list[int]:
    """Up to ``count`` VMs to draw: anomalous ones first, then the most moving ones."""
    first = [int(r) for r in np.flatnonzero(anomalous)[:count]]
    rest = [int(r) for r in np.argsort(-spread, kind="stable") if not anomalous[r]]
    return first + rest[: max(count - len(first), 0)]
