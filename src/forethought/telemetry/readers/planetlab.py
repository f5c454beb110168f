"""PlanetLab / CloudSim traces: a directory with one file per VM, one CPU percent per line.

Files are read in sorted name order (CloudSim uses the file system's order, which is not
reproducible). Samples are 300 s apart. Names may contain spaces.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from forethought.core.errors import TraceError
from forethought.core.resources import MAX_READING, Resource, Unit
from forethought.telemetry.readers._text import (
    BadTextError,
    first_line,
    parse_number,
    read_text,
)
from forethought.telemetry.series import RepairReport, SkippedRecord, Telemetry

STEP_SECONDS = 300


def looks_like_planetlab(path: Path) -> bool:
    """A directory of extension-less files whose first line is a bare number.

    Up to five files are sniffed: one bad or empty file must not hide the format, so that
    the reader, not detection, says what is wrong with it.
    """
    if not path.is_dir():
        return False
    files = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
    if not files or any(p.suffix in {".csv", ".gz", ".parquet"} for p in files[:20]):
        return False
    return any(_starts_with_a_number(p) for p in files[:5])


def _starts_with_a_number(path: Path) -> bool:
    first = first_line(path)  # None if unreadable; a byte-order mark is dropped
    try:
        parse_number((first or "").strip())
    except ValueError:
        return False
    return True


def _parse_file(path: Path, skip_bad: bool, report: RepairReport) -> list[float] | None:
    """The samples of one file; NaN marks a skipped sample. None if the file is skipped whole."""
    try:
        text = read_text(path)  # a byte-order mark is dropped, as the other readers do
    except BadTextError as exc:
        if not skip_bad:
            raise TraceError(path, exc.reason, exc.line) from exc
        report.skipped.append(SkippedRecord(str(path), exc.line, exc.reason))
        return None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        if skip_bad:
            report.skipped.append(SkippedRecord(str(path), None, "empty file"))
            return None
        raise TraceError(path, "empty file: expected one CPU percentage per line")
    out: list[float] = []
    for number, raw in enumerate(lines, start=1):
        token = raw.strip()
        problem: str | None = None
        value = math.nan
        try:
            value = parse_number(token)
        except ValueError:
            problem = f"not a number: {token!r}"
        else:
            if not math.isfinite(value):
                problem = f"non-finite value {token!r}"
            elif value < 0:
                problem = f"negative CPU percentage {value:g}"
            elif value > MAX_READING:
                problem = f"{value:g} is beyond any plausible reading"
        if problem is not None:
            if not skip_bad:
                raise TraceError(path, problem, line=number)
            report.skipped.append(SkippedRecord(str(path), number, problem))
            value = math.nan
        elif value > 100.0:
            if report.clipped < SHOWN_CLIPS:  # where to look, for the first few
                report.notes.append(f"{path}, line {number}: {value:g} % clipped to 100")
            report.clipped += 1
            value = 100.0
        out.append(value)
    if not any(math.isfinite(v) for v in out):
        # Every line was skipped: not a VM with no samples, which would count in every
        # figure per VM, but a file that is not a trace (as the other readers drop it).
        report.skipped.append(SkippedRecord(str(path), None, "no valid sample left"))
        return None
    return out


#: Clipped values named by file and line in the repair notes (the first few).
SHOWN_CLIPS = 5


def read_planetlab(
    directory: str | Path, *, skip_bad: bool = False, limit: int | None = None
) -> Telemetry:
    """Read a PlanetLab day directory into a one-resource (cpu, percent) telemetry."""
    root = Path(directory)
    if not root.is_dir():
        raise TraceError(root, "not a directory: a PlanetLab trace is a folder of VM files")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file()]
    if limit is not None:
        files = files[:limit]
    if not files:
        raise TraceError(root, "the directory holds no trace files")
    report = RepairReport()
    others = [p.name for p in entries if not p.is_file()]
    if others:  # a subdirectory, or a link to nowhere: said, not silently passed over
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        report.notes.append(
            f"ignored {len(others)} entr{'y' if len(others) == 1 else 'ies'} "
            f"that {'is' if len(others) == 1 else 'are'} not a readable file: {shown}"
        )
    rows: list[list[float]] = []
    names: list[str] = []
    for path in files:
        samples = _parse_file(path, skip_bad, report)
        if samples is not None:
            rows.append(samples)
            names.append(path.name)
    if not rows:
        raise TraceError(root, "no readable VM file (all were skipped)")
    length = max(len(r) for r in rows)
    values = np.full((len(rows), 1, length), np.nan)
    for i, r in enumerate(rows):
        values[i, 0, : len(r)] = r
    mask = np.isfinite(values)
    short = sum(1 for r in rows if len(r) < length)
    if short:
        report.gaps += sum(length - len(r) for r in rows)
        report.notes.append(f"{short} file(s) shorter than {length} samples; their tail is missing")
    return Telemetry(
        vm_ids=tuple(names),
        resources=(Resource.CPU,),
        units=(Unit.PERCENT,),
        step_seconds=STEP_SECONDS,
        start=0,
        values=values,
        mask=mask,
        capacity=np.full((len(rows), 1), 100.0),
        source=str(root),
        repairs=report,
    )
