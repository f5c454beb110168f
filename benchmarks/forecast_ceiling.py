"""How much better could a recombination of what the past shows forecast the PlanetLab days?

An optimistic estimate, not a forecaster. On each day it runs forethought's ``auto`` engine
through the backtest protocol (origins 144, 156, ..., 276; h = 1..12) and records, at every
origin, 20 features per (VM, h): the engine's four quantiles (0.5, 0.9, 0.95, 0.99), the
0.5/0.9/0.95/1.0 quantiles of the VM's last 12, 36 and 144 samples, its last value, and
the forecasts of the two baselines that calibrate each VM on its whole history: EWMA-q's
level and p95, and persistence's p95 (``benchmarks/forecast.py``). It then fits, per
horizon step, linear quantile regressions on those features:

* the point: median regression with rows weighted by 1 / the MASE scale (what MASE scores);
* the p95: quantile regression at 0.95 (what pinball_95 scores).

The fits are *cross-fitted across VMs*: the VMs are split in two halves at random, each
half is forecast by the regression fitted on the other half's rows **of the same day,
future included**. A real forecaster never sees those futures, so this is optimistic for
*global* linear combinations of these features. It is an estimate, not a strict bound: the
coefficients are shared by all VMs of a half and the quantile fits are approximate, so a
method that calibrates each VM on its own history can beat it. EWMA-q did, on the p95, on
three of the five days until its forecasts were made features here. If even this stays far
from a target, a better global combination of the features will not reach it.

Also printed: the reference's "oracle flat" forecast (median of the next 12 actuals, and
their 0.95 quantile as p95), which knows the future of the VM itself.

Everything is scored by :func:`forethought.evaluation.metrics.score`, as the backtest is.

Example::

    python benchmarks/forecast_ceiling.py --json benchmarks/results/forecast-ceiling.json
"""

# ruff: noqa: E402 -- the thread limits below must be set before NumPy is imported.
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from forethought.core.resources import Resource
from forethought.evaluation.metrics import naive_scale, score
from forethought.forecast.engine import make_forecaster
from forethought.forecast.models.global_linear import quantile_regression
from forethought.telemetry.load import load_trace

FloatArray = npt.NDArray[np.float64]


def _forecast_benchmark() -> Any:
    """The benchmark next door, for the same EWMA-q and persistence its tables compare with."""
    spec = importlib.util.spec_from_file_location(
        "forecast_benchmark", Path(__file__).with_name("forecast.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


BASELINES = _forecast_benchmark()

REPO = Path(__file__).resolve().parent.parent
DAYS = ("20110303", "20110306", "20110309", "20110322", "20110325")
HORIZON, FIRST, EVERY = 12, 144, 12
WINDOWS = (12, 36, 144)
WINDOW_LEVELS = (0.5, 0.9, 0.95, 1.0)


def collect(values: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Features (VM, origin, h, k), actuals (VM, origin, h) and MASE scales (VM, origin)."""
    steps = values.shape[1]
    origins = list(range(FIRST, steps - HORIZON + 1, EVERY))
    engine = make_forecaster("auto", upper=100.0)
    feats, actual, scale = [], [], []
    fed = 0
    for t in origins:
        engine.update(values[:, fed:t])
        fed = t
        fc = engine.forecast(HORIZON)
        past = values[:, :t]
        cols = [fc.quantiles[:, :, k] for k in range(fc.quantiles.shape[2])]
        for w in WINDOWS:
            for q in WINDOW_LEVELS:
                level = np.quantile(past[:, -w:], q, axis=1)
                cols.append(np.repeat(level[:, None], HORIZON, axis=1))
        cols.append(np.repeat(past[:, -1:], HORIZON, axis=1))
        # Per-series calibrated offsets, which global coefficients cannot learn from the
        # window quantiles alone: the EWMA-q baseline's level and p95, persistence's p95.
        ewma_level, ewma_p95 = BASELINES.ewma_q(past, HORIZON)
        cols += [ewma_level, np.clip(ewma_p95, 0.0, 100.0)]
        cols.append(np.clip(BASELINES.persistence(past, HORIZON)[1], 0.0, 100.0))
        feats.append(np.stack(cols, axis=-1))
        actual.append(values[:, t : t + HORIZON])
        scale.append(naive_scale(past))
    return np.stack(feats, 1), np.stack(actual, 1), np.stack(scale, 1)


def cross_fit(
    feats: FloatArray,
    actual: FloatArray,
    weight: FloatArray,
    level: float,
    fold: npt.NDArray[np.bool_],
) -> FloatArray:
    """Each half of the VMs forecast by the regression fitted on the other half, per h."""
    out = np.full(actual.shape, np.nan)
    k = feats.shape[-1]
    for train in (fold, ~fold):
        test = ~train
        for h in range(HORIZON):
            X = feats[train][:, :, h].reshape(-1, k)
            y = actual[train][:, :, h].reshape(-1)
            w = weight[train].reshape(-1)
            ok = np.isfinite(y) & np.isfinite(X).all(axis=1) & np.isfinite(w) & (w > 0)
            coef = quantile_regression(X[ok], y[ok], w[ok], np.zeros(k), 60, level=level)
            out[test, :, h] = feats[test][:, :, h] @ coef
    return np.asarray(np.clip(out, 0.0, 100.0), dtype=np.float64)


def day_figures(values: FloatArray, seed: int) -> dict[str, dict[str, float]]:
    feats, actual, scale = collect(values)
    fold = np.random.default_rng(seed).permutation(values.shape[0]) < values.shape[0] // 2
    # Median rows weighted as MASE weighs them; the floor keeps near-constant VMs finite.
    unit = 1.0 / np.maximum(np.where(np.isfinite(scale), scale, 0.0), 1e-2)
    ones = np.ones_like(scale)
    point = cross_fit(feats, actual, unit, 0.5, fold)
    p95 = cross_fit(feats, actual, ones, 0.95, fold)
    engine_point, engine_p95 = feats[..., 0], feats[..., 2]
    flat_median = np.repeat(np.median(actual, axis=2)[:, :, None], HORIZON, axis=2)
    flat_q95 = np.repeat(np.quantile(actual, 0.95, axis=2)[:, :, None], HORIZON, axis=2)
    keys = ("mase", "pinball_95", "coverage_95")
    rows = {
        "forethought auto": score(actual, engine_point, engine_p95, scale),
        "cross-fitted estimate": score(actual, point, p95, scale),
        "oracle flat (knows the next hour)": score(actual, flat_median, flat_q95, scale),
    }
    return {name: {k: s.overall[k] for k in keys} for name, s in rows.items()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planetlab-dir", type=Path, default=REPO.parent / "shared/traces/planetlab")
    ap.add_argument("--days", default=",".join(DAYS))
    ap.add_argument("--seed", type=int, default=0, help="seed of the split of VMs in halves")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.planetlab_dir.is_dir():
        print(f"no PlanetLab traces at {args.planetlab_dir} (--planetlab-dir)", file=sys.stderr)
        return 2
    results: dict[str, dict[str, dict[str, float]]] = {}
    print("| day | forecast | MASE | pinball_95 | coverage_95 |")
    print("|---|---|---|---|---|")
    for day in [d.strip() for d in args.days.split(",") if d.strip()]:
        values, _ = load_trace(args.planetlab_dir / day).series(Resource.CPU)
        results[day] = day_figures(values, args.seed)
        for name, fig in results[day].items():
            row = " | ".join(f"{fig[k]:.3f}" for k in ("mase", "pinball_95", "coverage_95"))
            print(f"| {day} | {name} | {row} |", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"seed": args.seed, "days": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
