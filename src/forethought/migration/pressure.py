"""Resource pressure of hosts from joint demand scenarios, with what-if moves.

A host's pressure is the probability, over the joint scenarios, that within the horizon its
VMs' summed CPU demand exceeds ``threshold`` times its capacity, or one VM wants more than
one of the host's cores (it then cannot be granted its demand, whatever the others do).
Hosts' scenario loads are kept as a (hosts, draws, steps) array that the planner edits as
it moves VMs, so every what-if (this VM onto each candidate host, each VM off this host)
is one vectorised expression.
"""

from __future__ import annotations

import numpy as np

from forethought.core.errors import ForethoughtError
from forethought.forecast.base import FloatArray


class HostPressure:
    """Scenario loads of every host and the pressure they imply.

    ``paths`` is (draws, vms, steps) CPU demand in MIPS; ``host_of[v]`` is VM v's host or -1
    for a VM counted nowhere. ``capacity`` and ``core`` are each host's MIPS and the MIPS of
    one of its cores; ``threshold`` scales capacity (1.0: overloaded when demand exceeds
    what the host has).
    """

    def __init__(
        self,
        paths: FloatArray,
        host_of: np.ndarray,
        capacity: FloatArray,
        core: FloatArray,
        threshold: float,
    ) -> None:
        if paths.ndim != 3 or paths.shape[1] != host_of.size:
            raise ForethoughtError(f"paths {paths.shape} do not match {host_of.size} VMs")
        if not 0.0 < threshold <= 2.0:
            raise ForethoughtError(f"threshold must be in (0, 2]; got {threshold}")
        self.vm = np.ascontiguousarray(np.transpose(np.maximum(paths, 0.0), (1, 0, 2)))
        self.vm_peak = self.vm.max(axis=2)  # (vms, draws)
        self.capacity, self.core = capacity, core
        self.limit = threshold * capacity
        H = capacity.size
        S, K = paths.shape[0], paths.shape[2]
        self.load = np.zeros((H, S, K))
        self.over_core = np.zeros((H, S), dtype=bool)
        on = np.flatnonzero(host_of >= 0)
        if on.size:
            hosts = host_of[on]
            order = np.argsort(hosts, kind="stable")
            vms, hs = on[order], hosts[order]
            starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]])
            rows = hs[starts]
            capped = np.minimum(self.vm[vms], core[hs][:, None, None])
            self.load[rows] = np.add.reduceat(capped, starts, axis=0)
            over = self.vm_peak[vms] > core[hs][:, None]
            self.over_core[rows] = np.logical_or.reduceat(over, starts, axis=0)
        # Each host's peak load over the horizon, per draw: a host whose peak plus a VM's
        # peak stays within its limit cannot overload in that draw (see pressure_with).
        self.peak = self.load.max(axis=2)  # (hosts, draws)

    def pressure(self, rows: np.ndarray) -> FloatArray:
        """Probability of overload within the horizon for each host in ``rows``."""
        over = (self.load[rows] > self.limit[rows, None, None]).any(axis=2) | self.over_core[rows]
        return np.asarray(over.mean(axis=1))

    def pressure_with(self, v: int, rows: np.ndarray) -> FloatArray:
        """Each host's pressure if VM ``v`` were added to it.

        Only hosts that could overload are tested step by step: where, in every draw, the
        host's peak load plus the VM's peak stays within the limit, no step can exceed it
        (rounding is monotone, so the shortcut is exact). On a fleet with room, that is
        most hosts, and the (hosts, draws, steps) test shrinks to the few near their limit.
        """
        core = self.core[rows]
        limit = self.limit[rows]
        over = self.over_core[rows] | (self.vm_peak[v][None, :] > core[:, None])
        peak_add = np.minimum(self.vm_peak[v][None, :], core[:, None])  # = max over steps
        close = np.flatnonzero((self.peak[rows] + peak_add > limit[:, None]).any(axis=1))
        if close.size:
            near = rows[close]
            add = np.minimum(self.vm[v][None], core[close][:, None, None])
            over[close] |= (self.load[near] + add > limit[close][:, None, None]).any(axis=2)
        return np.asarray(over.mean(axis=1))

    def pressure_without(self, h: int, members: np.ndarray) -> FloatArray:
        """Host ``h``'s pressure with each one of ``members`` taken off it."""
        core = self.core[h]
        load = self.load[h][None] - np.minimum(self.vm[members], core)
        over = (load > self.limit[h]).any(axis=2)
        peak_over = self.vm_peak[members] > core  # (members, draws)
        # The core test without member m: does any *other* member exceed a core?
        n_over = peak_over.sum(axis=0)
        over |= (n_over[None, :] - peak_over) > 0
        return np.asarray(over.mean(axis=1))

    def pressure_without_pairs(self, h: int, members: np.ndarray) -> FloatArray:
        """Host ``h``'s pressure with each pair of ``members`` taken off it, (m, m).

        The diagonal (a VM paired with itself) is infinite. For the case where no single
        VM is enough: on a saturated host, taking one off leaves the probability of
        overload at 1 even though two together would relieve it.
        """
        core = self.core[h]
        each = np.minimum(self.vm[members], core)  # (m, draws, steps)
        load = self.load[h][None, None] - each[:, None] - each[None, :]
        over = (load > self.limit[h]).any(axis=3)  # (m, m, draws)
        peak_over = self.vm_peak[members] > core  # (m, draws)
        n_over = peak_over.sum(axis=0)
        over |= (n_over[None, None, :] - peak_over[:, None] - peak_over[None, :]) > 0
        out = over.mean(axis=2)
        np.fill_diagonal(out, np.inf)
        return np.asarray(out)

    def mean_utilisation(self, rows: np.ndarray) -> FloatArray:
        """Expected CPU utilisation over the horizon, as a fraction of capacity."""
        return np.asarray(self.load[rows].mean(axis=(1, 2)) / self.capacity[rows])

    def vm_mean(self, v: int) -> float:
        return float(self.vm[v].mean())

    def move(self, v: int, source: int, target: int, source_members: np.ndarray) -> None:
        """Commit VM ``v`` from ``source`` (-1: none) to ``target`` (-1: none).

        ``source_members`` are the VMs left on the source after the move, to recompute its
        core test.
        """
        if source >= 0:
            self.load[source] -= np.minimum(self.vm[v], self.core[source])
            np.maximum(self.load[source], 0.0, out=self.load[source])
            self.peak[source] = self.load[source].max(axis=1)
            self.over_core[source] = (
                (self.vm_peak[source_members] > self.core[source]).any(axis=0)
                if source_members.size
                else False
            )
        if target >= 0:
            self.load[target] += np.minimum(self.vm[v], self.core[target])
            self.peak[target] = self.load[target].max(axis=1)
            self.over_core[target] |= self.vm_peak[v] > self.core[target]

    def next_step_overload(self, rows: np.ndarray) -> FloatArray:
        """Probability of overload at the first forecast step only (for calibration)."""
        step = min(1, self.load.shape[2] - 1)
        over = self.load[rows, :, step] > self.limit[rows, None]
        return np.asarray(over.mean(axis=1))
