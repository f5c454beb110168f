"""An HTML report of a rightsizing comparison: figures per recommender, the trade-off between
slack and shortage, and how each recommender followed the demand of a few VMs."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from forethought.allocation.compare import Comparison
from forethought.allocation.replay import FIGURES, RightsizeScores
from forethought.core.errors import ForethoughtError
from forethought.core.htmlpage import page, pyplot, svg, write_page

#: How each resource is sized, for axis labels.
UNITS = {"cpu": "% of the VM's CPU", "memory": "% of the VM's memory"}
#: Disk and network bandwidths are sized in their own unit.
BANDWIDTH_UNIT = "KB/s"


def _cells(s: RightsizeScores) -> str:
    """The figures of one recommender (or one group of its VMs) as table cells."""
    return "".join(
        f"<td>{html.escape(fmt.format(getattr(s, key)))}</td>" for key, _, fmt in FIGURES
    )


def _table(comparison: Comparison, resource: str) -> str:
    runs = comparison.scores[resource]
    beaten = comparison.dominated_by(resource)
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in FIGURES)
    rows = []
    for name, s in runs.items():
        cells = _cells(s)
        by = ", ".join(beaten[name]) or "none"
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}<td>{html.escape(by)}</td></tr>")
    return f"<table><tr><th>recommender</th>{head}<th>dominated by</th></tr>{''.join(rows)}</table>"


def _groups_table(comparison: Comparison, resource: str) -> str:
    """The figures per policy group, for every recommender that has groups."""
    parts = []
    for name, s in comparison.scores[resource].items():
        if not s.groups:
            continue
        head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in FIGURES)
        rows = "".join(
            f"<tr><th>{html.escape(group)}</th><td>{g.n_vms:,}</td>{_cells(g)}</tr>"
            for group, g in s.groups.items()
        )
        parts.append(
            f"<h3>{html.escape(name)} by policy group</h3>"
            f"<table><tr><th>group</th><th>VMs</th>{head}</tr>{rows}</table>"
        )
    return "".join(parts)


def _tradeoff(comparison: Comparison, resource: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    first = next(iter(comparison.scores[resource]))
    for name, s in comparison.scores[resource].items():
        ours = name == first
        ax.scatter(
            100 * s.under_provisioned_share,
            100 * s.slack,
            marker="*" if ours else "o",
            s=160 if ours else 50,
            color="tab:red" if ours else "tab:blue",
            zorder=3,
        )
        ax.annotate(
            name,
            (100 * s.under_provisioned_share, 100 * s.slack),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize="small",
        )
    ax.set_xlabel("under-provisioned intervals (%)")
    ax.set_ylabel("slack (%)")
    # Shares cannot go below 0 or slack above 100 %, whatever the autoscaled margins say.
    ax.set_xlim(left=0.0)
    ax.set_ylim(0.0, 100.0)
    ax.grid(alpha=0.3)
    text = svg(fig)
    plt.close(fig)
    return text


def _timelines(comparison: Comparison, resource: str) -> list[tuple[str, str]]:
    plt = pyplot()
    demand = comparison.demand.get(resource)
    if demand is None or demand.size == 0:
        return []
    hours = np.arange(demand.shape[1]) * comparison.step_seconds / 3600.0
    runs = comparison.scores[resource]
    scored = next(iter(runs.values())).scored_steps
    scored_from = (demand.shape[1] - scored) * comparison.step_seconds / 3600.0
    out = []
    for k, vm in enumerate(comparison.watched_names):
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.plot(hours, demand[k], color="black", linewidth=0.8, label="demand")
        for name, s in runs.items():
            if s.watched_allocation is not None:
                ax.step(hours, s.watched_allocation[k], where="post", linewidth=1.1, label=name)
        ax.axvspan(0.0, scored_from, color="grey", alpha=0.12, label="warm-up (not scored)")
        ax.set_xlabel("hours")
        ax.set_ylabel(UNITS.get(resource, f"{resource} ({BANDWIDTH_UNIT})"))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize="small", ncol=5)
        out.append((vm, svg(fig)))
        plt.close(fig)
    return out


def render(comparison: Comparison, title: str, source: str) -> str:
    """The whole comparison as one HTML document."""
    if not comparison.scores:
        raise ForethoughtError("nothing to report: no rightsizing results")
    first = next(iter(comparison.scores.values()))
    any_run = next(iter(first.values()))
    intro = (
        f"<p>Trace: {html.escape(source)}. {any_run.n_vms} VMs, {any_run.scored_steps} "
        "steps scored after the warm-up. Every recommender decided each VM's allocation "
        "from the past only; <em>slack</em> is allocated but unused over all allocated, an "
        "<em>under-provisioned interval</em> a VM-step with demand above its allocation. "
        "A recommender is <em>dominated</em> by one with both less slack and fewer "
        "under-provisioned intervals.</p>"
    )
    sections = []
    for resource in comparison.scores:
        parts = [
            f"<section><h2>{html.escape(resource)}</h2>",
            _table(comparison, resource),
            _groups_table(comparison, resource),
            "<h3>Slack against shortage</h3>",
            _tradeoff(comparison, resource),
        ]
        for vm, figure in _timelines(comparison, resource):
            parts.append(f"<h3>Demand and allocations: {html.escape(vm)}</h3>{figure}")
        parts.append("</section>")
        sections.append("".join(parts))
    return page(title, intro + "".join(sections))


def write(comparison: Comparison, path: Path, title: str, source: str) -> None:
    write_page(path, render(comparison, title, source))
