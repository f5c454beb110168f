"""Bitbrains GWA-T-12 traces: one ``<id>.csv`` (or ``<id>.csv.gz``) file per VM.

Each file has a header and one row per sample, fields separated by ``;`` and a tab::

    Timestamp [ms]; CPU cores; CPU capacity provisioned [MHZ]; CPU usage [MHZ]; CPU usage [%];
    Memory capacity provisioned [KB]; Memory usage [KB]; Disk read throughput [KB/s];
    Disk write throughput [KB/s]; Network received throughput [KB/s];
    Network transmitted throughput [KB/s]

The timestamp is Unix *seconds* despite its "[ms]" label. Samples arrive roughly every 300 s,
with jitter, rare gaps, and in a few VMs several rows per timestamp; about 2 % of rows report CPU
usage above 100 %. The reader resamples every VM onto one common grid and records each repair in
the telemetry's :class:`~forethought.telemetry.series.RepairReport` rather than hiding it.

Only the columns forethought uses are read and validated (timestamp, CPU usage [%], memory
provisioned and used, disk and network throughput); the CPU cores and MHz columns are skipped.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from forethought.core.errors import ForethoughtError, TraceError
from forethought.core.resources import MAX_READING, Resource, Unit
from forethought.telemetry.grid import (
    Grid,
    exact_duplicates,
    implausible_seconds,
    resample,
    stray_timestamps,
)
from forethought.telemetry.readers._text import (
    BadTextError,
    first_line,
    parse_number,
    read_text,
)
from forethought.telemetry.series import RepairReport, SkippedRecord, Telemetry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

STEP_SECONDS = 300
SEPARATOR = ";"
COLUMNS: tuple[str, ...] = (
    "Timestamp [ms]",
    "CPU cores",
    "CPU capacity provisioned [MHZ]",
    "CPU usage [MHZ]",
    "CPU usage [%]",
    "Memory capacity provisioned [KB]",
    "Memory usage [KB]",
    "Disk read throughput [KB/s]",
    "Disk write throughput [KB/s]",
    "Network received throughput [KB/s]",
    "Network transmitted throughput [KB/s]",
)
_HEADER_KEY = tuple(c.lower() for c in COLUMNS)

# The file columns that are parsed, and the position of each in the parsed array.
_USED_COLUMNS = (0, 4, 5, 6, 7, 8, 9, 10)
_TS, _CPU, _MEM_PROV, _MEM, _DISK_READ, _DISK_WRITE, _NET_RX, _NET_TX = range(8)

RESOURCES: tuple[Resource, ...] = (
    Resource.CPU,
    Resource.MEMORY,
    Resource.DISK_READ,
    Resource.DISK_WRITE,
    Resource.NET_RX,
    Resource.NET_TX,
)
UNITS: tuple[Unit, ...] = (
    Unit.PERCENT,
    Unit.KB,
    Unit.KB_PER_S,
    Unit.KB_PER_S,
    Unit.KB_PER_S,
    Unit.KB_PER_S,
)
# Parsed columns that become the output resources, in the order of RESOURCES.
_VALUE_COLUMNS = (_CPU, _MEM, _DISK_READ, _DISK_WRITE, _NET_RX, _NET_TX)

_SUFFIXES = (".csv.gz", ".csv")


def _vm_id(path: Path) -> str | None:
    """The VM id a file name encodes (``"17"`` for ``17.csv.gz``), None if it is not a VM file."""
    lower = path.name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def _sort_key(vm_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order (2 before 10), then any other names alphabetically."""
    if vm_id.isascii() and vm_id.isdigit():
        return (0, int(vm_id), vm_id)
    return (1, 0, vm_id)


def _vm_files(root: Path) -> tuple[list[tuple[str, Path]], int, list[str]]:
    """The (vm id, path) pairs of a trace directory in VM order, how many files were
    ignored, and the entries named like VM files that are not readable files (a link to
    nowhere, a directory).

    A single file is accepted as a one-VM trace.
    """
    if root.is_file():
        vm = _vm_id(root)
        return [(vm if vm is not None else root.name, root)], 0, []
    if not root.is_dir():
        raise TraceError(root, "no such file or directory")
    found: dict[str, Path] = {}
    ignored = 0
    unreadable: list[str] = []
    for path in root.iterdir():
        if path.name.startswith("."):
            continue
        if not path.is_file():
            if _vm_id(path) is not None:
                unreadable.append(path.name)
            continue
        vm = _vm_id(path)
        if vm is None:
            ignored += 1
            continue
        if vm in found:
            # Both 7.csv and 7.csv.gz: reading either would silently drop the other.
            names = sorted((found[vm].name, path.name))
            raise TraceError(root, f"VM {vm!r} has two files ({' and '.join(names)}); keep one")
        found[vm] = path
    return [(vm, found[vm]) for vm in sorted(found, key=_sort_key)], ignored, sorted(unreadable)


def _header_problem(line: str) -> str | None:
    """Why ``line`` is not the Bitbrains header, or None if it is."""
    names = tuple(part.strip().lower() for part in line.split(SEPARATOR))
    if names == _HEADER_KEY:
        return None
    if len(names) != len(COLUMNS):
        return (
            f"not a Bitbrains header: expected {len(COLUMNS)} ';'-separated columns "
            f"starting with {COLUMNS[0]!r}, found {len(names)}"
        )
    wrong = next(i for i, (a, b) in enumerate(zip(names, _HEADER_KEY, strict=True)) if a != b)
    return (
        f"not a Bitbrains header: column {wrong + 1} is {line.split(SEPARATOR)[wrong].strip()!r}"
        f", expected {COLUMNS[wrong]!r}"
    )


def looks_like_bitbrains(path: Path) -> bool:
    """Whether a ``.csv[.gz]`` file, or a directory's first one, has the Bitbrains header."""
    if path.is_dir():
        try:
            # Sniff the first VM file only; an ambiguous directory (7.csv next to 7.csv.gz) is
            # still Bitbrains, and the reader then says exactly what is wrong.
            candidates = [
                p
                for p in path.iterdir()
                if not p.name.startswith(".") and p.is_file() and _vm_id(p) is not None
            ]
        except OSError:
            return False
        if not candidates:
            return False
        # Up to five files: one bad or empty file must not hide the format, so that the
        # reader, not detection, names what is wrong with it.
        ordered = sorted(candidates, key=lambda p: (_sort_key(_vm_id(p) or p.name), p.name))
        return any(_has_header(p) for p in ordered[:5])
    if not path.is_file() or _vm_id(path) is None:
        return False
    return _has_header(path)


def _has_header(path: Path) -> bool:
    first = first_line(path)
    return first is not None and _header_problem(first) is None


def _parse_fast(body: str) -> FloatArray | None:
    """Parse the rows with NumPy's C reader; None if any row needs a closer look.

    ``np.loadtxt`` cannot say which line broke a rule we check afterwards, and with ``usecols``
    it tolerates surplus fields, so every check here is all-or-nothing and the slow path is
    left to find and name the offending line.
    """
    try:
        rows = np.loadtxt(
            io.StringIO(body),
            delimiter=SEPARATOR,
            usecols=_USED_COLUMNS,
            ndmin=2,
            dtype=np.float64,
            comments=None,
            quotechar=None,
        )
    except ValueError:
        return None
    # loadtxt already failed on rows with too few fields; counting separators catches rows
    # with too many (blank lines, which loadtxt skips, hold none).
    if body.count(SEPARATOR) != (len(COLUMNS) - 1) * rows.shape[0]:
        return None
    # Timestamps have checks of their own (milliseconds, strays); readings are bounded.
    if not (np.isfinite(rows).all() and (rows >= 0).all() and (rows[:, 1:] <= MAX_READING).all()):
        return None
    return rows


def _row_problem(fields: list[str]) -> tuple[str | None, list[float]]:
    """Why a split row is invalid (None if it is valid), and its parsed used columns."""
    if len(fields) != len(COLUMNS):
        return f"expected {len(COLUMNS)} ';'-separated fields, found {len(fields)}", []
    parsed: list[float] = []
    for column in _USED_COLUMNS:
        token = fields[column].strip()
        try:
            value = parse_number(token)
        except ValueError:
            return f"{COLUMNS[column]}: not a number: {token!r}", []
        if not math.isfinite(value):
            return f"{COLUMNS[column]}: non-finite value {token!r}", []
        if value < 0:
            return f"{COLUMNS[column]}: negative value {value:g}", []
        if column != _USED_COLUMNS[_TS] and value > MAX_READING:
            return f"{COLUMNS[column]}: {value:g} is beyond any plausible reading", []
        parsed.append(value)
    return None, parsed


def _parse_slow(path: Path, lines: list[str], skip_bad: bool, report: RepairReport) -> FloatArray:
    """Parse row by row to name (or, with ``skip_bad``, skip) each bad line."""
    good: list[list[float]] = []
    for number, line in enumerate(lines, start=2):  # line 1 is the header
        if not line.strip():
            continue
        problem, parsed = _row_problem(line.split(SEPARATOR))
        if problem is None:
            good.append(parsed)
        elif skip_bad:
            report.skipped.append(SkippedRecord(str(path), number, problem))
        else:
            raise TraceError(path, problem, line=number)
    return np.array(good, dtype=np.float64).reshape(-1, len(_USED_COLUMNS))


def _skip_or_raise(
    path: Path, problem: str, skip_bad: bool, report: RepairReport, line: int | None = None
) -> None:
    if not skip_bad:
        raise TraceError(path, problem, line=line)
    report.skipped.append(SkippedRecord(str(path), line, problem))


def _read_vm_file(path: Path, skip_bad: bool, report: RepairReport) -> FloatArray | None:
    """The parsed rows of one VM file (used columns only), or None if the file is skipped."""
    try:
        text = read_text(path)
    except BadTextError as exc:
        _skip_or_raise(path, exc.reason, skip_bad, report, exc.line)
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    header, _, body = text.partition("\n")
    if not header.strip() and not body.strip():
        _skip_or_raise(path, "empty file: expected a Bitbrains header and rows", skip_bad, report)
        return None
    problem = _header_problem(header)
    if problem is not None:
        _skip_or_raise(path, problem, skip_bad, report, line=1)
        return None
    if not body.strip():
        _skip_or_raise(path, "header only: the file has no data rows", skip_bad, report)
        return None
    rows = _parse_fast(body)
    if rows is None:
        rows = _parse_slow(path, body.split("\n"), skip_bad, report)
        if rows.shape[0] == 0:  # only reachable with skip_bad: every row was bad
            report.skipped.append(SkippedRecord(str(path), None, "no valid row left"))
            return None
    return rows


def _without_stray_timestamps(
    tables: list[FloatArray], paths: list[Path], skip_bad: bool, report: RepairReport
) -> list[FloatArray]:
    """Refuse (or with ``skip_bad`` drop) rows whose timestamp lies far from all the others
    or cannot be Unix seconds (see :func:`~forethought.telemetry.grid.stray_timestamps` and
    :func:`~forethought.telemetry.grid.implausible_seconds`)."""
    stamps = np.concatenate([t[:, _TS] for t in tables])
    late_all, too_late = implausible_seconds(stamps)
    stray_all, why = stray_timestamps(np.where(late_all, np.nan, stamps))
    kept = []
    start = 0
    for rows, path in zip(tables, paths, strict=True):
        late = late_all[start : start + rows.shape[0]]
        stray = np.flatnonzero(late | stray_all[start : start + rows.shape[0]])
        start += rows.shape[0]
        lines = _row_lines(path, report) if stray.size else []  # once per file, only if needed
        for index in stray.tolist():
            problem = f"timestamp {rows[index, _TS]:.0f} {too_late if late[index] else why}"
            line = lines[index] if index < len(lines) else None
            _skip_or_raise(path, problem, skip_bad, report, line=line)
        kept.append(np.delete(rows, stray, axis=0) if stray.size else rows)
    return kept


def _row_lines(path: Path, report: RepairReport) -> list[int]:
    """The file line of each row kept from ``path``: blank lines are not rows, and neither
    are the lines already skipped as bad (``report``); for error messages."""
    skipped = {s.line for s in report.skipped if s.path == str(path)}
    text = read_text(path).replace("\r\n", "\n")
    return [
        number
        for number, line in enumerate(text.split("\n")[1:], start=2)
        if line.strip() and number not in skipped
    ]


def _worst(counts: IntArray, vm_ids: list[str], label: str) -> str:
    """``"<label> in 3 VMs (120 in total; most in VM 20: 100)"``, or ``"no <label>"``."""
    hit = np.flatnonzero(counts)
    if hit.size == 0:
        return f"no {label}"
    top = int(hit[np.argmax(counts[hit])])
    return (
        f"{label} in {hit.size} VM(s) ({int(counts.sum()):,} in total; "
        f"most in VM {vm_ids[top]}: {int(counts[top]):,})"
    )


def read_bitbrains(
    directory: str | Path,
    *,
    skip_bad: bool = False,
    limit: int | None = None,
    step_seconds: int = STEP_SECONDS,
) -> Telemetry:
    """Read a Bitbrains directory (or a single VM file) onto a common ``step_seconds`` grid.

    Resources are cpu (percent), memory (KB), disk_read, disk_write, net_rx and net_tx (KB/s).
    ``capacity`` is 100 for cpu and the VM's median provisioned memory for memory.
    With ``skip_bad`` a bad row or file is left out and listed in ``repairs.skipped``; without
    it, a :class:`TraceError` names the file and line. ``limit`` keeps the first VMs in order.
    """
    if limit is not None and limit < 1:
        raise ForethoughtError(f"limit must be at least 1, got {limit}")
    if step_seconds <= 0:
        raise ForethoughtError(f"step_seconds must be positive, got {step_seconds}")
    root = Path(directory)
    files, ignored, unreadable = _vm_files(root)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise TraceError(root, "the directory holds no <id>.csv or <id>.csv.gz VM file")

    report = RepairReport()
    vm_ids: list[str] = []
    tables: list[FloatArray] = []
    paths: list[Path] = []
    for vm, path in files:
        rows = _read_vm_file(path, skip_bad, report)
        if rows is not None:
            vm_ids.append(vm)
            tables.append(rows)
            paths.append(path)
    if not tables:
        raise TraceError(root, "no readable VM file (all were skipped)")
    tables = _without_stray_timestamps(tables, paths, skip_bad, report)
    for v in [v for v, rows in enumerate(tables) if rows.shape[0] == 0]:
        report.skipped.append(SkippedRecord(str(paths[v]), None, "no valid row left"))
    kept = [v for v, rows in enumerate(tables) if rows.shape[0]]
    vm_ids, tables = [vm_ids[v] for v in kept], [tables[v] for v in kept]
    paths = [paths[v] for v in kept]
    if not tables:
        raise TraceError(root, "no readable VM file (all were skipped)")

    n_vms = len(tables)
    cpu_clipped = np.zeros(n_vms, dtype=np.int64)
    mem_clipped = np.zeros(n_vms, dtype=np.int64)
    unprovisioned = np.zeros(n_vms, dtype=np.int64)
    capacity = np.full((n_vms, len(RESOURCES)), np.nan)
    capacity[:, RESOURCES.index(Resource.CPU)] = 100.0
    mem_index = RESOURCES.index(Resource.MEMORY)
    for v, rows in enumerate(tables):  # one vectorised pass per VM, never per row
        cpu = rows[:, _CPU]
        over = cpu > 100.0
        cpu_clipped[v] = np.count_nonzero(over)
        cpu[over] = 100.0
        # Rows with zero provisioned memory come from VMs that were switched off or not
        # provisioned at the time (their usage is usually zero too). Zero is no capacity to
        # clip against and no estimate of capacity, so such rows are kept as reported and
        # excluded from both.
        provisioned = rows[:, _MEM_PROV]
        known = provisioned > 0
        unprovisioned[v] = rows.shape[0] - np.count_nonzero(known)
        mem = rows[:, _MEM]
        above = known & (mem > provisioned)
        mem_clipped[v] = np.count_nonzero(above)
        mem[above] = provisioned[above]
        if known.any():
            # The median, not the last value: a few VMs change their provisioned memory often
            # (ballooning), and one capacity per VM should be the typical one.
            capacity[v, mem_index] = float(np.median(provisioned[known]))

    first = min(float(rows[:, _TS].min()) for rows in tables)
    last = max(float(rows[:, _TS].max()) for rows in tables)
    try:
        grid = Grid.covering(
            first, last, step_seconds, samples=sum(rows.shape[0] for rows in tables)
        )
    except ForethoughtError as exc:
        early = min(range(len(tables)), key=lambda v: float(tables[v][:, _TS].min()))
        late = max(range(len(tables)), key=lambda v: float(tables[v][:, _TS].max()))
        where = f"earliest sample in {paths[early].name}, latest in {paths[late].name}"
        raise TraceError(root, f"{exc} ({where})") from exc
    series = np.repeat(np.arange(n_vms), [rows.shape[0] for rows in tables])
    data = np.concatenate(tables)
    tables.clear()  # a month is ~280 MB of rows: do not hold it twice while resampling
    same_time = exact_duplicates(series, data[:, _TS], n_vms)
    out = resample(series, data[:, _TS], data[:, list(_VALUE_COLUMNS)], n_vms, grid)

    report.clipped += int(cpu_clipped.sum() + mem_clipped.sum())
    report.duplicates_merged += int(out.duplicates.sum())
    report.gaps += int(out.gaps.sum())
    report.notes.append(
        f"bitbrains per-VM repairs ({n_vms} VMs, {grid.n_steps} steps of {step_seconds} s): "
        + "; ".join(
            (
                _worst(cpu_clipped, vm_ids, "CPU above 100 % clipped"),
                _worst(mem_clipped, vm_ids, "memory above provisioned clipped"),
                _worst(out.duplicates, vm_ids, "samples sharing a slot averaged"),
                _worst(same_time, vm_ids, "exact duplicate timestamps"),
                _worst(out.gaps, vm_ids, "empty slots (gaps)"),
            )
        )
    )
    if unprovisioned.any():
        report.notes.append(
            _worst(unprovisioned, vm_ids, "rows with zero provisioned memory")
            + ": kept as reported, not clipped and not used for capacity"
        )
    never = [vm_ids[v] for v in np.flatnonzero(np.isnan(capacity[:, mem_index]))]
    if never:
        report.notes.append(
            f"memory capacity unknown (never provisioned) for VM(s) {', '.join(never[:10])}"
            + (" ..." if len(never) > 10 else "")
        )
    if ignored:
        report.notes.append(f"ignored {ignored} file(s) not named <id>.csv or <id>.csv.gz")
    if unreadable:  # a VM whose file link is broken must not disappear without a word
        shown = ", ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else "")
        report.notes.append(
            f"ignored {len(unreadable)} entr{'y' if len(unreadable) == 1 else 'ies'} named "
            f"like a VM file but not a readable file: {shown}"
        )
    return Telemetry(
        vm_ids=tuple(vm_ids),
        resources=RESOURCES,
        units=UNITS,
        step_seconds=step_seconds,
        start=grid.start,
        values=out.values,
        mask=out.mask,
        capacity=capacity,
        source=str(root),
        repairs=report,
    )
