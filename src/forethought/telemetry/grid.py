"""Put irregular samples on a regular time grid, counting what had to be merged or left missing.

Readers of timestamped traces (Bitbrains, the long format) share this so that every format
reports duplicates and gaps the same way. A *series* here is whatever the reader treats as one
stream of samples: a Bitbrains VM (one row carries all its resources) or one (VM, resource)
pair of the long format. Everything is done with ``np.bincount`` over a flat
``series * n_steps + slot`` index, so the cost is linear in the number of samples and there is
no Python loop over series or samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forethought.core.errors import ForethoughtError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: A grid longer than this is almost certainly a bogus timestamp (a zero, or milliseconds read
#: as seconds) rather than a real trace; refusing it beats allocating tens of gigabytes.
MAX_STEPS = 5_000_000
#: A grid may hold this many slots per sample at most (above a floor of MIN_SPARSE_STEPS):
#: past it the range comes from a stray timestamp, not from data with gaps, and building
#: the grid would only fill memory with empty slots.
MAX_SLOTS_PER_SAMPLE = 1000
MIN_SPARSE_STEPS = 100_000


#: Unix seconds beyond this (the year 5138) are not a date: almost always milliseconds or
#: microseconds. Readers refuse them rather than guess the unit.
LATEST_PLAUSIBLE_SECONDS = 1e11


def implausible_seconds(stamps: FloatArray) -> tuple[BoolArray, str]:
    """Timestamps too large to be Unix seconds, and why, for an error message.

    A trace written in milliseconds is otherwise read as a grid a thousand times too long
    (or, where the step is inferred, a step a thousand times too large), without a word.
    """
    with np.errstate(invalid="ignore"):
        late = stamps > LATEST_PLAUSIBLE_SECONDS
    why = (
        "is after the year 5000 as Unix seconds: milliseconds, microseconds or nanoseconds? "
        "forethought reads timestamps in seconds; convert them"
    )
    return np.asarray(late, dtype=bool), why


def stray_timestamps(stamps: FloatArray) -> tuple[BoolArray, str]:
    """Timestamps far from all the others (a corrupted one), and why, for an error message.

    One bad timestamp (a zero, a truncated number) would stretch a grid over decades and a
    panel to gigabytes. The bulk of the samples sets the range: the middle half of all
    timestamps, widened by twice its width on each side (which covers every sample of a
    trace sampled evenly) and by at least a day. Every reader of timestamped records
    treats a sample outside it as a bad record.
    """
    finite = stamps[np.isfinite(stamps)]
    if finite.size == 0:
        return np.zeros(stamps.shape, dtype=bool), ""
    q25, q75 = np.quantile(finite, [0.25, 0.75])
    margin = max(4.0 * float(q75 - q25), 86_400.0)
    with np.errstate(invalid="ignore"):
        stray = (stamps < q25 - margin) | (stamps > q75 + margin)
    why = (
        f"lies far outside the trace's other samples ({q25:.0f} to {q75:.0f} s for the "
        "middle half): a corrupted timestamp"
    )
    return np.asarray(stray, dtype=bool), why


@dataclass(frozen=True)
class Grid:
    """Slots ``[start + k * step_seconds, start + (k + 1) * step_seconds)`` for k < n_steps."""

    start: int
    step_seconds: int
    n_steps: int

    def __post_init__(self) -> None:
        if self.step_seconds <= 0:
            raise ForethoughtError(f"step_seconds must be positive, got {self.step_seconds}")
        if self.n_steps <= 0:
            raise ForethoughtError(f"a grid needs at least one step, got {self.n_steps}")

    @classmethod
    def covering(
        cls, first: float, last: float, step_seconds: int, samples: int | None = None
    ) -> Grid:
        """The grid from ``first`` floored to a multiple of the step up to and including ``last``.

        Flooring to a multiple of the step (not to ``first`` itself) keeps grids of different
        traces with the same step aligned with each other, which makes them comparable.
        With ``samples`` (how many there are), a grid almost all gaps is refused: two
        samples, one at timestamp 0, would otherwise span decades.
        """
        if step_seconds <= 0:
            raise ForethoughtError(f"step_seconds must be positive, got {step_seconds}")
        if not (math.isfinite(first) and math.isfinite(last)) or last < first:
            raise ForethoughtError(f"invalid time range [{first}, {last}]")
        start = math.floor(first / step_seconds) * step_seconds
        n_steps = math.floor((last - start) / step_seconds) + 1
        if n_steps > MAX_STEPS:
            raise ForethoughtError(
                f"the samples span {n_steps:,} steps of {step_seconds} s (from {first:.0f} to "
                f"{last:.0f}), more than the {MAX_STEPS:,} allowed: a timestamp is probably "
                "wrong (zero, or in milliseconds), or the step is too small"
            )
        if samples is not None and n_steps > max(MAX_SLOTS_PER_SAMPLE * samples, MIN_SPARSE_STEPS):
            raise ForethoughtError(
                f"the samples span {n_steps:,} steps of {step_seconds} s (from {first:.0f} to "
                f"{last:.0f}) but there are only {samples:,}: a timestamp is probably wrong "
                "(zero, or in milliseconds)"
            )
        return cls(start=int(start), step_seconds=step_seconds, n_steps=n_steps)

    def slots(self, timestamps: FloatArray) -> IntArray:
        """The slot index of each timestamp (may fall outside ``[0, n_steps)``)."""
        return np.floor((timestamps - self.start) / self.step_seconds).astype(np.int64)


@dataclass(frozen=True)
class Resampled:
    """Samples averaged per grid slot.

    ``values[s, k, t]`` is the mean of column ``k`` over the samples of series ``s`` in slot
    ``t``; ``mask`` is False (and ``values`` NaN) where there was no finite sample.
    ``counts[s, t]`` is how many samples landed in the slot; ``duplicates`` and ``gaps`` are
    :func:`slot_accounting` of those counts.
    """

    values: FloatArray
    mask: BoolArray
    counts: IntArray
    duplicates: IntArray
    gaps: IntArray


def slot_accounting(counts: IntArray) -> tuple[IntArray, IntArray]:
    """Per series (row of ``counts``, samples per slot): samples merged, and gaps.

    A sample is *merged* when it lands in a slot already holding one, so it is averaged in.
    A *gap* is an empty slot strictly between the series' first and last occupied slot; slots
    before the first or after the last sample are missing too, but not gaps: the series had
    not started or had ended.
    """
    steps = counts.shape[1]
    occupied = counts > 0
    n_occupied = occupied.sum(axis=1)
    duplicates = (counts.sum(axis=1) - n_occupied).astype(np.int64)
    # argmax finds the first occupied slot of every series at once, and on the reversed
    # array the last one.
    first = np.argmax(occupied, axis=1)
    last = steps - 1 - np.argmax(occupied[:, ::-1], axis=1)
    gaps = np.where(n_occupied > 0, last - first + 1 - n_occupied, 0).astype(np.int64)
    return duplicates, gaps


def resample(
    series: npt.NDArray[np.integer],
    timestamps: FloatArray,
    values: FloatArray,
    n_series: int,
    grid: Grid,
) -> Resampled:
    """Average ``values`` (samples x columns) of each series into the slots of ``grid``.

    ``series[i]`` in ``[0, n_series)`` says which series sample ``i`` belongs to. Samples
    outside the grid are an error: the caller builds the grid to cover them.
    """
    if values.ndim != 2:
        raise ForethoughtError(f"values must be (samples, columns), got shape {values.shape}")
    n = timestamps.shape[0]
    if series.shape != (n,) or values.shape[0] != n:
        raise ForethoughtError("series, timestamps and values must have one entry per sample")
    n_cols = values.shape[1]
    steps = grid.n_steps
    slots = grid.slots(timestamps)
    if n and (slots.min() < 0 or slots.max() >= steps):
        raise ForethoughtError("some timestamps fall outside the grid")
    if n and (series.min() < 0 or series.max() >= n_series):
        raise ForethoughtError("series index out of range")

    cells = n_series * steps
    flat = series.astype(np.int64) * steps + slots
    # Samples per cell, regardless of which columns are finite: this is what "merged" and
    # "gap" are about (a record that arrived), not whether each of its fields was usable.
    counts = np.bincount(flat, minlength=cells).reshape(n_series, steps).astype(np.int64)
    duplicates, gaps = slot_accounting(counts)

    out = np.full((n_series, n_cols, steps), np.nan)
    mask = np.zeros((n_series, n_cols, steps), dtype=bool)
    every_sample: FloatArray = counts.reshape(cells).astype(np.float64)
    for k in range(n_cols):  # a handful of columns; each pass is vectorised over all samples
        column = values[:, k]
        finite = np.isfinite(column)
        usable: FloatArray
        if finite.all():  # the usual case: each sample counts in every column
            usable = every_sample
            sums = np.bincount(flat, weights=column, minlength=cells)
        else:
            # (bincount's stubs say integers; with weights it returns floats, without a copy here)
            usable = np.asarray(
                np.bincount(flat, weights=finite.astype(np.float64), minlength=cells), np.float64
            )
            sums = np.bincount(flat, weights=np.where(finite, column, 0.0), minlength=cells)
        have = usable > 0
        col_out = np.full(cells, np.nan)
        np.divide(sums, usable, out=col_out, where=have)
        out[:, k, :] = col_out.reshape(n_series, steps)
        mask[:, k, :] = have.reshape(n_series, steps)
    return Resampled(values=out, mask=mask, counts=counts, duplicates=duplicates, gaps=gaps)


def exact_duplicates(
    series: npt.NDArray[np.integer], timestamps: FloatArray, n_series: int
) -> IntArray:
    """Per series, how many samples repeat a timestamp already seen in that series.

    These are a subset of :attr:`Resampled.duplicates` (same timestamp, same slot), reported
    apart because they point at a logging fault rather than at sampling jitter.
    """
    s, t = series, timestamps
    same = s[1:] == s[:-1]
    in_order = bool(np.all((s[1:] > s[:-1]) | (same & (t[1:] >= t[:-1]))))
    if not in_order:  # readers usually pass samples grouped and in time order: skip the sort
        order = np.lexsort((timestamps, series))
        s, t = series[order], timestamps[order]
    repeat = (s[1:] == s[:-1]) & (t[1:] == t[:-1])
    return np.bincount(s[1:][repeat], minlength=n_series).astype(np.int64)
