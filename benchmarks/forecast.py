"""Side-by-side rolling-origin forecast benchmark on the shared traces.

Runs the same protocol, in one process, for

* ``forethought`` -- ``make_forecaster("auto", upper=100)`` through
  :func:`forethought.evaluation.backtest.backtest` (online, mask-aware);
* ``EWMA-q`` -- the reference's vectorised NumPy baseline: per-series alpha from
  {0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0} by in-sample one-step squared error, a flat forecast
  at the last level and per-series empirical 95% quantiles of the in-sample h-step residuals,
  fitted from scratch at every origin (the first 12 steps, which hold the level's start, are
  left out of both; with that it reproduces the reference's EWMA-q figures on PlanetLab);
* ``AutoETS`` -- statsforecast ``AutoETS(season_length=1)``, fitted from scratch at every origin
  on (at most) the last ``--ets-window`` samples of history; optional (``pip install -e
  '.[bench]'``): skipped, and said so, when statsforecast is not installed;
* ``persistence`` -- last value, with per-series empirical h-step residual quantiles;
* ``seasonal-naive`` -- the value one day (288 steps) earlier, with per-series empirical
  residual quantiles (needs more than one day of history, so it is only run where every
  origin has it).

Every model is scored by the same :func:`forethought.evaluation.metrics.score` on the same
points (point forecast = median/point, p95), and its cost is the CPU time
(``time.process_time``) of fitting and forecasting only, reported per 1,000 series per origin.

Examples::

    python benchmarks/forecast.py --planetlab-days 20110303,20110306,20110309,20110322,20110325
    python benchmarks/forecast.py --bitbrains --json bitbrains.json

Baselines see missing samples (Bitbrains gaps) forward-filled (leading gaps back-filled with
the series' first observation in the history); forethought takes the mask. Only observed
actuals are scored.
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
import importlib.util
import json
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from forethought.core.resources import Resource
from forethought.evaluation.backtest import BacktestConfig, backtest
from forethought.evaluation.metrics import Scores, naive_scale, score
from forethought.forecast.anomaly import Anomaly
from forethought.forecast.base import Forecast, Forecaster
from forethought.forecast.engine import ForecastEngine, make_forecaster

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
# (filled history (series, t), horizon) -> (point, p95), each (series, horizon).
FitForecast = Callable[[FloatArray, int], tuple[FloatArray, FloatArray]]

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO.parent / "shared" / "traces"
PLANETLAB_DAYS = ("20110303", "20110306", "20110309", "20110322", "20110325")
ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
EWMA_BURN_IN = 12  # steps of EWMA-q's level initialisation left out of its fit
DAY = 288  # 300 s steps per day


def shown(path: Path) -> str:
    """A path as recorded in results: relative to the repository, so no machine path leaks in."""
    return os.path.relpath(path, REPO)


MODELS = ("forethought", "ewma-q", "autoets", "persistence", "seasonal-naive")
#: Run only when asked for with --models: forethought's engine on its optional PyTorch model.
OPT_IN = ("forethought-lstm",)
LABELS = {
    "forethought": "forethought auto",
    "forethought-lstm": "forethought lstm",
    "ewma-q": "EWMA-q",
    "autoets": "AutoETS",
    "persistence": "persistence",
    "seasonal-naive": "seasonal-naive (1 day)",
}


# -- data -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Protocol:
    """Rolling origins ``first_origin, first_origin + every, ...`` while ``horizon`` fits."""

    horizon: int
    first_origin: int
    every: int

    def origins(self, steps: int) -> list[int]:
        return BacktestConfig(self.horizon, self.first_origin, self.every).origins(steps)

    def describe(self, steps: int) -> str:
        o = self.origins(steps)
        return (
            f"origins t = {o[0]}, {o[0] + self.every}, ..., {o[-1]} ({len(o)} origins, "
            f"every {self.every} steps); expanding history y[:, :t]; h = 1..{self.horizon}"
        )


@dataclass
class Panel:
    """One benchmark table: a (series, steps) panel in percent and its protocol."""

    key: str
    title: str
    values: FloatArray  # NaN where missing
    observed: BoolArray
    protocol: Protocol
    lower: float = 0.0
    upper: float = 100.0
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_series(self) -> int:
        return int(self.values.shape[0])


@dataclass
class ModelRun:
    """One model's forecasts at every origin of a panel, and what they cost."""

    model: str
    point: FloatArray  # (series, origins, horizon)
    p95: FloatArray
    cpu_seconds: float
    wall_seconds: float
    notes: dict[str, object] = field(default_factory=dict)


def clip_percent(values: FloatArray, lower: float, upper: float) -> FloatArray:
    return np.asarray(np.clip(values, lower, upper), dtype=np.float64)  # NaN stays NaN


def load_planetlab(root: Path, days: Sequence[str], protocol: Protocol) -> list[Panel]:
    from forethought.telemetry.readers.planetlab import read_planetlab

    panels = []
    for day in days:
        tel = read_planetlab(root / day)
        values, mask = tel.series(Resource.CPU)
        values = clip_percent(np.where(mask, values, np.nan), 0.0, 100.0)
        panels.append(
            Panel(
                key=f"planetlab-{day}",
                title=f"PlanetLab {day} (CPU %)",
                values=values,
                observed=mask & np.isfinite(values),
                protocol=protocol,
                info={
                    "path": shown(root / day),
                    "n_series": int(values.shape[0]),
                    "steps": int(values.shape[1]),
                    "missing": int((~mask).sum()),
                    "repairs": tel.repairs.to_dict(),
                },
            )
        )
    return panels


def load_bitbrains(root: Path, protocol: Protocol, max_series: int | None) -> list[Panel]:
    from forethought.telemetry.readers.bitbrains import read_bitbrains

    tel = read_bitbrains(root, limit=max_series)
    cpu, cpu_mask = tel.series(Resource.CPU)
    _, mem_mask = tel.series(Resource.MEMORY)
    mem = tel.percent_of_capacity(Resource.MEMORY)
    panels = []
    for key, title, raw, mask in (
        ("bitbrains-cpu", "Bitbrains Rnd 2013-8, CPU usage (%)", cpu, cpu_mask),
        ("bitbrains-memory", "Bitbrains Rnd 2013-8, memory (% of provisioned)", mem, mem_mask),
    ):
        ok = mask & np.isfinite(raw)
        above = int(np.count_nonzero(ok & (raw > 100.0)))
        values = clip_percent(np.where(ok, raw, np.nan), 0.0, 100.0)
        panels.append(
            Panel(
                key=key,
                title=title,
                values=values,
                observed=ok,
                protocol=protocol,
                info={
                    "path": shown(root),
                    "n_series": int(values.shape[0]),
                    "steps": int(values.shape[1]),
                    "step_seconds": tel.step_seconds,
                    "start_unix": tel.start,
                    "missing": int((~ok).sum()),
                    "missing_fraction": float((~ok).mean()),
                    "clipped_to_100_here": above,
                    "reader_repairs": tel.repairs.to_dict(),
                },
            )
        )
    return panels


# -- baselines --------------------------------------------------------------------------------
def fill_history(values: FloatArray, observed: BoolArray) -> FloatArray:
    """Forward-fill missing samples; a leading gap takes the first observation in the history.

    A series with no observation at all stays NaN (its forecasts are then missing).
    """
    if observed.all():
        return values
    n, t = values.shape
    idx = np.where(observed, np.arange(t)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = values[np.arange(n)[:, None], idx]
    first = np.argmax(observed, axis=1)
    lead = np.cumsum(observed, axis=1) == 0
    return np.asarray(np.where(lead, values[np.arange(n), first][:, None], filled))


def residual_q95(y: FloatArray, level_t: FloatArray, horizon: int) -> FloatArray:
    """Per-series 95% quantile of in-sample h-step residuals of a flat forecast.

    ``level_t`` is (steps, series): the flat forecast issued after each step. The h-step
    residual issued at step k is ``y[k + h] - level[k]``.
    """
    t, n = level_t.shape
    yt = y.T
    q = np.full((n, horizon), np.nan)
    for h in range(1, horizon + 1):
        if t - h >= 1:
            r = yt[h:] - level_t[: t - h]
            q[:, h - 1] = np.quantile(r, 0.95, axis=0)
    return q


def ewma_q(y: FloatArray, horizon: int) -> tuple[FloatArray, FloatArray]:
    """EWMA-q: per-series alpha by in-sample one-step error, flat forecast, empirical q95.

    The level starts at the first sample; the first ``EWMA_BURN_IN`` steps, dominated by that
    start, count neither in choosing alpha (one-step squared error) nor in the residuals.
    """
    alphas = np.asarray(ALPHAS)[:, None]
    yt = np.ascontiguousarray(y.T)  # (steps, series)
    t = yt.shape[0]
    burn = min(EWMA_BURN_IN, max(t - horizon - 1, 0))
    level = np.repeat(yt[0][None, :], len(ALPHAS), axis=0)  # (alphas, series)
    err = np.zeros_like(level)
    diff = np.empty_like(level)
    for k in range(1, t):
        np.subtract(yt[k], level, out=diff)
        if k >= burn:
            err += diff * diff
        diff *= alphas
        level += diff
    alpha = np.asarray(ALPHAS)[np.argmin(err, axis=0)]
    # The chosen alpha's level path, for the h-step residuals.
    path = np.empty_like(yt)
    lev = yt[0].copy()
    path[0] = lev
    for k in range(1, t):
        lev += alpha * (yt[k] - lev)
        path[k] = lev
    point = np.repeat(lev[:, None], horizon, axis=1)
    return point, point + residual_q95(y[:, burn:], path[burn:], horizon)


def persistence(y: FloatArray, horizon: int) -> tuple[FloatArray, FloatArray]:
    """Last value, flat, with per-series empirical h-step residual quantiles."""
    point = np.repeat(y[:, -1:], horizon, axis=1)
    return point, point + residual_q95(y, y.T, horizon)


def seasonal_naive(y: FloatArray, horizon: int) -> tuple[FloatArray, FloatArray]:
    """Same time one day earlier; the residual quantile of y[s] - y[s - DAY] for every h."""
    n, t = y.shape
    if t <= DAY or horizon > DAY:
        nan = np.full((n, horizon), np.nan)
        return nan, nan
    point = y[:, t - DAY : t - DAY + horizon]
    q = np.quantile(y[:, DAY:] - y[:, :-DAY], 0.95, axis=1)
    return point, point + q[:, None]


class AutoETSModel:
    """statsforecast AutoETS(season_length=1), fitted from scratch on each call."""

    def __init__(self, window: int) -> None:
        import pandas as pd
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS

        self.window = window
        self._pd = pd
        self._sf = StatsForecast
        self._ets = AutoETS
        self.failures: list[str] = []
        # Compile numba kernels now so JIT time is not charged to the first origin.
        rng = np.random.default_rng(0)
        self(10.0 + rng.normal(size=(2, 60)).cumsum(axis=1), 12)

    def __call__(self, y: FloatArray, horizon: int) -> tuple[FloatArray, FloatArray]:
        y = y[:, -self.window :]
        n, t = y.shape
        point = np.full((n, horizon), np.nan)
        p95 = np.full((n, horizon), np.nan)
        rows = np.flatnonzero(np.isfinite(y).all(axis=1))
        if rows.size == 0:
            return point, p95
        df = self._pd.DataFrame(
            {
                "unique_id": np.repeat(rows, t),
                "ds": np.tile(np.arange(t), rows.size),
                "y": y[rows].ravel(),
            }
        )
        sf = self._sf(models=[self._ets(season_length=1)], freq=1, n_jobs=1)
        try:
            out = sf.forecast(df=df, h=horizon, level=[90])
        except Exception as exc:  # a failing fit must not sink the other models
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return point, p95
        if "unique_id" not in out.columns:
            out = out.reset_index()
        out = out.sort_values(["unique_id", "ds"])
        ids = out["unique_id"].to_numpy().reshape(-1, horizon)[:, 0].astype(np.int64)
        point[ids] = out["AutoETS"].to_numpy(dtype=np.float64).reshape(-1, horizon)
        p95[ids] = out["AutoETS-hi-90"].to_numpy(dtype=np.float64).reshape(-1, horizon)
        return point, p95


def run_baseline(name: str, fit: FitForecast, panel: Panel, progress: bool) -> ModelRun:
    """Fit ``fit`` from scratch on y[:, :t] at every origin t; time fit + forecast only."""
    origins = panel.protocol.origins(panel.values.shape[1])
    H = panel.protocol.horizon
    n = panel.n_series
    point = np.full((n, len(origins), H), np.nan)
    p95 = np.full((n, len(origins), H), np.nan)
    cpu = wall = 0.0
    for j, t in enumerate(origins):
        c0, w0 = time.process_time(), time.perf_counter()
        history = fill_history(panel.values[:, :t], panel.observed[:, :t])
        pt, up = fit(history, H)
        point[:, j] = np.clip(pt, panel.lower, panel.upper)
        p95[:, j] = np.clip(up, panel.lower, panel.upper)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        if progress:
            say(f"  {name}: origin {j + 1}/{len(origins)} (cpu {cpu:.1f} s)", end="\r")
    if progress:
        say("")
    return ModelRun(name, point, p95, cpu, wall)


# -- forethought ------------------------------------------------------------------------------
class Recorder(Forecaster):
    """Passes through to the engine and keeps each forecast's median and p95 for pooling."""

    def __init__(self, inner: ForecastEngine) -> None:
        self.inner = inner
        self.point: list[FloatArray] = []
        self.p95: list[FloatArray] = []

    def update(self, values: FloatArray, observed: BoolArray | None = None) -> None:
        self.inner.update(values, observed)

    def forecast(self, horizon: int) -> Forecast:
        fc = self.inner.forecast(horizon)
        self.point.append(fc.quantile(0.5).copy())
        self.p95.append(fc.quantile(0.95).copy())
        return fc

    @property
    def events(self) -> list[Anomaly]:
        return self.inner.events


def run_forethought(panel: Panel, progress: bool, model: str = "auto") -> tuple[ModelRun, Scores]:
    made: list[Recorder] = []
    name = "forethought" if model == "auto" else f"forethought-{model}"

    def make() -> Forecaster:
        rec = Recorder(make_forecaster(model, upper=panel.upper))
        made.append(rec)
        return rec

    def tick(done: int, total: int) -> None:
        if progress:
            say(f"  {name}: origin {done}/{total}", end="\r" if done < total else "\n")

    p = panel.protocol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # counted and reported instead
        result = backtest(
            make,
            panel.values,
            panel.observed,
            BacktestConfig(p.horizon, p.first_origin, p.every),
            progress=tick,
        )
    rec = made[0]
    run = ModelRun(
        name,
        np.stack(rec.point, axis=1),
        np.stack(rec.p95, axis=1),
        result.cpu_seconds,
        result.wall_seconds,
        notes={
            "backtest": result.to_dict(),
            "anomalies": result.anomalies,
            "fallback_notes_last_origin": result.notes,
        },
    )
    return run, result.scores


# -- scoring and reporting ----------------------------------------------------------------------
@dataclass
class Scored:
    model: str
    scores: Scores
    n_series: int
    n_origins: int
    cpu_seconds: float
    wall_seconds: float
    missing_forecasts: int
    notes: dict[str, object]

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_seconds / (self.n_series / 1000.0) / max(self.n_origins, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            **self.scores.overall,
            "coverage_95_min_h": min(r["coverage_95"] for r in self.scores.per_horizon),
            "coverage_95_max_h": max(r["coverage_95"] for r in self.scores.per_horizon),
            "per_horizon": self.scores.per_horizon,
            "points": self.scores.points,
            "series_origins_without_scale": self.scores.series_without_scale,
            "missing_forecasts_at_observed_actuals": self.missing_forecasts,
            "n_series": self.n_series,
            "n_origins": self.n_origins,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "cpu_seconds_per_1k_series_per_origin": self.cpu_per_1k,
            "notes": self.notes,
        }


def targets_of(panel: Panel) -> tuple[FloatArray, FloatArray]:
    """Actuals (NaN where unobserved) and the MASE scale, exactly as the backtest builds them."""
    clean = np.where(panel.observed, panel.values, np.nan)
    origins = panel.protocol.origins(panel.values.shape[1])
    H = panel.protocol.horizon
    actual = np.stack([clean[:, t : t + H] for t in origins], axis=1)
    scale = np.stack([naive_scale(clean[:, :t]) for t in origins], axis=1)
    return actual, scale


def quiet_score(
    actual: FloatArray, point: FloatArray, p95: FloatArray, scale: FloatArray
) -> Scores:
    with warnings.catch_warnings():
        # Constant histories have no MASE scale; score() leaves them out (and counts them).
        warnings.simplefilter("ignore", RuntimeWarning)
        return score(actual, point, p95, scale)


def has_forecast(run: ModelRun) -> BoolArray:
    return np.isfinite(run.point) & np.isfinite(run.p95)


def score_all(runs: Sequence[ModelRun], actual: FloatArray, scale: FloatArray) -> list[Scored]:
    """Score every run on the same points: observed actuals where every model has a forecast.

    A point where some model gave no forecast (NaN median or p95) is left out for all models,
    so the figures stay comparable; each model's own count of missing forecasts is kept.
    """
    common = np.isfinite(actual)
    for run in runs:
        common &= has_forecast(run)
    shared = np.where(common, actual, np.nan)
    return [score_run(run, actual, scale, shared) for run in runs]


def score_run(
    run: ModelRun, actual: FloatArray, scale: FloatArray, shared: FloatArray | None = None
) -> Scored:
    seen = np.isfinite(actual)
    missing = int((seen & ~has_forecast(run)).sum())
    return Scored(
        model=run.model,
        scores=quiet_score(actual if shared is None else shared, run.point, run.p95, scale),
        n_series=int(actual.shape[0]),
        n_origins=int(actual.shape[1]),
        cpu_seconds=run.cpu_seconds,
        wall_seconds=run.wall_seconds,
        missing_forecasts=missing,
        notes=run.notes,
    )


def fmt(x: float, digits: int = 3) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.{digits}f}"


def fmt_cpu(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def table(title: str, rows: Sequence[Scored], subtitle: str = "", extra: Sequence[str] = ()) -> str:
    lines = [f"### {title}", ""]
    if subtitle:
        lines += [subtitle, ""]
    if not rows:
        return "\n".join([*lines, *[f"- {x}" for x in extra]])
    lines += [
        "| model | MAE | RMSE | MASE | pinball_95 | coverage_95 | cov_95 min h | cov_95 max h "
        "| under-prov. | over-prov. (pts) | CPU-s / 1k series / origin |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o = r.scores.overall
        cov = [h["coverage_95"] for h in r.scores.per_horizon]
        lines.append(
            f"| {LABELS[r.model]} | {fmt(o['mae'])} | {fmt(o['rmse'])} | {fmt(o['mase'])} "
            f"| {fmt(o['pinball_95'])} | {fmt(o['coverage_95'])} | {fmt(min(cov))} "
            f"| {fmt(max(cov))} | {fmt(o['under_provisioning'])} "
            f"| {fmt(o['over_provisioning'], 2)} | {fmt_cpu(r.cpu_per_1k)} |"
        )
    H = len(rows[0].scores.per_horizon)
    lines += [
        "",
        f"| model | MAE h=1 | MASE h=1 | pinball_95 h=1 | cov_95 h=1 | MAE h={H} | MASE h={H} "
        f"| pinball_95 h={H} | cov_95 h={H} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r.scores.per_horizon[0], r.scores.per_horizon[-1]
        lines.append(
            f"| {LABELS[r.model]} | {fmt(a['mae'])} | {fmt(a['mase'])} | {fmt(a['pinball_95'])} "
            f"| {fmt(a['coverage_95'])} | {fmt(b['mae'])} | {fmt(b['mase'])} "
            f"| {fmt(b['pinball_95'])} | {fmt(b['coverage_95'])} |"
        )
    notes = [*extra]
    notes += [
        f"{LABELS[r.model]}: {r.missing_forecasts:,} observed points without a forecast (NaN "
        "median or p95); those points are left out for every model"
        for r in rows
        if r.missing_forecasts
    ]
    no_scale = {r.scores.series_without_scale for r in rows}
    if no_scale != {0}:
        notes.append(
            f"(series, origin) pairs without a MASE scale (constant history), left out of "
            f"MASE: {max(no_scale)}"
        )
    if notes:
        lines += ["", *[f"- {x}" for x in notes]]
    return "\n".join(lines)


def check(label: str, ok: bool, detail: str) -> str:
    return f"- [{'met' if ok else 'NOT met'}] {label}: {detail}"


def planetlab_targets(title: str, pr: PanelRun) -> list[str]:
    ft = next((r for r in pr.rows if r.model == "forethought"), None)
    if ft is None:
        crash = pr.failed.get("forethought")
        return [f"{title}:", check("forethought ran", False, crash)] if crash else []
    o = ft.scores.overall
    cov = [h["coverage_95"] for h in ft.scores.per_horizon]
    bad_h = [i + 1 for i, c in enumerate(cov) if not 0.94 <= c <= 0.96]
    return [
        f"{title}:",
        check("MASE <= 0.75", o["mase"] <= 0.75, fmt(o["mase"])),
        check("pinball_95 <= 0.85", o["pinball_95"] <= 0.85, fmt(o["pinball_95"])),
        check(
            "coverage_95 in [0.94, 0.96] at every horizon",
            not bad_h,
            f"{fmt(min(cov), 4)}..{fmt(max(cov), 4)}"
            + (f", outside at h={bad_h}" if bad_h else ""),
        ),
        check("<= 0.2 CPU-s / 1k series / origin", ft.cpu_per_1k <= 0.2, fmt(ft.cpu_per_1k)),
    ]


def bitbrains_targets(title: str, pr: PanelRun) -> list[str]:
    rows = pr.rows
    ft = next((r for r in rows if r.model == "forethought"), None)
    if ft is None:
        crash = pr.failed.get("forethought")
        return [f"{title}:", check("forethought ran", False, crash)] if crash else []
    out = [f"{title}:"]
    for metric in ("mase", "pinball_95"):
        for k in (0, len(ft.scores.per_horizon) - 1):
            mine = ft.scores.per_horizon[k][metric]
            for r in rows:
                if r.model == "forethought":
                    continue
                theirs = r.scores.per_horizon[k][metric]
                out.append(
                    check(
                        f"{metric} h={k + 1} better than {LABELS[r.model]}",
                        mine < theirs,
                        f"{fmt(mine)} vs {fmt(theirs)}",
                    )
                )
    return out


def say(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, object] = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }
    try:
        import statsforecast

        info["statsforecast"] = statsforecast.__version__
    except ImportError:
        info["statsforecast"] = None
    info["forethought_source"] = source_fingerprint()
    return info


def source_fingerprint() -> dict[str, object]:
    """Which forethought code produced the figures: git HEAD, dirty files, a content hash."""
    import hashlib
    import subprocess

    import forethought

    src = Path(forethought.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        digest.update(str(path.relative_to(src)).encode())
        digest.update(path.read_bytes())

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=REPO, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    in_repo = src.is_relative_to(REPO)
    return {
        "imported_from": shown(src),
        "git_head": git("rev-parse", "HEAD") if in_repo else "",
        "dirty_under_src": git("status", "--porcelain", "--", "src").splitlines()
        if in_repo
        else [],
        "sha256_of_src_py": digest.hexdigest(),
    }


# -- driver -------------------------------------------------------------------------------------
@dataclass
class PanelRun:
    """A panel's targets, every model's raw forecasts and their scores."""

    actual: FloatArray
    scale: FloatArray
    runs: list[ModelRun]
    rows: list[Scored]
    checks: dict[str, object]
    failed: dict[str, str] = field(default_factory=dict)  # model -> the exception it raised
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it did not apply


def pool(parts: Sequence[PanelRun]) -> tuple[list[Scored], list[str]]:
    """Score several panels (same protocol and steps) as one: every series of every panel.

    Only models that ran on every panel are pooled; the others are named in the second item.
    """
    actual = np.concatenate([p.actual for p in parts])
    scale = np.concatenate([p.scale for p in parts])
    names = [r.model for r in parts[0].runs]
    everywhere = [m for m in names if all(any(r.model == m for r in p.runs) for p in parts)]
    left_out = sorted({r.model for p in parts for r in p.runs} - set(everywhere))
    merged = []
    for model in everywhere:
        runs = [next(r for r in p.runs if r.model == model) for p in parts]
        merged.append(
            ModelRun(
                model,
                np.concatenate([r.point for r in runs]),
                np.concatenate([r.p95 for r in runs]),
                sum(r.cpu_seconds for r in runs),
                sum(r.wall_seconds for r in runs),
            )
        )
    return score_all(merged, actual, scale), [LABELS[m] for m in left_out]


def run_model(
    name: str, panel: Panel, ets: AutoETSModel | None, progress: bool, pr: PanelRun
) -> ModelRun | None:
    """One model on one panel; None when it does not apply (the reason goes in ``pr``)."""
    origins = panel.protocol.origins(panel.values.shape[1])
    if name in ("forethought", "forethought-lstm"):
        if name == "forethought-lstm" and importlib.util.find_spec("torch") is None:
            pr.skipped[name] = "PyTorch is not installed (pip install -e '.[lstm]')"
            return None
        model = "auto" if name == "forethought" else "lstm"
        run, bt_scores = run_forethought(panel, progress, model)
        # The recorded forecasts, scored here, must reproduce the backtest's own figures.
        mine = quiet_score(pr.actual, run.point, run.p95, pr.scale).overall
        diff = max(abs(mine[k] - bt_scores.overall[k]) for k in mine)
        pr.checks[f"{name}_rescore_max_abs_diff"] = diff
        if not diff < 1e-9:
            say(f"  WARNING: re-scoring forethought differs from backtest() by {diff:g}")
        return run
    if name == "ewma-q":
        return run_baseline(name, ewma_q, panel, progress)
    if name == "persistence":
        return run_baseline(name, persistence, panel, progress)
    if name == "seasonal-naive":
        if origins[0] <= DAY:
            pr.skipped[name] = f"needs more than one day ({DAY} steps) of history at every origin"
            return None
        return run_baseline(name, seasonal_naive, panel, progress)
    if name == "autoets":
        if ets is None:
            pr.skipped[name] = "statsforecast is not installed"
            return None
        before = len(ets.failures)
        run = run_baseline(name, ets, panel, progress)
        run.notes = {"ets_window": ets.window, "failed_batches": ets.failures[before:]}
        return run
    raise ValueError(name)


def run_panel(
    panel: Panel, models: Sequence[str], ets: AutoETSModel | None, progress: bool
) -> PanelRun:
    say(f"{panel.title}: {panel.n_series} series x {panel.values.shape[1]} steps")
    actual, scale = targets_of(panel)
    pr = PanelRun(actual, scale, [], [], {})
    for name in models:
        try:
            run = run_model(name, panel, ets, progress, pr)
        except Exception as exc:  # report a crash and go on with the other models
            pr.failed[name] = f"{type(exc).__name__}: {exc}"
            pr.checks[f"{name}_traceback"] = traceback.format_exc()
            say(f"\n  {name} CRASHED: {pr.failed[name]}")
            continue
        if run is None:
            say(f"  {name} skipped: {pr.skipped[name]}")
            continue
        pr.runs.append(run)
        say(f"  {name}: {run.cpu_seconds:.1f} CPU-s")
    pr.rows = score_all(pr.runs, actual, scale)
    return pr


def report(panel: Panel, pr: PanelRun, subtitle: str) -> dict[str, object]:
    """Print the panel's tables; return its JSON record."""
    extra = [f"{LABELS[m]} CRASHED: {why}" for m, why in pr.failed.items()]
    extra += [f"{LABELS[m]} skipped: {why}" for m, why in pr.skipped.items()]
    print(table(panel.title, pr.rows, subtitle, extra) + "\n")
    return {
        "title": panel.title,
        "protocol": subtitle,
        "data": panel.info,
        "checks": pr.checks,
        "crashed": pr.failed,
        "skipped": pr.skipped,
        "results": [r.to_dict() for r in pr.rows],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--planetlab-days",
        default=None,
        help="comma-separated PlanetLab days, e.g. 20110303,20110306 (default when no dataset "
        f"is chosen: {','.join(PLANETLAB_DAYS)})",
    )
    p.add_argument("--planetlab-dir", type=Path, default=TRACES / "planetlab")
    p.add_argument("--bitbrains", action="store_true", help="run the Bitbrains Rnd benchmark")
    p.add_argument("--bitbrains-dir", type=Path, default=TRACES / "bitbrains-rnd" / "2013-8")
    p.add_argument(
        "--max-series", type=int, default=None, help="Bitbrains: keep the first N VMs (id order)"
    )
    p.add_argument(
        "--origin-every",
        type=int,
        default=DAY,
        help="Bitbrains: steps between origins (default 288, one per day)",
    )
    p.add_argument(
        "--first-origin",
        type=int,
        default=2 * DAY,
        help="Bitbrains: first origin (default 576: two days, so seasonal-naive has a day "
        "of residuals and every model is scored on the same points)",
    )
    p.add_argument(
        "--ets-window",
        type=int,
        default=7 * DAY,
        help="AutoETS is fitted on at most the last N samples of history (default 2016, a week)",
    )
    p.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated subset of {','.join(MODELS + OPT_IN)} (default: "
        f"{','.join(MODELS)}; {','.join(OPT_IN)} only when named)",
    )
    p.add_argument("--json", type=Path, default=None, help="write every result to this file")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS + OPT_IN]
    if unknown:
        say(f"unknown model(s) {unknown}; choose from {', '.join(MODELS + OPT_IN)}")
        return 2
    progress = not args.no_progress
    days = args.planetlab_days
    if days is None and not args.bitbrains:
        days = ",".join(PLANETLAB_DAYS)

    ets: AutoETSModel | None = None
    skipped: dict[str, str] = {}
    if "autoets" in models:
        try:
            ets = AutoETSModel(args.ets_window)
        except ImportError as exc:
            skipped["autoets"] = f"statsforecast/pandas not installed ({exc})"

    info = machine()
    source: dict[str, Any] = info["forethought_source"]  # type: ignore[assignment]
    out: dict[str, Any] = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": info,
        "models": models,
        "skipped": skipped,
        "datasets": {},
    }
    print(
        f"# forethought forecast benchmark\n\n{info['date_utc']}; {info['nproc']} CPUs "
        f"({info['cpu_model']}); Python {info['python']}, NumPy {info['numpy']}, "
        f"statsforecast {info['statsforecast']}; one thread; forethought source sha256 "
        f"{source['sha256_of_src_py'][:12]}, imported from {source['imported_from']}"
        + (
            f" (git {source['git_head'][:7]}"
            f"{', with uncommitted changes' if source['dirty_under_src'] else ''})"
            if source["git_head"]
            else ""
        )
        + ".\n"
    )
    if "autoets" in skipped:
        print(
            "> AutoETS skipped: statsforecast is not installed "
            "(pip install -e '.[bench]' to include it).\n"
        )
    started = time.perf_counter()
    target_lines: list[str] = []

    if days:
        protocol = Protocol(horizon=12, first_origin=144, every=12)
        panels = load_planetlab(args.planetlab_dir, [d for d in days.split(",") if d], protocol)
        done: list[PanelRun] = []
        steps = {p.values.shape[1] for p in panels}
        for panel in panels:
            pr = run_panel(panel, models, ets, progress)
            out["datasets"][panel.key] = report(panel, pr, protocol.describe(panel.values.shape[1]))
            target_lines += planetlab_targets(panel.title, pr)
            done.append(pr)
        if len(panels) > 1 and len(steps) == 1:
            rows, left_out = pool(done)
            title = f"PlanetLab, all {len(panels)} days pooled"
            extra = [f"not pooled (missing on some day): {', '.join(left_out)}"] if left_out else []
            sub = "Every VM-day of the days above, scored together."
            print(table(title, rows, sub, extra) + "\n")
            out["datasets"]["planetlab-pooled"] = {
                "title": title,
                "results": [r.to_dict() for r in rows],
            }

    if args.bitbrains:
        protocol = Protocol(horizon=12, first_origin=args.first_origin, every=args.origin_every)
        say("reading Bitbrains ...")
        for panel in load_bitbrains(args.bitbrains_dir, protocol, args.max_series):
            pr = run_panel(panel, models, ets, progress)
            subtitle = protocol.describe(panel.values.shape[1])
            if ets is not None:
                subtitle += f"; AutoETS fitted on at most the last {args.ets_window} samples"
            out["datasets"][panel.key] = report(panel, pr, subtitle)
            target_lines += bitbrains_targets(panel.title, pr)

    if target_lines:
        print("### Targets (forethought auto)\n\n" + "\n".join(target_lines) + "\n")
    elapsed = time.perf_counter() - started
    print(f"Total wall time: {elapsed:.0f} s.")
    out["targets"] = target_lines
    out["wall_seconds_total"] = elapsed
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=float) + "\n")
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
