"""A global LSTM learned across all series (``forethought[lstm]``, PyTorch).

One small recurrent network serves every VM. Each input window is made scale-free first:
minus its recent median, divided by its mean absolute one-step change, so a VM idling at
2 % and one busy at 80 % are the same problem to the network, and the absolute-error loss
on that scale is what MASE scores. The network reads the last ``window`` samples and emits
the next ``max_horizon`` steps at once (direct multi-step: no error feeds back).

Training is online and bounded: every ``refit_every`` steps the network takes
``train_steps`` Adam steps on windows drawn from the recent history of a fixed panel of
series (at most ``max_train_series``), warm-started from its previous weights, so the
cost per step stays flat however long the service runs. Until the first fit, and for
series with too little history, the model is invalid and the engine falls back, with a
note saying why.

It is never part of ``auto``: choose it by name (``--model lstm``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from forethought.core.errors import ForecastError
from forethought.forecast.base import BoolArray, FloatArray
from forethought.forecast.history import History
from forethought.forecast.models.base import PointModel, Prediction

#: Normalised values beyond this are clipped: one spike on a flat series must not
#: dominate a batch's gradient.
CLIP = 50.0


def _load_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        hint = "pip install 'forethought[lstm]'"
        raise ForecastError(f"the lstm model needs PyTorch: {hint}") from exc
    return torch


def normalise(windows: FloatArray, centre_width: int = 12) -> tuple[FloatArray, FloatArray]:
    """Location and scale of each window (rows): the recent median and the mean |change|.

    The scale is floored at a thousandth of the level (and a tiny absolute value), so a
    constant window gives a zero input rather than a division by zero.
    """
    recent = windows[:, -min(centre_width, windows.shape[1]) :]
    loc = np.median(recent, axis=1)
    change = np.mean(np.abs(np.diff(windows, axis=1)), axis=1) if windows.shape[1] > 1 else 0.0
    scale = np.maximum(np.maximum(change, 1e-3 * np.abs(loc)), 1e-9)
    return np.asarray(loc), np.asarray(scale)


class GlobalLSTM(PointModel):
    """Direct multi-horizon median forecasts from one LSTM shared by all series."""

    name: ClassVar[str] = "lstm"

    def __init__(
        self,
        max_horizon: int = 12,
        *,
        window: int = 48,
        hidden: int = 32,
        memory: int = 288,
        refit_every: int = 72,
        train_steps: int = 150,
        batch_size: int = 256,
        learning_rate: float = 5e-3,
        max_train_series: int = 2000,
        min_training_windows: int = 24,
        seed: int = 0,
    ) -> None:
        if max_horizon < 1 or window < 2 or hidden < 1 or memory < 1:
            raise ForecastError("lstm: max_horizon >= 1, window >= 2, hidden >= 1, memory >= 1")
        if refit_every < 1 or train_steps < 1 or batch_size < 1 or learning_rate <= 0:
            raise ForecastError(
                "lstm: refit_every, train_steps and batch_size >= 1, learning_rate > 0"
            )
        self._torch = _load_torch()
        self.max_horizon, self.window, self.hidden, self.memory = (
            max_horizon,
            window,
            hidden,
            memory,
        )
        self.refit_every, self.train_steps, self.batch_size = refit_every, train_steps, batch_size
        self.learning_rate = learning_rate
        self.max_train_series = max_train_series
        self.min_training_windows = min_training_windows
        self.seed = seed
        self.history_needed = window + max_horizon + memory
        self.training_loss: list[float] = []  # mean scaled absolute error of each fit
        self.reset(0)

    def reset(self, n: int) -> None:
        torch = self._torch
        self._rng = np.random.default_rng(self.seed)
        m = min(n, self.max_train_series)
        self._panel = np.sort(self._rng.choice(n, size=m, replace=False)) if n else np.zeros(0, int)
        with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's RNG untouched
            torch.manual_seed(self.seed)
            self._net = _network(torch, self.hidden, self.max_horizon)
        self._optimiser = torch.optim.Adam(self._net.parameters(), lr=self.learning_rate)
        self._trained = False
        self._since_fit = 0
        self.training_loss = []

    def observe(self, y: FloatArray, observed: BoolArray, history: History) -> None:
        self._since_fit += 1
        usable = history.length - self.window - self.max_horizon + 1
        due = self._since_fit >= self.refit_every or not self._trained
        if due and usable >= self.min_training_windows and self._panel.size:
            self._fit(history)
            self._since_fit = 0

    def _fit(self, history: History) -> None:
        torch = self._torch
        span = self.window + self.max_horizon
        past = history.window(min(history.length, span + self.memory - 1))[self._panel]
        usable = past.shape[1] - span + 1
        offsets = np.arange(span)
        losses = []
        self._net.train()
        for _ in range(self.train_steps):
            rows = self._rng.integers(0, len(self._panel), size=self.batch_size)
            starts = self._rng.integers(0, usable, size=self.batch_size)
            sample = past[rows[:, None], starts[:, None] + offsets]
            keep = np.isfinite(sample).all(axis=1)
            if not keep.any():
                continue
            sample = sample[keep]
            inputs, target = sample[:, : self.window], sample[:, self.window :]
            loc, scale = normalise(inputs)
            x = np.clip((inputs - loc[:, None]) / scale[:, None], -CLIP, CLIP)
            z = np.clip((target - loc[:, None]) / scale[:, None], -CLIP, CLIP)
            out = self._net(torch.as_tensor(x[:, :, None], dtype=torch.float32))
            loss = torch.mean(torch.abs(out - torch.as_tensor(z, dtype=torch.float32)))
            self._optimiser.zero_grad()
            loss.backward()
            self._optimiser.step()
            losses.append(float(loss.detach()))
        if losses:
            self.training_loss.append(float(np.mean(losses[-max(1, len(losses) // 5) :])))
            self._trained = True

    def predict(self, horizon: int, history: History) -> Prediction:
        n = history.n
        if not self._trained:
            return Prediction(
                np.full((n, horizon), np.nan),
                np.zeros(n, dtype=bool),
                "lstm not trained yet (needs a few hours of history)",
            )
        if horizon > self.max_horizon:
            raise ForecastError(f"lstm was built for {self.max_horizon} steps, not {horizon}")
        torch = self._torch
        inputs = history.window(self.window)
        if inputs.shape[1] < self.window:
            return Prediction(
                np.full((n, horizon), np.nan), np.zeros(n, dtype=bool), "lstm: history too short"
            )
        valid = (history.observed_count >= self.window // 2) & np.isfinite(inputs).all(axis=1)
        clean = np.where(np.isfinite(inputs), inputs, 0.0)
        loc, scale = normalise(clean)
        x = np.clip((clean - loc[:, None]) / scale[:, None], -CLIP, CLIP)
        out = np.empty((n, self.max_horizon))
        self._net.eval()
        with torch.inference_mode():
            for lo in range(0, n, 8192):  # chunks bound the activations' memory
                chunk = torch.as_tensor(x[lo : lo + 8192, :, None], dtype=torch.float32)
                out[lo : lo + 8192] = self._net(chunk).numpy()
        values = loc[:, None] + scale[:, None] * out[:, :horizon]
        valid &= np.isfinite(values).all(axis=1)
        w = self.window
        reason = f"lstm: fewer than {w // 2} observations in its {w}-step window"
        return Prediction(np.where(valid[:, None], values, np.nan), valid, reason)


def _network(torch: Any, hidden: int, horizon: int) -> Any:
    """LSTM over the window, then a linear head from the last state to the horizon."""

    class Network(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(input_size=1, hidden_size=hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, horizon)

        def forward(self, x: Any) -> Any:
            states, _ = self.lstm(x)
            # Inputs are centred on the recent median, so an untrained head (output near
            # zero) already forecasts that median: a sound start for an L1 fit.
            return self.head(states[:, -1])

    return Network()
