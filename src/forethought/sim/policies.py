"""The consolidation policies the simulator runs, by name, with their parameters.

Names follow the literature (Beloglazov and Buyya 2012): an overload test (THR, IQR, MAD,
LR, LRR) with minimum-migration-time VM selection (MMT) and power-aware best-fit
decreasing placement; ``dvfs`` places once and never migrates. ``predictive`` is
forethought's planner (:mod:`forethought.migration.planner`) on forecast distributions, and
``oracle`` the same planner fed the true future demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.migration.planner import PlannerSettings, PredictivePlanner
from forethought.sim.overload import OverloadTest, make_test


@dataclass(frozen=True)
class PolicySpec:
    """A named policy: its overload test and what its parameter means."""

    name: str
    test: str | None
    default: float | None
    meaning: str
    planner: str | None = None  # "predictive" or "oracle": forethought's planner

    def build_planner(self, parameter: float | None = None) -> PredictivePlanner | None:
        """forethought's planner for this policy (None for the heuristics)."""
        if self.planner is None:
            return None
        value = self.default if parameter is None else parameter
        assert value is not None
        if not (np.isfinite(value) and 0.0 < value <= 1.5):
            raise ForethoughtError(
                f"the parameter of {self.name} is the overload threshold as a share of host "
                f"capacity, in (0, 1.5]; got {value}"
            )
        settings = PlannerSettings(threshold=value)
        return PredictivePlanner(settings, oracle=self.planner == "oracle")

    def build(self, parameter: float | None = None) -> OverloadTest | None:
        if self.planner is not None:
            return None
        if self.test is None:
            if parameter is not None:
                raise ForethoughtError(f"policy {self.name} takes no parameter")
            return None
        value = self.default if parameter is None else parameter
        assert value is not None
        if not np.isfinite(value):
            raise ForethoughtError(
                f"the parameter of {self.name} must be a finite number; got {value}"
            )
        if self.test == "thr" and not 0.0 < value <= 1.0:
            raise ForethoughtError(
                f"the parameter of {self.name} is a utilisation in (0, 1]; got {value}"
            )
        if value < 0:
            raise ForethoughtError(
                f"the parameter of {self.name} must be non-negative; got {value}"
            )
        return make_test(self.test, value)


POLICIES: dict[str, PolicySpec] = {
    p.name: p
    for p in (
        PolicySpec("dvfs", None, None, "no migration: first-fit placement, power follows load"),
        PolicySpec("thr-mmt", "thr", 0.8, "static threshold on requested CPU"),
        PolicySpec("iqr-mmt", "iqr", 1.5, "safety factor s: threshold 1 - s x IQR of history"),
        PolicySpec("mad-mmt", "mad", 2.5, "safety factor s: threshold 1 - s x MAD of history"),
        PolicySpec("lr-mmt", "lr", 1.2, "safety factor s: s x local-regression forecast >= 1"),
        PolicySpec("lrr-mmt", "lrr", 1.2, "as lr-mmt (CloudSim 3.0.3 applies no robust weights)"),
        PolicySpec("oracle-mmt", "oracle", 1.0, "oracle hook: s x true load next interval >= 1"),
        PolicySpec(
            "predictive",
            None,
            1.0,
            "forethought: pressure from forecast distributions over the next hour; "
            "parameter: overload threshold as a share of capacity (learned online)",
            planner="predictive",
        ),
        PolicySpec(
            "oracle",
            None,
            1.0,
            "forethought's planner fed the true demand of the next hour (the bound)",
            planner="oracle",
        ),
    )
}


def policy(name: str) -> PolicySpec:
    """The policy called ``name``, or an error listing the known ones."""
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(POLICIES)
        raise ForethoughtError(f"unknown policy {name!r}; choose from {known}") from None
