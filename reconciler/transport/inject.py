"""The proxy transport: reach chargers through an OCPP proxy's (or our daemon's) inject API.

Flow: engine -> `InjectGateway.call(station, action, payload)` -> HTTP
`POST {base}/api/inject/{chargePointId}` with basic auth and the JSON body
`{"action": ..., "payload": {...}}` -> the proxy forwards the Call to the charger it holds -> the
HTTP response carries the charger's reply -> `Reply`. We cannot see which stations the proxy
holds, so `is_connected` is optimistic and `connected_stations()` is empty; `subscribe()` yields
no events.

Accepted response shapes (HTTP 200):
- the charger's CallResult payload itself, e.g. `{"status": "Accepted"}` -> ANSWERED;
- an OCPP-J frame: `[3, id, payload]` -> ANSWERED, `[4, id, code, description, details]` -> CALL_ERROR;
- an error object: `{"error": {"code"|"errorCode": ..., "description"|"errorDescription"|"message": ...}}`
  or `{"errorCode": ..., "errorDescription": ...}` -> CALL_ERROR with that code.
Other statuses: 401/403 -> CALL_ERROR Unauthorized/Forbidden (check the credentials); 404 ->
OFFLINE (station not connected to the proxy); 408 and 504 -> TIMEOUT; 502/503 -> OFFLINE (proxy
temporarily unavailable); 500 and other codes -> CALL_ERROR ProxyError / HTTPnnn. A connection
failure is OFFLINE and no answer within `timeout` is TIMEOUT: both temporary, retried with backoff.

The HTTP/1.1 client is a few lines of asyncio streams (one connection per call, `Connection:
close`), so the transport needs no HTTP library.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from reconciler.transport.gateway import EventHub, Reply, StationEvent


class HttpResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


async def http_request(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"", max_body: int = 1 << 22
) -> HttpResponse:
    """One HTTP/1.1 request on a fresh connection. Raises OSError/ValueError on transport errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url}: expected an http:// or https:// URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    context = ssl.create_default_context() if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]  # never user:password@ in a header
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.decode("latin-1").split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
        response_headers: dict[str, str] = {}
        for _ in range(100):  # bounded: at most 100 header lines
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        length = response_headers.get("content-length")
        if length is not None and length.isdigit():
            data = await reader.readexactly(min(int(length), max_body))
        else:
            data = await reader.read(max_body)
        return HttpResponse(int(fields[1]), response_headers, data)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def reply_from_http(status: int, body: bytes) -> Reply:
    """Map an inject API response to a Reply (see the module docstring for the shapes)."""
    try:
        data: Any = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
    text = body[:200].decode("utf-8", "replace").strip()
    if status == 200:
        if isinstance(data, list) and len(data) >= 3 and data[0] == 3 and isinstance(data[2], dict):
            return Reply.answered(data[2])
        if isinstance(data, list) and len(data) >= 4 and data[0] == 4:
            return Reply.call_error(str(data[2]), str(data[3]) if len(data) > 3 else None)
        if isinstance(data, dict):
            error = _error_of(data)
            return error if error is not None else Reply.answered(data)
        return Reply.call_error("ProxyError", f"the proxy answered 200 without a JSON object: {text!r}")
    detail = _error_of(data) if isinstance(data, dict) else None
    reason = detail.description if detail is not None and detail.description else text
    if status in (401, 403):
        code = "Unauthorized" if status == 401 else "Forbidden"
        return Reply.call_error(
            code, f"the inject API refused the credentials (HTTP {status}); check username/password"
        )
    if status == 404:
        return Reply.offline(f"station not connected to the proxy (HTTP 404){': ' + reason if reason else ''}")
    if status in (408, 504):
        return Reply.timeout(f"the charger did not answer in time (HTTP {status}){': ' + reason if reason else ''}")
    if status in (502, 503):
        return Reply.offline(f"the proxy is temporarily unavailable (HTTP {status}){': ' + reason if reason else ''}")
    if status == 500:
        return Reply.call_error("ProxyError", f"the proxy failed (HTTP 500){': ' + reason if reason else ''}")
    return Reply.call_error(f"HTTP{status}", reason or None)


def _error_of(data: dict[str, Any]) -> Reply | None:
    inner = data.get("error")
    source: dict[str, Any] | None = None
    if isinstance(inner, dict):
        source = inner
    elif "errorCode" in data:
        source = data
    if source is None:
        return None
    code = source.get("code") or source.get("errorCode") or "GenericError"
    description = source.get("description") or source.get("errorDescription") or source.get("message")
    return Reply.call_error(str(code), None if description is None else str(description))


class InjectGateway:
    """`Gateway` over `POST {base_url}/api/inject/{chargePointId}`. Credentials written into the URL
    (`http://user:pw@host`) are used when `username`/`password` are not given, and taken out of
    `base_url`, which reasons and logs repeat."""

    def __init__(
        self, base_url: str, *, username: str | None = None, password: str | None = None, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(base_url)
        if "@" in parts.netloc:  # credentials in the URL: used for auth, never kept in the URL we print
            userinfo, _, host = parts.netloc.rpartition("@")
            url_user, sep, url_password = userinfo.partition(":")
            username = username if username is not None else unquote(url_user)
            password = password if password is not None else (unquote(url_password) if sep else None)
            base_url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if username is not None or password is not None:
            token = base64.b64encode(f"{username or ''}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self.hub = EventHub()

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        url = f"{self.base_url}/api/inject/{quote(station_id, safe='')}"
        body = json.dumps({"action": action, "payload": payload}, separators=(",", ":")).encode()
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                response = await http_request("POST", url, headers=self._headers, body=body)
        except TimeoutError:
            return Reply.timeout(f"no answer from {self.base_url} for {station_id} {action} within {limit:g} s")
        except (OSError, asyncio.IncompleteReadError) as exc:
            return Reply.offline(f"cannot reach the inject API at {self.base_url}: {exc}")
        except ValueError as exc:
            return Reply.call_error("ProxyError", str(exc))
        return reply_from_http(response.status, response.body)

    def is_connected(self, station_id: str) -> bool:
        return True  # the proxy knows; a call to an absent station answers OFFLINE

    def connected_stations(self) -> set[str]:
        return set()

    def subscribe(self) -> asyncio.Queue[StationEvent]:
        return self.hub.subscribe()
