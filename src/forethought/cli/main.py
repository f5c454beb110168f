"""The ``forethought`` command line: every command's --help reads like a manual page.

The group lives in :mod:`forethought.cli.base`; each module below adds its commands to it
when imported.
"""

from __future__ import annotations

from forethought.cli import allocation, fleet, migration, simulation, traces
from forethought.cli.base import main

__all__ = ["main"]
# Imported for the commands they register on ``main``.
_COMMANDS = (traces, simulation, allocation, migration, fleet)
