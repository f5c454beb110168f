"""Reading a trace file's text, transparently decompressing ``.gz``, for the CSV readers."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def read_text(path: Path) -> str:
    """The file's UTF-8 text (gunzipped if it ends in ``.gz``, byte-order mark removed).

    Raises ``ValueError`` for content that is not valid gzip or UTF-8 (bad data, which readers
    may skip) and lets ``OSError`` through (a missing or unreadable file is not bad data).
    """
    raw = path.read_bytes()
    if is_gzip(path):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"not a valid gzip file ({exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return text.removeprefix("\ufeff")


def first_line(path: Path, limit: int = 4096) -> str | None:
    """The first line (at most ``limit`` characters) for format sniffing; None if unreadable."""
    try:
        if is_gzip(path):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                line = handle.readline(limit)
        else:
            with path.open(encoding="utf-8") as handle:
                line = handle.readline(limit)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return None
    return line.removeprefix("\ufeff").rstrip("\r\n")
