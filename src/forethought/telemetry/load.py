"""One entry point for every trace: detect the format (or take it from the user) and read it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from forethought.core.errors import ForethoughtError, TraceError, UnknownFormatError
from forethought.telemetry.datasets import BUNDLED_PREFIX, load_bundled
from forethought.telemetry.readers._text import first_line
from forethought.telemetry.readers.bitbrains import looks_like_bitbrains, read_bitbrains
from forethought.telemetry.readers.longformat import (
    is_parquet,
    looks_like_long,
    read_long_csv,
    read_long_parquet,
)
from forethought.telemetry.readers.planetlab import looks_like_planetlab, read_planetlab
from forethought.telemetry.series import Telemetry

FORMATS: tuple[str, ...] = ("planetlab", "bitbrains", "long-csv", "long-parquet")

_DESCRIPTIONS: dict[str, str] = {
    "planetlab": "a directory of extension-less files, one CPU percentage per line",
    "bitbrains": "a directory of <id>.csv[.gz] files (or one such file) with the GWA-T-12 header",
    "long-csv": "a CSV file with a vm,timestamp,resource,value[,unit] header",
    "long-parquet": "a Parquet file with vm, timestamp, resource, value[, unit] columns",
}


def _known_formats() -> str:
    return "; ".join(f"{name} ({_DESCRIPTIONS[name]})" for name in FORMATS)


def detect_format(path: Path, skip_bad: bool = False) -> str:
    """The format of the trace at ``path``, one of :data:`FORMATS`.

    Detection looks at content (headers, magic bytes), not only at names, and the checks are
    ordered from the most specific: a Bitbrains header is recognised before the looser
    "a directory of numbers" of PlanetLab. Where the content matches no format but the
    name points at one, that format's reader is tried (skipping bad records with
    ``skip_bad``) and its own error explains what is wrong.
    """
    if path.is_dir():
        if not any(not p.name.startswith(".") for p in path.iterdir()):
            raise UnknownFormatError(f"{path}: the directory is empty; no trace to read")
        if looks_like_bitbrains(path):
            return "bitbrains"
        if looks_like_planetlab(path):
            return "planetlab"
    elif path.is_file():
        if looks_like_bitbrains(path):
            return "bitbrains"
        if looks_like_long(path):
            return "long-parquet" if is_parquet(path) else "long-csv"
    guess = _closest_format(path)
    if guess is not None:
        # The name points at one format: its reader says what is wrong, which beats a
        # list of formats (an empty .csv, a misspelt column, a stray file in a day).
        try:
            _READERS[guess](path, skip_bad, None)
        except TraceError as exc:
            raise UnknownFormatError(
                f"{path}: cannot tell the trace format; read as {guess}: {exc}. Pass the "
                f"format explicitly if it is another one. Known formats: {_known_formats()}"
            ) from None
        return guess
    raise UnknownFormatError(
        f"{path}: cannot tell the trace format; pass one of the formats explicitly. "
        f"Known formats: {_known_formats()}"
    )


def _closest_format(path: Path) -> str | None:
    """The format a trace's name points to, where detection found none: a ``.csv`` file
    (Bitbrains if its first line has a ';', the long format if not), or a directory of
    files mostly without extensions (PlanetLab)."""
    name = path.name.lower()
    if path.is_file() and name.endswith((".csv", ".csv.gz")):
        first = first_line(path) or ""
        return "bitbrains" if ";" in first else "long-csv"
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if files and sum(not p.suffix for p in files) > len(files) / 2:
            return "planetlab"
    return None


def _limited(telemetry: Telemetry, limit: int | None) -> Telemetry:
    return telemetry if limit is None else telemetry.select_vms(slice(0, limit))


#: Each format's reader, called as (path, skip_bad, limit).
_READERS: dict[str, Callable[[Path, bool, int | None], Telemetry]] = {
    "planetlab": lambda p, skip, limit: read_planetlab(p, skip_bad=skip, limit=limit),
    "bitbrains": lambda p, skip, limit: read_bitbrains(p, skip_bad=skip, limit=limit),
    "long-csv": lambda p, skip, limit: _limited(read_long_csv(p, skip_bad=skip), limit),
    "long-parquet": lambda p, skip, limit: _limited(read_long_parquet(p, skip_bad=skip), limit),
}


def load_trace(
    spec: str | Path,
    fmt: str | None = None,
    *,
    skip_bad: bool = False,
    limit: int | None = None,
) -> Telemetry:
    """Read a trace given as a path or as ``bundled:NAME``.

    ``fmt`` (one of :data:`FORMATS`) overrides detection. ``limit`` keeps the first VMs, in the
    reader's order. ``skip_bad`` makes the reader skip bad records and list them in
    ``repairs.skipped`` instead of raising :class:`TraceError`.
    """
    if limit is not None and limit < 1:
        raise ForethoughtError(f"limit must be at least 1, got {limit}")
    if not str(spec).strip():  # Path("") is "." and would read the current directory
        raise ForethoughtError("the trace is empty; give a path or bundled:NAME")
    if fmt is not None and fmt not in FORMATS:
        raise UnknownFormatError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if isinstance(spec, str) and spec.startswith(BUNDLED_PREFIX):
        if fmt is not None:
            raise ForethoughtError(f"{spec}: a bundled dataset has a fixed format; omit the format")
        return _limited(load_bundled(spec), limit)
    path = Path(spec).expanduser()
    if not path.exists():
        raise TraceError(path, "no such file or directory")
    chosen = fmt if fmt is not None else detect_format(path, skip_bad)
    return _READERS[chosen](path, skip_bad, limit)
