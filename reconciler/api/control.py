"""Fleet-wide routes: reconcile now, the plan, events (and their live stream), overrides, health,
metrics, and the demo's simulated stations.

Flow: HTTP -> these routes (auth by `Guard`) -> the daemon (queue, engine, store, metrics) -> JSON
(or Prometheus text, or server-sent events).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from reconciler.api.auth import Guard
from reconciler.api.errors import not_found
from reconciler.api.stations import caller
from reconciler.api.views import events, limit_in_force, parse_selector
from reconciler.cli.render import outcomes_json
from reconciler.daemon.operations import OperationError, Operations
from reconciler.daemon.power import drawn_w
from reconciler.daemon.service import Daemon


class ReconcileRequest(BaseModel):
    station_id: str | None = Field(None, description="one station")
    selector: str | None = Field(None, description="labels KEY=VALUE[,KEY=VALUE]")
    wait: float = Field(30.0, ge=0, le=300, description="seconds to wait for the outcomes (0: just queue)")


class ScaleRequest(BaseModel):
    target_count: int = Field(ge=0, le=10_000)


def router(daemon: Daemon, guard: Guard) -> APIRouter:
    ops = Operations(daemon)
    api = APIRouter()
    read, write = [Depends(guard.reader)], [Depends(guard.writer)]

    def selected(station_id: str | None, selector: str | None) -> list[str]:
        if station_id is not None:
            if station_id not in daemon.policies.stations:
                raise not_found(station_id)
            return [station_id]
        try:
            labels = parse_selector(selector)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return daemon.policies.select((), labels)

    @api.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> dict[str, Any]:
        """The process is alive, and is a reconciler daemon (`service`). To a caller with the API's
        credentials it also names its state file (`state_file`) and how it reaches its chargers
        (`chargers`: `--listen HOST:PORT` or `--via URL`): once it is stopped, `reconciler plan
        <chargers> --db FILE` plans with the daemon's ledger (the CLI's own state does not know what
        the daemon installed); while it runs, `reconciler plan --via <its URL>` reaches its chargers."""
        body: dict[str, Any] = {"status": "ok", "service": "reconciler"}
        if guard.credentials.check(request.headers.get("authorization")):
            body["state_file"] = str(daemon.settings.db.resolve())
            body["chargers"] = daemon.charger_flags
        return body

    @api.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """Ready: policies loaded, transport and API up (503 otherwise)."""
        ready = daemon.ready
        body = {
            "status": "ready" if ready else "starting",
            "revision": daemon.policies.revision,
            "stations": len(daemon.policies.stations),
            "policy_errors": len(daemon.policy_errors),
            "pull_error": daemon.pull_error,
        }
        return Response(json.dumps(body), 200 if ready else 503, media_type="application/json")

    @api.get("/metrics", dependencies=read, tags=["metrics"])
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(daemon.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @api.get("/stations/metrics", dependencies=read, tags=["metrics"])
    async def station_metrics() -> dict[str, Any]:
        """The metrics as JSON, plus power drawn against the limit in force, per station and in all."""
        conditions = daemon.conditions()
        per = []
        for name in sorted(daemon.policies.stations):
            info = getattr(daemon.gateway, "station", lambda _s: None)(name)
            limit = limit_in_force(daemon, name)["value_w"]
            power = drawn_w(info.meter_values) if info is not None else None
            condition = conditions.get(name)
            per.append(
                {
                    "id": name,
                    "power_w": power,
                    "limit_w": limit,
                    "condition": condition.status.value if condition else None,
                }
            )
        drawn = sum(p["power_w"] or 0.0 for p in per)
        limits = [p["limit_w"] for p in per if p["limit_w"] is not None]
        return {
            "metrics": daemon.metrics.snapshot(),
            "power_drawn_w": drawn,
            "limit_w": sum(limits) if limits else None,
            "stations": per,
        }

    @api.post("/reconcile", dependencies=write, tags=["fleet"])
    async def reconcile(body: ReconcileRequest | None = None) -> dict[str, Any]:
        """Reconcile all stations, those a selector picks, or one, now; waits up to `wait` s for outcomes."""
        body = body or ReconcileRequest(station_id=None, selector=None, wait=30.0)
        ids = selected(body.station_id, body.selector)
        outcomes = await ops.reconcile(ids, "API request", wait=body.wait)
        return {
            "status": "success",
            "queued": ids,
            "outcomes": {s: {"condition": o.status.value, "reason": o.reason} for s, o in outcomes.items()},
        }

    @api.get("/plan", dependencies=read, tags=["fleet"])
    async def plan(
        station_id: Annotated[str | None, Query()] = None, selector: Annotated[str | None, Query()] = None
    ) -> dict[str, Any]:
        """What would change, per station (the plan JSON of `reconciler plan --json`); reads only."""
        ids = selected(station_id, selector)
        assert daemon.engine is not None and daemon.gateway is not None
        outcomes = await daemon.engine.plan([s for s in ids if daemon.gateway.is_connected(s)])
        return outcomes_json(outcomes, daemon.policies.revision)

    @api.get("/events", dependencies=read, tags=["events"])
    async def list_events(
        station: Annotated[str | None, Query()] = None,
        kind: Annotated[str | None, Query()] = None,
        since: Annotated[int, Query(ge=0, description="events after this id")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        """The event log, oldest first (filter by station, kind prefix, id)."""
        found = events(daemon, station, kind, since, limit)
        return {
            "events": found,
            "last_id": found[-1]["id"] if found else since,
            "policy_errors": [d.format_text() for d in daemon.policy_errors],
            "pull_error": daemon.pull_error,
        }

    @api.get("/events/stream", dependencies=read, tags=["events"])
    async def stream(
        request: Request,
        station: Annotated[str | None, Query()] = None,
        kind: Annotated[str | None, Query()] = None,
        since: Annotated[int | None, Query(ge=0)] = None,
    ) -> StreamingResponse:
        """Server-sent events: each new event as `data: {json}` (id = event id); a comment every 15 s."""
        assert daemon.store is not None
        start = (
            since if since is not None else (daemon.store.events(limit=1)[-1].id if daemon.store.events(limit=1) else 0)
        )

        async def feed() -> AsyncIterator[bytes]:
            last, idle = start, 0.0
            yield b": connected\n\n"
            while not await request.is_disconnected():
                found = events(daemon, station, kind, last, 500)
                for item in found:
                    last = item["id"]
                    yield f"id: {item['id']}\nevent: {item['kind']}\ndata: {json.dumps(item)}\n\n".encode()
                if not found:
                    idle += 0.5
                    if idle >= 15:
                        idle = 0.0
                        yield b": keep-alive\n\n"
                await asyncio.sleep(0.5)

        return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @api.get("/overrides", dependencies=read, tags=["overrides"])
    async def list_overrides(
        station: Annotated[str | None, Query()] = None, include_removed: Annotated[bool, Query()] = False
    ) -> dict[str, Any]:
        """Active overrides (who, when, why, expiry); with include_removed, their history too."""
        assert daemon.state is not None
        return {"overrides": [o.to_json() for o in daemon.state.overrides(station, active=not include_removed)]}

    @api.delete("/overrides/{override_id}", dependencies=write, tags=["overrides"])
    async def delete_override(override_id: int, request: Request) -> dict[str, Any]:
        """Remove an override now; the engine rolls the station back to git's state."""
        try:
            override, outcome = await ops.remove_override(override_id, caller(request))
        except OperationError as exc:
            raise HTTPException(exc.status, exc.message) from None
        return {
            "status": "success",
            "override_id": override.id,
            "station_id": override.station_id,
            "condition": outcome.status.value if outcome else None,
            "message": f"override #{override.id} removed; git's state is back"
            if outcome is not None and outcome.status.value == "Synced"
            else f"override #{override.id} removed",
        }

    # --- demo mode --------------------------------------------------------------------------------------

    def fleet() -> Any:
        if daemon.fleet is None:
            raise HTTPException(409, "only in demo mode (reconciler demo): the stations here are real chargers")
        return daemon.fleet

    @api.post("/stations/scale", dependencies=write, tags=["demo"])
    async def scale(body: ScaleRequest) -> dict[str, Any]:
        """Demo mode: run this many simulated stations (declared ones first)."""
        running = await fleet().scale(body.target_count)
        return {"status": "success", "target_count": body.target_count, "running": running}

    @api.post("/stations/{station_id}/start", dependencies=write, tags=["demo"])
    async def start(station_id: str) -> dict[str, Any]:
        """Demo mode: start (connect) a simulated station."""
        await fleet().start_station(station_id)
        return {"status": "success", "station_id": station_id, "running": True}

    @api.post("/stations/{station_id}/stop", dependencies=write, tags=["demo"])
    async def stop(station_id: str) -> dict[str, Any]:
        """Demo mode: stop (disconnect) a simulated station."""
        if not await fleet().stop_station(station_id):
            raise HTTPException(404, f"Station {station_id} is not running in the demo")
        return {"status": "success", "station_id": station_id, "running": False}

    return api
