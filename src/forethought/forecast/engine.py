"""The forecasting engine: point models, online weights, conformal quantiles, anomalies.

One step of the engine, for all series at once:
1. score the paths issued 1..H steps ago against the new sample (calibration residuals,
   per-model losses) and check the sample against the one-step upper quantile (anomalies);
2. let every model learn from the sample;
3. ask every model for its path; combine them with per-series weights that follow each
   model's recent loss (exponentially weighted, Hedge style), so each series leans on the
   models that have served it best lately.
A forecast is then the newest combined path plus the residual quantiles of its horizon.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np

from forethought.core.errors import ForecastError
from forethought.core.numbers import is_whole
from forethought.core.resources import MAX_READING
from forethought.forecast.anomaly import Anomaly, AnomalyDetector
from forethought.forecast.base import (
    DEFAULT_LEVELS,
    ROUNDING,
    BoolArray,
    FloatArray,
    Forecast,
    Forecaster,
    validate_levels,
)
from forethought.forecast.calibration import DEFAULT_ADAPT_RATES, ResidualCalibrator, adapt_rates
from forethought.forecast.history import History
from forethought.forecast.models.autoregressive import AutoRegressive
from forethought.forecast.models.base import PointModel
from forethought.forecast.models.global_linear import GlobalLinear
from forethought.forecast.models.markov import MarkovChain
from forethought.forecast.models.seasonal import SeasonalProfile
from forethought.forecast.models.simple import LastValue, MovingAverage, MovingMedian
from forethought.forecast.models.smoothing import EWMA, HoltDamped


class ForecastEngine(Forecaster):
    """Runs point models over many series and turns them into calibrated distributions.

    Parameters are the constructor's arguments; the engine sizes itself on the first
    ``update``. ``lower``/``upper`` bound every quantile (for example 0 and 100 for percent).
    """

    def __init__(
        self,
        models: Sequence[PointModel],
        *,
        horizon: int = 12,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
        calibration_window: int = 288,
        adapt_rate: float | Sequence[float] = DEFAULT_ADAPT_RATES,
        min_calibration: int = 24,
        learning_rate: float = 1.0,
        loss_decay: float = 0.97,
        lower: float | None = 0.0,
        upper: float | None = None,
        anomaly_run: int = 3,
        spread_window: int = 0,
        fallback: PointModel | None = None,
    ) -> None:
        if not models:
            raise ForecastError("the engine needs at least one model")
        if not is_whole(horizon) or horizon < 1:
            raise ForecastError(
                f"the horizon must be a whole number of steps >= 1, got {horizon!r}"
            )
        if not is_whole(anomaly_run) or anomaly_run < 1:
            raise ForecastError(
                f"an anomaly run must be a whole number of steps >= 1, got {anomaly_run!r}"
            )
        for name, bound in (("lower", lower), ("upper", upper)):
            if bound is not None and (not isinstance(bound, int | float) or math.isnan(bound)):
                raise ForecastError(f"{name} must be a number or None, got {bound!r}")
        if lower is not None and upper is not None and lower > upper:
            raise ForecastError(f"lower ({lower:g}) is above upper ({upper:g})")
        self.models = list(models)
        self.horizon = horizon
        self.levels = validate_levels(levels)
        self.calibration_window = calibration_window
        try:
            self.adapt_rate = adapt_rates(adapt_rate)
        except ValueError as err:
            raise ForecastError(str(err)) from None
        self.min_calibration = min_calibration
        self.learning_rate = learning_rate
        self.loss_decay = loss_decay
        self.lower = lower
        self.upper = upper
        self.anomaly_run = anomaly_run
        self.spread_window = spread_window
        # False: forecast() uses the residual quantiles as last refreshed (every horizon
        # steps) instead of re-sorting all residuals; for callers forecasting every step.
        self.fresh_quantiles = True
        # True: refresh one horizon band at a time (see _step), for a steady step cost.
        self.stagger_refresh = False
        # Where no model is valid for a series, this simpler one answers, and the note says so.
        self.fallback = fallback if fallback is not None else LastValue()
        self._n: int | None = None

    # -- state -------------------------------------------------------------------------
    def _allocate(self, n: int) -> None:
        M, H = len(self.models), self.horizon
        # The issued paths grow with the square of the horizon: refuse what cannot fit
        # in this machine's memory with a message, rather than fail deep inside NumPy.
        need = 8 * H * n * H
        total = _physical_memory()
        if total is not None and need > total:
            raise ForecastError(
                f"a horizon of {H} steps for {n:,} series needs {need / 2**30:,.1f} GiB for "
                f"the paths the engine keeps, more than this machine's {total / 2**30:,.1f} "
                "GiB; shorten the horizon or forecast fewer series at once"
            )
        needed = max([m.history_needed for m in self.models] + [self.fallback.history_needed])
        self.history = History(n, max(needed, H + 1))
        for model in [*self.models, self.fallback]:
            model.reset(n)
        # The median is the combined path itself (see forecast), so only the other levels
        # are calibrated: a quarter less of the calibrator's memory and work by default. (The
        # top level also sets the anomaly bar, so 0.5 stays when nothing lies above it.)
        above = max(self.levels) > 0.5
        self._offset_levels = tuple(q for q in self.levels if q != 0.5) if above else self.levels
        self.calibrator = ResidualCalibrator(
            n,
            H,
            self._offset_levels,
            self.calibration_window,
            self.min_calibration,
            self.adapt_rate or 0.0,
        )
        self.anomalies = AnomalyDetector(n, self.anomaly_run, max(self.levels))
        # Issued paths, only to score them, are kept in float32 as the residual rings are
        # (7 significant digits, far below any forecast error): at fleet scale they are
        # among the largest arrays. The newest, which forecast() returns, stays exact.
        self._paths = np.full((H, n, H), np.nan, dtype=np.float32)  # issued at step s, slot s % H
        self._newest = np.full((n, H), np.nan)
        self._spreads = np.ones((H, n))  # local spread when that path was issued
        self._first = np.full((M, n), np.nan)  # each model's one-step forecast from last step
        # Each model's H-step forecast, slot s % H (float32 too: it only scores the models).
        self._last_h = np.full((H, M, n), np.nan, dtype=np.float32)
        self._loss = np.zeros((M, n))
        self._out_of_bounds = np.zeros(n, dtype=bool)  # observed outside [lower, upper]
        self._valid = np.zeros((M, n), dtype=bool)
        self._weights = np.full((M, n), 1.0 / M)
        self._upper1 = np.full(n, np.nan)
        self._used_fallback = np.zeros(n, dtype=bool)
        self._reasons: list[str] = ["" for _ in self.models]
        self.steps = 0
        self._n = n  # last: an engine that failed to size itself is still unsized

    @property
    def n_series(self) -> int:
        if self._n is None:
            raise ForecastError("the engine has seen no data yet")
        return self._n

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.label for m in self.models)

    @property
    def events(self) -> list[Anomaly]:
        """Every anomaly detected so far, with its evidence."""
        return self.anomalies.events if self._n is not None else []

    def steady(self) -> None:
        """Set the engine up for a caller that forecasts at every step.

        ``forecast()`` then serves the residual quantiles in force, the calibration is
        refreshed one horizon band at a time, and models that refit on a schedule (AR,
        Markov, the seasonal test) refit a slice of the series at each step. Each step
        then costs about the same, instead of every twelfth paying for all the refits.
        """
        self.fresh_quantiles = False
        self.stagger_refresh = True
        for model in [*self.models, self.fallback]:
            model.stagger = True

    # -- verbs -------------------------------------------------------------------------
    def update(self, values: FloatArray, observed: BoolArray | None = None) -> None:
        """Feed (series, steps) samples, or one step as (series,).

        NaN and infinite values are missing samples, as are those where ``observed`` (booleans
        of the same shape) is False. Everything is checked before any state moves: a refused
        update leaves the engine as it was.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ForecastError(f"update takes (series, steps); got shape {values.shape}")
        if values.shape[0] == 0:
            raise ForecastError("update needs at least one series")
        if self._n is not None and values.shape[0] != self._n:
            raise ForecastError(f"expected {self._n} series, got {values.shape[0]}")
        if observed is None:
            mask = np.isfinite(values)
        else:
            given = np.asarray(observed)
            if given.ndim == 1 and values.shape[1] == 1:
                given = given[:, None]
            if given.shape != values.shape:
                raise ForecastError(
                    f"observed must have the shape of the values {values.shape}, got {given.shape}"
                )
            if given.dtype != bool and not (
                given.dtype.kind in "iu" and np.isin(given, (0, 1)).all()
            ):
                raise ForecastError(f"observed must be booleans (or 0/1), got dtype {given.dtype}")
            mask = given.astype(bool)
        mask = mask & np.isfinite(values)  # NaN and infinite values are missing samples
        # Reductions first: at fleet scale an element-wise test would cost temporaries the
        # size of the update, and almost every update passes.
        seen_low = float(np.min(values, initial=np.inf, where=mask))
        seen_high = float(np.max(values, initial=-np.inf, where=mask))
        if max(-seen_low, seen_high) > MAX_READING:  # before any state moves
            huge = mask & (np.abs(values) > MAX_READING)
            series, step = (int(x[0]) for x in np.nonzero(huge))
            raise ForecastError(
                f"series {series}, step {step}: {values[series, step]:g} is beyond what the "
                f"engine takes (magnitude at most {MAX_READING:g}); express the series in a "
                "larger unit"
            )
        if self._n is None:
            self._allocate(values.shape[0])
        # Forecasts are clipped to [lower, upper]; data outside them is kept as seen, and
        # the series' note says its forecasts cannot follow it there.
        low = -np.inf if self.lower is None else self.lower - ROUNDING * max(1.0, abs(self.lower))
        high = np.inf if self.upper is None else self.upper + ROUNDING * max(1.0, abs(self.upper))
        if seen_low < low or seen_high > high:
            outside = mask & ((values < low) | (values > high))
            self._out_of_bounds |= outside.any(axis=1)
        for k in range(values.shape[1]):  # loop over time steps, vectorised over series
            self._step(values[:, k], mask[:, k])

    def _step(self, y: FloatArray, obs: BoolArray) -> None:
        t, H = self.steps, self.horizon
        scale = self.history.scale()
        unit = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        if t > 0:
            self.anomalies.check(t, y, obs, self._upper1)
            k = min(H, t)
            hs = np.arange(1, k + 1)
            issued = self._paths[(t - hs) % H, :, hs - 1].T  # (n, k): h-step paths, h = 1..k
            spread = self._spreads[(t - hs) % H].T
            ok = obs[:, None] & np.isfinite(issued)
            self.calibrator.add((y[:, None] - issued) / spread, ok)
            # Per-model loss: mean of the one-step and the H-step absolute error, in units
            # of the series' naive scale, exponentially forgotten.
            err1 = np.abs(y[None, :] - self._first)
            errh = np.abs(y[None, :] - self._last_h[t % H]) if t >= H else err1
            loss = 0.5 * (err1 + errh) / unit[None, :]
            scored = obs[None, :] & np.isfinite(loss)
            self._loss = np.where(scored, self.loss_decay * self._loss + loss, self._loss)
        self.history.append(y, obs)
        for model in self.models:
            model.observe(y, obs, self.history)
        self._combine()
        self._spreads[t % H] = self._spread()
        self.steps += 1
        if self.steps > 1:
            # Residual quantiles move slowly: recompute them every H steps (sorting every
            # ring is the costliest thing the engine does), and forecast() when stale.
            bands = len(self.calibrator.bands)
            period = max(1, H // bands)
            if self.stagger_refresh and self.calibrator.counts.size and self.steps > H:
                # One band every H / bands steps: every band is as fresh as with a full
                # refresh every H steps, but no single step pays for all the sorting.
                if self.steps % period == 0:
                    band = (self.steps // period) % bands
                    self.calibrator.refresh(self._pool_scale(), [band])
            elif self.calibrator.adds_since_refresh >= H:
                self.calibrator.refresh(self._pool_scale())
            offset = self.calibrator.upper_one_step()
            upper1 = self._newest[:, 0] + offset * self._spreads[t % H]
            # In the series' range, as the forecasts are: a bound below the lowest value
            # possible would flag an idle series (0 above a negative p99) as anomalous.
            if self.lower is not None or self.upper is not None:
                upper1 = np.clip(upper1, self.lower, self.upper)
            self._upper1 = upper1

    def _pool_scale(self) -> FloatArray:
        """Per-series scale of the stored residuals, for borrowing pooled calibration.

        The naive scale, else 1 % of the level, else zero: always taken from the data, so
        forecasts stay equivariant to the unit of the series.
        """
        scale = self.history.scale()
        level = np.abs(np.where(np.isfinite(self.history.last), self.history.last, 0.0))
        unit = np.where(np.isfinite(scale) & (scale > 0), scale, 0.01 * level)
        spread = self._spreads[(self.steps - 1) % self.horizon] if self.steps else 1.0
        return np.asarray(unit / spread)

    def _spread(self) -> FloatArray:
        """Each series' current local spread: mean absolute deviation from its median.

        Residuals are stored in units of the spread at the time the forecast was issued and
        turned back with the spread at forecast time (normalised conformal prediction), so
        intervals widen in a volatile spell and tighten in a calm one instead of carrying
        the average width of the whole calibration window.
        """
        if self.spread_window <= 1:
            return np.ones(self.n_series)
        window = self.history.window(self.spread_window)
        centre = self.history.median(self.spread_window)
        spread = np.mean(np.abs(window - centre[:, None]), axis=1)
        scale = self.history.scale()
        floor = np.maximum(
            0.1 * np.where(np.isfinite(scale), scale, 0.0), 1e-3 * (np.abs(centre) + 1.0)
        )
        return np.asarray(np.where(np.isfinite(spread), np.maximum(spread, floor), 1.0))

    def _combine(self) -> None:
        t, H = self.steps, self.horizon
        # Validity is only known once a model has predicted, but the weights need all of
        # them; so predictions are kept as a list (never stacked: that would double the
        # largest temporary, M x series x H, which matters at 100,000 series).
        paths = []
        for m, model in enumerate(self.models):
            pred = model.predict(H, self.history)
            valid = pred.valid & np.isfinite(pred.values).all(axis=1)
            self._valid[m] = valid
            self._reasons[m] = pred.reason
            path = np.where(valid[:, None], pred.values, 0.0)  # weight 0 where invalid
            paths.append(path)
            self._first[m] = np.where(valid, path[:, 0], np.nan)
            self._last_h[t % H, m] = np.where(valid, path[:, H - 1], np.nan)
        # Losses are relative: subtract each series' best so exp() never underflows.
        logits = np.where(self._valid, -self.learning_rate * self._loss, -np.inf)
        best = logits.max(axis=0)
        any_valid = np.isfinite(best)
        raw = np.exp(logits - np.where(any_valid, best, 0.0)[None, :])
        weights = raw / np.where(any_valid, raw.sum(axis=0), 1.0)[None, :]
        combined = np.zeros((self.n_series, H))
        term = np.empty_like(combined)  # one scratch array for every model's share
        for m, path in enumerate(paths):
            combined += np.multiply(weights[m][:, None], path, out=term)
        self._used_fallback = ~any_valid
        if self._used_fallback.any():
            fb = self.fallback.predict(H, self.history)
            combined[self._used_fallback] = np.where(
                fb.valid[self._used_fallback, None], fb.values[self._used_fallback], np.nan
            )
        self._weights = weights
        self._paths[t % H] = combined
        # Served in float64 while scored in float32: a constant series can sit a float32
        # step off its own forecast, which ROUNDING absorbs wherever a quantile is compared
        # with an observation. (Serving the float32 path instead moved the migration
        # planner's energy on 20110322 by 4 %: its decisions amplify the last bit.)
        self._newest = combined

    def forecast(self, horizon: int | None = None) -> Forecast:
        H = self.horizon if horizon is None else horizon
        if not is_whole(H):
            raise ForecastError(f"the horizon must be a whole number of steps, got {H!r}")
        if self._n is None or self.steps == 0:
            raise ForecastError("forecast called before any update")
        if not 1 <= H <= self.horizon:
            raise ForecastError(f"horizon must be between 1 and {self.horizon} (configured)")
        path = self._newest[:, :H]
        rq, rmean, pooled = self.calibrator.residual_quantiles(
            self._pool_scale(), H, fresh=self.fresh_quantiles
        )
        spread = self._spreads[(self.steps - 1) % self.horizon]
        rmean = rmean * spread[:, None]
        # The combined path is already a median estimate (models are scored on absolute
        # error), and re-centring it on a noisy residual median only adds variance, so the
        # 0.5 level is the path itself; the other levels are conformal offsets from it.
        offsets = np.zeros((rq.shape[0], H, len(self.levels)))
        calibrated = [k for k, q in enumerate(self.levels) if q in self._offset_levels]
        offsets[:, :, calibrated] = rq * spread[:, None, None]
        if 0.5 in self._offset_levels:
            offsets[:, :, self.levels.index(0.5)] = 0.0
        quantiles = path[:, :, None] + offsets
        mean = path + rmean
        if self.lower is not None or self.upper is not None:
            quantiles = np.clip(quantiles, self.lower, self.upper)
            mean = np.clip(mean, self.lower, self.upper)
        quantiles = np.sort(quantiles, axis=2)  # monotone in the level, always
        return Forecast(
            levels=self.levels,
            quantiles=quantiles,
            mean=mean,
            notes=self._notes(np.asarray(pooled.any(axis=1), dtype=bool)),
            model_names=self.model_names,
            model_weights=self._weights.T.copy(),
        )

    def _notes(self, pooled: BoolArray) -> tuple[str, ...]:
        """Per-series words on every fallback, built once per distinct combination."""
        bits = [~v for v in self._valid] + [
            self._used_fallback,
            pooled,
            self.history.observed_count == 0,
            self._out_of_bounds,
        ]
        code = np.zeros(self.n_series, dtype=np.int64)
        for b, flag in enumerate(bits):
            code |= flag.astype(np.int64) << b
        texts: dict[int, str] = {}
        M = len(self.models)
        for c in np.unique(code).tolist():
            if c >> (M + 2) & 1:  # never observed: every other reason follows from that one
                texts[c] = "no observation yet: forecast missing"
                continue
            parts = [
                f"{m.label}: {self._reasons[i]}" for i, m in enumerate(self.models) if c >> i & 1
            ]
            if c >> M & 1:
                parts.append(f"no model could forecast; fell back to {self.fallback.name}")
            if c >> (M + 1) & 1:
                parts.append("too few residuals of its own: quantiles borrowed from all series")
            if c >> (M + 3) & 1:
                parts.append(
                    f"observed outside the bounds [{self.lower}, {self.upper}]: forecasts are "
                    "clipped to them"
                )
            texts[c] = "; ".join(parts)
        return tuple(texts[c] for c in code.tolist())


def _physical_memory() -> int | None:
    """Bytes of physical memory, where the platform says (None elsewhere)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _auto(step_seconds: int, horizon: int) -> list[PointModel]:
    return [
        LastValue(),
        MovingMedian(12),
        MovingMedian(36),
        MovingMedian(144),
        EWMA(),
        HoltDamped(),
        SeasonalProfile(step_seconds),
        AutoRegressive(order=3),
        MarkovChain(),
        GlobalLinear(max_horizon=horizon),
    ]


_SINGLE: dict[str, Callable[[int, int], PointModel]] = {
    "last": lambda s, h: LastValue(),
    "mean": lambda s, h: MovingAverage(12),
    "median": lambda s, h: MovingMedian(36),
    "ewma": lambda s, h: EWMA(),
    "holt": lambda s, h: HoltDamped(),
    "seasonal": lambda s, h: SeasonalProfile(s),
    "ar": lambda s, h: AutoRegressive(order=3),
    "arima": lambda s, h: AutoRegressive(order=2, differenced=True),
    "markov": lambda s, h: MarkovChain(),
    "global": lambda s, h: GlobalLinear(max_horizon=h),
}


def _statsforecast(name: str) -> Callable[[int, int], PointModel]:
    def build(step_seconds: int, horizon: int) -> PointModel:
        # Imported here: statsforecast is an optional extra, loaded only when asked for.
        from forethought.forecast.models.statsforecast_adapter import StatsForecastModel

        return StatsForecastModel(name)

    return build


def _lstm(step_seconds: int, horizon: int) -> PointModel:
    # Imported here: PyTorch is an optional extra, loaded only when asked for.
    from forethought.forecast.models.lstm import GlobalLSTM

    return GlobalLSTM(max_horizon=horizon)


#: Models that need an optional extra: statsforecast (models/statsforecast_adapter.py)
#: or PyTorch (models/lstm.py).
OPTIONAL = ("autoets", "autoarima", "autotheta", "lstm")
_SINGLE.update({n: _statsforecast(n) for n in OPTIONAL if n != "lstm"})
_SINGLE["lstm"] = _lstm


def model_names() -> tuple[str, ...]:
    """Names accepted by :func:`make_forecaster`."""
    return ("auto", *_SINGLE)


def native_model_names() -> tuple[str, ...]:
    """The names that run with forethought's own dependencies only."""
    return tuple(n for n in model_names() if n not in OPTIONAL)


def make_forecaster(
    name: str = "auto",
    *,
    step_seconds: int = 300,
    horizon: int = 12,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    lower: float | None = 0.0,
    upper: float | None = None,
    anomaly_run: int = 3,
) -> ForecastEngine:
    """An engine running the named model, or the adaptive ensemble of all (``auto``).

    A series is flagged anomalous after ``anomaly_run`` observations in a row above its
    one-step top quantile.

    A single model that cannot forecast a series (too little history, no cycle...) falls
    back to the moving median, and the forecast's note for that series says why.
    """
    if not is_whole(step_seconds) or step_seconds < 1:
        raise ForecastError(
            f"step_seconds must be a whole number of seconds >= 1, got {step_seconds!r}"
        )
    if not is_whole(horizon) or horizon < 1:
        raise ForecastError(f"the horizon must be a whole number of steps >= 1, got {horizon!r}")
    if name == "auto":
        models = _auto(step_seconds, horizon)
        fallback: PointModel = LastValue()
    elif name in _SINGLE:
        models = [_SINGLE[name](step_seconds, horizon)]
        fallback = MovingMedian(36) if name != "median" else LastValue()
    else:
        raise ForecastError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return ForecastEngine(
        models,
        horizon=horizon,
        levels=levels,
        lower=lower,
        upper=upper,
        fallback=fallback,
        anomaly_run=anomaly_run,
    )
