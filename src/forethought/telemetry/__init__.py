"""Telemetry: the in-memory panel of VM series and the readers that fill it."""

from forethought.telemetry.series import RepairReport, SkippedRecord, Telemetry

__all__ = ["RepairReport", "SkippedRecord", "Telemetry"]
