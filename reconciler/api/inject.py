"""`POST /api/inject/{chargePointId}`: any OCPP 1.6 call to a station, the charger's reply returned.

Flow: `reconciler plan/apply --via` (an `InjectGateway`) or a third-party tool -> HTTP -> this route
(in the daemon's FastAPI app, or a bare `inject_app` in front of any Gateway) -> `Gateway.call` ->
the charger -> HTTP response. The contract of an OCPP proxy's inject API, so one client serves both:

- request: basic auth (or a bearer token), JSON body `{"action": str, "payload": {}}`;
- 200 + the charger's CallResult payload; 200 + `{"error": {"code", "description"}}` for a CallError
  (with `"ambiguous": true` when the charger may have carried the call out all the same: its
  answer could not be read, or it is the answer to a retry after an unanswered attempt);
- 400 a body that is not that shape (or is not JSON, too deep, too large), or an `action` that is
  not an OCPP 1.6 Central-System-to-charger action name from the fixed set below (the name is
  never used to build a path); 401 bad credentials; 404 station not connected; 504 no answer.
Errors carry `{"detail": message, "error": {"code", "description"}}`.

Calls sent this way are not the reconciler's: a profile set through here is foreign (drift), as
with any third party.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from reconciler.api.auth import Credentials, Guard
from reconciler.transport.gateway import Gateway, Reply, ReplyKind

# OCPP 1.6 (core, firmware, local list, reservation, remote trigger, smart charging profiles):
# every action the Central System may send to a charge point.
CENTRAL_SYSTEM_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)
MAX_BODY = 1 << 20


class InjectRequest(BaseModel):
    """The documented body (for OpenAPI); the route parses the raw bytes itself, defensively."""

    action: str = Field(description="OCPP 1.6 action name, e.g. GetConfiguration", examples=["GetConfiguration"])
    payload: dict[str, Any] = Field(default_factory=dict, description="the OCPP request payload (camelCase)")


def _error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"detail": description, "error": {"code": code, "description": description}}, status)


async def read_json_body(request: Request, limit: int = MAX_BODY) -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, why not): size-bounded, and a RecursionError is just a bad body."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None, f"the body is larger than {limit} bytes"
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None, f"the body is larger than {limit} bytes"
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks)), None
    except RecursionError:
        return None, "the body is nested too deeply"
    except ValueError as exc:
        return None, f"the body is not JSON ({exc.__class__.__name__})"


def parse_inject(data: Any) -> tuple[str, dict[str, Any]] | str:
    """(action, payload) of an inject body, or what is wrong with it."""
    if not isinstance(data, dict):
        return 'the body must be a JSON object {"action": str, "payload": {}}'
    action, payload = data.get("action"), data.get("payload", {})
    if not isinstance(action, str):
        return '"action" must be a string, an OCPP 1.6 action name'
    if action not in CENTRAL_SYSTEM_ACTIONS:
        shown = action if len(action) <= 40 and action.isprintable() else action[:40].encode("unicode_escape").decode()
        return f"unknown action {shown!r}; use one of: {', '.join(sorted(CENTRAL_SYSTEM_ACTIONS))}"
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return '"payload" must be a JSON object'
    return action, payload


def reply_response(reply: Reply) -> JSONResponse:
    """The inject contract's HTTP answer for a gateway reply."""
    if reply.kind is ReplyKind.ANSWERED:
        return JSONResponse(reply.payload or {})
    error: dict[str, Any] = {"code": reply.error_code, "description": reply.description}
    if reply.unsure:
        error["ambiguous"] = True  # the charger may have carried the call out all the same
    if reply.kind is ReplyKind.CALL_ERROR:
        return JSONResponse({"error": error})
    status = 404 if reply.kind is ReplyKind.OFFLINE else 504
    return JSONResponse({"detail": reply.description, "error": error}, status)


Observer = Callable[[str, str, dict[str, Any], Reply], Awaitable[None] | None]


def inject_router(gateway: Callable[[], Gateway], guard: Guard, observe: Observer | None = None) -> APIRouter:
    """The route, for whatever gateway `gateway()` returns at call time; `observe` sees each call."""
    router = APIRouter(tags=["inject"])

    @router.post(
        "/api/inject/{chargePointId}",
        dependencies=[Depends(guard.writer)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": InjectRequest.model_json_schema()}},
            }
        },
        responses={
            200: {"description": "the charger's reply payload, or {error: {code, description}}"},
            400: {"description": "bad body or action"},
            404: {"description": "station not connected"},
            504: {"description": "the charger did not answer in time"},
        },
    )
    async def inject(chargePointId: str, request: Request) -> JSONResponse:
        """Send any OCPP 1.6 call to a connected station and return the charger's reply."""
        data, problem = await read_json_body(request)
        if problem is not None:
            return _error(400, "BadRequest", problem)
        parsed = parse_inject(data)
        if isinstance(parsed, str):
            return _error(400, "BadRequest", parsed)
        action, payload = parsed
        reply = await gateway().call(chargePointId, action, payload)
        if observe is not None:
            result = observe(chargePointId, action, payload, reply)
            if result is not None:
                await result
        return reply_response(reply)

    return router


def inject_app(gateway: Gateway, credentials: Credentials) -> FastAPI:
    """A FastAPI app serving only the inject endpoint in front of `gateway` (tests, small proxies)."""
    from reconciler.api.errors import install_error_handlers

    app = FastAPI(title="reconciler inject API", version="1")
    install_error_handlers(app)
    app.include_router(inject_router(lambda: gateway, Guard(credentials)))
    return app
