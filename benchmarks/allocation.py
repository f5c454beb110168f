"""Rightsizing: forethought against VPA, Autopilot, static peak and a reactive scaler.

Replays every VM's demand on the shared traces (PlanetLab days, CPU; Bitbrains August
2013, CPU and memory, as percent of each VM's provisioned size) against allocations each
recommender decides from the past only (``forethought.allocation.replay``), and times one
decision step of forethought for 10,000 VMs.

Targets (issue "Predictive allocation"):
1. at an under-provisioned share no higher than VPA's, slack at most half of VPA's;
2. no baseline better than forethought on both slack and under-provisioning;
3. under-provisioned share at most 1 % with at most one resize per VM-hour;
4. one decision step for 10,000 VMs in at most 0.2 s on one core.

forethought runs with the policy files given (default: the default policy and
``examples/lean-policy.yaml``), each a point on its trade-off between slack and
under-provisioning; a target is met when some shipped policy meets it.

Example::

    python benchmarks/allocation.py --json benchmarks/results/allocation.json
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
import sys
import time
from pathlib import Path

import numpy as np

from forethought.allocation.baselines import BASELINES
from forethought.allocation.manager import PredictiveRecommender, Settings
from forethought.allocation.policy import DEFAULT_POLICY_YAML, VmInfo, load_policy, parse_policy
from forethought.allocation.runner import rightsize
from forethought.core.resources import Resource
from forethought.telemetry.load import load_trace

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO.parent / "shared" / "traces"
DAYS = ("20110303", "20110306", "20110309", "20110322", "20110325")
LEAN = REPO / "examples" / "lean-policy.yaml"


def run_trace(label: str, spec: str, fmt: str, policies: list[str]) -> list[dict[str, object]]:
    telemetry = load_trace(spec, fmt)
    rows: list[dict[str, object]] = []
    runs: list[tuple[str, dict[str, object]]] = []
    for name in policies:
        policy = (
            parse_policy(DEFAULT_POLICY_YAML, "default") if name == "default" else load_policy(name)
        )
        runs.append((f"forethought:{Path(name).stem}", {"policy": policy}))
    runs += [(b, {"baseline": b}) for b in BASELINES]
    for name, kwargs in runs:
        t0 = time.perf_counter()
        scores = rightsize(telemetry, **kwargs)  # type: ignore[arg-type]
        for resource, s in scores.items():
            row = {**s.to_dict(), "trace": label, "recommender": name}
            row["wall_seconds"] = time.perf_counter() - t0
            rows.append(row)
            print(
                f"| {label} | {resource} | {name} | {s.slack:.3f} | "
                f"{s.under_provisioned_share:.4f} | {s.unmet_share:.4f} | "
                f"{s.resizes_per_vm_hour:.3f} | {s.vms_over_1pct:.3f} |",
                flush=True,
            )
    return rows


def check(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The targets per trace and resource, for every forethought policy."""
    out = []
    keys = sorted({(str(r["trace"]), str(r["resource"])) for r in rows})
    for trace, resource in keys:
        here = [r for r in rows if r["trace"] == trace and r["resource"] == resource]
        vpa = next(r for r in here if r["recommender"] == "vpa")
        base = [r for r in here if not str(r["recommender"]).startswith("forethought")]
        for ft in (r for r in here if str(r["recommender"]).startswith("forethought")):
            slack, under = float(ft["slack"]), float(ft["under_provisioned_share"])  # type: ignore[arg-type]
            dominated_by = [
                str(b["recommender"])
                for b in base
                if float(b["slack"]) < slack and float(b["under_provisioned_share"]) < under  # type: ignore[arg-type]
            ]
            out.append(
                {
                    "trace": trace,
                    "resource": resource,
                    "recommender": ft["recommender"],
                    "half_vpa_slack_at_vpa_under": under <= float(vpa["under_provisioned_share"])  # type: ignore[arg-type]
                    and slack <= 0.5 * float(vpa["slack"]),  # type: ignore[arg-type]
                    "not_dominated": not dominated_by,
                    "dominated_by": dominated_by,
                    "under_1pct_and_1_resize_per_vm_hour": under <= 0.01
                    and float(ft["resizes_per_vm_hour"]) <= 1.0,  # type: ignore[arg-type]
                }
            )
    return out


def decision_step(n: int = 10_000, warm: int = 150, timed: int = 48) -> dict[str, float]:
    """CPU seconds of one decision step (observe, shortfall, recommend) for n VMs."""
    rng = np.random.default_rng(0)
    level = np.exp(rng.normal(np.log(8.0), 1.0, n))
    usage = np.clip(level[:, None] * (1 + 0.3 * rng.standard_normal((n, warm + timed))), 0, 100)
    policy = parse_policy(DEFAULT_POLICY_YAML)
    groups = policy.assign([VmInfo(f"vm-{i}") for i in range(n)])
    rec = PredictiveRecommender(Settings.from_policy(policy, groups, Resource.CPU, 300))
    rec.reset(n, np.full(n, 100.0), 300)
    ok, none = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    times = []
    for t in range(warm + timed):
        c0 = time.process_time()
        rec.observe(usage[:, t], ok)
        rec.shortfall(none)
        rec.recommend()
        if t >= warm:
            times.append(time.process_time() - c0)
    return {
        "vms": n,
        "mean_cpu_seconds": float(np.mean(times)),
        "median_cpu_seconds": float(np.median(times)),
        "max_cpu_seconds": float(np.max(times)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", type=Path, default=TRACES)
    ap.add_argument("--days", default=",".join(DAYS))
    ap.add_argument("--bitbrains", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--policies", default=f"default,{LEAN}")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    policies = args.policies.split(",")
    print(
        "# rightsizing benchmark\n\n"
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}; "
        f"Python {platform.python_version()}, NumPy {np.__version__}; one thread\n"
    )
    step = decision_step()
    print(f"decision step, 10,000 VMs: {step}\n")
    print(
        "| trace | resource | recommender | slack | under-provisioned | unmet "
        "| resizes/VM-h | VMs > 1 % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows: list[dict[str, object]] = []
    for day in filter(None, args.days.split(",")):
        rows += run_trace(
            f"planetlab-{day}", str(args.traces / "planetlab" / day), "planetlab", policies
        )
    if args.bitbrains:
        rows += run_trace(
            "bitbrains-2013-8", str(args.traces / "bitbrains-rnd" / "2013-8"), "bitbrains", policies
        )
    checks = check(rows)
    print(
        "\n| trace | resource | forethought policy | ≤ ½ VPA slack at ≤ VPA under "
        "| not dominated | ≤ 1 % under, ≤ 1 resize/VM-h |"
    )
    print("|---|---|---|---|---|---|")
    for c in checks:
        dom = "yes" if c["not_dominated"] else f"no ({', '.join(c['dominated_by'])})"  # type: ignore[arg-type]
        print(
            f"| {c['trace']} | {c['resource']} | {c['recommender']} | "
            f"{'yes' if c['half_vpa_slack_at_vpa_under'] else 'no'} | {dom} | "
            f"{'yes' if c['under_1pct_and_1_resize_per_vm_hour'] else 'no'} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"decision_step": step, "runs": rows, "checks": checks}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
