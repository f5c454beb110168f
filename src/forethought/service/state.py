"""What a running control loop shows the outside: Prometheus metrics and recent steps.

The loop's thread records each step here; the HTTP server's thread reads. Everything
mutable sits behind one lock. Metrics live in a registry of their own, so two runs in one
process (or two tests) never share counters.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from forethought import __version__
from forethought.core.errors import ForethoughtError
from forethought.core.numbers import json_safe

INSTALL_SERVICE = "pip install 'forethought[service]'"
#: Steps kept for ``/steps``: a day at the default five-minute interval.
KEPT_STEPS = 288


def prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ForethoughtError(
            f"serving metrics needs prometheus-client: {INSTALL_SERVICE}"
        ) from None
    return prometheus_client


class RunState:
    """The run's description, its metrics, and its last :data:`KEPT_STEPS` step records.

    ``about`` describes the run for ``/status`` (backend, mode, VMs, hosts, settings);
    records are the JSON objects of :meth:`forethought.migration.fleet.FleetLoop.record`.
    """

    def __init__(self, about: Mapping[str, object], keep: int = KEPT_STEPS) -> None:
        if keep < 1:
            raise ForethoughtError("keep at least one step")
        prom = prometheus()
        self._lock = threading.Lock()
        self.about = dict(about)
        self.started = time.time()
        self._records: deque[dict[str, object]] = deque(maxlen=keep)
        self._vms: dict[str, dict[str, object]] = {}
        self.steps_done = 0
        r = self.registry = prom.CollectorRegistry()
        self._steps = prom.Counter("forethought_steps", "Control-loop steps done.", registry=r)
        self._vm_count = prom.Gauge(
            "forethought_vms",
            "VMs on the connected hosts, by whether this run manages them.",
            ["managed"],
            registry=r,
        )
        self._hosts = prom.Gauge(
            "forethought_active_hosts", "Hosts running at least one managed VM.", registry=r
        )
        self._demand = prom.Gauge(
            "forethought_cpu_demand_mips", "CPU demand of the managed VMs (MIPS).", registry=r
        )
        self._resizes = prom.Counter(
            "forethought_resizes",
            "Resizes decided, by resource and outcome (live, restart: written to the "
            "configuration for the next restart, not_applied: refused or a dry run).",
            ["resource", "outcome"],
            registry=r,
        )
        self._planned = prom.Counter(
            "forethought_migrations_planned",
            "Moves the planner made, by kind (relief, consolidation, oversized).",
            ["kind"],
            registry=r,
        )
        self._proposed = prom.Counter(
            "forethought_migrations_proposed",
            "Moves handed to the orchestrator, by its decision (started, refused).",
            ["decision"],
            registry=r,
        )
        self._settled = prom.Counter(
            "forethought_migrations_settled",
            "Migrations that ended, by how (completed, rolled_back, failed, rejected).",
            ["state"],
            registry=r,
        )
        self._anomalies = prom.Counter(
            "forethought_anomalies",
            "Anomalies the allocation manager acted on, by resource and the policy's reaction "
            "(alert, scale_up, isolate).",
            ["resource", "action"],
            registry=r,
        )
        self._duration = prom.Histogram(
            "forethought_step_duration_seconds",
            "Time one step took: telemetry, forecasts, decisions and actions.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=r,
        )
        self._failures = prom.Counter(
            "forethought_step_failures",
            "Steps the backend failed (a hypervisor out of reach); each is tried again.",
            registry=r,
        )
        self._failing = prom.Gauge(
            "forethought_step_failures_in_a_row",
            "Steps failed since the last one that succeeded (0: healthy).",
            registry=r,
        )
        self.failures_in_a_row = 0
        self.last_failure = ""
        self._last = prom.Gauge(
            "forethought_last_step_timestamp_seconds",
            "When the last step ended (Unix time).",
            registry=r,
        )
        dry = prom.Gauge(
            "forethought_dry_run", "1 while the run changes nothing (no --apply).", registry=r
        )
        dry.set(1.0 if self.about.get("dry_run") else 0.0)
        prom.Info("forethought", "The running forethought.", registry=r).info(
            {"version": __version__, "backend": str(self.about.get("backend", ""))}
        )

    def observe(
        self,
        record: Mapping[str, Any],
        seconds: float,
        vms: list[dict[str, object]] | None = None,
    ) -> None:
        """Count one step's record, which took ``seconds``; ``vms`` is every managed VM as
        the step left it (:meth:`~forethought.migration.fleet.FleetLoop.vms`)."""
        with self._lock:
            self._records.append(dict(record))
            if vms is not None:
                self._vms = {str(v["vm"]): v for v in vms}
            self.steps_done += 1
            self._steps.inc()
            self.failures_in_a_row = 0
            self._failing.set(0)
            managed = len(self.about.get("vms", []))  # type: ignore[arg-type]
            self._vm_count.labels("true").set(managed)
            self._vm_count.labels("false").set(len(record["unmanaged"]))
            self._hosts.set(record["active_hosts"])
            self._demand.set(record["demand_mips"])
            for r in record["resizes"]:
                outcome = "not_applied" if not r["applied"] else "live" if r["live"] else "restart"
                self._resizes.labels(r["resource"], outcome).inc()
            for m in record["planned"]:
                self._planned.labels(m["kind"]).inc()
            for p in record["proposed"]:
                self._proposed.labels("started" if p["accepted"] else "refused").inc()
            for o in record["settled"]:
                self._settled.labels(o["state"]).inc()
            for a in record.get("anomalies", []):
                self._anomalies.labels(a["resource"], a["action"]).inc()
            self._duration.observe(seconds)
            self._last.set(time.time())

    def failed(self, message: str) -> None:
        """Count a step the backend failed, with why."""
        with self._lock:
            self.failures_in_a_row += 1
            self.last_failure = message
            self._failures.inc()
            self._failing.set(self.failures_in_a_row)

    def health(self) -> dict[str, object]:
        """``ok``, or ``degraded`` while the backend fails steps (with the last failure)."""
        with self._lock:
            health: dict[str, object] = {
                "status": "degraded" if self.failures_in_a_row else "ok",
                "steps": self.steps_done,
            }
            if self.failures_in_a_row:
                health["failures_in_a_row"] = self.failures_in_a_row
                health["last_failure"] = self.last_failure
            return health

    def metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition and its content type."""
        prom = prometheus()
        with self._lock:
            return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST

    def status(self) -> object:
        """The run's description, its steps so far and the last step's record."""
        with self._lock:
            return json_safe(
                {
                    **self.about,
                    "version": __version__,
                    "started": self.started,
                    "steps": self.steps_done,
                    "failures_in_a_row": self.failures_in_a_row,
                    "last_failure": self.last_failure or None,
                    "last_step": self._records[-1] if self._records else None,
                }
            )

    def vms(self) -> object:
        """Every managed VM as the last step left it (empty before the first step)."""
        with self._lock:
            return json_safe({"steps": self.steps_done, "vms": list(self._vms.values())})

    def vm(self, name: str) -> object | None:
        """One VM as the last step left it; None if the run does not manage it."""
        with self._lock:
            found = self._vms.get(name)
            return None if found is None else json_safe(found)

    def steps(self, since: int = 0, limit: int = KEPT_STEPS) -> object:
        """The kept records from step ``since`` on, at most ``limit`` of them, oldest first."""
        with self._lock:
            kept = list(self._records)
        chosen = [rec for rec in kept if int(rec["step"]) >= since][:limit]  # type: ignore[call-overload]
        return json_safe({"oldest_kept": kept[0]["step"] if kept else None, "steps": chosen})
