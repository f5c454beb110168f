"""Shared helpers for the simulator tests: small synthetic clusters and traces."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.cluster.model import cloudsim_planetlab
from forethought.forecast.base import FloatArray
from forethought.sim.cloudsim import CloudSimDataCentre
from forethought.sim.metrics import SimResult
from forethought.sim.policies import policy

#: Seconds between trace samples, as in the PlanetLab traces.
INTERVAL = 300.0


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test, so every test is reproducible on its own."""
    return np.random.default_rng(20110303)


def utilisation(
    seed: int, vms: int, samples: int, low: float = 0.0, high: float = 1.0
) -> FloatArray:
    """A (vms, samples) trace of independent uniform utilisations in [low, high)."""
    return np.random.default_rng(seed).uniform(low, high, (vms, samples))


def data_centre(
    u: FloatArray, hosts: int, name: str = "dvfs", parameter: float | None = None
) -> CloudSimDataCentre:
    """CloudSim's PlanetLab data centre of ``hosts`` hosts running trace ``u`` under a policy."""
    spec = policy(name)
    return CloudSimDataCentre(
        cloudsim_planetlab(u.shape[0], hosts),
        u,
        spec.build(parameter),
        name=name,
        planner=spec.build_planner(parameter),
    )


def run(
    u: FloatArray, hosts: int, name: str = "dvfs", parameter: float | None = None
) -> tuple[CloudSimDataCentre, SimResult]:
    """The data centre after a whole run, and the run's result."""
    dc = data_centre(u, hosts, name, parameter)
    return dc, dc.run()
