"""Station routes: list and detail, profiles (as overrides), clears, schedules, scenarios, suspend.

Flow: HTTP -> these routes (auth by `Guard`) -> `views` for reads, `Operations` for changes -> JSON.
The contract is the source documents' controller API, field for field:
`POST /stations/{id}/charging_profile` -> `{status, station_id, profile_id, csms_status, message}`;
`DELETE /stations/{id}/charging_profile` -> `{status, station_id, csms_status, message, filters}`;
errors `{"detail": ...}`: 404 `Station X not found or not connected`, 504 a charger timeout, 400/422
a bad body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from reconciler.api.auth import Guard, decode_basic
from reconciler.api.errors import require_declared
from reconciler.api.listing import listing_of
from reconciler.api.views import expected_schedule, parse_selector, station_detail
from reconciler.core.profiles import RateUnit
from reconciler.daemon.operations import OperationError, Operations, not_found
from reconciler.daemon.scenarios import ScenarioError, build_scenario
from reconciler.daemon.service import Daemon
from reconciler.transport.gateway import ReplyKind


class ChargingProfileRequest(BaseModel):
    connector_id: int = Field(ge=0, le=64, description="0 for the whole station")
    profile: dict[str, Any] = Field(description="OCPP 1.6 csChargingProfiles (camelCase), as in SetChargingProfile")
    ttl_seconds: float | None = Field(None, gt=0, le=30 * 86_400, description="override lifetime (default 1 h)")
    reason: str | None = Field(None, max_length=500, description="why (kept with the override)")


class ScenarioRequest(BaseModel):
    model_config = {"extra": "allow"}
    scenario: str = Field(description="peak_shaving | time_of_use | energy_cap")
    parameters: dict[str, Any] | None = Field(None, description="the scenario's parameters (or give them at top level)")
    ttl_seconds: float | None = Field(None, gt=0, le=30 * 86_400)
    reason: str | None = Field(None, max_length=500)


class ActionRequest(BaseModel):
    reason: str | None = Field(None, max_length=500)


def caller(request: Request) -> str:
    """Who is acting, for the record: the basic-auth user, or `token`."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        pair = decode_basic(header[6:])
        if pair is not None:
            return pair[0][:64] or "admin"
    return "token" if header else "anonymous"


def _fail(exc: OperationError | ScenarioError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


def router(daemon: Daemon, guard: Guard) -> APIRouter:
    ops = Operations(daemon)
    api = APIRouter(tags=["stations"])
    read, write = [Depends(guard.reader)], [Depends(guard.writer)]
    listing = listing_of(daemon)  # GET /stations, kept current by change instead of rebuilt per request

    @api.get("/stations", dependencies=read)
    async def list_stations(
        request: Request,
        condition: Annotated[str | None, Query(description="e.g. Synced, OutOfSync, Degraded")] = None,
        selector: Annotated[str | None, Query(description="labels KEY=VALUE[,KEY=VALUE]")] = None,
    ) -> Response:
        """Every declared station: connected, condition and reason, limit in force (as the charger reads it
        back: policy, override, charger, hardware, or unknown when nothing was read back) and its source,
        profile count, power drawn, overrides, last reconcile, revision, labels."""
        try:
            labels = parse_selector(selector)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = listing.body(condition, labels, selector, gzipped=True)
            headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(body, media_type="application/json", headers=headers)
        return Response(listing.body(condition, labels, selector), media_type="application/json")

    @api.get("/stations/{station_id}", dependencies=read)
    async def get_station(station_id: str) -> dict[str, Any]:
        """One station: desired profiles with their policy file:line, ledger, overrides, capabilities, events."""
        require_declared(daemon.policies.stations, station_id)
        return station_detail(daemon, station_id)

    @api.post("/stations/{station_id}/charging_profile", dependencies=write)
    async def set_profile(station_id: str, body: ChargingProfileRequest, request: Request) -> dict[str, Any]:
        """Install a profile as an override (recorded with who/why/expiry, applied and verified by the engine)."""
        try:
            applied = await ops.add_override(
                station_id, body.connector_id, body.profile, who=caller(request), why=body.reason, ttl=body.ttl_seconds
            )
        except OperationError as exc:
            raise _fail(exc) from None
        ok = applied.csms_status == "Accepted" or applied.outcome is None or applied.csms_status is None
        return {
            "status": "success" if ok else "error",
            "station_id": station_id,
            "profile_id": applied.override.profile.get("chargingProfileId"),
            "csms_status": applied.csms_status,
            "message": applied.message,
            "override_id": applied.override.id,
            "expires_at": applied.override.to_json()["expires_at"],
        }

    @api.delete("/stations/{station_id}/charging_profile", dependencies=write)
    async def clear_profile(
        station_id: str,
        request: Request,
        profile_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
        connector_id: Annotated[int | None, Query(ge=0, le=64)] = None,
        charging_profile_purpose: Annotated[
            Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"] | None, Query()
        ] = None,
        stack_level: Annotated[int | None, Query(ge=0, le=1000)] = None,
    ) -> dict[str, Any]:
        """ClearChargingProfile with these filters (none: clear all); says whether self-heal restores git's."""
        filters: dict[str, Any] = {}
        if profile_id is not None:
            filters["id"] = profile_id
        if connector_id is not None:
            filters["connectorId"] = connector_id
        if charging_profile_purpose is not None:
            filters["chargingProfilePurpose"] = charging_profile_purpose
        if stack_level is not None:
            filters["stackLevel"] = stack_level
        try:
            return await ops.clear(station_id, filters, caller(request))
        except OperationError as exc:
            raise _fail(exc) from None

    @api.get("/stations/{station_id}/composite_schedule", dependencies=read)
    async def composite_schedule(
        station_id: str,
        connector_id: Annotated[int, Query(ge=0, le=64)] = 0,
        duration: Annotated[int, Query(gt=0, le=7 * 86_400)] = 86_400,
        charging_rate_unit: Annotated[Literal["W", "A"], Query()] = "W",
    ) -> dict[str, Any]:
        """The charger's live GetCompositeSchedule answer (default unit W)."""
        if station_id not in daemon.policies.stations:
            require_declared(daemon.policies.stations, station_id)
        try:
            ops.require_connected(station_id)  # a declared station that is offline: 404, not a 500
        except OperationError as exc:
            raise _fail(exc) from None
        assert daemon.gateway is not None
        payload = {"connectorId": connector_id, "duration": duration, "chargingRateUnit": charging_rate_unit}
        reply = await daemon.gateway.call(station_id, "GetCompositeSchedule", payload)
        if reply.kind is ReplyKind.OFFLINE:
            raise not_found_http(station_id)
        if reply.kind is ReplyKind.TIMEOUT:
            raise HTTPException(504, f"the charger did not answer GetCompositeSchedule: {reply.description}")
        if reply.kind is ReplyKind.CALL_ERROR:
            raise HTTPException(502, f"the charger answered {reply.error_code}: {reply.description}")
        return {"station_id": station_id, **(reply.payload or {})}

    @api.get("/stations/{station_id}/expected_schedule", dependencies=read)
    async def expected(
        station_id: str,
        connector_id: Annotated[int, Query(ge=0, le=64)] = 0,
        duration: Annotated[int, Query(gt=0, le=7 * 86_400)] = 86_400,
        charging_rate_unit: Annotated[Literal["W", "A"], Query()] = "W",
        explain: Annotated[bool, Query(description="add which profile governs each period")] = False,
    ) -> dict[str, Any]:
        """The composite the charger should report, from the desired state (git + overrides), same shape."""
        require_declared(daemon.policies.stations, station_id)
        if connector_id > daemon.policies.stations[station_id].connectors:
            raise HTTPException(400, f"connector_id {connector_id} does not exist on {station_id}")
        schedule = expected_schedule(
            daemon, station_id, connector_id, duration, RateUnit(charging_rate_unit), explain=explain
        )
        return {"station_id": station_id, **schedule}

    @api.post("/stations/{station_id}/test_profiles", dependencies=write)
    async def test_profiles(station_id: str, body: ScenarioRequest, request: Request) -> dict[str, Any]:
        """Apply a canned scenario as an override: peak_shaving, time_of_use or energy_cap."""
        params = dict(body.parameters or {})
        params.update({k: v for k, v in (body.model_extra or {}).items() if k not in params})
        try:
            ops.require_connected(station_id)
            state = daemon.policies.desired[station_id]
            running = daemon.engine.transactions(station_id) if daemon.engine is not None else {}
            scenario = build_scenario(
                body.scenario,
                params,
                timezone=state.site_timezone,
                now=daemon.now(),
                transactions={t.transaction_id: c for c, t in running.items() if t.transaction_id is not None},
            )
            applied = await ops.add_override(
                station_id,
                scenario.connector_id,
                scenario.profile,
                who=caller(request),
                why=body.reason or f"test_profiles {scenario.name}",
                ttl=body.ttl_seconds,
                scenario=scenario,
            )
        except (OperationError, ScenarioError) as exc:
            raise _fail(exc) from None
        ok = applied.csms_status in ("Accepted", None)
        return {
            "status": "success" if ok else "error",
            "station_id": station_id,
            "scenario": scenario.name,
            "profile_id": applied.override.profile.get("chargingProfileId"),
            "csms_status": applied.csms_status,
            "message": applied.message,
            "computed": scenario.computed,
            "override_id": applied.override.id,
            "expires_at": applied.override.to_json()["expires_at"],
        }

    @api.post("/stations/{station_id}/suspend", dependencies=write)
    async def suspend(station_id: str, request: Request, body: ActionRequest | None = None) -> dict[str, Any]:
        """Stop reconciling this station (condition Suspended, persisted) until resumed."""
        require_declared(daemon.policies.stations, station_id)
        assert daemon.state is not None
        daemon.state.suspend(station_id, caller(request), body.reason if body else None, daemon.now())
        await ops.reconcile([station_id], "suspended", wait=10)
        return {
            "status": "success",
            "station_id": station_id,
            "condition": "Suspended",
            "message": "reconciling paused; manual changes stay until resume",
        }

    @api.post("/stations/{station_id}/resume", dependencies=write)
    async def resume(station_id: str) -> dict[str, Any]:
        """Reconcile this station again (at once)."""
        require_declared(daemon.policies.stations, station_id)
        assert daemon.state is not None
        was = daemon.state.resume(station_id)
        outcome = (await ops.reconcile([station_id], "resumed", wait=30)).get(station_id)
        return {
            "status": "success",
            "station_id": station_id,
            "was_suspended": was,
            "condition": outcome.status.value if outcome else None,
            "reason": outcome.reason if outcome else None,
        }

    return api


def not_found_http(station_id: str) -> HTTPException:
    error = not_found(station_id)
    return HTTPException(error.status, error.message)
