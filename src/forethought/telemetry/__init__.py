"""Telemetry: the in-memory panel of VM series and the readers that fill it."""

from forethought.telemetry.load import FORMATS, detect_format, load_trace
from forethought.telemetry.series import RepairReport, SkippedRecord, Telemetry

__all__ = ["FORMATS", "RepairReport", "SkippedRecord", "Telemetry", "detect_format", "load_trace"]
