"""A generic long format: one sample per record, in CSV or Parquet.

Columns (any order, names case-insensitive)::

    vm,timestamp,resource,value[,unit]

``timestamp`` is Unix seconds (integer or decimal) or ISO-8601 (read as UTC when it has no
offset, which is noted). ``resource`` is one of :class:`~forethought.core.resources.Resource`.
``unit``, when present, must be a :class:`~forethought.core.resources.Unit` value and the same
for every record of a resource; when absent the units of ``DEFAULT_UNITS`` are assumed and the
repair report says so. CSV needs a header and commas; ``.csv.gz`` is read too. Parquet needs the
optional ``pyarrow`` dependency.

Samples are resampled onto a regular grid exactly as the Bitbrains reader does (see
:mod:`forethought.telemetry.grid`). For Parquet, the ``line`` of an error or skipped record is
the 1-based row number.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from forethought.core.errors import ForethoughtError, TraceError
from forethought.core.resources import DEFAULT_UNITS, MAX_READING, Resource, Unit
from forethought.telemetry.grid import (
    Grid,
    exact_duplicates,
    implausible_seconds,
    resample,
    slot_accounting,
    stray_timestamps,
)
from forethought.telemetry.readers._text import (
    BadTextError,
    first_line,
    is_gzip,
    parse_number,
    read_text,
)
from forethought.telemetry.series import RepairReport, SkippedRecord, Telemetry

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
# One str per record: fixed-width unicode normally, object for pathologically long cells.
TextArray = npt.NDArray[Any]

REQUIRED_COLUMNS: tuple[str, ...] = ("vm", "timestamp", "resource", "value")
OPTIONAL_COLUMNS: tuple[str, ...] = ("unit",)
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"
INSTALL_PARQUET = "pip install 'forethought[parquet]'"
#: Text columns wider than this are kept as Python objects: a fixed-width unicode array is as
#: wide as its longest cell, so one corrupt multi-kilobyte cell would multiply memory.
MAX_TEXT_WIDTH = 256

_RESOURCE_ORDER: tuple[Resource, ...] = tuple(Resource)
_UNITS_BY_NAME: dict[str, Unit] = {u.value.lower(): u for u in Unit}


@dataclass
class _Records:
    """The columns of a long file before validation, one entry per record.

    Text columns hold one string per record (missing cells are ``""``); ``timestamp`` and ``value``
    are floats already when the container stores numbers (Parquet), text otherwise.
    ``where`` is each record's line (CSV) or row (Parquet) number, 1-based. ``rejected``
    lists records that could not even be split into fields, as (line, reason).
    """

    vm: TextArray
    timestamp: FloatArray | TextArray
    resource: TextArray
    value: FloatArray | TextArray
    unit: TextArray | None
    where: IntArray
    rejected: list[tuple[int, str]] = field(default_factory=list)
    naive_timestamps: bool = False  # Parquet timestamps stored without a time zone


def _column_map(path: Path, names: list[str], line: int | None = 1) -> dict[str, int]:
    """Where each known column is; raises if a required one is missing or one is unknown."""
    keys = [n.strip().lower() for n in names]
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    expected = ",".join(REQUIRED_COLUMNS) + "[,unit]"
    unknown = [n for n, k in zip(names, keys, strict=True) if k not in known]
    missing = [c for c in REQUIRED_COLUMNS if c not in keys]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if unknown or missing or repeated:
        details = []
        if missing:
            details.append(f"missing {', '.join(missing)}")
        if unknown:
            details.append(f"unknown {', '.join(repr(u) for u in unknown)}")
        if repeated:
            details.append(f"repeated {', '.join(repeated)}")
        raise TraceError(
            path,
            f"not a long-format header ({'; '.join(details)}); expected {expected}",
            line=line,
        )
    return {k: i for i, k in enumerate(keys)}


def is_parquet(path: Path) -> bool:
    """A ``.parquet``/``.pq`` name, or a file starting with the Parquet magic bytes."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def looks_like_long(path: Path) -> bool:
    """A Parquet file, or a CSV file whose header names the long-format columns."""
    if not path.is_file():
        return False
    if is_parquet(path):
        return True  # the reader checks the columns (and says how to install pyarrow)
    header = first_line(path)
    if header is None:
        return False
    try:
        _column_map(path, next(csv.reader([header])))
    except (TraceError, StopIteration, csv.Error):
        return False
    return True


# ---------------------------------------------------------------------------------- CSV


def _text_array(cells: Sequence[str] | TextArray) -> TextArray:
    """The cells as a NumPy text array, so ``np.unique`` and float parsing run in C."""
    width = max(map(len, cells), default=1)
    if width <= MAX_TEXT_WIDTH:
        return np.array(cells, dtype=f"<U{max(width, 1)}")
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out


def _split_fast(body: str, width: int) -> list[TextArray] | None:
    """The columns of a plain body (no quotes, no blank line) split by NumPy's C reader.

    None when the body needs the csv module: quoting (a quoted field may hold commas or span
    lines) or blank lines (which ``np.loadtxt`` skips, so record i would no longer be on line
    i + 2), or when some row has the wrong number of fields (the slow path names it).
    """
    if '"' in body or body.startswith("\n") or "\n\n" in body:
        return None
    # Every column as text: numbers are parsed later, the same way on both paths.
    row = np.dtype([(f"c{k}", object) for k in range(width)])
    try:
        table = np.loadtxt(
            io.StringIO(body), delimiter=",", dtype=row, comments=None, quotechar=None, ndmin=1
        )
    except ValueError:
        return None
    return [_text_array(table[f"c{k}"]) for k in range(width)]


def _split_slow(
    path: Path, body: str, width: int
) -> tuple[list[TextArray], list[int], list[tuple[int, str]]]:
    """The columns, line numbers and rejected rows, record by record with the csv module."""
    reader = csv.reader(io.StringIO(body))
    rows: list[list[str]] = []
    where: list[int] = []
    rejected: list[tuple[int, str]] = []
    read = 0  # body lines read so far
    try:
        for row in reader:
            line, last = read + 2, reader.line_num + 1  # the body starts on line 2
            read = reader.line_num
            if len(row) == width:
                rows.append(row)
                where.append(line)
            elif last > line:
                # A quote left open swallows every line after it into one field: what
                # follows cannot be told apart, so it is an error even with --skip-bad.
                raise TraceError(
                    path,
                    f"a quoted field opens here and runs to line {last} "
                    f"({len(row)} field(s) instead of {width}): an unterminated quote?",
                    line=line,
                )
            elif any(cell.strip() for cell in row):
                rejected.append(
                    (line, f"expected {width} comma-separated fields, found {len(row)}")
                )
    except csv.Error as exc:
        raise TraceError(path, f"malformed CSV: {exc}", line=reader.line_num + 1) from exc
    cells: list[tuple[str, ...]] = list(zip(*rows, strict=True)) if rows else [()] * width
    return [_text_array(column) for column in cells], where, rejected


def _parse_csv(path: Path) -> _Records:
    try:
        text = read_text(path)
    except BadTextError as exc:
        raise TraceError(path, exc.reason, exc.line) from exc
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    header_line, _, body = text.partition("\n")
    try:
        header = next(csv.reader([header_line]), [])
    except csv.Error as exc:
        raise TraceError(path, f"malformed CSV header: {exc}", line=1) from exc
    if not any(cell.strip() for cell in header):
        raise TraceError(path, "empty file: expected a header " + ",".join(REQUIRED_COLUMNS))
    columns = _column_map(path, header)
    width = len(header)
    if not body.strip():
        raise TraceError(path, "header only: the file has no data rows")
    fields = _split_fast(body, width)
    rejected: list[tuple[int, str]] = []
    if fields is not None:
        where = np.arange(2, len(fields[0]) + 2, dtype=np.int64)
    else:
        fields, lines, rejected = _split_slow(path, body, width)
        where = np.asarray(lines, dtype=np.int64)

    def column(name: str) -> TextArray:
        return fields[columns[name]]

    return _Records(
        vm=column("vm"),
        timestamp=column("timestamp"),
        resource=column("resource"),
        value=column("value"),
        unit=column("unit") if "unit" in columns else None,
        where=where,
        rejected=rejected,
    )


# ------------------------------------------------------------------------------ Parquet


def _pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, imported only when Parquet is actually used."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ForethoughtError(
            f"reading or writing Parquet needs pyarrow: {INSTALL_PARQUET}"
        ) from exc
    return pa, pq


def _parse_parquet(path: Path) -> _Records:
    pa, pq = _pyarrow()
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(path, f"not a readable Parquet file ({exc})") from exc
    names = [str(n) for n in table.column_names]
    columns = _column_map(path, names, line=None)  # Parquet has no header line
    n = int(table.num_rows)
    if n == 0:
        raise TraceError(path, "the Parquet file has no rows")

    def text_column(name: str) -> TextArray:
        column = table.column(columns[name])
        try:
            as_text = column.cast(pa.string())
        except pa.ArrowException as exc:
            raise TraceError(path, f"column {name!r} of type {column.type} is not text") from exc
        # Dictionary-encode so only the distinct strings become Python objects; records are
        # then an index into them (ids, resources and units repeat on almost every row).
        encoded = as_text.fill_null("").combine_chunks().dictionary_encode()
        words = _text_array(encoded.dictionary.to_pylist())
        return words[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)]

    def number_column(name: str) -> FloatArray | TextArray:
        column = table.column(columns[name])
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            # Nulls become NaN, which validation reports as missing. An integer beyond
            # 2**53 loses its last digits as a float (not refused): validation then
            # judges its magnitude, as it would a CSV's.
            as_float = column.cast(pa.float64(), safe=False)
            return np.asarray(as_float.to_numpy(zero_copy_only=False), float)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return text_column(name)
        raise TraceError(path, f"column {name!r} has unsupported type {kind}")

    naive = False
    ts_type = table.column(columns["timestamp"]).type
    if pa.types.is_timestamp(ts_type):
        # Arrow timestamps count ``unit``s since the epoch; a missing time zone means wall
        # clock time, read as UTC and noted.
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[ts_type.unit]
        # Nanoseconds since 1970 pass 2**53: converted to float unchecked (a float keeps
        # them to well under a microsecond), then to seconds.
        ticks = table.column(columns["timestamp"]).cast(pa.int64()).cast(pa.float64(), safe=False)
        timestamp: FloatArray | TextArray = (
            np.asarray(ticks.to_numpy(zero_copy_only=False), dtype=np.float64) / per_second
        )
        naive = ts_type.tz is None
    else:
        timestamp = number_column("timestamp")
    return _Records(
        vm=text_column("vm"),
        timestamp=timestamp,
        resource=text_column("resource"),
        value=number_column("value"),
        unit=text_column("unit") if "unit" in columns else None,
        where=np.arange(1, n + 1, dtype=np.int64),
        naive_timestamps=naive,
    )


# --------------------------------------------------------------------------- validation


class _Problems:
    """The first problem found for each bad record, by record index."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.reason: dict[int, str] = {}

    def flag(self, fail: BoolArray, describe: Callable[[int], str]) -> None:
        """Mark records where ``fail`` is True; describe only those not already marked."""
        new = fail & ~self.bad
        for i in np.flatnonzero(new):  # only bad records reach Python
            self.reason[int(i)] = describe(int(i))
        self.bad |= new


def _to_float(column: FloatArray | TextArray) -> tuple[FloatArray, BoolArray]:
    """The column as floats and a mask of cells that are not numbers at all."""
    if column.dtype.kind in "fiu":  # numbers already (Parquet)
        return np.asarray(column, dtype=np.float64), np.zeros(column.shape, dtype=bool)
    if column.dtype.kind == "U" and not _has_lax_digits(column):
        try:
            # One C loop over the cells; the fallback below runs only if some cell is not a
            # number (or holds what NumPy, like Python's float, reads too leniently).
            return column.astype(np.float64), np.zeros(column.shape, dtype=bool)
        except ValueError:
            pass
    out = np.full(column.shape, np.nan)
    not_number = np.zeros(column.shape, dtype=bool)
    for i, cell in enumerate(column):
        try:
            out[i] = parse_number(str(cell))
        except ValueError:
            not_number[i] = True
    return out, not_number


def _has_lax_digits(column: TextArray) -> bool:
    """Whether some cell holds an underscore or a non-ASCII character (see ``parse_number``)."""
    codes = np.ascontiguousarray(column).view(np.uint32)  # "<U" cells are UCS-4 code points
    return bool((codes > 0x7F).any() or (codes == ord("_")).any())


def _parse_time(text: str) -> tuple[float, bool]:
    """Unix seconds of a cell and whether it lacked a time zone; raises ``ValueError``."""
    try:
        return parse_number(text.strip()), False
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).timestamp(), True
    return moment.timestamp(), False


def _timestamps(column: FloatArray | TextArray) -> tuple[FloatArray, BoolArray, int]:
    """Seconds per record, a mask of unparseable cells, and how many distinct cells were naive.

    Each distinct text is parsed once: a long file repeats every timestamp for each VM and
    resource, so this is far fewer parses than records.
    """
    if column.dtype.kind in "fiu":  # numbers already (Parquet)
        return np.asarray(column, dtype=np.float64), np.zeros(column.shape, dtype=bool), 0
    distinct, inverse = np.unique(column, return_inverse=True)
    seconds = np.full(distinct.shape, np.nan)
    unparsable = np.zeros(distinct.shape, dtype=bool)
    naive = 0
    for k, text in enumerate(distinct):
        try:
            seconds[k], lacked_zone = _parse_time(str(text))
        except ValueError:
            unparsable[k] = True
        else:
            naive += lacked_zone
    return seconds[inverse], unparsable[inverse], naive


def _codes(column: TextArray, parse: Callable[[str], int | None]) -> IntArray:
    """Per record, the code ``parse`` gives its cell (-1 if none), parsing each distinct once."""
    distinct, inverse = np.unique(column, return_inverse=True)
    table = np.array([-1 if (c := parse(str(d))) is None else c for d in distinct], np.int64)
    return np.asarray(table[inverse], dtype=np.int64)


def _resource_code(text: str) -> int | None:
    try:
        return _RESOURCE_ORDER.index(Resource(text.strip().lower()))
    except ValueError:
        return None


def _unit_code(text: str) -> int | None:
    unit = _UNITS_BY_NAME.get(text.strip().lower())
    return None if unit is None else list(Unit).index(unit)


@dataclass(frozen=True)
class _Valid:
    """The records that passed validation, as codes and numbers ready to resample."""

    vm_ids: tuple[str, ...]
    vm: IntArray
    resources: tuple[Resource, ...]
    resource: IntArray
    units: tuple[Unit, ...]
    timestamp: FloatArray
    value: FloatArray
    where: IntArray  # each record's line (CSV) or row (Parquet), for error messages


def _shown(column: FloatArray | TextArray, i: int) -> str:
    """A cell as an error message shows it: text quoted, numbers plain."""
    cell = column[i]
    return repr(str(cell)) if column.dtype.kind in "UO" else f"{float(cell):g}"


def _unknown(column: str, cells: TextArray, i: int, known: str) -> str:
    if not str(cells[i]).strip():
        return f"{column}: missing"
    return f"{column}: unknown {_shown(cells, i)} (known: {known})"


def _validate(path: Path, records: _Records, skip_bad: bool, report: RepairReport) -> _Valid:
    n = records.where.shape[0]
    problems = _Problems(n)
    known_resources = ", ".join(r.value for r in Resource)
    known_units = ", ".join(u.value for u in Unit)

    # VM ids are taken literally (no stripping), so only an empty cell is invalid.
    problems.flag(np.asarray(records.vm == "", dtype=bool), lambda i: "vm: empty VM id")

    seconds, bad_time, naive = _timestamps(records.timestamp)
    problems.flag(
        bad_time,
        lambda i: f"timestamp: not Unix seconds or ISO-8601: {_shown(records.timestamp, i)}",
    )
    problems.flag(~np.isfinite(seconds), lambda i: "timestamp: missing or non-finite")
    problems.flag(seconds < 0, lambda i: f"timestamp: negative ({seconds[i]:g})")
    late, too_late = implausible_seconds(np.where(problems.bad, np.nan, seconds))
    problems.flag(late, lambda i: f"timestamp: {seconds[i]:.0f} {too_late}")
    stray, why = stray_timestamps(np.where(problems.bad, np.nan, seconds))
    problems.flag(stray, lambda i: f"timestamp: {seconds[i]:.0f} {why}")

    resource = _codes(records.resource, _resource_code)
    problems.flag(
        resource < 0,
        lambda i: _unknown("resource", records.resource, i, known_resources),
    )

    value, not_number = _to_float(records.value)
    problems.flag(not_number, lambda i: f"value: not a number: {_shown(records.value, i)}")
    problems.flag(
        ~np.isfinite(value), lambda i: f"value: missing or non-finite ({_shown(records.value, i)})"
    )
    problems.flag(value < 0, lambda i: f"value: negative ({value[i]:g})")
    problems.flag(
        value > MAX_READING,
        lambda i: f"value: {value[i]:g} is beyond any plausible reading (above {MAX_READING:g})",
    )

    unit_of: dict[int, Unit] = {}
    unit_text = records.unit
    if unit_text is not None:
        unit = _codes(unit_text, _unit_code)
        problems.flag(unit < 0, lambda i: _unknown("unit", unit_text, i, known_units))
        # One unit per resource: the first valid record of each resource sets it, records
        # that disagree are bad (never converted, since units are not guessed).
        ok = np.flatnonzero(~problems.bad)
        if ok.size:
            codes, first = np.unique(resource[ok], return_index=True)
            reference = np.full(len(_RESOURCE_ORDER), -1, dtype=np.int64)
            reference[codes] = unit[ok[first]]
            set_at = {int(c): int(records.where[ok[f]]) for c, f in zip(codes, first, strict=True)}
            all_units = list(Unit)
            problems.flag(
                (resource >= 0) & (unit >= 0) & (unit != reference[np.maximum(resource, 0)]),
                lambda i: (
                    f"unit: {all_units[unit[i]].value} for {_RESOURCE_ORDER[resource[i]].value}, "
                    f"which the record at line {set_at[int(resource[i])]} gives in "
                    f"{all_units[reference[resource[i]]].value}"
                ),
            )
            unit_of = {int(c): all_units[int(reference[c])] for c in codes}

    # Structural rejects and value problems together, so the error is the earliest bad line.
    bad_lines = [(int(records.where[i]), reason) for i, reason in problems.reason.items()]
    bad_lines += records.rejected
    if bad_lines:
        bad_lines.sort()
        if not skip_bad:
            line, reason = bad_lines[0]
            raise TraceError(path, reason, line=line)
        report.skipped.extend(SkippedRecord(str(path), line, reason) for line, reason in bad_lines)
    keep = ~problems.bad
    if not keep.any():
        raise TraceError(path, "no valid record left after skipping the bad ones")

    # VMs in order of first appearance: the file's order is deliberate, unlike a directory's.
    vm_text = records.vm[keep]
    distinct, first_seen, inverse = np.unique(vm_text, return_index=True, return_inverse=True)
    order = np.argsort(first_seen, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    present = np.unique(resource[keep])  # codes follow Resource's order
    position = np.full(len(_RESOURCE_ORDER), -1, dtype=np.int64)
    position[present] = np.arange(present.size)
    resources = tuple(_RESOURCE_ORDER[c] for c in present)

    units: tuple[Unit, ...]
    if records.unit is None:
        units = tuple(DEFAULT_UNITS[r] for r in resources)
        assumed = ", ".join(
            f"{r.value} in {u.value}" for r, u in zip(resources, units, strict=True)
        )
        report.notes.append(f"the file has no unit column; assumed default units: {assumed}")
    else:
        units = tuple(unit_of[int(c)] for c in present)
    if naive or records.naive_timestamps:
        report.notes.append("timestamps without a time zone were read as UTC")

    return _Valid(
        vm_ids=tuple(str(v) for v in distinct[order]),
        vm=rank[inverse].astype(np.int64),
        resources=resources,
        resource=position[resource[keep]],
        units=units,
        timestamp=seconds[keep],
        value=value[keep],
        where=records.where[keep],
    )


# ----------------------------------------------------------------------------- the grid


#: Below this share of (VM, step) slots holding a sample, a trace is noted as sparse.
SPARSE_SHARE = 0.01
#: The longest sampling step the long reader infers: forethought forecasts minutes to a
#: day ahead, and a longer median interval means a stray timestamp, not a trace.
MAX_INFERRED_STEP = 7 * 86_400


def _infer_step(series: IntArray, timestamps: FloatArray) -> int | None:
    """The median positive interval between consecutive samples of the same series."""
    order = np.lexsort((timestamps, series))
    s, t = series[order], timestamps[order]
    interval = np.diff(t)
    interval = interval[(s[1:] == s[:-1]) & (interval > 0)]
    if interval.size == 0:
        return None
    return max(1, round(float(np.median(interval))))


def _first_conflict(valid: _Valid, series: IntArray) -> str:
    """Where two records of one VM, resource and time disagree (they are averaged, as
    the Bitbrains reader merges its duplicates), the first such pair in words; "" if none."""
    order = np.lexsort((valid.where, valid.timestamp, series))
    s, t, v = series[order], valid.timestamp[order], valid.value[order]
    clash = np.flatnonzero((s[1:] == s[:-1]) & (t[1:] == t[:-1]) & (v[1:] != v[:-1]))
    if not clash.size:
        return ""
    pairs = [(int(order[k]), int(order[k + 1])) for k in clash.tolist()]
    i, j = min(pairs, key=lambda p: int(valid.where[p[1]]))
    return (
        f"; {len(pairs)} disagree, the first at lines {int(valid.where[i])} and "
        f"{int(valid.where[j])} ({valid.value[i]:g} and {valid.value[j]:g})"
    )


def _to_telemetry(
    path: Path,
    records: _Records,
    *,
    skip_bad: bool,
    step_seconds: int | None,
) -> Telemetry:
    if step_seconds is not None and step_seconds <= 0:
        raise ForethoughtError(f"step_seconds must be positive, got {step_seconds}")
    report = RepairReport()
    valid = _validate(path, records, skip_bad, report)
    n_vms, n_res = len(valid.vm_ids), len(valid.resources)
    # Each (VM, resource) pair is its own series: the long format samples them independently.
    series = valid.vm * n_res + valid.resource
    if step_seconds is None:
        step_seconds = _infer_step(series, valid.timestamp)
        if step_seconds is None:
            raise TraceError(
                path,
                "cannot infer the sampling step: no series has two distinct timestamps "
                "(a trace needs at least two samples of one VM and resource)",
            )
        if step_seconds > MAX_INFERRED_STEP:
            first, last = int(np.argmin(valid.timestamp)), int(np.argmax(valid.timestamp))
            raise TraceError(
                path,
                f"the median interval between a series' samples is {step_seconds:,} s, over a "
                "week: a timestamp is probably wrong (zero, or in milliseconds), or there are "
                f"too few samples (earliest at line {valid.where[first]}, latest at line "
                f"{valid.where[last]})",
            )
        report.notes.append(
            f"step inferred as {step_seconds} s (median interval between a series' samples)"
        )

    value = valid.value.copy()
    percent = np.array([u is Unit.PERCENT for u in valid.units], dtype=bool)
    over = percent[valid.resource] & (value > 100.0)
    report.clipped += int(np.count_nonzero(over))
    value[over] = 100.0

    try:
        grid = Grid.covering(
            float(valid.timestamp.min()),
            float(valid.timestamp.max()),
            step_seconds,
            samples=valid.timestamp.size,
        )
    except ForethoughtError as exc:
        first, last = int(np.argmin(valid.timestamp)), int(np.argmax(valid.timestamp))
        raise TraceError(
            path,
            f"{exc} (earliest sample at line {valid.where[first]}, latest at line "
            f"{valid.where[last]})",
        ) from exc
    out = resample(series, valid.timestamp, value[:, None], n_vms * n_res, grid)
    # Account per VM, as the Bitbrains reader does, so a trace converted to the long format
    # reports the same numbers: a VM's slot holds as many samples as its busiest resource
    # there, and is a gap only when no resource was sampled.
    per_vm = out.counts.reshape(n_vms, n_res, grid.n_steps).max(axis=1)
    duplicates, gaps = slot_accounting(per_vm)
    same_time = exact_duplicates(series, valid.timestamp, n_vms * n_res)
    report.duplicates_merged += int(duplicates.sum())
    report.gaps += int(gaps.sum())
    if report.clipped or report.duplicates_merged or report.gaps:
        report.notes.append(
            f"long format: {report.clipped} percent value(s) above 100 clipped; "
            f"{report.duplicates_merged} sample(s) sharing a slot averaged "
            f"({int(same_time.reshape(n_vms, n_res).max(axis=1).sum())} with an exact "
            f"duplicate timestamp{_first_conflict(valid, series)}); {report.gaps} empty slot(s) in "
            f"{int(np.count_nonzero(gaps))} VM(s)"
        )
    observed = float(per_vm.astype(bool).mean())
    if observed < SPARSE_SHARE:
        # Each VM seen over a short stretch of a long span: every command then works
        # through the whole span for every VM. Said now, not after minutes of it.
        sparse = (
            f"{path}: only {100 * observed:.2g}% of the {n_vms:,} VM(s) x {grid.n_steps:,} "
            "step(s) hold a sample (the VMs are seen over short stretches of a long span); "
            "commands will be slow and the forecasts sparse: cut the trace to the span "
            "that matters"
        )
        report.notes.append(sparse)
        report.warnings.append(sparse)
    capacity = np.full((n_vms, n_res), np.nan)
    capacity[:, percent] = 100.0  # a percentage is of a capacity of 100 by definition
    return Telemetry(
        vm_ids=valid.vm_ids,
        resources=valid.resources,
        units=valid.units,
        step_seconds=step_seconds,
        start=grid.start,
        values=out.values.reshape(n_vms, n_res, grid.n_steps),
        mask=out.mask.reshape(n_vms, n_res, grid.n_steps),
        capacity=capacity,
        source=str(path),
        repairs=report,
    )


def _existing_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.is_file():
        raise TraceError(file, "no such file" if not file.exists() else "not a file")
    return file


def read_long_csv(
    path: str | Path, *, skip_bad: bool = False, step_seconds: int | None = None
) -> Telemetry:
    """Read a long-format CSV (or ``.csv.gz``) file. See :func:`read_long`."""
    file = _existing_file(path)
    return _to_telemetry(file, _parse_csv(file), skip_bad=skip_bad, step_seconds=step_seconds)


def read_long_parquet(
    path: str | Path, *, skip_bad: bool = False, step_seconds: int | None = None
) -> Telemetry:
    """Read a long-format Parquet file (needs pyarrow). See :func:`read_long`."""
    file = _existing_file(path)
    return _to_telemetry(file, _parse_parquet(file), skip_bad=skip_bad, step_seconds=step_seconds)


def read_long(
    path: str | Path, *, skip_bad: bool = False, step_seconds: int | None = None
) -> Telemetry:
    """Read a long-format CSV or Parquet file onto a regular grid.

    The step is ``step_seconds`` or, when None, the median positive interval between
    consecutive samples of a series (noted in the repair report). With ``skip_bad`` a bad record
    is left out and listed in ``repairs.skipped``; without it a :class:`TraceError` names the
    first bad line. Parquet is recognised by its suffix or its magic bytes.
    """
    file = _existing_file(path)
    records = _parse_parquet(file) if is_parquet(file) else _parse_csv(file)
    return _to_telemetry(file, records, skip_bad=skip_bad, step_seconds=step_seconds)


# ------------------------------------------------------------------------------ writing


def _long_columns(
    telemetry: Telemetry,
) -> tuple[list[str], list[int], list[str], list[float], list[str]]:
    """The present samples as long-format columns, VM by VM, resource by resource, in time."""
    v, r, t = np.nonzero(telemetry.mask)
    vm_ids = np.asarray(telemetry.vm_ids, dtype=object)
    names = np.asarray([res.value for res in telemetry.resources], dtype=object)
    units = np.asarray([u.value for u in telemetry.units], dtype=object)
    return (
        vm_ids[v].tolist(),
        (telemetry.start + t * telemetry.step_seconds).tolist(),
        names[r].tolist(),
        telemetry.values[v, r, t].tolist(),
        units[r].tolist(),
    )


def write_long_csv(telemetry: Telemetry, path: str | Path) -> None:
    """Write the present samples as long-format CSV (gzip-compressed if the name ends in .gz).

    Values are written with Python's shortest round-tripping float repr, so reading the file
    back gives the same numbers. Capacity is not part of the format and is not written.
    """
    file = Path(path)
    columns = _long_columns(telemetry)
    with (
        gzip.open(file, "wt", encoding="utf-8", newline="")
        if is_gzip(file)
        else file.open("w", encoding="utf-8", newline="")
    ) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))
        writer.writerows(zip(*columns, strict=True))  # csv's C writer formats every row


def write_long_parquet(telemetry: Telemetry, path: str | Path) -> None:
    """Write the present samples as long-format Parquet (needs pyarrow)."""
    pa, pq = _pyarrow()
    vm, timestamp, resource, value, unit = _long_columns(telemetry)
    table = pa.table(
        {
            "vm": pa.array(vm, type=pa.string()),
            "timestamp": pa.array(timestamp, type=pa.int64()),
            "resource": pa.array(resource, type=pa.string()),
            "value": pa.array(value, type=pa.float64()),
            "unit": pa.array(unit, type=pa.string()),
        }
    )
    pq.write_table(table, Path(path))
