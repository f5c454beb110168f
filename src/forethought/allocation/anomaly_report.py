"""An HTML report of anomaly detection: the counts, and the VMs with the strongest anomalies
drawn resource by resource, with every anomaly marked where it happened."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from forethought.allocation.cross import CrossReport
from forethought.core.htmlpage import page, pyplot, svg
from forethought.forecast.base import BoolArray, FloatArray

#: The stretch of time drawn around each VM's strongest anomaly.
WINDOW_SECONDS = 86_400


def ranked_vms(report: CrossReport, n_vms: int, count: int) -> list[int]:
    """Up to ``count`` VMs with anomalies, strongest first.

    A VM's strength is its largest cross-resource score over the bar it crossed (at least
    one for a flagged VM); VMs flagged per series only follow, most anomalies first.
    """
    if count <= 0:
        return []
    cross = np.zeros(n_vms)
    for e in report.events:
        cross[e.vm] = max(cross[e.vm], e.peak / max(e.threshold, 1e-12))
    per_series = np.zeros(n_vms)
    for vm, _, _ in report.series_events:
        per_series[vm] += 1
    flagged = np.flatnonzero((cross > 0) | (per_series > 0))
    order = sorted(flagged.tolist(), key=lambda v: (-cross[v], -per_series[v], v))
    return order[:count]


def _figure(
    report: CrossReport,
    vm: int,
    series: Sequence[tuple[FloatArray, BoolArray]],
    units: Sequence[str],
    step_seconds: int,
) -> str:
    plt = pyplot()
    R = len(report.resources)
    step_hours = step_seconds / 3600.0
    spans = [e for e in report.events if e.vm == vm]
    marks = [(res, a) for v, res, a in report.series_events if v == vm]
    # Half a day either side of the VM's strongest anomaly: over a month, a run of three
    # five-minute steps would be too thin to see.
    if spans:
        centre = max(spans, key=lambda e: e.peak / max(e.threshold, 1e-12)).step
    else:
        centre = max(marks, key=lambda m: max(np.subtract(m[1].observed, m[1].upper)))[1].step
    steps = series[0][0].shape[1]
    half = max(1, round(WINDOW_SECONDS / 2 / step_seconds))
    lo, hi = max(0, centre - half), min(steps, centre + half + 1)
    fig, axes = plt.subplots(R, 1, figsize=(10, 1.9 * R + 0.6), sharex=True, squeeze=False)
    for r, name in enumerate(report.resources):
        ax = axes[r, 0]
        values, mask = series[r]
        hours = np.arange(lo, hi) * step_hours
        seen = np.where(mask[vm, lo:hi], values[vm, lo:hi], np.nan)
        ax.plot(hours, seen, color="black", linewidth=0.7)
        for e in spans:  # a cross-resource anomaly spans every resource of the VM
            first = e.first_step
            if e.step < lo or first >= hi:
                continue
            ax.axvspan(first * step_hours, (e.step + 1) * step_hours, color="tab:purple", alpha=0.3)
        for res, a in marks:
            first = a.step - len(a.observed) + 1
            if res != name or a.step < lo or first >= hi:
                continue
            at = (first + np.arange(len(a.observed))) * step_hours
            ax.scatter(at, a.observed, color="tab:red", s=14, zorder=3)
            ax.scatter(at, a.upper, color="tab:red", marker="_", s=60, zorder=3)
        ax.set_ylabel(f"{name}\n({units[r]})", fontsize="small")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("hours from the start of the trace")
    fig.tight_layout()
    text = svg(fig)
    plt.close(fig)
    return text


def render(
    report: CrossReport,
    series: Sequence[tuple[FloatArray, BoolArray]],
    units: Sequence[str],
    names: Sequence[str],
    watched: Sequence[int],
    *,
    title: str,
    source: str,
    step_seconds: int,
    run: int,
) -> str:
    """The anomalies as one HTML document."""
    n_vms = len(names)
    days = series[0][0].shape[1] * step_seconds / 86_400 if series else 0.0
    vm_days = max(n_vms * days, 1e-9)
    table = "".join(
        f"<tr><th style='text-align:left'>{html.escape(kind)}</th><td>{count:,}</td>"
        f"<td>{count / vm_days:.3f}</td></tr>"
        for kind, count in report.counts()
    )
    parts = [
        f"<p>Trace: {html.escape(source)}. {n_vms:,} VMs over {days:.1f} days. Every series "
        "was forecast one step ahead from its past only; an anomaly is a run of "
        f"{run} steps, and keeps its evidence.</p>",
        "<table><tr><th>kind</th><th>anomalies</th><th>per VM-day</th></tr>" + table + "</table>",
    ]
    if watched:
        parts.append(
            "<h2>The strongest</h2><p>VMs flagged across resources first (by how far their "
            "score went over the bar), then those with the most anomalies per series, each "
            "drawn over the day around its strongest anomaly. "
            "Shaded: a run of steps whose errors broke the VMs' usual relation between "
            "resources. Red dots: observations above the series' one-step p99, with that "
            "bound as a red dash.</p>"
        )
        for vm in watched:
            figure = _figure(report, vm, series, units, step_seconds)
            parts.append(f"<h3>{html.escape(names[vm])}</h3>{figure}")
    else:
        parts.append("<p>No anomaly was found.</p>")
    return page(title, "".join(parts))
