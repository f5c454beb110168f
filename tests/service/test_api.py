"""The REST API and Prometheus metrics of a running control loop."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed (forethought[service])")
pytest.importorskip("prometheus_client", reason="forethought[service] is not installed")

from prometheus_client.parser import text_string_to_metric_families

from forethought.cluster.model import CLOUDSIM_VM_TYPES, G5, Cluster
from forethought.cluster.simulated import SimulatedBackend
from forethought.core.errors import ForethoughtError
from forethought.core.resources import Resource
from forethought.migration.fleet import FleetLoop, FleetSettings
from forethought.service.api import create_app
from forethought.service.server import parse_address, serve_in_background
from forethought.service.state import RunState

STEPS = 30


def fleet(tmp_path: Path, dry_run: bool = False) -> tuple[FleetLoop, SimulatedBackend]:
    """Eight VMs on four hosts; the four on host 0 turn busy at step 15."""
    cluster = Cluster(
        [G5], [CLOUDSIM_VM_TYPES[0]], np.zeros(4, dtype=np.int64), np.zeros(8, dtype=np.int64)
    )
    u = np.full((8, STEPS + 5), 0.2)
    u[:4, 15:] = 0.9
    backend = SimulatedBackend(cluster, u, np.array([0, 0, 0, 0, 1, 2, 3, 3]))
    settings = FleetSettings(sized=(Resource.CPU,), dry_run=dry_run)
    return FleetLoop(backend, settings, tmp_path / "log.jsonl"), backend


def run_into(
    state: RunState, loop: FleetLoop, backend: SimulatedBackend, steps: int
) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []

    def on_step(k: int, step: object) -> None:
        record = loop.record(k, step)  # type: ignore[arg-type]
        records.append(record)
        state.observe(record, 0.02, loop.vms())
        backend.advance(300.0)

    loop.run(steps, on_step, clock=lambda: 0.0, sleep=lambda s: None)
    return records


@dataclass
class Reply:
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    """The API over real HTTP, as Prometheus and scripts reach it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, params: dict[str, object] | None = None) -> Reply:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url}{path}{query}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return Reply(reply.status, reply.headers["content-type"], reply.read().decode())
        except urllib.error.HTTPError as refused:
            body = refused.read().decode()
            return Reply(refused.code, refused.headers["content-type"], body)

    def get(self, path: str, params: dict[str, object] | None = None) -> Reply:
        return self.request("GET", path, params)

    def post(self, path: str) -> Reply:
        return self.request("POST", path)


@contextmanager
def served(state: RunState) -> Iterator[Client]:
    serving = serve_in_background(create_app(state), "127.0.0.1", 0)
    try:
        yield Client(serving.url)
    finally:
        serving.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_the_steps_did(tmp_path: Path) -> None:
    loop, backend = fleet(tmp_path)
    state = RunState(loop.describe())
    records = run_into(state, loop, backend, STEPS)
    with served(state) as client:
        response = client.get("/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain")
    got = samples(response.text)
    assert got[("forethought_steps_total", ())] == STEPS
    assert got[("forethought_dry_run", ())] == 0.0
    assert got[("forethought_vms", (("managed", "true"),))] == 8
    live = sum(r["applied"] and r["live"] for rec in records for r in rec["resizes"])  # type: ignore[attr-defined]
    assert live > 0
    assert got[("forethought_resizes_total", (("outcome", "live"), ("resource", "cpu")))] == live
    started = sum(p["accepted"] for rec in records for p in rec["proposed"])  # type: ignore[attr-defined]
    assert started > 0
    assert got[("forethought_migrations_proposed_total", (("decision", "started"),))] == started
    completed = sum(o["state"] == "completed" for rec in records for o in rec["settled"])  # type: ignore[attr-defined]
    assert got[("forethought_migrations_settled_total", (("state", "completed"),))] == completed
    assert got[("forethought_step_duration_seconds_count", ())] == STEPS
    assert got[("forethought_step_duration_seconds_sum", ())] == pytest.approx(0.02 * STEPS)
    assert got[("forethought_info", (("backend", "simulator"), ("version", "0.1.0")))] == 1.0


def test_status_and_steps_describe_the_run(tmp_path: Path) -> None:
    loop, backend = fleet(tmp_path, dry_run=True)
    state = RunState(loop.describe(), keep=10)
    with served(state) as client:
        check_status_and_steps(client, state, loop, backend)


def check_status_and_steps(
    client: Client, state: RunState, loop: FleetLoop, backend: SimulatedBackend
) -> None:
    before = client.get("/status").json()
    assert before["steps"] == 0
    assert before["last_step"] is None
    assert before["dry_run"] is True
    assert before["simulated"] is True
    assert [v["vm"] for v in before["vms"]] == [f"vm-{i}" for i in range(8)]
    assert [h["host"] for h in before["hosts"]] == [f"host-{i}" for i in range(4)]
    records = run_into(state, loop, backend, 25)
    status = client.get("/status").json()
    assert status["steps"] == 25
    assert status["last_step"] == json.loads(json.dumps(records[-1]))
    kept = client.get("/steps").json()
    assert kept["oldest_kept"] == 15  # the last ten are kept
    assert [s["step"] for s in kept["steps"]] == list(range(15, 25))
    some = client.get("/steps", params={"since": 20, "limit": 2}).json()
    assert [s["step"] for s in some["steps"]] == [20, 21]
    assert client.get("/healthz").json() == {"status": "ok", "steps": 25}
    assert samples(client.get("/metrics").text)[("forethought_dry_run", ())] == 1.0


@pytest.mark.parametrize(
    "query", [{"since": -1}, {"limit": 0}, {"limit": 100_000}, {"since": "soon"}]
)
def test_bad_queries_are_refused_with_the_field(tmp_path: Path, query: dict[str, object]) -> None:
    loop, _ = fleet(tmp_path)
    with served(RunState(loop.describe())) as client:
        response = client.get("/steps", params=query)
    assert response.status == 422
    [field] = query
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_no_path_changes_the_run(tmp_path: Path) -> None:
    loop, _ = fleet(tmp_path)
    with served(RunState(loop.describe())) as client:
        for path in ("/status", "/steps", "/metrics"):
            assert client.post(path).status == 405
        assert client.get("/nowhere").status == 404
        assert client.get("/openapi.json").json()["info"]["title"] == "forethought"


def test_anomalies_are_counted_by_resource_and_reaction(tmp_path: Path) -> None:
    loop, _ = fleet(tmp_path)
    state = RunState(loop.describe())
    anomaly = {"vm": "vm-1", "resource": "cpu", "action": "alert", "kind": "series"}
    record = {
        "step": 0, "time": 0.0, "demand_mips": 1.0, "active_hosts": 1, "resizes": [],
        "planned": [], "proposed": [], "settled": [], "unmanaged": [],
        "anomalies": [anomaly, anomaly, {**anomaly, "action": "isolate"}],
    }  # fmt: skip
    state.observe(record, 0.01)
    with served(state) as client:
        got = samples(client.get("/metrics").text)
    assert got[("forethought_anomalies_total", (("action", "alert"), ("resource", "cpu")))] == 2
    assert got[("forethought_anomalies_total", (("action", "isolate"), ("resource", "cpu")))] == 1


def test_nan_figures_are_json_nulls(tmp_path: Path) -> None:
    loop, _ = fleet(tmp_path)
    state = RunState(loop.describe())
    record = {
        "step": 0, "time": 0.0, "demand_mips": float("nan"), "active_hosts": 1,
        "resizes": [], "planned": [], "proposed": [], "settled": [], "unmanaged": [],
    }  # fmt: skip
    state.observe(record, 0.01)
    with served(state) as client:
        body = client.get("/status").json()
    assert body["last_step"]["demand_mips"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9187", ("127.0.0.1", 9187)),
        (":9187", ("127.0.0.1", 9187)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:0", ("::1", 0)),
    ],
)
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:port", ":", "70000", "-1"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ForethoughtError, match=r"HOST:PORT|port must be"):
        parse_address(text)


def test_a_real_server_answers_and_a_busy_port_is_refused(tmp_path: Path) -> None:
    loop, _ = fleet(tmp_path)
    serving = serve_in_background(create_app(RunState(loop.describe())), "127.0.0.1", 0)
    try:
        assert serving.port > 0
        with urllib.request.urlopen(f"{serving.url}/healthz", timeout=5) as reply:
            assert json.load(reply) == {"status": "ok", "steps": 0}
        with pytest.raises(ForethoughtError, match=f"cannot serve on 127.0.0.1:{serving.port}"):
            serve_in_background(create_app(RunState(loop.describe())), "127.0.0.1", serving.port)
    finally:
        serving.stop()
    # Stopped: the port is free again, for the next run.
    again = serve_in_background(create_app(RunState(loop.describe())), "127.0.0.1", serving.port)
    again.stop()


def test_vms_show_each_vm_as_the_last_step_left_it(tmp_path: Path) -> None:
    loop, backend = fleet(tmp_path)
    state = RunState(loop.describe())
    with served(state) as client:
        assert client.get("/vms").json() == {"steps": 0, "vms": []}
        run_into(state, loop, backend, 20)
        vms = client.get("/vms").json()
        one = client.get("/vms/vm-3").json()
        missing = client.get("/vms/vm-99")
    assert vms["steps"] == 20
    assert [v["vm"] for v in vms["vms"]] == [f"vm-{i}" for i in range(8)]
    assert {v["group"] for v in vms["vms"]} == {"all"}
    # The loop's CPU allocation is what the simulator enforces (every resize was applied).
    for v in vms["vms"]:
        row = int(v["vm"].removeprefix("vm-"))
        assert v["allocation"]["cpu"] == pytest.approx(backend.cpu_alloc[row])
        assert v["host"] in {f"host-{h}" for h in range(4)}
    assert one == vms["vms"][3]
    assert one["cpu_demand_mips"] == pytest.approx(0.9 * 2500.0)  # busy since step 15
    assert missing.status == 404
    assert "no managed VM 'vm-99'" in missing.text


def test_failed_steps_show_in_health_status_and_metrics(tmp_path: Path) -> None:
    loop, backend = fleet(tmp_path)
    state = RunState(loop.describe())
    with served(state) as client:
        run_into(state, loop, backend, 2)
        state.failed("cannot reach the hypervisor at qemu:///system: timed out")
        state.failed("cannot reach the hypervisor at qemu:///system: timed out")
        health = client.get("/healthz").json()
        assert health == {
            "status": "degraded", "steps": 2, "failures_in_a_row": 2,
            "last_failure": "cannot reach the hypervisor at qemu:///system: timed out",
        }  # fmt: skip
        assert client.get("/status").json()["failures_in_a_row"] == 2
        got = samples(client.get("/metrics").text)
        assert got[("forethought_step_failures_total", ())] == 2.0
        assert got[("forethought_step_failures_in_a_row", ())] == 2.0
        run_into(state, loop, backend, 1)  # the backend is back
        assert client.get("/healthz").json() == {"status": "ok", "steps": 3}
        assert (
            samples(client.get("/metrics").text)[("forethought_step_failures_in_a_row", ())] == 0.0
        )
