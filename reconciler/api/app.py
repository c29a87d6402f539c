"""The daemon's HTTP API: one FastAPI app (OpenAPI at `/docs`) on the daemon's event loop.

Flow: uvicorn (`server.HttpServer`) -> this app -> routers: `inject` (`POST /api/inject/{id}`),
`control` (reconcile, plan, events, overrides, health, metrics, demo), `stations` (the controller
API of the source documents). `GET /` is left free for the dashboard, which is built on this API
alone. Every mutating route requires credentials (`auth.Guard.writer`); reads require them too
unless the daemon runs with `--open-reads`. Errors are `{"detail": ...}`, never a traceback
(`errors.py`). Each request's latency is recorded per route in the daemon's metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

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
    install_error_handlers(app, guard)
    app.include_router(inject_router(lambda: _gateway(daemon), guard))
    app.include_router(control.router(daemon, guard))
    app.include_router(stations.router(daemon, guard))
    app.include_router(observed.router(daemon, guard))  # schedules with drift, connectors (the dashboard's data)
    app.include_router(dashboard.router(daemon))  # GET / and its files, built on this API alone
    app.add_middleware(Timed, histogram=daemon.metrics.api_latency)
    return app


class Timed:
    """Pure ASGI middleware: each HTTP request's latency, labelled by method and route template."""

    def __init__(self, app: Any, histogram: Any) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = clock.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.histogram.labels(scope.get("method", "?"), route).observe(clock.monotonic() - started)


def _gateway(daemon: Daemon) -> Gateway:
    if daemon.gateway is None:
        raise RuntimeError("the daemon has no gateway yet")
    return daemon.gateway
