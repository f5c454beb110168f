"""What every allocation recommender implements, forethought's own and the baselines.

A recommender watches one resource of many VMs, one step at a time, and says what each VM
should be allocated from now on. All quantities are in the resource's unit as the trace
gives it (for example percent of the VM's provisioned capacity). The replay harness calls,
every step: ``observe`` with the usage just measured, ``shortfall`` with the VMs whose
demand exceeded their allocation (an out-of-memory or throttling signal), then
``recommend``. Recommenders are vectorised over VMs: no Python loop per VM per step.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.core.numbers import is_whole
from forethought.forecast.base import BoolArray, FloatArray


class Recommender(Protocol):
    """Allocations for many VMs of one resource, decided from the past only."""

    @property
    def name(self) -> str: ...

    def reset(self, n: int, capacity: FloatArray, step_seconds: int) -> None:
        """Start over for ``n`` VMs; ``capacity[v]`` is the most VM v may be given."""
        ...

    def observe(self, usage: FloatArray, observed: BoolArray) -> None:
        """One step of usage per VM (``observed`` False where the sample is missing)."""
        ...

    def shortfall(self, short: BoolArray) -> None:
        """The VMs whose demand exceeded their allocation at the step just observed."""
        ...

    def recommend(self) -> FloatArray:
        """The allocation each VM should hold from the next step on."""
        ...


# Checks every recommender makes on what the harness gives it, so that a caller's mistake
# is a message naming the argument, before any state moves, never a NumPy error later.


def checked_reset(
    n: int, capacity: FloatArray, step_seconds: int, *, unbounded: bool = False
) -> tuple[int, FloatArray, int]:
    """``(n, capacity, step_seconds)`` as a reset takes them, or a ForethoughtError.

    ``unbounded`` lets a capacity be infinite (a bandwidth, which has no size).
    """
    if not is_whole(n) or n < 0:
        raise ForethoughtError(f"n must be a non-negative integer, got {n!r}")
    cap = np.array(capacity, dtype=np.float64)
    if cap.shape != (int(n),):
        raise ForethoughtError(f"capacity must have shape ({n},), got {cap.shape}")
    fine = (cap > 0.0) & (np.isfinite(cap) | (unbounded & (cap == np.inf)))
    if not fine.all():
        what = "positive (or infinite)" if unbounded else "positive and finite"
        raise ForethoughtError(f"capacity must be {what} for every VM")
    if not is_whole(step_seconds) or step_seconds <= 0:
        raise ForethoughtError(f"step_seconds must be a positive integer, got {step_seconds!r}")
    return int(n), cap, int(step_seconds)


def checked_step(n: int, usage: FloatArray, observed: BoolArray) -> tuple[FloatArray, BoolArray]:
    """One step's usage and mask as ``observe`` takes them (missing where not finite)."""
    if n < 0:
        raise ForethoughtError("reset must be called before anything else")
    u = np.asarray(usage, dtype=np.float64)
    ok = np.asarray(observed, dtype=bool)
    if u.shape != (n,) or ok.shape != (n,):
        raise ForethoughtError(
            f"usage and observed must have shape ({n},), got {u.shape} and {ok.shape}"
        )
    return u, ok & np.isfinite(u)


def checked_short(n: int, short: BoolArray) -> BoolArray:
    """The shortfall mask as ``shortfall`` takes it."""
    if n < 0:
        raise ForethoughtError("reset must be called before anything else")
    s = np.asarray(short, dtype=bool)
    if s.shape != (n,):
        raise ForethoughtError(f"short must have shape ({n},), got {s.shape}")
    return s
