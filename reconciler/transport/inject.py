"""The proxy transport: reach chargers through an OCPP proxy's (or our daemon's) inject API.

Flow: engine -> `InjectGateway.call(station, action, payload)` -> HTTP
`POST {base}/api/inject/{chargePointId}` with basic auth and the JSON body
`{"action": ..., "payload": {...}}` -> the proxy forwards the Call to the charger it holds -> the
HTTP response carries the charger's reply -> `Reply`. We cannot see which stations the proxy
holds: `is_connected` stays optimistic (a station may always be called: the call is how we find
out), while `reached(station)` and `connected_stations()` say what the last call to each station
found: an HTTP 200 from the proxy -> reached; its "not connected" (404), a timeout (408/504, or no
answer), the proxy unavailable or unreachable, or refusing our credentials -> not reached, with
the reply's description as the reason (the base URL in it has no credentials). Other answers
(400, 422...) say nothing about the station and change nothing. `subscribe()` yields no events.

The HTTP client is httpx: one pooled `AsyncClient` per gateway (keep-alive connections reused
across calls, TLS with the system's certificates for https, connect/read timeouts). Close it with
`await gateway.aclose()` or `async with InjectGateway(...)`.

Accepted response shapes (HTTP 200):
- the charger's CallResult payload itself, e.g. `{"status": "Accepted"}` -> ANSWERED;
- an OCPP-J frame: `[3, id, payload]` -> ANSWERED, `[4, id, code, description, details]` -> CALL_ERROR;
- an error object: `{"error": {"code"|"errorCode": ..., "description"|"errorDescription"|"message": ...}}`
  or `{"errorCode": ..., "errorDescription": ...}` -> CALL_ERROR with that code.
Other statuses: 401/403 -> CALL_ERROR Unauthorized/Forbidden (check the credentials); 404 ->
OFFLINE (station not connected to the proxy); 408 and 504 -> TIMEOUT; 502/503 -> OFFLINE (proxy
temporarily unavailable); 500 and other codes -> CALL_ERROR ProxyError / HTTPnnn (for 5xx, and a 200 we cannot read,
`ambiguous`: the proxy may have forwarded the call). A connection
failure is OFFLINE and no answer within `timeout` is TIMEOUT: both temporary, retried with backoff.

Credentials never appear in a reply's description: a `user:password@` in the base URL is taken
out of the URL (and used as the basic-auth credentials when none are given).
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.transport.gateway import EventHub, Reply, StationEvent

MAX_BODY = 1 << 22  # the most of a proxy's answer we read
MAX_REMEMBERED = 200_000  # stations whose last call's outcome we keep (`reached`)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(URL without user:password@, user, password) of a base URL."""
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url, None, None
    clean = str(parsed.copy_with(username=None, password=None))
    return clean, parsed.username or None, parsed.password or None


def reply_from_http(status: int, body: bytes) -> Reply:
    """Map an inject API response to a Reply (see the module docstring for the shapes)."""
    try:
        data: Any = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
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
        return Reply.call_error("ProxyError", f"the proxy answered 200 without a JSON object: {text!r}", unsure=True)
    detail = _error_of(data) if isinstance(data, dict) else None
    if detail is None and isinstance(data, dict) and isinstance(data.get("detail"), str):
        detail = Reply.call_error("HTTP", data["detail"])
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
    if status == 500:  # the proxy may have failed after forwarding the call: its fate is unknown
        return Reply.call_error("ProxyError", f"the proxy failed (HTTP 500){': ' + reason if reason else ''}",
                                unsure=True)  # fmt: skip
    return Reply.call_error(f"HTTP{status}", reason or None, unsure=status >= 500)


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
    unsure = source.get("ambiguous") is True  # our daemon's inject API: the call may have been carried out
    return Reply.call_error(str(code), None if description is None else str(description), unsure=unsure)


class InjectGateway:
    """`Gateway` over `POST {base_url}/api/inject/{chargePointId}`, on one pooled httpx client."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 100,
        verify: bool | str = True,
    ) -> None:
        clean, url_user, url_password = split_credentials(base_url.rstrip("/"))
        self.base_url = clean.rstrip("/")
        self.timeout = timeout
        user = username if username is not None else url_user
        secret = password if password is not None else url_password
        self._auth = httpx.BasicAuth(user or "", secret or "") if user is not None or secret is not None else None
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hub = EventHub()
        self._reached: dict[str, str | None] = {}  # station -> None: reached at the last call, else why not
        self._absent: set[str] = set()  # stations the proxy said at the last call it does not hold (404)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a client belongs to the loop it was made on
            self._client = httpx.AsyncClient(
                auth=self._auth,
                timeout=httpx.Timeout(self.timeout),
                limits=self._limits,
                verify=self._verify,
                headers={"Accept": "application/json"},
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    async def __aenter__(self) -> InjectGateway:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        url = f"{self.base_url}/api/inject/{quote(station_id, safe='')}"
        body = json.dumps({"action": action, "payload": payload}, separators=(",", ":")).encode()
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                response = await self._http().post(
                    url, content=body, headers={"Content-Type": "application/json"}, timeout=limit
                )
        except (TimeoutError, httpx.TimeoutException):
            reply = Reply.timeout(f"no answer from {self.base_url} for {station_id} {action} within {limit:g} s")
            return self._note(station_id, reply, None)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return self._note(station_id, Reply.call_error("ProxyError", f"{self.base_url}: {exc}"), None)
        except (httpx.TransportError, OSError) as exc:
            reply = Reply.offline(f"cannot reach the inject API at {self.base_url}: {exc.__class__.__name__} {exc}")
            return self._note(station_id, reply, None)
        status = response.status_code
        return self._note(station_id, reply_from_http(status, response.content[:MAX_BODY]), status)

    def _note(self, station_id: str, reply: Reply, status: int | None) -> Reply:
        """Remember whether this call reached the station (see the module docstring)."""
        if station_id not in self._reached and len(self._reached) >= MAX_REMEMBERED:
            return reply  # a flood of made-up station ids does not grow memory without bound
        if status == 200:
            self._reached[station_id] = None
        elif status is None or status in (401, 403, 404, 408) or status >= 500:
            self._reached[station_id] = reply.describe()
        if status == 404:
            self._absent.add(station_id)
        elif status is None or status == 200 or status in (401, 403, 408) or status >= 500:
            self._absent.discard(station_id)
        return reply

    def absent(self, station_id: str) -> bool:
        """The proxy answered the last call to the station with "not connected" (HTTP 404): the
        station is away from the proxy, as against the proxy being down or refusing us."""
        return station_id in self._absent

    def reached(self, station_id: str) -> tuple[bool, str | None] | None:
        """(True, None) when the last call to the station reached it, (False, why) when it did not,
        None before any call."""
        if station_id not in self._reached:
            return None
        why = self._reached[station_id]
        return why is None, why

    async def identify(self) -> dict[str, Any] | None:
        """`GET {base}/healthz` of a reconciler daemon (`{"service": "reconciler", "state_file"?}`, the
        state file named only to our credentials); None from anything else, or no answer in time."""
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._http().get(f"{self.base_url}/healthz", timeout=self.timeout)
        except (TimeoutError, httpx.HTTPError, OSError):
            return None
        if response.status_code != 200 or len(response.content) > 4096:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) and body.get("service") == "reconciler" else None

    def is_connected(self, station_id: str) -> bool:
        return True  # the proxy knows: a call is how we find out (an absent station answers OFFLINE)

    def connected_stations(self) -> set[str]:
        return {s for s, why in self._reached.items() if why is None}

    def subscribe(self) -> asyncio.Queue[StationEvent]:
        return self.hub.subscribe()
