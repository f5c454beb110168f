"""Self-learning of the migration thresholds from what actually happened.

Two loops, both small and bounded so a bad day cannot run the policy off a cliff:

- the overload threshold: every step, the hosts' predicted probability of overload at the
  next step is compared with whether they overloaded. If hosts overload more often than
  predicted, the forecasts are optimistic and the threshold (the share of capacity the
  scenarios may fill) is lowered; if less often, it creeps back up to its ceiling.
- the minimum benefit: after each migration, did it help? A move whose target overloaded
  within the horizon, or whose source stayed overloaded, counts as a miss. The minimum
  benefit follows the smoothed share of misses: at or below ``tolerated_misses`` it is the
  configured floor, and it rises linearly to floor + ``benefit_span`` when every move
  misses. A rate, not a count, so a burst of simultaneous outcomes cannot swing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.forecast.base import BoolArray, FloatArray


@dataclass
class ThresholdLearner:
    """Online threshold and minimum benefit; ``history`` keeps every adjustment."""

    threshold: float = 1.0
    min_benefit: float = 0.0
    ceiling: float = 1.0
    floor: float = 0.75
    rate: float = 0.05
    decay: float = 0.9
    benefit_floor: float = 0.0
    benefit_span: float = 30.0
    tolerated_misses: float = 0.2
    move_decay: float = 0.98
    gap: float = 0.0  # smoothed (observed - predicted) overload frequency
    miss_rate: float = 0.0  # smoothed share of moves that did not help
    misses: int = 0
    hits: int = 0
    history: list[tuple[float, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerated_misses < 1.0 or self.benefit_span < 0:
            raise ForethoughtError("learner needs 0 <= tolerated_misses < 1, benefit_span >= 0")
        if not 0.0 < self.floor <= self.threshold <= self.ceiling:
            raise ForethoughtError(
                f"learner needs 0 < floor <= threshold <= ceiling; got {self.floor}, "
                f"{self.threshold}, {self.ceiling}"
            )
        self.benefit_floor = self.min_benefit

    def observe_hosts(self, time: float, predicted: FloatArray, overloaded: BoolArray) -> None:
        """Predicted next-step overload probabilities against what the hosts did."""
        if predicted.shape != overloaded.shape:
            raise ForethoughtError("predicted and observed overload must have one shape")
        if not predicted.size:
            return
        gap = float(overloaded.mean() - predicted.mean())
        self.gap = self.decay * self.gap + (1.0 - self.decay) * gap
        # Lower the threshold when overloads outnumber predictions, raise it otherwise.
        step = -self.rate * self.gap
        self.threshold = float(np.clip(self.threshold + step, self.floor, self.ceiling))
        self.history.append((time, self.threshold, self.min_benefit))

    def observe_move(self, helped: bool) -> None:
        """One migration's outcome: did the source calm down without the target overloading?"""
        if helped:
            self.hits += 1
        else:
            self.misses += 1
        self.miss_rate = self.move_decay * self.miss_rate + (1.0 - self.move_decay) * (
            0.0 if helped else 1.0
        )
        excess = max(0.0, self.miss_rate - self.tolerated_misses) / (1.0 - self.tolerated_misses)
        self.min_benefit = self.benefit_floor + self.benefit_span * excess
