"""Self-contained HTML reports of simulation and two-site runs (figures inlined as SVG).

matplotlib draws the figures (install ``forethought[report]``).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from forethought.allocation.replay import FIGURES
from forethought.core.errors import ForethoughtError
from forethought.core.htmlpage import page, pyplot, svg, write_page
from forethought.migration.hybrid import HybridResult
from forethought.sim.metrics import SimResult

COLUMNS = (
    ("energy_kwh", "energy (kWh)", "{:.2f}"),
    ("slatah", "SLATAH", "{:.4%}"),
    ("pdm", "PDM", "{:.4%}"),
    ("slav", "SLAV", "{:.6%}"),
    ("esv", "ESV", "{:.6f}"),
    ("migrations", "migrations", "{:,}"),
    ("host_shutdowns", "host shutdowns", "{:,}"),
    ("overall_sla_violation", "overall SLA violation", "{:.4%}"),
    ("mean_active_hosts", "mean active hosts", "{:.1f}"),
    ("unmet_share_p99_over_vms", "p99 unmet share (VMs)", "{:.4%}"),
    ("slack", "slack", "{:.1%}"),
    ("wall_seconds", "wall (s)", "{:.2f}"),
)


def _hours(result: SimResult) -> np.ndarray:
    return np.asarray(result.timeline.get("time", []), dtype=np.float64) / 3600.0


def figures(results: list[SimResult]) -> list[tuple[str, str]]:
    """(title, inline SVG) of every figure of the report."""
    plt = pyplot()
    out: list[tuple[str, str]] = []

    def lines(title: str, key: str, ylabel: str, per_interval: bool = False) -> None:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        for r in results:
            y = np.asarray(r.timeline.get(key, []), dtype=np.float64)
            if per_interval and y.size:
                y = np.diff(y, prepend=0.0)
            ax.plot(_hours(r), y, label=r.policy, linewidth=1.2)
        ax.set_xlabel("hours")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        out.append((title, svg(fig)))
        plt.close(fig)

    lines("Active hosts over time", "active_hosts", "active hosts")
    lines("Hosts in SLA violation over time", "sla_violation_hosts", "hosts with unmet demand")
    lines("Migrations per interval", "migrations", "migrations started", per_interval=True)
    lines("Energy (cumulative)", "energy_kwh", "kWh")
    for r in results:
        util = r.host_utilisation
        if util.size == 0:
            continue
        used = np.flatnonzero((util > 0).any(axis=0))
        if used.size == 0:  # no host ever carried load: nothing to draw
            continue
        fig, ax = plt.subplots(figsize=(9, 3.6))
        image = ax.imshow(
            util[:, used].T,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            vmin=0.0,
            vmax=1.0,
            cmap="viridis",
            extent=(0.0, float(_hours(r)[-1]) if r.timeline.get("time") else 1.0, 0, used.size),
        )
        ax.set_xlabel("hours")
        ax.set_ylabel(f"hosts ever used ({used.size})")
        fig.colorbar(image, ax=ax, label="CPU utilisation")
        out.append((f"Host utilisation: {r.policy}", svg(fig)))
        plt.close(fig)
    return out


#: The rightsizing figures of an allocation recommender that ran inside the simulation.
ALLOCATION_COLUMNS = (("recommender", "recommender", "{}"), *FIGURES)


def _allocation_table(results: list[SimResult]) -> str:
    """The allocation figures (as `forethought rightsize` reports them), if any run has them."""
    ran = [r for r in results if r.allocation is not None]
    if not ran:
        return ""
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in ALLOCATION_COLUMNS)
    rows = []
    for r in ran:
        assert r.allocation is not None
        figures_ = r.allocation.to_dict()
        cells = "".join(
            f"<td>{html.escape(fmt.format(figures_[key]))}</td>"
            for key, _, fmt in ALLOCATION_COLUMNS
        )
        rows.append(f"<tr><th>{html.escape(r.policy)}</th>{cells}</tr>")
    return (
        "<section><h2>Allocation inside the simulation (CPU, % of each VM's size)</h2>"
        "<p>Each VM's CPU was capped at the allocation the recommender decided from the "
        "past; demand above a cap is the unmet share.</p>"
        f"<table><tr><th>policy</th>{head}</tr>{''.join(rows)}</table></section>"
    )


def render(results: list[SimResult], title: str, source: str) -> str:
    """The whole report as one HTML document."""
    if not results:
        raise ForethoughtError("nothing to report: no simulation results")
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    rows = []
    for r in results:
        d = r.to_dict()
        cells = "".join(f"<td>{fmt.format(d[key])}</td>" for key, _, fmt in COLUMNS)
        param = "" if r.parameter is None else f" {r.parameter:g}"
        rows.append(f"<tr><th>{html.escape(r.policy + param)}</th>{cells}</tr>")
    body = _allocation_table(results) + "".join(
        f"<section><h2>{html.escape(t)}</h2>{svg}</section>" for t, svg in figures(results)
    )
    intro = (
        f"<p>Trace: {html.escape(source)}. "
        f"{results[0].n_vms} VMs on {results[0].n_hosts} hosts.</p>"
    )
    table = f"<table><tr><th>policy</th>{head}</tr>{''.join(rows)}</table>"
    return page(title, intro + table + body)


def write(results: list[SimResult], path: Path, title: str, source: str) -> None:
    write_page(path, render(results, title, source))


#: The two-site runs' figures: (field, label, format).
HYBRID_COLUMNS = (
    ("completed", "migrations completed", "{:,}"),
    ("cross_site_completed", "across sites", "{:,}"),
    ("cross_site_gb", "GB across", "{:.1f}"),
    ("transfer_cost", "price of the GB", "{:.2f}"),
    ("migration_seconds", "VM-s migrating", "{:,.0f}"),
    ("rolled_back", "rolled back", "{:,}"),
    ("failed", "failed", "{:,}"),
    ("vms_lost", "VMs lost", "{:,}"),
    ("unmet_share", "unmet demand", "{:.3%}"),
    ("unmet_share_with_migration", "with the migrations' slowdown", "{:.4%}"),
    ("energy_kwh", "energy (kWh)", "{:.1f}"),
    ("mean_active_hosts", "mean active hosts", "{:.1f}"),
)


def render_hybrid(results: list[HybridResult], title: str, source: str) -> str:
    """The two-site control-loop runs as one HTML document: a table and their timelines."""
    if not results:
        raise ForethoughtError("nothing to report: no runs")
    plt = pyplot()
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in HYBRID_COLUMNS)
    rows = []
    for r in results:
        d = r.to_dict()
        cells = "".join(f"<td>{fmt.format(d[key])}</td>" for key, _, fmt in HYBRID_COLUMNS)
        rows.append(f"<tr><th>{html.escape(r.ranking)}</th>{cells}</tr>")
    sections = []
    for key, label in (
        ("active_hosts", "active hosts"),
        ("cross_site_started", "migrations started across sites (cumulative)"),
        ("migrations_started", "migrations started (cumulative)"),
        ("rolled_back", "migrations rolled back (cumulative)"),
        ("unmet_share", "unmet share of demand"),
        ("energy_kwh", "energy (kWh, cumulative)"),
    ):
        fig, ax = plt.subplots(figsize=(9, 3.0))
        for r in results:
            ax.plot(r.timeline.get("hours", []), r.timeline.get(key, []), label=r.ranking)
        ax.set_xlabel("hours")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        sections.append(f"<section><h2>{html.escape(label)}</h2>{svg(fig)}</section>")
        plt.close(fig)
    injected = ", ".join(f"{k} x{v}" for k, v in results[0].injected.items())
    note = f"<p>Injected failures: {html.escape(injected)}.</p>" if injected else ""
    intro = f"<p>Trace: {html.escape(source)}. {results[0].vms} VMs, {results[0].steps} steps.</p>"
    table = f"<table><tr><th>ranking</th>{head}</tr>{''.join(rows)}</table>"
    return page(title, intro + note + table + "".join(sections))


def write_hybrid(results: list[HybridResult], path: Path, title: str, source: str) -> None:
    write_page(path, render_hybrid(results, title, source))
