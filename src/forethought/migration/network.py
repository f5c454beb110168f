"""The network map: what moving a VM between two hosts costs in time, money and latency.

Hosts live in sites (private data centres, public clouds); sites are joined by links of
limited bandwidth, some latency and a price per GB. Within a site the hosts' own network
interfaces are the bottleneck; across sites the link usually is. The map answers for many
candidate targets at once (arrays of host indexes), so a planner scores every host in one
call, and keeps each link's bandwidth estimate current from the transfers that complete,
because the configured figure is a contract, not what the link delivers today.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from forethought.cluster.model import Cluster
from forethought.core.errors import ForethoughtError
from forethought.forecast.base import FloatArray

IntArray = npt.NDArray[np.int64]

#: The fraction of a path's bandwidth live migration may use; the VMs' own traffic keeps
#: the rest. Matches :class:`~forethought.cluster.simulated.SimulatedBackend`.
MIGRATION_SHARE = 0.5
#: MB in a GB, as clouds bill transfer.
MB_PER_GB = 1024.0
#: A transfer that reaches this fraction of a bound other than the link (a host's NIC or a
#: caller's cap) was held back by that bound, so it tells us the link is at least that fast.
_BOUND_TOLERANCE = 0.95


class NetworkMap:
    """Hosts of a :class:`Cluster` by site, and the links between sites.

    Host indexes are the cluster's rows; ``host_ids`` names them as the backend does
    (``host-<i>`` by default, as the simulated backend does). ``alpha`` weighs a new
    observation in a link's bandwidth estimate (EWMA).
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        host_ids: Sequence[str] | None = None,
        alpha: float = 0.3,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ForethoughtError(f"alpha must be in (0, 1], got {alpha}")
        assert cluster.host_site is not None  # Cluster.__post_init__ fills it
        self.alpha = alpha
        self.site_of: IntArray = np.asarray(cluster.host_site, dtype=np.int64).copy()
        self.sites: tuple[str, ...] = tuple(s.name for s in cluster.sites)
        self.kinds: tuple[str, ...] = tuple(s.kind for s in cluster.sites)
        self.host_bandwidth: FloatArray = cluster.host_column("bandwidth_mbps").copy()
        n = cluster.n_hosts
        ids = [f"host-{h}" for h in range(n)] if host_ids is None else list(host_ids)
        if len(ids) != n or len(set(ids)) != n:
            raise ForethoughtError(f"host_ids must name each of the {n} hosts once")
        self.host_ids: tuple[str, ...] = tuple(ids)
        self._index = {h: i for i, h in enumerate(ids)}

        # Site-by-site matrices; the diagonal is "within a site": no link in the way.
        s = len(self.sites)
        self._latency = np.full((s, s), np.inf)
        self._cost = np.full((s, s), np.inf)
        self._configured = np.zeros((s, s))
        self._estimate = np.zeros((s, s))
        self._linked = np.zeros((s, s), dtype=bool)
        self._down = np.zeros((s, s), dtype=bool)
        np.fill_diagonal(self._latency, 0.0)
        np.fill_diagonal(self._cost, 0.0)
        np.fill_diagonal(self._configured, np.inf)
        np.fill_diagonal(self._estimate, np.inf)
        np.fill_diagonal(self._linked, True)
        self._keys: dict[tuple[int, int], tuple[str, str]] = {}
        site = {name: i for i, name in enumerate(self.sites)}
        for link in cluster.links:
            a, b = site[link.a], site[link.b]
            if a == b or (min(a, b), max(a, b)) in self._keys:
                continue  # Cluster.link also takes the first of duplicates
            self._keys[(min(a, b), max(a, b))] = (link.a, link.b)
            for i, j in ((a, b), (b, a)):
                self._latency[i, j] = link.latency_ms
                self._cost[i, j] = link.cost_per_gb
                self._configured[i, j] = self._estimate[i, j] = link.bandwidth_mbps
                self._linked[i, j] = True

    # -- identities --------------------------------------------------------------------
    @property
    def n_hosts(self) -> int:
        return int(self.site_of.size)

    @property
    def links(self) -> tuple[tuple[str, str], ...]:
        """Every inter-site link, named (a, b) as the cluster configures it."""
        return tuple(self._keys.values())

    def index(self, host_id: str) -> int:
        """The row of a host named as the backend names it."""
        try:
            return self._index[host_id]
        except KeyError:
            raise ForethoughtError(f"unknown host {host_id!r}") from None

    def host_id(self, host: int) -> str:
        return self.host_ids[int(self._hosts(host))]

    def link_key(self, site_a: str, site_b: str) -> tuple[str, str]:
        """The configured name of the link joining two sites, in either order."""
        a, b = self._site(site_a), self._site(site_b)
        key = self._keys.get((min(a, b), max(a, b)))
        if key is None:
            raise ForethoughtError(f"no link between sites {site_a!r} and {site_b!r}")
        return key

    def link_of(self, source: int, target: int) -> tuple[str, str] | None:
        """The link a move from ``source`` to ``target`` crosses; None within a site."""
        a, b = (int(self.site_of[self._hosts(h)]) for h in (source, target))
        if a == b:
            return None
        return self.link_key(self.sites[a], self.sites[b])

    # -- the link state kept current ---------------------------------------------------
    def link_bandwidth(self, site_a: str, site_b: str) -> float:
        """The link's current bandwidth estimate (Mbit/s), down or not."""
        a, b = self._pair(site_a, site_b)
        return float(self._estimate[a, b])

    def is_down(self, site_a: str, site_b: str) -> bool:
        a, b = self._pair(site_a, site_b)
        return bool(self._down[a, b])

    def mark_down(self, site_a: str, site_b: str) -> None:
        """The link is known down: nothing crosses it until :meth:`mark_up`."""
        a, b = self._pair(site_a, site_b)
        self._down[a, b] = self._down[b, a] = True

    def mark_up(self, site_a: str, site_b: str) -> None:
        a, b = self._pair(site_a, site_b)
        self._down[a, b] = self._down[b, a] = False

    def observe(
        self,
        source: int,
        target: int,
        megabytes: float,
        seconds: float,
        *,
        cap_mbps: float | None = None,
    ) -> float | None:
        """Fold a completed transfer into its link's bandwidth estimate; returns the new
        estimate (Mbit/s), or None within a site, where there is no link to learn about.

        The transfer ran on the migration share of the path, so the link it implies is
        ``megabytes * 8 / (seconds - latency) / MIGRATION_SHARE``. When the transfer was held
        back by something else (the hosts' interfaces, or ``cap_mbps``, a tunnel share the
        caller imposed) and reached it, it only shows the link is *at least* that fast:
        then the estimate can rise towards it but never fall.
        """
        if not megabytes > 0 or not np.isfinite(megabytes):
            raise ForethoughtError(f"observe: megabytes must be > 0, got {megabytes}")
        s, t = int(self._hosts(source)), int(self._hosts(target))
        a, b = int(self.site_of[s]), int(self.site_of[t])
        if a == b:
            return None
        if not self._linked[a, b]:
            raise ForethoughtError(
                f"observe: no link between sites {self.sites[a]!r} and {self.sites[b]!r}"
            )
        transfer = seconds - self._latency[a, b] / 1000.0
        if not transfer > 0 or not np.isfinite(seconds):
            raise ForethoughtError(
                f"observe: seconds must exceed the link latency "
                f"({self._latency[a, b]:g} ms), got {seconds}"
            )
        achieved = float(megabytes * 8.0 / transfer)  # Mbit/s the migration got
        implied = achieved / MIGRATION_SHARE  # what the link must carry for that
        other = float(min(self.host_bandwidth[s], self.host_bandwidth[t]))
        if cap_mbps is not None:
            other = min(other, cap_mbps / MIGRATION_SHARE)
        old = float(self._estimate[a, b])
        new = (1 - self.alpha) * old + self.alpha * implied
        if implied >= _BOUND_TOLERANCE * other:  # bounded elsewhere: a lower bound only
            new = max(old, new)
        self._estimate[a, b] = self._estimate[b, a] = new
        return new

    # -- vectorised figures ------------------------------------------------------------
    def bandwidth_mbps(self, source: npt.ArrayLike, targets: npt.ArrayLike) -> FloatArray:
        """Path bandwidth (Mbit/s): the slower host interface, and across sites the link's
        current estimate too; 0 over a link that is down or missing."""
        s, t = self._hosts(source), self._hosts(targets)
        a, b = self.site_of[s], self.site_of[t]
        mbps = np.minimum(self.host_bandwidth[s], self.host_bandwidth[t])
        mbps = np.minimum(mbps, self._estimate[a, b])
        return np.asarray(np.where(self._down[a, b] | ~self._linked[a, b], 0.0, mbps))

    def migration_mbps(self, source: npt.ArrayLike, targets: npt.ArrayLike) -> FloatArray:
        """The bandwidth a migration on the path may use: its migration share."""
        return np.asarray(self.bandwidth_mbps(source, targets) * MIGRATION_SHARE)

    def latency_ms(self, source: npt.ArrayLike, targets: npt.ArrayLike) -> FloatArray:
        """One-way latency: the link's across sites, 0 within one, inf with no link."""
        s, t = self._hosts(source), self._hosts(targets)
        return np.asarray(self._latency[self.site_of[s], self.site_of[t]])

    def transfer_seconds(
        self, ram_mb: npt.ArrayLike, source: npt.ArrayLike, targets: npt.ArrayLike
    ) -> FloatArray:
        """Time to move ``ram_mb`` of memory: RAM over the migration rate (MB/s, the
        migration share of the path's Mbit/s over 8) plus the latency; inf when the path is
        down; 0 to the host the VM is on, where nothing moves."""
        ram = self._sizes(ram_mb)
        s, t = self._hosts(source), self._hosts(targets)
        rate = self.migration_mbps(s, t) / 8.0
        with np.errstate(divide="ignore", invalid="ignore"):
            seconds = np.where(rate > 0, ram / rate, np.inf) + self.latency_ms(s, t) / 1000.0
        return np.asarray(np.where(s == t, 0.0, seconds))

    def transfer_cost(
        self, ram_mb: npt.ArrayLike, source: npt.ArrayLike, targets: npt.ArrayLike
    ) -> FloatArray:
        """Money the move costs: GB moved times the link's price per GB; 0 within a site,
        inf with no link at all."""
        ram = self._sizes(ram_mb)
        s, t = self._hosts(source), self._hosts(targets)
        price = self._cost[self.site_of[s], self.site_of[t]]
        with np.errstate(invalid="ignore"):  # 0 MB over a missing link costs nothing
            cost = np.where(ram > 0, ram / MB_PER_GB * price, 0.0)
        return np.asarray(np.where(s == t, 0.0, cost))

    def rank_targets(
        self,
        ram_mb: float,
        source: int,
        candidates: npt.ArrayLike,
        score_extra: npt.ArrayLike | None = None,
        *,
        money_weight: float = 600.0,
    ) -> IntArray:
        """``candidates`` cheapest first, by

            score = transfer_seconds + money_weight * transfer_cost + score_extra

        ``money_weight`` is the seconds of transfer one unit of money is worth (600: a
        dollar is worth ten minutes of migration); ``score_extra`` (same length as
        ``candidates``, in seconds) lets a planner fold in its own penalty. Ties keep the
        candidates' order; unreachable targets (inf seconds) come last.
        """
        cand = self._hosts(candidates).reshape(-1)
        score = self.transfer_seconds(ram_mb, source, cand)
        score = score + money_weight * self.transfer_cost(ram_mb, source, cand)
        if score_extra is not None:
            extra = np.asarray(score_extra, dtype=np.float64).reshape(-1)
            if extra.shape != cand.shape:
                raise ForethoughtError(
                    f"score_extra has {extra.size} values for {cand.size} candidates"
                )
            score = score + extra
        score = np.where(np.isnan(score), np.inf, score)
        return np.asarray(cand[np.argsort(score, kind="stable")])

    # -- validation --------------------------------------------------------------------
    def _hosts(self, hosts: npt.ArrayLike) -> IntArray:
        arr = np.asarray(hosts)
        if arr.dtype.kind not in "iu":
            raise ForethoughtError(f"host indexes must be integers, got {arr!r}")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.n_hosts)
        if bad.any():
            raise ForethoughtError(
                f"unknown host index {int(arr[bad].flat[0])} (the map has {self.n_hosts} hosts)"
            )
        return arr

    @staticmethod
    def _sizes(ram_mb: npt.ArrayLike) -> FloatArray:
        ram = np.asarray(ram_mb, dtype=np.float64)
        bad = ~(ram >= 0) | ~np.isfinite(ram)
        if bad.any():
            raise ForethoughtError(f"ram_mb must be finite and >= 0, got {ram[bad].flat[0]}")
        return ram

    def _site(self, name: str) -> int:
        try:
            return self.sites.index(name)
        except ValueError:
            raise ForethoughtError(f"unknown site {name!r}") from None

    def _pair(self, site_a: str, site_b: str) -> tuple[int, int]:
        self.link_key(site_a, site_b)  # raises unless a link joins them
        return self._site(site_a), self._site(site_b)
