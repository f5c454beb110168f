"""The REST API of a running control loop: health, status, recent steps, metrics."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and they name types imported inside create_app.
from typing import Any

from forethought import __version__
from forethought.core.errors import ForethoughtError
from forethought.service.state import INSTALL_SERVICE, KEPT_STEPS, RunState


def create_app(state: RunState) -> Any:
    """A FastAPI application serving ``state`` (read-only: nothing here changes the run)."""
    try:
        from fastapi import FastAPI, HTTPException, Query, Response
    except ImportError:
        raise ForethoughtError(f"the REST API needs FastAPI: {INSTALL_SERVICE}") from None

    app = FastAPI(
        title="forethought",
        version=__version__,
        description="A running forethought control loop: what it manages and what it did.",
    )

    @app.get(
        "/healthz",
        summary="Liveness: the service answers; degraded while the backend fails steps",
    )
    def healthz() -> dict[str, object]:
        return state.health()

    @app.get("/status", summary="The run: backend, mode, VMs and hosts, the last step")
    def status() -> Any:
        return state.status()

    @app.get("/vms", summary="Every managed VM: group, host, CPU demand, allocations")
    def vms() -> Any:
        return state.vms()

    @app.get("/vms/{name}", summary="One managed VM as the last step left it")
    def vm(name: str) -> Any:
        found = state.vm(name)
        if found is None:
            raise HTTPException(404, f"no managed VM {name!r}")
        return found

    @app.get("/steps", summary="Recent steps, oldest first (the last day's are kept)")
    def steps(
        since: int = Query(0, ge=0, description="First step to return."),
        limit: int = Query(KEPT_STEPS, ge=1, le=KEPT_STEPS, description="At most this many steps."),
    ) -> Any:
        return state.steps(since, limit)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        body, content_type = state.metrics()
        return Response(body, media_type=content_type)

    return app
