"""What a ``forethought run`` did, step by step: its timeline, its summary, its HTML report."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forethought.core.errors import ForethoughtError
from forethought.core.htmlpage import counts_table, page, pyplot, svg, write_page

#: Per-step series of the timeline: (field, label of its plot).
SERIES = (
    ("demand_mips", "CPU demand of the managed VMs (MIPS)"),
    ("active_hosts", "active hosts"),
    ("resizes", "resizes decided per step"),
    ("started", "migrations started per step"),
    ("anomalies", "anomalies per step"),
)


@dataclass
class RunTimeline:
    """Each step's figures, from the step records of
    :meth:`~forethought.migration.fleet.FleetLoop.record`."""

    step: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    demand_mips: list[float] = field(default_factory=list)
    active_hosts: list[int] = field(default_factory=list)
    resizes: list[int] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)
    planned: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    anomalies: list[int] = field(default_factory=list)
    settled: dict[str, int] = field(default_factory=dict)  # this run's migrations ended, by how
    #: Migrations an earlier run left open that this one settled, by how they ended.
    taken_over: dict[str, int] = field(default_factory=dict)
    begun: set[str] = field(default_factory=set)  # action ids this run started
    ended: set[str] = field(default_factory=set)  # ... and of those, the ones settled

    def add(self, record: Mapping[str, Any]) -> None:
        self.step.append(int(record["step"]))
        self.time.append(float(record["time"]))
        self.demand_mips.append(float(record["demand_mips"]))
        self.active_hosts.append(int(record["active_hosts"]))
        self.resizes.append(len(record["resizes"]))
        self.applied.append(sum(bool(r["applied"]) for r in record["resizes"]))
        self.planned.append(len(record["planned"]))
        self.started.append(sum(bool(p["accepted"]) for p in record["proposed"]))
        self.anomalies.append(len(record.get("anomalies", [])))
        self.begun.update(str(p["action"]) for p in record["proposed"] if p["accepted"])
        self.settle(record["settled"])

    def settle(self, settled: Iterable[Mapping[str, Any]]) -> None:
        """Count migrations that ended (a step's ``settled``, or those run to their end
        after the last step)."""
        for o in settled:
            state = str(o["state"])  # as the step records and the log spell it
            own = str(o["action"]) in self.begun
            tally = self.settled if own else self.taken_over
            tally[state] = tally.get(state, 0) + 1
            if own:
                self.ended.add(str(o["action"]))

    @property
    def still_open(self) -> int:
        """Migrations this run started that had not ended by its last step."""
        return len(self.begun - self.ended)

    def summary(self) -> str:
        """One line: what the run did, summed; how its migrations ended, and apart, how
        those it took over from an earlier run did."""
        ended = dict(self.settled)
        if self.still_open:
            ended["still open"] = self.still_open
        settled = ", ".join(f"{n:,} {state}" for state, n in sorted(ended.items()))
        took = sum(self.taken_over.values())
        taken = ", ".join(f"{n:,} {state}" for state, n in sorted(self.taken_over.items()))
        return (
            f"{len(self.step):,} step(s): {sum(self.resizes):,} resize(s) decided, "
            f"{sum(self.applied):,} applied; {sum(self.planned):,} move(s) planned, "
            f"{sum(self.started):,} started"
            + (f" ({settled})" if settled else "")
            + (f"; {took:,} taken over from an earlier run ({taken})" if took else "")
            + f"; {sum(self.anomalies):,} anomaly(ies)"
        )


def render_run(about: Mapping[str, Any], timeline: RunTimeline, title: str) -> str:
    """The run as one self-contained HTML page: what it managed, what it did, timelines."""
    if not timeline.step:
        raise ForethoughtError("nothing to report: the run made no step")
    plt = pyplot()
    mode = "dry run (nothing changed)" if about.get("dry_run") else "acting (--apply)"
    if "migrate" in about and not about["migrate"]:
        mode += ", migrations planned only (--no-migrate)"
    backend = str(about.get("backend", ""))
    if about.get("simulated"):
        backend += ", simulated: no real hypervisor is behind these figures"
    intro = (
        f"<p>{html.escape(backend)}; {len(about.get('vms', [])):,} VMs on "
        f"{len(about.get('hosts', [])):,} hosts; {html.escape(mode)}; sizing "
        f"{html.escape(', '.join(about.get('sized', [])))} under "
        f"{html.escape(str(about.get('policy', '')))}, every "
        f"{float(about.get('interval_seconds', 0.0)):g} s.</p>"
        f"<p>{html.escape(timeline.summary())}.</p>"
    )
    assumed = about.get("assumed") or {}
    if assumed:
        intro += (
            "<p>Assumed, as libvirt does not report it: "
            + html.escape(", ".join(f"{k} {v}" for k, v in assumed.items()))
            + ".</p>"
        )
    ended = dict(timeline.settled)
    if timeline.still_open:
        ended["still open"] = timeline.still_open
    settled = counts_table(ended, "migrations", "ended", "No migration ended during the run.")
    if timeline.taken_over:
        settled += "<h3>taken over from an earlier run</h3>" + counts_table(
            timeline.taken_over, "migrations", "ended", ""
        )
    hours = [(t - timeline.time[0]) / 3600.0 for t in timeline.time]
    sections = []
    for key, label in SERIES:
        fig, ax = plt.subplots(figsize=(9, 2.8))
        ax.plot(hours, getattr(timeline, key), drawstyle="steps-post")
        ax.set_xlabel("hours since the first step")
        ax.set_ylabel(label, fontsize="small")
        ax.grid(alpha=0.3)
        sections.append(f"<section><h2>{html.escape(label)}</h2>{svg(fig)}</section>")
        plt.close(fig)
    return page(title, intro + "<h2>migrations</h2>" + settled + "".join(sections))


def write_run(path: Path, about: Mapping[str, Any], timeline: RunTimeline, title: str) -> None:
    write_page(path, render_run(about, timeline, title))
