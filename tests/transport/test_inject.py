"""The inject client (httpx) against a scripted third-party proxy on loopback. The client against our
own FastAPI endpoint: tests/api/test_inject_endpoint.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from reconciler.transport.gateway import ReplyKind
from reconciler.transport.inject import InjectGateway, reply_from_http, split_credentials
from tests.transport.conftest import WAIT

# --- a scripted third-party proxy: canned answers per station id --------------------------------


class ScriptedProxy:
    """Answers POST /api/inject/{id} with a canned (status, body) per id; id SLOW never answers."""

    def __init__(self) -> None:
        self.release = asyncio.Event()  # never set: SLOW hangs until the client gives up
        self.bodies: list[dict[str, object]] = []
        self.canned = {
            "OK": (200, b'{"status": "Accepted"}'),
            "FRAME": (200, b'[3, "1", {"status": "Rejected"}]'),
            "FRAME-ERR": (200, b'[4, "1", "NotSupported", "nope", {}]'),
            "ERR-OBJ": (200, b'{"error": {"code": "PropertyConstraintViolation", "description": "bad id"}}'),
            "ERR-FLAT": (200, b'{"errorCode": "InternalError", "errorDescription": "boom"}'),
            "GARBAGE": (200, b"<html>"),
            "E500": (500, b"internal"),
            "E502": (502, b""),
            "E503": (503, b'{"error": {"description": "restarting"}}'),
            "E504": (504, b""),
            "E403": (403, b""),
            "E418": (418, b"teapot"),
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode().split()
        length = 0
        for _ in range(100):
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.bodies.append(json.loads(await reader.readexactly(length)))
        station = request_line[1].rsplit("/", 1)[-1]
        if station == "SLOW":
            await self.release.wait()
        status, body = self.canned.get(station, (404, b'{"error": "unknown"}'))
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[ScriptedProxy, str]]:
    script = ScriptedProxy()
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield script, f"http://127.0.0.1:{port}"
    finally:
        script.release.set()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("station", "kind", "code"),
    [
        ("OK", ReplyKind.ANSWERED, None),
        ("FRAME", ReplyKind.ANSWERED, None),
        ("FRAME-ERR", ReplyKind.CALL_ERROR, "NotSupported"),
        ("ERR-OBJ", ReplyKind.CALL_ERROR, "PropertyConstraintViolation"),
        ("ERR-FLAT", ReplyKind.CALL_ERROR, "InternalError"),
        ("GARBAGE", ReplyKind.CALL_ERROR, "ProxyError"),
        ("E500", ReplyKind.CALL_ERROR, "ProxyError"),
        ("E502", ReplyKind.OFFLINE, "Offline"),
        ("E503", ReplyKind.OFFLINE, "Offline"),
        ("E504", ReplyKind.TIMEOUT, "Timeout"),
        ("E403", ReplyKind.CALL_ERROR, "Forbidden"),
        ("E418", ReplyKind.CALL_ERROR, "HTTP418"),
        ("NOBODY", ReplyKind.OFFLINE, "Offline"),
    ],
)
async def test_inject_reply_shapes(
    proxy: tuple[ScriptedProxy, str], station: str, kind: ReplyKind, code: str | None
) -> None:
    script, url = proxy
    reply = await InjectGateway(url, username="u", password="p", timeout=WAIT).call(
        station, "ClearChargingProfile", {"id": 3}
    )
    assert (reply.kind, reply.error_code) == (kind, code)
    assert script.bodies == [{"action": "ClearChargingProfile", "payload": {"id": 3}}]


async def test_inject_slow_proxy_times_out(proxy: tuple[ScriptedProxy, str]) -> None:
    _, url = proxy
    reply = await InjectGateway(url, timeout=0.2).call("SLOW", "GetConfiguration", {})
    assert reply.kind is ReplyKind.TIMEOUT and reply.temporary


async def test_inject_unreachable_proxy_is_offline() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    reply = await InjectGateway(f"http://127.0.0.1:{port}", timeout=WAIT).call("CP", "GetConfiguration", {})
    assert reply.kind is ReplyKind.OFFLINE


def test_reply_from_http_plain_payload() -> None:
    assert reply_from_http(200, b'{"configurationKey": []}').payload == {"configurationKey": []}


async def test_inject_client_reuses_one_connection(proxy: tuple[ScriptedProxy, str]) -> None:
    """Pooled keep-alive: the scripted proxy closes after each answer, so each call opens one; our
    own server keeps it open (tests/api/test_inject_endpoint.py counts connections there)."""
    script, url = proxy
    async with InjectGateway(url, timeout=WAIT) as client:
        for _ in range(3):
            assert (await client.call("OK", "GetConfiguration", {})).kind is ReplyKind.ANSWERED
    assert len(script.bodies) == 3


def test_credentials_in_the_url_are_taken_out() -> None:
    clean, user, password = split_credentials("http://ops:pa%24%24@proxy.example:8080/base")
    assert (clean, user, password) == ("http://proxy.example:8080/base", "ops", "pa$$")
    gateway = InjectGateway("http://ops:hunter2@127.0.0.1:1/")
    assert "hunter2" not in gateway.base_url


async def test_offline_reason_never_repeats_the_password() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with InjectGateway(f"http://ops:hunter2@127.0.0.1:{port}", timeout=WAIT) as client:
        reply = await client.call("CP", "GetConfiguration", {})
    assert reply.kind is ReplyKind.OFFLINE and "hunter2" not in (reply.description or "")
