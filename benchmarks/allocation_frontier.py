"""Where forethought's slack / under-provisioning trade-off stands against VPA's point.

The rightsizing target asks for relative slack at most half of VPA's at an
under-provisioned share no higher than VPA's. A policy file picks one point on
forethought's trade-off; this script traces the whole curve instead. It replays each
trace (``forethought.allocation.runner.rightsize``, as ``forethought rightsize`` does)
under a family of responsive policies, one per forecast quantile: no headroom, no
hysteresis, no cooldown, decreases of any size, so each point is the least slack that
quantile of forethought's forecast can give. VPA runs beside it.

Where the curve reaches VPA's under-provisioned share, its slack is read off by linear
interpolation between the two neighbouring quantiles, and compared with half of VPA's.

Example::

    python benchmarks/allocation_frontier.py --json benchmarks/results/allocation-frontier.json
"""

# ruff: noqa: E402 -- the thread limits below must be set before NumPy is imported.
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from forethought.allocation.policy import parse_policy
from forethought.allocation.runner import rightsize
from forethought.telemetry.load import load_trace

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO.parent / "shared" / "traces"
DAYS = ("20110303", "20110306", "20110309", "20110322", "20110325")
QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)

RESPONSIVE = """\
version: 1
defaults:
  {resource}: {{quantile: {q}, headroom: 0.0, horizon_minutes: 5, down_tolerance: 0.0,
        down_after_minutes: 0, cooldown_minutes: 0, max_step_down: 1.0}}
groups:
  - {{name: all, match: {{name: "*"}}}}
"""


def slack_at(under: float, curve: list[tuple[float, float]]) -> float | None:
    """Slack where the curve's under-provisioned share equals ``under`` (None if never)."""
    pts = sorted(curve, key=lambda p: p[0])  # by under-provisioned share, ascending
    unders = np.array([u for u, _ in pts])
    slacks = np.array([s for _, s in pts])
    if under < unders[0] or under > unders[-1]:
        return None
    return float(np.interp(under, unders, slacks))


def trace_frontier(label: str, spec: str, fmt: str, resource: str) -> dict[str, object]:
    telemetry = load_trace(spec, fmt)
    curve = []
    for q in QUANTILES:
        policy = parse_policy(RESPONSIVE.format(resource=resource, q=q), f"q{q}")
        s = rightsize(telemetry, policy=policy, resources=[resource], cross_resource=False)
        score = s[resource]
        curve.append(
            {
                "quantile": q,
                "slack": score.slack,
                "under_provisioned_share": score.under_provisioned_share,
                "resizes_per_vm_hour": score.resizes_per_vm_hour,
            }
        )
    vpa = rightsize(telemetry, baseline="vpa", resources=[resource])[resource]
    reached = slack_at(
        vpa.under_provisioned_share,
        [(float(c["under_provisioned_share"]), float(c["slack"])) for c in curve],
    )
    row: dict[str, object] = {
        "trace": label,
        "resource": resource,
        "curve": curve,
        "vpa": {"slack": vpa.slack, "under_provisioned_share": vpa.under_provisioned_share},
        "forethought_slack_at_vpa_under": reached,
        "half_vpa_slack": 0.5 * vpa.slack,
    }
    points = ", ".join(
        f"{c['quantile']}: {c['slack']:.3f}/{c['under_provisioned_share']:.4f}" for c in curve
    )
    at = "not reached" if reached is None else f"{reached:.3f}"
    print(
        f"| {label} | {resource} | {vpa.slack:.3f} / {vpa.under_provisioned_share:.4f} | "
        f"{at} | {0.5 * vpa.slack:.3f} | {points} |",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", type=Path, default=TRACES)
    ap.add_argument("--days", default=",".join(DAYS))
    ap.add_argument("--bitbrains", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.traces.is_dir():
        print(f"no traces at {args.traces} (--traces)", file=sys.stderr)
        return 2
    print(
        "| trace | resource | VPA slack / under | forethought slack at VPA's under "
        "| half VPA's slack | curve (quantile: slack/under) |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for day in filter(None, args.days.split(",")):
        spec = str(args.traces / "planetlab" / day)
        rows.append(trace_frontier(f"planetlab-{day}", spec, "planetlab", "cpu"))
    if args.bitbrains:
        spec = str(args.traces / "bitbrains-rnd" / "2013-8")
        label = "bitbrains-2013-8"
        rows += [trace_frontier(label, spec, "bitbrains", r) for r in ("cpu", "memory")]
    if args.json:
        args.json.write_text(json.dumps({"quantiles": QUANTILES, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
