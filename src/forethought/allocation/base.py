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
