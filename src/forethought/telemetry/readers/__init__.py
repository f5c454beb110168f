"""Trace readers. Each returns a :class:`~forethought.telemetry.Telemetry`."""
