"""The documented exception tree. Foreign errors are mapped to these at the boundary."""

from __future__ import annotations

from pathlib import Path


class ForethoughtError(Exception):
    """Base of every error forethought raises on purpose."""


class TraceError(ForethoughtError):
    """A trace could not be read: names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


class UnknownFormatError(ForethoughtError):
    """The trace format could not be detected or is not supported."""


class ForecastError(ForethoughtError):
    """The forecasting engine was used incorrectly (wrong shapes, unknown model...)."""


class PolicyError(ForethoughtError):
    """A scaling policy file is invalid: names the file, the field and, where known, the line."""
