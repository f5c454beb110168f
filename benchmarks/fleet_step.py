"""CPU time of one step of ``forethought run``'s control loop, for fleets of many VMs.

A step is what ``forethought run`` does every interval: settle ended migrations, read the
inventory and telemetry, size every VM's CPU (forecast, policy, host capacity), plan moves
off hosts about to overload and hand them to the orchestrator, which logs each one. The
backend is the simulator (a real hypervisor adds its own API calls to each step), replaying
the bundled PlanetLab day: its 1,052 VMs' CPU series, repeated for larger fleets, in
CloudSim's data centre (``cloudsim_planetlab``: HP ML110 G4 and G5 hosts alternately,
CloudSim's four VM types) with one host per two VMs and a round-robin start, which
fits every host's memory and leaves the planner hosts to empty and, at the day's peaks,
overloads to relieve.

The interval is five minutes, so a step that takes seconds leaves the loop idle most of
the time; the figure says how large a fleet one core can follow.

Example::

    python benchmarks/fleet_step.py --json benchmarks/results/fleet-step.json
"""

# ruff: noqa: E402 -- the thread limits below must be set before NumPy is imported.
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import datetime as dt
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from forethought.cluster.model import cloudsim_planetlab
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.resources import Resource
from forethought.migration.fleet import FleetLoop, FleetSettings
from forethought.migration.loop import LoopStep
from forethought.sim.runner import cpu_utilisation
from forethought.telemetry.load import load_trace

TRACE = "bundled:planetlab-20110303"
INTERVAL = 300.0


def fleet_steps(
    n_vms: int, steps: int, sized: tuple[Resource, ...] = (Resource.CPU,)
) -> dict[str, float]:
    """Per-step CPU seconds of the loop on ``n_vms`` VMs (the bundled day's, repeated)."""
    day = cpu_utilisation(load_trace(TRACE))
    rows = np.resize(np.arange(day.shape[0]), n_vms)
    u = day[rows][:, : steps + 1]
    cluster = cloudsim_planetlab(n_vms, n_hosts=max(1, n_vms // 2))
    placement = np.arange(n_vms) % cluster.n_hosts
    backend = SimulatedBackend(cluster, u, placement, interval=INTERVAL)
    with tempfile.TemporaryDirectory() as scratch:
        fleet = FleetLoop(
            backend, FleetSettings(interval=INTERVAL, sized=sized), Path(scratch) / "log.jsonl"
        )
        seconds: list[float] = []
        started = resizes = 0

        def on_step(k: int, step: LoopStep) -> None:
            nonlocal started, resizes
            seconds.append(fleet.last_step_seconds)
            started += sum(d.accepted for d in step.decisions)
            resizes += sum(r.applied for r in step.resizes)
            backend.advance(INTERVAL)

        fleet.run(steps, on_step, clock=time.process_time, sleep=lambda s: None)
    return {
        "vms": n_vms,
        "hosts": cluster.n_hosts,
        "steps": steps,
        "mean_cpu_seconds": float(np.mean(seconds)),
        "median_cpu_seconds": float(np.median(seconds)),
        "p95_cpu_seconds": float(np.quantile(seconds, 0.95)),
        "max_cpu_seconds": float(np.max(seconds)),
        "migrations_started": started,
        "resizes_applied": resizes,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--vms", default="1000,10000", help="fleet sizes, comma-separated")
    ap.add_argument("--steps", type=int, default=288, help="steps per fleet (288: a day)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    print(
        "# control-loop step benchmark\n\n"
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}; "
        f"Python {platform.python_version()}, NumPy {np.__version__}; one thread; "
        f"{TRACE} repeated; CPU sized; {args.steps} steps of {INTERVAL:g} s\n"
    )
    print(
        "| VMs | hosts | mean s | median s | p95 s | max s | migrations | resizes | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for n in (int(v) for v in args.vms.split(",") if v.strip()):
        r = fleet_steps(n, args.steps)
        rows.append(r)
        print(
            f"| {n:,} | {r['hosts']:,.0f} | {r['mean_cpu_seconds']:.3f} | "
            f"{r['median_cpu_seconds']:.3f} | {r['p95_cpu_seconds']:.3f} | "
            f"{r['max_cpu_seconds']:.3f} | {r['migrations_started']:,.0f} | "
            f"{r['resizes_applied']:,.0f} | {r['peak_rss_mib']:,.0f} |",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"command": "fleet_step.py " + " ".join(sys.argv[1:]), "rows": rows}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
