"""Reading a trace file's text, transparently decompressing ``.gz``, for the CSV readers."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


class BadTextError(ValueError):
    """Content that is not valid gzip or UTF-8, with the line where it goes wrong if known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason, self.line = reason, line


def parse_number(token: str) -> float:
    """A trace cell as a float, as strictly as a CSV reader should read it.

    Python's ``float`` also takes ``"1_000"`` and digits of other scripts (``"\u0663"`` is 3);
    in a trace those are corrupt cells, not numbers, so they raise ``ValueError`` as NumPy's
    C reader (the readers' fast path) does.
    """
    if not token.isascii() or "_" in token:
        raise ValueError(f"could not convert string to float: {token!r}")
    return float(token)


def read_text(path: Path) -> str:
    """The file's UTF-8 text (gunzipped if it ends in ``.gz``, byte-order mark removed).

    Raises :class:`BadTextError` for content that is not valid gzip or UTF-8 (bad data, which
    readers may skip) and lets ``OSError`` through (a missing or unreadable file is not bad
    data).
    """
    raw = path.read_bytes()
    if is_gzip(path):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadTextError(f"not a valid gzip file ({exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadTextError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", line) from exc
    nul = text.find("\0")
    if nul >= 0:  # NumPy's text arrays would drop it silently, merging "a\0" into "a"
        raise BadTextError("a NUL byte: binary data, not text", text.count("\n", 0, nul) + 1)
    if "\r" in text and "\n" not in text:  # old Mac line endings: lines end in CR alone
        text = text.replace("\r", "\n")
    return text.removeprefix("\ufeff")


def first_line(path: Path, limit: int = 4096) -> str | None:
    """The first line (at most ``limit`` characters) for format sniffing; None if unreadable."""
    try:
        # Bytes first, decoded one line only: a bad byte further down is the reader's to
        # report with its line, not a reason to call the format unknown.
        if is_gzip(path):
            with gzip.open(path, "rb") as handle:
                raw = handle.readline(limit)
        else:
            with path.open("rb") as handle:
                raw = handle.readline(limit)
        line = raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return None
    return line.removeprefix("\ufeff").rstrip("\r\n")
