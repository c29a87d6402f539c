"""Every error the API gives is `{"detail": message}` with the right status; never a traceback.

Flow: a route raises (HTTPException, a validation error, or a bug) -> these handlers -> JSON.
Validation errors of request bodies and parameters answer 422 (401 first when the route needs
credentials the request lacks) with one readable message plus the
structured list; anything unexpected answers 500 `{"detail": "internal error <id>"}` and is logged
with the same id (the traceback goes to the log only, never to the client).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reconciler.api.auth import Guard

log = logging.getLogger("reconciler.api")


def not_found(station_id: str) -> HTTPException:
    """The documents' 404 for a station the policies do not declare (or that is not connected)."""
    return HTTPException(404, f"Station {station_id} not found or not connected")


def require_declared(declared: Collection[str], station_id: str) -> None:
    """404 (`not_found`) unless the policies declare the station."""
    if station_id not in declared:
        raise not_found(station_id)


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"


def validation_message(errors: list[dict[str, Any]]) -> str:
    parts = [f"{_where(e)}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _guarded_refusal(request: Request, guard: Guard | None) -> StarletteHTTPException | None:
    """FastAPI parses and validates a body before it runs a route's dependencies, so a malformed body
    sent without credentials met the validator (422), not the guard (401). Ask the guard first."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if guard is None or dependant is None:
        return None
    calls = {d.call for d in dependant.dependencies}
    for check in (guard.writer, guard.reader):
        if check in calls:
            try:
                guard.require(request, reads=check == guard.reader)
            except StarletteHTTPException as refused:
                return refused
    return None


def install_error_handlers(app: FastAPI, guard: Guard | None = None) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (400, 413, 415, 422):  # a body FastAPI could not parse, before the guard ran
            refused = _guarded_refusal(request, guard)
            if refused is not None:
                exc = refused
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = _guarded_refusal(request, guard)
        if refused is not None:
            return JSONResponse({"detail": refused.detail}, refused.status_code, headers=refused.headers)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": validation_message(errors), "errors": errors}, 422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        incident = secrets.token_hex(4)
        log.error("internal error %s on %s %s", incident, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error {incident}; the daemon's log has the details"}, 500)
