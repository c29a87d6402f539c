"""The inject client against loopback HTTP servers: our InjectServer, and a scripted proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import Gateway, ReplyKind
from reconciler.transport.inject import InjectGateway, http_request, reply_from_http
from reconciler.transport.inject_server import InjectServer
from reconciler.transport.memory import MemoryGateway
from tests.transport.conftest import WAIT, cp_max


@pytest.fixture
async def server() -> AsyncIterator[InjectServer]:
    memory = MemoryGateway(
        [SimulatedChargePoint("CP-1"), SimulatedChargePoint("CP-NS", quirks=Quirks(composite_unsupported=True))]
    )
    async with InjectServer(memory, username="ops", password="s3cret") as running:
        yield running


async def test_inject_round_trip(server: InjectServer) -> None:
    client = InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT)
    assert isinstance(client, Gateway)
    reply = await client.call("CP-1", "SetChargingProfile", cp_max(16))
    assert reply.kind is ReplyKind.ANSWERED and reply.payload == {"status": "Accepted"}
    reply = await client.call("CP-1", "GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert reply.payload is not None and reply.payload["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16
    assert client.is_connected("anything") and client.connected_stations() == set()


async def test_inject_call_error_is_passed_through(server: InjectServer) -> None:
    client = InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT)
    reply = await client.call("CP-NS", "GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "NotSupported" and not reply.temporary


async def test_inject_unknown_station_is_offline(server: InjectServer) -> None:
    client = InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT)
    reply = await client.call("CP-GONE", "GetConfiguration", {})
    assert reply.kind is ReplyKind.OFFLINE and reply.temporary
    assert reply.description is not None and "not connected" in reply.description


@pytest.mark.parametrize("password", ["wrong", None])
async def test_inject_bad_credentials(server: InjectServer, password: str | None) -> None:
    client = InjectGateway(server.url, username="ops" if password else None, password=password, timeout=WAIT)
    reply = await client.call("CP-1", "GetConfiguration", {})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "Unauthorized"
    assert reply.description is not None and "credentials" in reply.description


async def test_inject_server_rejects_bad_requests(server: InjectServer) -> None:
    auth = InjectGateway(server.url, username="ops", password="s3cret")._headers
    response = await http_request("POST", f"{server.url}/api/inject/CP-1", headers=auth, body=b"[1,2]")
    assert response.status == 400
    response = await http_request("GET", f"{server.url}/api/inject/CP-1", headers=auth)
    assert response.status == 405
    response = await http_request("POST", f"{server.url}/elsewhere", headers=auth, body=b"{}")
    assert response.status == 404


async def test_inject_through_the_central_system() -> None:
    async with CentralSystem(port=0, allow_unknown=True) as cs, Fleet(cs.url, 1, backoff_initial=0.05) as fleet:
        assert await cs.wait_for_stations(fleet.stations, WAIT) == {"PY-SIM-0001"}
        async with InjectServer(cs) as server:
            client = InjectGateway(server.url, timeout=WAIT)
            assert (await client.call("PY-SIM-0001", "SetChargingProfile", cp_max(20))).status == "Accepted"
            assert fleet["PY-SIM-0001"].calls["SetChargingProfile"] == 1


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
