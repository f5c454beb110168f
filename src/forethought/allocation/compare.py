"""Rightsize one trace with forethought and baselines side by side, on the same data.

Researchers compare recommenders by their trade-off between slack and shortage, so the
comparison keeps every recommender's figures per resource and says which recommenders
another one dominates: strictly less slack *and* strictly fewer under-provisioned
intervals. A recommender may trade one for the other; being dominated means another
recommender is better on both at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from forethought.allocation.baselines import BASELINES
from forethought.allocation.policy import Policy, VmInfo
from forethought.allocation.replay import RightsizeScores
from forethought.allocation.runner import resources_of, rightsize, sized_series
from forethought.core.errors import ForethoughtError
from forethought.core.resources import BANDWIDTHS, Resource
from forethought.forecast.base import FloatArray
from forethought.telemetry.select import hourly_level_spread, top_rows
from forethought.telemetry.series import Telemetry


@dataclass(frozen=True)
class Comparison:
    """Every recommender's figures per resource, and the demand of the watched VMs."""

    #: resource -> recommender -> figures, recommenders in the order they ran.
    scores: dict[str, dict[str, RightsizeScores]]
    #: Indices of the VMs whose allocations were kept step by step, and their names.
    watched: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    watched_names: tuple[str, ...] = ()
    #: resource -> demand of the watched VMs (vms, steps), NaN where not observed.
    demand: dict[str, FloatArray] = field(default_factory=dict)
    step_seconds: int = 300

    def dominated_by(self, resource: str) -> dict[str, list[str]]:
        return dominated_by(self.scores[resource])

    def to_dict(self) -> dict[str, dict[str, dict[str, object]]]:
        """resource -> recommender -> figures and ``dominated_by`` (what ``--json`` prints)."""
        out: dict[str, dict[str, dict[str, object]]] = {}
        for resource, runs in self.scores.items():
            beaten = dominated_by(runs)
            out[resource] = {
                name: {**s.to_dict(), "dominated_by": beaten[name]} for name, s in runs.items()
            }
        return out


def dominated_by(runs: Mapping[str, RightsizeScores]) -> dict[str, list[str]]:
    """For each recommender, the others with both less slack and fewer short intervals."""
    return {
        name: [
            other
            for other, o in runs.items()
            if other != name
            and o.slack < s.slack
            and o.under_provisioned_share < s.under_provisioned_share
        ]
        for name, s in runs.items()
    }


def parse_versus(text: str) -> list[str]:
    """Baseline names from ``vpa,autopilot-ml`` or ``all``; unknown names are an error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(BASELINES)
    if "all" in names:
        raise ForethoughtError("--versus: all means every baseline; give it alone, or names")
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        known = ", ".join(BASELINES)
        raise ForethoughtError(
            f"--versus: unknown baseline(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {known}, or all"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ForethoughtError(f"--versus names {', '.join(repeated)} twice")
    return names


def most_varied(telemetry: Telemetry, resource_names: Sequence[str], count: int) -> np.ndarray:
    """The ``count`` VMs whose hourly demand level moves most (summed over resources).

    See :func:`~forethought.telemetry.select.hourly_level_spread`; each resource's spread
    is scaled by its largest, so resources in different units count alike. Ties keep the
    trace's order.
    """
    if count <= 0:
        return np.zeros(0, dtype=np.intp)
    score = np.zeros(telemetry.n_vms)
    for name in resource_names:
        values, mask, _ = sized_series(telemetry, Resource(name))
        level = hourly_level_spread(values, mask, telemetry.step_seconds)
        score += level / max(float(level.max()), 1e-12)
    return top_rows(score, count)


@dataclass(frozen=True)
class Contender:
    """One recommender of a comparison: forethought under a policy, or a named baseline."""

    label: str
    policy: Policy | None = None
    baseline: str | None = None


def contenders(
    baselines: Sequence[str],
    policy: Policy | None = None,
    policy_label: str = "forethought",
) -> list[Contender]:
    """forethought (under ``policy``, or the default one) first, then each baseline."""
    return [Contender(policy_label, policy=policy), *(Contender(b, baseline=b) for b in baselines)]


def compare_rightsizing(
    telemetry: Telemetry,
    runs: Sequence[Contender],
    *,
    resources: list[str] | None = None,
    resize_delay: int = 0,
    warmup: int | None = None,
    cross_resource: bool = True,
    watch: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    vms: list[VmInfo] | None = None,
) -> Comparison:
    """Replay every contender on the same demand, in order, keeping ``watch`` VMs' allocations.

    Baselines and resources are checked before anything runs: a baseline cannot size a
    bandwidth (the trace gives no provisioned size for it).
    """
    chosen = [r.value for r in resources_of(telemetry, resources)]
    if not chosen:
        raise ForethoughtError(f"{telemetry.source}: no cpu or memory series to rightsize")
    if not runs:
        raise ForethoughtError("nothing to compare: no recommender given")
    unknown = [c.baseline for c in runs if c.baseline is not None and c.baseline not in BASELINES]
    if unknown:
        raise ForethoughtError(
            f"unknown baseline(s): {', '.join(map(str, unknown))}; "
            f"known baselines: {', '.join(BASELINES)}"
        )
    bandwidths = [r for r in chosen if Resource(r) in BANDWIDTHS]
    if bandwidths and any(c.baseline is not None for c in runs):
        raise ForethoughtError(
            "the baselines size against each VM's provisioned size, which the trace does "
            f"not give for {', '.join(bandwidths)}; compare on cpu and memory"
        )
    watched = most_varied(telemetry, chosen, watch)
    scores: dict[str, dict[str, RightsizeScores]] = {r: {} for r in chosen}
    for run in runs:
        report = None if progress is None else _labelled(progress, run.label)
        result = rightsize(
            telemetry,
            policy=run.policy,
            baseline=run.baseline,
            resources=chosen,
            resize_delay=resize_delay,
            warmup=warmup,
            cross_resource=cross_resource,
            progress=report,
            watch=watched if watched.size else None,
            vms=vms,
        )
        for resource, s in result.items():
            scores[resource][run.label] = s
    demand = {}
    for name in chosen:
        values, mask, _ = sized_series(telemetry, Resource(name))
        demand[name] = np.where(mask[watched], values[watched], np.nan)
    return Comparison(
        scores=scores,
        watched=watched,
        watched_names=tuple(telemetry.vm_ids[i] for i in watched.tolist()),
        demand=demand,
        step_seconds=telemetry.step_seconds,
    )


def _labelled(
    progress: Callable[[str, int, int], None], label: str
) -> Callable[[str, int, int], None]:
    return lambda what, done, total: progress(f"{label} {what}", done, total)
