"""The daemon's HTTP API: one FastAPI app (OpenAPI at `/docs`) on the daemon's event loop.

Flow: uvicorn (`server.HttpServer`) -> this app -> routers: `inject` (`POST /api/inject/{id}`),
`control` (reconcile, plan, events, overrides, health, metrics, demo), `stations` (the controller
API of the source documents). `GET /` is left free for the dashboard, which is built on this API
alone. Every mutating route requires credentials (`auth.Guard.writer`); reads require them too
unless the daemon runs with `--open-reads`. Errors are `{"detail": ...}`, never a traceback
(`errors.py`). Each request's latency is recorded per route in the daemon's metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response

from reconciler import clock
from reconciler.api import control, dashboard, observed, stations
from reconciler.api.auth import Guard
from reconciler.api.errors import install_error_handlers
from reconciler.api.inject import inject_router
from reconciler.transport.gateway import Gateway

if TYPE_CHECKING:
    from reconciler.daemon.service import Daemon

DESCRIPTION = """The REST API of `reconciler watch`: the fleet's state, overrides (imperative changes made
visible in a GitOps tool), the raw inject endpoint, events and metrics. Mutating endpoints need HTTP
basic auth or a bearer token."""


def create_app(daemon: Daemon) -> FastAPI:
    guard = Guard(daemon.settings.credentials, open_reads=daemon.settings.open_reads)
    app = FastAPI(title="reconciler", version="1", description=DESCRIPTION, docs_url="/docs", redoc_url=None)
    install_error_handlers(app)
    app.include_router(inject_router(lambda: _gateway(daemon), guard))
    app.include_router(control.router(daemon, guard))
    app.include_router(stations.router(daemon, guard))
    app.include_router(observed.router(daemon, guard))  # schedules with drift, connectors (the dashboard's data)
    app.include_router(dashboard.router(daemon))  # GET / and its files, built on this API alone
    latency = daemon.metrics.api_latency

    @app.middleware("http")
    async def timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = clock.monotonic()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        latency.labels(request.method, path).observe(clock.monotonic() - started)
        return response

    return app


def _gateway(daemon: Daemon) -> Gateway:
    if daemon.gateway is None:
        raise RuntimeError("the daemon has no gateway yet")
    return daemon.gateway
