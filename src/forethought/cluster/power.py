"""Host power models: SPECpower tables, linearly interpolated between 10 % load steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.forecast.base import FloatArray

LOAD_STEPS = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class PowerModel:
    """Watts drawn at 0, 10, ..., 100 % CPU load (a SPECpower_ssj2008 table)."""

    name: str
    watts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.watts) != 11:
            raise ForethoughtError(f"power model {self.name}: needs 11 values (0..100 % load)")
        if not all(np.isfinite(w) and w >= 0 for w in self.watts):
            raise ForethoughtError(f"power model {self.name}: watts must be finite and >= 0")
        if any(b < a for a, b in zip(self.watts, self.watts[1:], strict=False)):
            raise ForethoughtError(f"power model {self.name}: power must not fall with load")

    def power(self, utilisation: FloatArray | float) -> FloatArray:
        """Watts at each utilisation (a fraction of capacity, clipped to [0, 1])."""
        u = np.clip(np.asarray(utilisation, dtype=np.float64), 0.0, 1.0)
        return np.asarray(np.interp(u, LOAD_STEPS, self.watts))


#: HP ProLiant ML110 G4 (Xeon 3040), as in CloudSim and Beloglazov and Buyya (2012), Table 1.
HP_ML110_G4 = PowerModel(
    "HP ProLiant ML110 G4", (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117)
)
#: HP ProLiant ML110 G5 (Xeon 3075).
HP_ML110_G5 = PowerModel(
    "HP ProLiant ML110 G5", (93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135)
)


def power_table(models: list[PowerModel]) -> FloatArray:
    """(models, 11) watts, for evaluating many hosts of a few types at once."""
    return np.array([m.watts for m in models], dtype=np.float64)


def power_of(table: FloatArray, kind: np.ndarray, utilisation: FloatArray) -> FloatArray:
    """Watts of hosts of power model ``kind`` at ``utilisation``, vectorised over hosts."""
    pos = np.clip(np.asarray(utilisation, dtype=np.float64), 0.0, 1.0) * 10.0
    lo = pos.astype(np.int64)  # floor, as pos >= 0
    np.minimum(lo, 9, out=lo)
    low = table[kind, lo]
    return np.asarray(low + (table[kind, lo + 1] - low) * (pos - lo))
