"""Tests on the numbers callers pass in, shared by every layer that checks its arguments."""

from __future__ import annotations

import math

import numpy as np


def is_whole(value: object) -> bool:
    """A whole number: an int or a NumPy integer, not a bool (nor a float like 2.0)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def json_safe(obj: object) -> object:
    """``obj`` with every NaN or infinite float replaced by None (JSON's null), through
    dicts, lists and tuples: strict JSON for scripts and the service alike."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
