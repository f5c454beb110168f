"""Datasets bundled inside the package, and where the full public traces come from."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from forethought.core.errors import TraceError
from forethought.core.resources import Resource, Unit
from forethought.telemetry.series import RepairReport, Telemetry

BUNDLED_PREFIX = "bundled:"


@dataclass(frozen=True)
class Dataset:
    """A bundled dataset or a public trace a user can download."""

    name: str
    description: str
    origin: str
    licence: str
    bundled: bool


DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="planetlab-20110303",
        description="PlanetLab CPU utilisation, 2011-03-03: 1,052 VMs x 288 five-minute samples",
        origin="CloudSim project, modules/cloudsim-examples/src/main/resources/workload/planetlab",
        licence="Apache-2.0",
        bundled=True,
    ),
    Dataset(
        name="planetlab",
        description="PlanetLab CPU traces, ten days of March-April 2011 (CoMon project)",
        origin="https://github.com/Cloudslab/cloudsim (workload/planetlab), read with "
        "--format planetlab",
        licence="Apache-2.0",
        bundled=False,
    ),
    Dataset(
        name="bitbrains-rnd",
        description="Bitbrains GWA-T-12 Rnd: 500 VMs, cpu/memory/disk/network, 3 months",
        origin="Grid Workloads Archive, http://gwa.ewi.tudelft.nl/datasets/gwa-t-12-bitbrains "
        "(cite Shen, van Beek and Iosup, CCGrid 2015), read with --format bitbrains",
        licence="GWA terms of use",
        bundled=False,
    ),
)


def bundled_names() -> list[str]:
    return [d.name for d in DATASETS if d.bundled]


def load_bundled(name: str) -> Telemetry:
    """Load a bundled dataset by name (with or without the ``bundled:`` prefix)."""
    key = name.removeprefix(BUNDLED_PREFIX)
    if key not in bundled_names():
        known = ", ".join(bundled_names())
        raise TraceError(name, f"no bundled dataset of that name (bundled: {known})")
    blob = resources.files("forethought.data").joinpath(f"{key}.npz")
    with blob.open("rb") as handle, np.load(handle) as archive:
        cpu = archive["cpu"].astype(np.float64)
        vm_ids = tuple(str(x) for x in archive["vm_ids"])
    return Telemetry(
        vm_ids=vm_ids,
        resources=(Resource.CPU,),
        units=(Unit.PERCENT,),
        step_seconds=300,
        start=0,
        values=cpu[:, None, :],
        mask=np.ones((cpu.shape[0], 1, cpu.shape[1]), dtype=bool),
        capacity=np.full((cpu.shape[0], 1), 100.0),
        source=f"{BUNDLED_PREFIX}{key}",
        repairs=RepairReport(),
    )
