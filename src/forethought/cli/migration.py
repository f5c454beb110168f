"""Migration and hypervisor commands: hybrid (the control loop on two sites) and hosts."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
import numpy as np
from rich.table import Table

from forethought.cli.base import (
    Finite,
    _connect_options,
    _errors,
    _fail,
    _format_option,
    _inventory_option,
    _json,
    _load,
    _not_an_input,
    _report_writable,
    _sites,
    _skip_option,
    _trace_help,
    _vm_infos,
    main,
    stderr,
    stdout,
)
from forethought.cluster.model import MAX_HOSTS
from forethought.core.resources import BANDWIDTHS

if TYPE_CHECKING:  # imported lazily at run time: the CLI starts faster without it
    from forethought.migration.hybrid import HybridResult


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
    help="Control-loop steps to run, one per trace sample (five minutes on PlanetLab and "
    "Bitbrains; default: the whole trace).",
)
@click.option(
    "--private-hosts",
    type=click.IntRange(min=1, max=MAX_HOSTS),
    default=50,
    show_default=True,
    help="Hosts of the private site (older: CloudSim's HP ProLiant ML110 G4, 4 GB).",
)
@click.option(
    "--public-hosts",
    type=click.IntRange(min=1, max=MAX_HOSTS),
    default=50,
    show_default=True,
    help="Hosts of the public site (newer: ML110 G5 with 8 GB).",
)
@click.option(
    "--public-share",
    type=Finite(0.0, 1.0, max_open=True),
    default=0.3,
    show_default=True,
    help="Share of the VMs that start on the public site.",
)
@click.option(
    "--link-mbps",
    type=Finite(min=0.0, min_open=True),
    default=100.0,
    show_default=True,
    help="Bandwidth of the link between the sites, in Mbit/s.",
)
@click.option(
    "--latency-ms",
    type=Finite(min=0.0),
    default=30.0,
    show_default=True,
    help="Latency of the link between the sites, in milliseconds (added to every transfer).",
)
@click.option(
    "--host-disk-mibs",
    type=Finite(min=0.0, min_open=True),
    default=None,
    help="What each host's disks deliver, reads and writes together, in MiB/s (default: "
    "not modelled). With --allocate, disk throttles are granted within it.",
)
@click.option(
    "--cost-per-gb",
    type=Finite(min=0.0, max=1e6),
    default=0.09,
    show_default=True,
    help="Price of a GB sent across the link, in your currency (reported as it is).",
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
@click.option(
    "--allocation-policy",
    type=click.Path(dir_okay=False),
    default=None,
    help="Scaling policy file for --allocate (default: the default policy).",
)
@_inventory_option
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
    host_disk_mibs: float | None,
    cost_per_gb: float,
    fail_every: int,
    log_dir: str | None,
    report: str | None,
    allocate: bool,
    allocation_policy: str | None,
    inventory: str | None,
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
    live or needing a restart; where the trace has disk and network series (Bitbrains),
    they are throttled too, and the share of that demand above the throttles is reported.
    Throttles are granted within each host's link (1 Gbit/s each way) and, with
    --host-disk-mibs, its disks, higher SLA classes first.

    \b
    Examples:
      forethought hybrid bundled:planetlab-20110303 --vms 100
      forethought hybrid DAY_DIR --fail-every 6 --log-dir logs --json
      forethought hybrid --report two-sites.html
    """
    import tempfile
    from pathlib import Path

    from forethought.migration.hybrid import HybridSetup, run_hybrid
    from forethought.sim.runner import cpu_utilisation

    if report is not None:
        _report_writable(report)
    if log_dir is not None:
        if not log_dir.strip():
            _fail("--log-dir is empty; give a directory for the action logs")
        # Its logs are JSON lines files directly in it.
        _not_an_input(Path(log_dir) / "network-aware.jsonl", f"--log-dir {log_dir}")
    if allocation_policy is not None and not allocate:
        _fail("--allocation-policy goes with --allocate")
    if inventory is not None and allocation_policy is None:
        _fail("--inventory goes with --allocation-policy: it says which VM is in which group")
    with _errors():
        setup = HybridSetup(
            private_hosts=private_hosts,
            public_hosts=public_hosts,
            link_mbps=link_mbps,
            link_latency_ms=latency_ms,
            cost_per_gb=cost_per_gb,
            public_share=public_share,
            failure_every=fail_every,
            host_disk_kbs=math.inf if host_disk_mibs is None else host_disk_mibs * 1024.0,
        )
        telemetry = _load(trace, fmt, skip_bad, vms)
        from forethought.allocation.policy import load_policy

        policy = load_policy(allocation_policy) if allocation_policy is not None else None
        infos = _vm_infos(telemetry.vm_ids, inventory)
        u = cpu_utilisation(telemetry)
        # With --allocate, the trace's disk and network series (KB/s) are throttled too;
        # a missing sample counts as no I/O.
        io = {
            r: np.nan_to_num(telemetry.series(r)[0], nan=0.0)[:, : u.shape[1]]
            for r in BANDWIDTHS
            if allocate and r in telemetry.resources
        }
        results = []
        with tempfile.TemporaryDirectory() as scratch:
            where = Path(log_dir) if log_dir is not None else Path(scratch)
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                _fail(f"--log-dir {log_dir}: {exc.strerror or exc}")
            # A run's figures come from its own log: appending to an earlier run's would
            # count that run's actions too (completed above started).
            earlier = sorted(
                p.name
                for name in ("network-aware", "network-blind")
                if (p := where / f"{name}.jsonl").exists()
            )
            if earlier:
                _fail(
                    f"--log-dir {log_dir} already holds the logs of a run ({', '.join(earlier)}); "
                    "give an empty directory, or remove them"
                )
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
                        io=io or None,
                        policy=policy,
                        vms=infos,
                    )
                )
    if as_json:
        click.echo(_json([r.to_dict() for r in results], indent=2))
    else:
        _hybrid_table(trace, u.shape[0], results, bool(allocate), bool(io), fail_every > 0)
    if report is not None:
        from forethought.sim.report import write_hybrid

        # After the figures are out: a failing disk must not take them with it.
        with _errors():
            write_hybrid(results, Path(report), f"two-site control loop on {trace}", trace)
        stderr.print(f"wrote {report}", highlight=False)


def _hybrid_table(
    trace: str,
    n_vms: int,
    results: list[HybridResult],
    allocated: bool,
    throttled_io: bool,
    failures: bool,
) -> None:
    table = Table(title=f"two-site control loop on {trace} ({n_vms} VMs)")
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
    if allocated:
        rows.append(
            (
                "resizes live / need restart / refused",
                lambda r: f"{r.resizes_live:,} / {r.resizes_restart:,} / {r.resizes_refused:,}",
            )
        )
        if throttled_io:
            label = "disk and network demand above throttles"
            rows.append((label, lambda r: f"{r.io_unmet_share:.3%}"))
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in results))
    stdout.print(table)
    if failures:
        injected = ", ".join(f"{k} x{v}" for k, v in results[0].injected.items())
        stdout.print(f"injected: {injected}", highlight=False)
        for r in results:  # say what the injections hit, not only that nothing went wrong
            if not r.failures_hit:
                verdict = "no migration was hit"
            elif r.failures_rolled_back:
                verdict = f"{r.failures_hit:,} migration(s) hit, all rolled back"
            else:
                verdict = f"{r.failures_hit:,} migration(s) hit, NOT all rolled back"
            stdout.print(f"  {r.ranking}: {verdict}", highlight=False)


@main.command(name="hosts")
@_connect_options
@click.option("--json", "as_json", is_flag=True, help="Print the inventory and a sample as JSON.")
def hosts_cmd(uris: tuple[str, ...], site_pairs: tuple[str, ...], as_json: bool) -> None:
    """Connect to real hypervisors through libvirt and show what forethought sees.

    The same backend protocol the simulator implements: each host's CPUs x MHz and
    memory, its running VMs (vCPUs, memory, migrating or not), and one telemetry sample
    over a second: CPU from each domain's CPU time, memory from the balloon statistics,
    disk reads and writes and network receive and transmit (KB/s) from the statistics of
    its disks and interfaces.
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

    sites = _sites(uris, site_pairs)
    with _errors():
        backend = LibvirtBackend(list(uris), sites=sites)
        try:
            inventory = backend.inventory()
            backend.telemetry()
            _time.sleep(1.0)
            sample = backend.telemetry()
        finally:
            backend.close()
    columns = {r: sample.resources.index(r) for r in sample.resources}
    usage = {
        vm: {r.value: row[i] for r, i in columns.items()}
        for vm, row in zip(sample.vm_ids, sample.demand.tolist(), strict=True)
    }
    idle = {r.value: 0.0 for r in columns}
    if as_json:
        click.echo(
            _json(
                {
                    "hosts": [h.__dict__ for h in inventory.hosts],
                    "vms": [
                        {
                            **v.__dict__,
                            "cpu_used_mips": usage[v.id]["cpu"],
                            "memory_used_mb": usage[v.id]["memory"],
                            **{
                                f"{r}_kb_per_s": used
                                for r, used in usage[v.id].items()
                                if r not in ("cpu", "memory")
                            },
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
    headers = ("VM", "host", "CPU (MIPS)", "used", "memory (MB)", "used (MB)")
    io = ("disk r/w KB/s", "net rx/tx KB/s")
    for column in (*headers, *io, "migrating"):
        # Folded, never cut with an ellipsis: in an 80-column pipe the rates were unreadable.
        vms.add_column(
            column, justify="left" if column in ("VM", "host") else "right", overflow="fold"
        )
    for v in inventory.vms:
        u = usage.get(v.id, idle)
        vms.add_row(
            v.id,
            v.host,
            f"{v.cpu_mips:,.0f}",
            f"{u.get('cpu', 0.0):,.0f}",
            f"{v.memory_mb:,.0f}",
            f"{u.get('memory', 0.0):,.0f}",
            f"{u.get('disk_read', 0.0):,.1f}/{u.get('disk_write', 0.0):,.1f}",
            f"{u.get('net_rx', 0.0):,.1f}/{u.get('net_tx', 0.0):,.1f}",
            "yes" if v.migrating else "no",
        )
    stdout.print(vms)
