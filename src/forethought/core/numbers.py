"""Tests on the numbers callers pass in, shared by every layer that checks its arguments."""

from __future__ import annotations

import numpy as np


def is_whole(value: object) -> bool:
    """A whole number: an int or a NumPy integer, not a bool (nor a float like 2.0)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
