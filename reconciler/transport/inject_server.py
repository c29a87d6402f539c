"""Our own inject endpoint: `POST /api/inject/{chargePointId}` in front of any Gateway.

Flow: `reconciler plan/apply` (an `InjectGateway`) -> HTTP -> `InjectServer` (mounted by the
daemon next to its Central System) -> `Gateway.call` -> the charger -> HTTP response. It speaks the
same contract as a third-party OCPP proxy (see `inject.py`), so one client serves both:

- request: basic auth (when a username is configured), JSON body `{"action": str, "payload": {}}`;
- 200 + the charger's CallResult payload; 200 + `{"error": {"code", "description"}}` for a CallError;
- 400 bad request body, 401 bad credentials, 404 station not connected, 405 wrong method,
  504 the charger did not answer in time.

A tiny asyncio HTTP/1.1 server (one request per connection), no web framework: the daemon's REST
API may mount the same contract later; this one is for the CLI and for tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
from typing import Any
from urllib.parse import unquote

from reconciler.transport.gateway import Gateway, ReplyKind

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {413: "Payload Too Large", 500: "Internal Server Error", 504: "Gateway Timeout"}
PREFIX = "/api/inject/"


class InjectServer:
    """Serve the inject contract for `gateway` on host:port (port 0 picks a free one; see `.port`)."""

    def __init__(
        self,
        gateway: Gateway,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str | None = None,
        password: str | None = None,
        *,
        max_body: int = 1 << 20,
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.max_body = max_body
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> InjectServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.username is None and self.password is None:
            return True
        value = headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(value[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.username or "") and hmac.compare_digest(password, self.password or "")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._respond(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, UnicodeDecodeError):
            status, body = 400, {"error": {"code": "BadRequest", "description": "malformed HTTP request"}}
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n"
        )
        if status == 401:
            head += 'WWW-Authenticate: Basic realm="reconciler"\r\n'
        try:
            writer.write(head.encode("latin-1") + b"\r\n" + data)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        request_line = (await reader.readline()).decode("latin-1").split()
        headers: dict[str, str] = {}
        for _ in range(100):  # bounded
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(request_line) < 2:
            raise ValueError("no request line")
        method, target = request_line[0], request_line[1].split("?", 1)[0]
        length = int(headers.get("content-length", "0") or 0)
        if length > self.max_body:
            return 413, {"error": {"code": "PayloadTooLarge", "description": f"body over {self.max_body} bytes"}}
        raw = await reader.readexactly(length) if length else b""
        if not target.startswith(PREFIX) or len(target) == len(PREFIX):
            return 404, {"error": {"code": "NotFound", "description": f"use POST {PREFIX}{{chargePointId}}"}}
        if method != "POST":
            return 405, {"error": {"code": "MethodNotAllowed", "description": "use POST"}}
        if not self._authorised(headers):
            return 401, {"error": {"code": "Unauthorized", "description": "basic auth required"}}
        station_id = unquote(target[len(PREFIX) :])
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        if (
            not isinstance(request, dict)
            or not isinstance(request.get("action"), str)
            or not isinstance(request.get("payload", {}), dict)
        ):
            return 400, {"error": {"code": "BadRequest", "description": 'body must be {"action": str, "payload": {}}'}}
        reply = await self.gateway.call(station_id, request["action"], request.get("payload") or {})
        error = {"code": reply.error_code, "description": reply.description}
        if reply.kind is ReplyKind.ANSWERED:
            return 200, reply.payload
        if reply.kind is ReplyKind.CALL_ERROR:
            return 200, {"error": error}
        if reply.kind is ReplyKind.OFFLINE:
            return 404, {"error": error}
        return 504, {"error": error}
