"""The network map: bandwidth, time, money and latency of moves, and the link kept current."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.cluster.model import CLOUDSIM_VM_TYPES, G4, Cluster, HostType, Link, Site
from forethought.cluster.power import HP_ML110_G5
from forethought.core.errors import ForethoughtError
from forethought.migration.network import NetworkMap

# 4 private hosts (1 Gbit/s) and 4 public ones; hosts 0-3 in "dc", 4-7 in "cloud".
DC = [0, 1, 2, 3]
CLOUD = [4, 5, 6, 7]


def two_sites(public_host_mbps: float = 1000.0, link_mbps: float = 100.0) -> Cluster:
    public = HostType("cloud-vm-host", 2, 2660.0, 4096.0, public_host_mbps, HP_ML110_G5)
    return Cluster(
        host_types=[G4, public],
        vm_types=list(CLOUDSIM_VM_TYPES),
        host_type=np.array([0, 0, 0, 0, 1, 1, 1, 1]),
        vm_type=np.zeros(8, dtype=np.int64),
        sites=[Site("dc"), Site("cloud", "public")],
        host_site=np.array([0, 0, 0, 0, 1, 1, 1, 1]),
        links=[Link("dc", "cloud", latency_ms=20.0, bandwidth_mbps=link_mbps, cost_per_gb=0.05)],
    )


def test_hosts_sites_and_kinds_come_from_the_cluster() -> None:
    net = NetworkMap(two_sites())
    np.testing.assert_array_equal(net.site_of, [0, 0, 0, 0, 1, 1, 1, 1])
    assert net.sites == ("dc", "cloud")
    assert net.kinds == ("private", "public")
    assert net.links == (("dc", "cloud"),)
    assert net.index("host-5") == 5
    assert net.link_of(0, 5) == ("dc", "cloud")
    assert net.link_of(5, 0) == ("dc", "cloud")
    assert net.link_of(0, 3) is None


def test_bandwidth_is_the_slowest_of_hosts_and_link() -> None:
    net = NetworkMap(two_sites(public_host_mbps=80.0))
    # Within dc: both NICs 1000; dc -> cloud: the cloud NIC (80) is below the link (100).
    np.testing.assert_allclose(net.bandwidth_mbps(0, [1, 4]), [1000.0, 80.0])
    fast_nics = NetworkMap(two_sites())
    np.testing.assert_allclose(fast_nics.bandwidth_mbps(0, [1, 4]), [1000.0, 100.0])
    # Vectorised over sources too.
    np.testing.assert_allclose(fast_nics.bandwidth_mbps([0, 5], [4, 6]), [100.0, 1000.0])


def test_transfer_seconds_cost_and_latency_on_known_numbers() -> None:
    net = NetworkMap(two_sites())
    targets = np.array([0, 1, 4])
    # 870 MB over half of 1 Gbit/s is 62.5 MB/s: 13.92 s; over half of the 100 Mbit/s
    # link 6.25 MB/s: 139.2 s plus 20 ms latency; nothing moves to the VM's own host.
    np.testing.assert_allclose(net.transfer_seconds(870.0, 0, targets), [0.0, 13.92, 139.2 + 0.02])
    np.testing.assert_allclose(net.latency_ms(0, targets), [0.0, 0.0, 20.0])
    # 2 GB across at 0.05 a GB; free within a site.
    np.testing.assert_allclose(net.transfer_cost(2048.0, 0, targets), [0.0, 0.0, 0.10])
    # Sizes broadcast against targets.
    np.testing.assert_allclose(net.transfer_seconds([625.0, 1250.0], 0, [1, 1]), [10.0, 20.0])


def test_rank_targets_by_time_and_money_with_an_extra_score() -> None:
    net = NetworkMap(two_sites())
    candidates = np.array([4, 2, 1])
    # Local moves are fast and free, so they come first, in the candidates' order on a tie.
    np.testing.assert_array_equal(net.rank_targets(870.0, 0, candidates), [2, 1, 4])
    # The formula: seconds + money_weight * cost + extra. A planner's penalty of 200 s on
    # the local hosts makes the cloud (139.22 s + 600 * 0.0425 = 164.7 s) the cheapest.
    extra = np.array([0.0, 200.0, 200.0])
    np.testing.assert_array_equal(net.rank_targets(870.0, 0, candidates, extra), [4, 2, 1])
    # Money counts: priced at 10,000 s a unit, the cloud costs 139 + 425 > 213.9 s.
    ranked = net.rank_targets(870.0, 0, candidates, extra, money_weight=10_000.0)
    np.testing.assert_array_equal(ranked, [2, 1, 4])


def test_a_link_marked_down_is_unusable_until_marked_up() -> None:
    net = NetworkMap(two_sites())
    net.mark_down("cloud", "dc")
    assert net.is_down("dc", "cloud")
    assert net.bandwidth_mbps(0, 4)[()] == 0.0
    seconds = net.transfer_seconds(870.0, 0, [1, 4])
    assert seconds[0] == pytest.approx(13.92)
    assert np.isinf(seconds[1])
    np.testing.assert_array_equal(net.rank_targets(870.0, 0, [4, 1]), [1, 4])
    net.mark_up("dc", "cloud")
    assert net.transfer_seconds(870.0, 0, 4)[()] == pytest.approx(139.22)


def test_observe_moves_the_link_estimate_by_ewma() -> None:
    net = NetworkMap(two_sites(), alpha=0.3)
    # 870 MB in 232 s (plus the 20 ms latency) is 30 Mbit/s of migration, so the link
    # carried it at 60: the estimate moves 30 % of the way from 100 to 60.
    estimate = net.observe(0, 4, 870.0, 232.0 + 0.02)
    assert estimate == pytest.approx(88.0)
    assert net.link_bandwidth("cloud", "dc") == pytest.approx(88.0)
    assert net.bandwidth_mbps(0, 4)[()] == pytest.approx(88.0)
    assert net.transfer_seconds(870.0, 0, 4)[()] == pytest.approx(870 / (88 / 16) + 0.02)
    # A second slow transfer moves it further down.
    assert net.observe(5, 1, 870.0, 232.02) == pytest.approx(0.7 * 88 + 0.3 * 60)
    # Within a site there is no link to learn about.
    assert net.observe(0, 1, 870.0, 10.0) is None


def test_a_capped_transfer_cannot_lower_the_estimate_but_can_raise_it() -> None:
    net = NetworkMap(two_sites())
    # Held to a 20 Mbit/s tunnel share and reaching it: the link is at least 40, which
    # says nothing new about a link estimated at 100.
    seconds = 870.0 * 8 / 20.0 + 0.02
    assert net.observe(0, 4, 870.0, seconds, cap_mbps=20.0) == pytest.approx(100.0)
    # Held by a 200 Mbit/s cap it reached (the link did 400): the estimate rises.
    seconds = 870.0 * 8 / 200.0 + 0.02
    assert net.observe(0, 4, 870.0, seconds, cap_mbps=200.0) == pytest.approx(0.7 * 100 + 120)
    # Slower than its cap: the link was the bottleneck, so the estimate falls.
    seconds = 870.0 * 8 / 10.0 + 0.02
    assert net.observe(0, 4, 870.0, seconds, cap_mbps=200.0) == pytest.approx(0.7 * 190 + 0.3 * 20)


def test_bad_input_names_the_bad_value() -> None:
    net = NetworkMap(two_sites())
    with pytest.raises(ForethoughtError, match="ram_mb must be finite and >= 0, got -5"):
        net.transfer_seconds(-5.0, 0, [1])
    with pytest.raises(ForethoughtError, match="got nan"):
        net.transfer_cost([1.0, np.nan], 0, [1, 2])
    with pytest.raises(ForethoughtError, match="unknown host index 8"):
        net.bandwidth_mbps(0, [1, 8])
    with pytest.raises(ForethoughtError, match="unknown host index -1"):
        net.latency_ms(-1, 2)
    with pytest.raises(ForethoughtError, match="must be integers"):
        net.bandwidth_mbps(0, [1.5])
    with pytest.raises(ForethoughtError, match="unknown host 'rack-9'"):
        net.index("rack-9")
    with pytest.raises(ForethoughtError, match="unknown site 'moon'"):
        net.mark_down("dc", "moon")
    with pytest.raises(ForethoughtError, match="megabytes must be > 0, got -1"):
        net.observe(0, 4, -1.0, 10.0)
    with pytest.raises(ForethoughtError, match="exceed the link latency"):
        net.observe(0, 4, 870.0, 0.01)
    with pytest.raises(ForethoughtError, match="3 values for 2 candidates"):
        net.rank_targets(870.0, 0, [1, 4], [0.0, 0.0, 0.0])
    with pytest.raises(ForethoughtError, match="alpha"):
        NetworkMap(two_sites(), alpha=0.0)
    with pytest.raises(ForethoughtError, match="host_ids"):
        NetworkMap(two_sites(), host_ids=["a", "b"])


def test_sites_without_a_link_are_unreachable() -> None:
    cluster = two_sites()
    cluster.sites = [Site("dc"), Site("cloud", "public"), Site("edge")]
    cluster.host_site = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    net = NetworkMap(cluster)
    assert np.isinf(net.transfer_seconds(870.0, 0, 6)[()])
    assert np.isinf(net.transfer_cost(870.0, 0, 6)[()])
    assert net.transfer_cost(0.0, 0, 6)[()] == 0.0
    with pytest.raises(ForethoughtError, match="no link between sites 'dc' and 'edge'"):
        net.link_of(0, 6)
