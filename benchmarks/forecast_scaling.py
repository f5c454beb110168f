"""Scaling: forecast 100,000 synthetic VM series 12 steps ahead on one core.

Times, separately, (1) the warm-up ``update`` with a 144-step history and (2) one
``forecast(12)`` call of ``make_forecaster("auto", upper=100)``, and reports the CPU seconds
(``time.process_time``), the wall seconds and the memory of each: the peak resident set of the
process during the phase (Linux ``VmHWM``, reset before each phase through
``/proc/self/clear_refs``; ``getrusage(RUSAGE_SELF).ru_maxrss`` is reported as well, for the
whole run) and, in a second pass on a fresh engine, the peak of memory allocated during the
phase as seen by ``tracemalloc`` (NumPy reports its buffers to it). The second pass is not
timed, because tracing slows allocation down.

The target is ``forecast`` in at most 2 s of CPU on one core and at most 2 GB of memory.

Synthetic series look like VM CPU in percent: a per-series level (log-normal, median about 8 %),
AR(1) noise around it with a per-series coefficient and a spread proportional to the level,
and occasional spikes (about one sample in 100 starts one, lasting 1-6 steps), clipped to
[0, 100].

Example::

    python benchmarks/forecast_scaling.py --series 100000 --json scaling.json
"""

# ruff: noqa: E402 -- the thread limits below must be set before NumPy is imported.
from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
):
    os.environ[_var] = "1"

import argparse
import datetime as dt
import gc
import json
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from forethought.forecast.base import Forecast
from forethought.forecast.engine import ForecastEngine, make_forecaster

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")

TARGET_CPU_SECONDS = 2.0
TARGET_BYTES = 2 * 1024**3
MIB = 1024.0**2


def synthetic(n: int, steps: int, seed: int) -> FloatArray:
    """VM-like CPU percent series: level + AR(1) noise + occasional spikes, in [0, 100]."""
    rng = np.random.default_rng(seed)
    level = np.clip(np.exp(rng.normal(np.log(8.0), 1.0, n)), 0.3, 90.0)
    phi = rng.uniform(0.3, 0.95, n)
    sigma = (0.05 + 0.25 * rng.random(n)) * level + 0.2
    innov = sigma * np.sqrt(1.0 - phi**2)  # stationary spread = sigma
    noise = np.empty((n, steps))
    e = rng.normal(0.0, 1.0, n) * sigma
    for t in range(steps):
        e = phi * e + innov * rng.normal(0.0, 1.0, n)
        noise[:, t] = e
    spikes = np.zeros((n, steps))
    starts = rng.random((n, steps)) < 0.01
    rows, cols = np.nonzero(starts)
    height = rng.exponential(15.0, rows.size) + 5.0
    length = rng.integers(1, 7, rows.size)
    for d in range(6):  # a spike lasts `length` steps
        ok = (d < length) & (cols + d < steps)
        spikes[rows[ok], cols[ok] + d] += height[ok]
    return np.asarray(np.clip(level[:, None] + noise + spikes, 0.0, 100.0))


def status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM``-style field of /proc/self/status, in KiB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Phase:
    name: str
    cpu_seconds: float
    wall_seconds: float
    rss_before_mib: float | None
    rss_after_mib: float | None
    peak_rss_mib: float | None  # VmHWM during the phase (process total)
    ru_maxrss_mib: float  # getrusage(RUSAGE_SELF).ru_maxrss at the end of the phase
    peak_reset: bool
    tracemalloc_peak_mib: float | None = None  # filled by the second pass


def timed(name: str, fn: Callable[[], T]) -> tuple[T, Phase]:
    gc.collect()
    before = status_kib("VmRSS")
    was_reset = reset_peak()
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    after, peak = status_kib("VmRSS"), status_kib("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux

    def mib(k: int | None) -> float | None:
        return None if k is None else k / 1024.0

    return out, Phase(name, cpu, wall, mib(before), mib(after), mib(peak), maxrss, was_reset)


def traced(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` under tracemalloc; its result and the peak traced allocation, in MiB."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, (peak - base) / MIB


def check_forecast(fc: Forecast, n: int, horizon: int) -> dict[str, object]:
    q = fc.quantiles
    return {
        "shape": list(q.shape),
        "expected_shape": [n, horizon, len(fc.levels)],
        "levels": list(fc.levels),
        "nan_quantiles": int(np.isnan(q).sum()),
        "monotone_in_level": bool(np.all(np.diff(q, axis=2) >= 0)),
        "series_with_notes": sum(1 for x in fc.notes if x),
        "distinct_notes": sorted({x for x in fc.notes if x})[:5],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--history", type=int, default=144, help="warm-up steps (default 144)")
    p.add_argument("--horizon", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-tracemalloc", action="store_true", help="skip the second (memory-only) pass"
    )
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    n, steps, H = args.series, args.history, args.horizon
    t0 = time.perf_counter()
    values = synthetic(n, steps, args.seed)
    gen_seconds = time.perf_counter() - t0
    print(
        f"synthetic data: {n:,} series x {steps} steps in {gen_seconds:.1f} s; "
        f"mean {values.mean():.2f} %, median {np.median(values):.2f} %, "
        f"p99 {np.quantile(values, 0.99):.1f} %, share at 0 {np.mean(values == 0):.3f}",
        file=sys.stderr,
    )

    def new_engine() -> ForecastEngine:
        return make_forecaster("auto", horizon=H, upper=100.0)

    engine = new_engine()
    _, warm = timed("update (warm-up)", lambda: engine.update(values))
    print(f"update: {warm.cpu_seconds:.1f} CPU-s", file=sys.stderr)
    fc, fcst = timed("forecast", lambda: engine.forecast(H))
    print(f"forecast: {fcst.cpu_seconds:.2f} CPU-s", file=sys.stderr)
    sanity = check_forecast(fc, n, H)
    # The peak resident set of the whole timed run. Resetting VmHWM between phases also
    # resets what ru_maxrss reports on Linux, so take the largest of every phase's readings.
    maxrss_mib = max(
        x for ph in (warm, fcst) for x in (ph.peak_rss_mib, ph.ru_maxrss_mib) if x is not None
    )
    del fc, engine
    gc.collect()

    if not args.no_tracemalloc:
        engine = new_engine()
        _, warm.tracemalloc_peak_mib = traced(lambda: engine.update(values))
        _, fcst.tracemalloc_peak_mib = traced(lambda: engine.forecast(H))
        del engine

    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    result: dict[str, object] = {
        "command": " ".join(["forecast_scaling.py", *(argv or sys.argv[1:])]),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu_model": cpu_model,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "series": n,
        "history_steps": steps,
        "horizon": H,
        "phases": [asdict(warm), asdict(fcst)],
        "peak_rss_mib_whole_run": maxrss_mib,
        "forecast_check": sanity,
        "targets": {
            "forecast_cpu_seconds_max": TARGET_CPU_SECONDS,
            "forecast_cpu_met": fcst.cpu_seconds <= TARGET_CPU_SECONDS,
            "memory_bytes_max": TARGET_BYTES,
            "forecast_peak_rss_met": (
                None if fcst.peak_rss_mib is None else fcst.peak_rss_mib * MIB <= TARGET_BYTES
            ),
            "whole_run_peak_rss_met": maxrss_mib * MIB <= TARGET_BYTES,
        },
    }

    def f(x: float | None, d: int = 1) -> str:
        return "n/a" if x is None else f"{x:,.{d}f}"

    print(f"### Forecast scaling: {n:,} series, {steps}-step history, h = {H}\n")
    print(
        "| phase | CPU s | wall s | RSS before (MiB) | RSS after (MiB) | peak RSS in phase (MiB) "
        "| tracemalloc peak in phase (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    # MiB throughout; the 2 GB target is read as 2 GiB = 2,048 MiB (2e9 bytes = 1,907 MiB).
    for ph in (warm, fcst):
        print(
            f"| {ph.name} | {ph.cpu_seconds:.2f} | {ph.wall_seconds:.2f} "
            f"| {f(ph.rss_before_mib)} | {f(ph.rss_after_mib)} | {f(ph.peak_rss_mib)} "
            f"| {f(ph.tracemalloc_peak_mib)} |"
        )
    print(
        f"\nPeak RSS of the whole timed run (largest VmHWM / ru_maxrss of the phases): "
        f"{maxrss_mib:,.1f} MiB. ru_maxrss at the end of each phase: "
        + ", ".join(f"{ph.name} {ph.ru_maxrss_mib:,.1f} MiB" for ph in (warm, fcst))
        + "."
    )
    if not (warm.peak_reset and fcst.peak_reset):
        print("(Peak RSS could not be reset between phases: 'peak in phase' is cumulative.)")
    print(
        f"Forecast output: shape {sanity['shape']}, NaN quantiles {sanity['nan_quantiles']}, "
        f"monotone in level: {sanity['monotone_in_level']}, series with notes: "
        f"{sanity['series_with_notes']:,}."
    )
    ok_cpu = fcst.cpu_seconds <= TARGET_CPU_SECONDS
    peak = fcst.peak_rss_mib if fcst.peak_rss_mib is not None else maxrss_mib
    ok_mem = peak * MIB <= TARGET_BYTES
    print(
        f"\nTarget forecast <= {TARGET_CPU_SECONDS:g} CPU-s: "
        f"{'met' if ok_cpu else 'NOT met'} ({fcst.cpu_seconds:.2f} s). "
        f"Target <= 2 GB (read as 2 GiB = 2,048 MiB) during forecast: "
        f"{'met' if ok_mem else 'NOT met'} "
        f"(peak RSS {peak:,.0f} MiB; whole run {maxrss_mib:,.0f} MiB)."
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
