"""Learned headroom: a policy's short_target, held per VM by feedback on its shortfalls."""

from __future__ import annotations

import numpy as np
import pytest

from forethought.allocation.manager import (
    LEARNED_HEADROOM_MAX,
    LEARNED_HEADROOM_STEP,
    PredictiveRecommender,
    Settings,
)
from forethought.allocation.policy import DEFAULT_POLICY_YAML, VmInfo, parse_policy
from forethought.allocation.replay import replay
from forethought.core.errors import PolicyError
from forethought.core.resources import Resource

STEP = 300


def recommender(cpu: str, n: int = 3) -> PredictiveRecommender:
    policy = parse_policy(
        f"version: 1\ndefaults:\n  cpu: {cpu}\ngroups:\n  - name: all\n    match: {{name: '*'}}\n"
    )
    groups = policy.assign([VmInfo(f"vm-{i}") for i in range(n)])
    return PredictiveRecommender(Settings.from_policy(policy, groups, Resource.CPU, STEP))


def test_a_shortfall_raises_the_headroom_and_quiet_intervals_ease_it() -> None:
    rec = recommender("{short_target: 0.01}")
    rec.reset(3, np.full(3, 100.0), STEP)
    rec.alloc[:] = [20.0, 20.0, 100.0]  # VM 2 sits at its size: more could not help it
    rec.shortfall(np.array([True, False, True]))
    step_up = LEARNED_HEADROOM_STEP * (1 - 0.01)
    np.testing.assert_allclose(rec.learned, [step_up, 0.0, 0.0])
    for _ in range(10):
        rec.shortfall(np.zeros(3, dtype=bool))
    np.testing.assert_allclose(rec.learned, [step_up - 10 * LEARNED_HEADROOM_STEP * 0.01, 0, 0])
    for _ in range(500):  # never below zero: a VM that is never short keeps its policy
        rec.shortfall(np.zeros(3, dtype=bool))
    assert (rec.learned == 0.0).all()
    for _ in range(100):  # and never above the ceiling, however often it is short
        rec.shortfall(np.array([True, False, False]))
    assert rec.learned[0] == pytest.approx(LEARNED_HEADROOM_MAX)


def test_without_a_short_target_nothing_is_learned() -> None:
    rec = recommender("{headroom: 0.1}")
    rec.reset(3, np.full(3, 100.0), STEP)
    rec.alloc[:] = 20.0
    for _ in range(5):
        rec.shortfall(np.ones(3, dtype=bool))
    assert (rec.learned == 0.0).all()


def test_the_learned_headroom_sizes_the_allocation() -> None:
    usage = np.full((3, 80), 20.0) + np.random.default_rng(0).normal(0, 0.5, (3, 80))
    plain = recommender("{headroom: 0.1}")
    learning = recommender("{headroom: 0.1, short_target: 0.01}")
    for rec in (plain, learning):
        rec.reset(3, np.full(3, 100.0), STEP)
        for t in range(80):
            rec.observe(usage[:, t], np.ones(3, dtype=bool))
            rec.shortfall(np.zeros(3, dtype=bool))
            rec.recommend()
    learning.learned[:] = 0.5
    fresh = learning.recommend()
    # Half the demand again on top of the policy's 10 %: the next increase goes there.
    assert (fresh >= plain.alloc).all()
    assert learning.learned.tolist() == [0.5] * 3


def bursty(n: int, steps: int, seed: int = 3) -> np.ndarray:
    """CPU percent with calm spells and bursts that outgrow a day's residuals."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10, 30, (n, 1))
    loud = (np.arange(steps) // 150) % 3 == 2
    noise = np.where(loud, 4.0, 1.0) * rng.standard_normal((n, steps)) * level / 10
    return np.clip(level + noise, 0, 100)


def test_feedback_holds_the_short_target_where_the_forecast_under_covers() -> None:
    values = bursty(60, 1600)
    observed = np.ones(values.shape, dtype=bool)
    shares = {}
    for name, cpu in (
        ("plain", "{quantile: 0.9, headroom: 0.0}"),
        ("learning", "{quantile: 0.9, headroom: 0.0, short_target: 0.01}"),
    ):
        rec = recommender(cpu, n=60)
        scores = replay(
            values, observed, rec, np.full(60, 100.0), step_seconds=STEP, resource="cpu"
        )
        shares[name] = scores.under_provisioned_share
    assert shares["plain"] > 0.02  # the p90 alone is short well above 1 % of the time
    # The target, within what a finite run of 1,300 scored steps can hold it to.
    assert shares["learning"] <= 0.0125
    assert shares["learning"] < shares["plain"] / 2


@pytest.mark.parametrize("value", ["0", "1", "-0.1", "1.5", "often"])
def test_a_bad_short_target_is_refused_with_its_field(value: str) -> None:
    with pytest.raises(PolicyError, match="short_target"):
        parse_policy(
            f"version: 1\ndefaults:\n  cpu: {{short_target: {value}}}\n"
            "groups:\n  - {name: all, match: {name: '*'}}\n"
        )


def test_the_default_policy_learns_toward_one_percent_and_says_so() -> None:
    policy = parse_policy(DEFAULT_POLICY_YAML, "default")
    group = policy.groups[0]
    for resource in (Resource.CPU, Resource.MEMORY):
        assert policy.settings(group, resource).short_target == 0.01
    assert "short in at most 1.0% of intervals" in policy.explain()
