"""Durations on a trace's time grid: "a day" is a number of seconds, not of samples."""

from __future__ import annotations

DAY_SECONDS = 86_400


def steps_per_day(step_seconds: float) -> int:
    """How many samples of ``step_seconds`` make a day (288 at five minutes), at least 1."""
    if not step_seconds > 0:
        raise ValueError(f"a sampling step must be positive; got {step_seconds}")
    return max(1, round(DAY_SECONDS / step_seconds))
