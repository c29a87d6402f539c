"""`POST /api/inject/{id}` served by FastAPI on a real uvicorn server (127.0.0.1:0): the contract
the inject client relies on, and hostile input (issue 8 item 13) answered cleanly."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reconciler.api.auth import Credentials
from reconciler.api.inject import inject_app
from reconciler.api.server import HttpServer
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import Gateway, ReplyKind
from reconciler.transport.inject import InjectGateway
from reconciler.transport.memory import MemoryGateway
from tests.transport.conftest import WAIT, cp_max

NON_ASCII = "pässwörd-✓-密码"


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    memory = MemoryGateway(
        [SimulatedChargePoint("CP-1"), SimulatedChargePoint("CP-NS", quirks=Quirks(composite_unsupported=True))]
    )
    async with HttpServer(inject_app(memory, Credentials("ops", "s3cret")), read_timeout=0.5) as running:
        yield running


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_inject_round_trip(server: HttpServer) -> None:
    async with InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT) as client:
        assert isinstance(client, Gateway)
        reply = await client.call("CP-1", "SetChargingProfile", cp_max(16))
        assert reply.kind is ReplyKind.ANSWERED and reply.payload == {"status": "Accepted"}
        reply = await client.call("CP-1", "GetCompositeSchedule", {"connectorId": 1, "duration": 60})
        assert reply.payload is not None
        assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16
        # a station may always be called; what the last call found is remembered per station
        assert client.is_connected("anything") and client.connected_stations() == {"CP-1"}
        assert client.reached("CP-1") == (True, None) and client.reached("anything") is None


async def test_inject_call_error_is_passed_through(server: HttpServer) -> None:
    async with InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT) as client:
        reply = await client.call("CP-NS", "GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "NotSupported" and not reply.temporary


async def test_inject_unknown_station_is_offline(server: HttpServer) -> None:
    async with InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT) as client:
        reply = await client.call("CP-GONE", "GetConfiguration", {})
        assert reply.kind is ReplyKind.OFFLINE and reply.temporary
        assert reply.description is not None and "not connected" in reply.description
        seen = client.reached("CP-GONE")
        assert seen is not None and not seen[0] and "HTTP 404" in str(seen[1]) and not client.connected_stations()


@pytest.mark.parametrize("password", ["wrong", None])
async def test_inject_bad_credentials(server: HttpServer, password: str | None) -> None:
    user = "ops" if password else None
    async with InjectGateway(server.url, username=user, password=password, timeout=WAIT) as client:
        reply = await client.call("CP-1", "GetConfiguration", {})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "Unauthorized"
    assert reply.description is not None and "credentials" in reply.description


async def test_inject_rejects_bad_requests(server: HttpServer) -> None:
    auth = {"Authorization": basic("ops", "s3cret")}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=WAIT) as http:
        response = await http.post("/api/inject/CP-1", content=b"[1,2]")
        assert response.status_code == 400 and "JSON object" in response.json()["detail"]
        response = await http.post("/api/inject/CP-1", content=b"{not json")
        assert response.status_code == 400 and "not JSON" in response.json()["detail"]
        response = await http.post("/api/inject/CP-1", json={"action": "GetConfiguration", "payload": [1]})
        assert response.status_code == 400 and "payload" in response.json()["detail"]
        response = await http.post("/api/inject/CP-1", content=b"x" * (2 << 20))
        assert response.status_code == 400 and "larger" in response.json()["detail"]
        assert (await http.get("/api/inject/CP-1")).status_code == 405
        assert (await http.post("/elsewhere", json={})).status_code == 404


async def test_inject_through_the_central_system() -> None:
    async with CentralSystem(port=0, allow_unknown=True) as cs, Fleet(cs.url, 1, backoff_initial=0.05) as fleet:
        assert await cs.wait_for_stations(fleet.stations, WAIT) == {"PY-SIM-0001"}
        async with HttpServer(inject_app(cs, Credentials("ops", "pw"))) as server:
            async with InjectGateway(server.url, username="ops", password="pw", timeout=WAIT) as client:
                assert (await client.call("PY-SIM-0001", "SetChargingProfile", cp_max(20))).status == "Accepted"
            assert fleet["PY-SIM-0001"].calls["SetChargingProfile"] == 1


# --- hostile input (issue 8 item 13) --------------------------------------------------------------


async def test_non_ascii_basic_auth_is_refused_not_crashed(server: HttpServer) -> None:
    body = {"action": "GetConfiguration", "payload": {}}
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        for header in (
            basic("öps", "s3cret"),
            basic("ops", NON_ASCII),
            "Basic " + base64.b64encode(b"ops:" + b"\xff\xfe").decode(),  # not UTF-8
            "Basic ***not-base64***",
        ):
            response = await http.post("/api/inject/CP-1", json=body, headers={"Authorization": header})
            assert response.status_code == 401, header
            assert response.headers["www-authenticate"].startswith("Basic")
        raw = b"Basic " + "öps:pässwort".encode("latin-1")  # raw non-ASCII bytes in the header
        response = await http.post("/api/inject/CP-1", json=body, headers={"Authorization": raw})
        assert response.status_code == 401


async def test_a_non_ascii_configured_password_works() -> None:
    memory = MemoryGateway([SimulatedChargePoint("CP-1")])
    async with HttpServer(inject_app(memory, Credentials("bädmin", NON_ASCII))) as server:
        async with InjectGateway(server.url, username="bädmin", password=NON_ASCII, timeout=WAIT) as client:
            assert (await client.call("CP-1", "GetConfiguration", {})).kind is ReplyKind.ANSWERED
        async with InjectGateway(server.url, username="bädmin", password="pässwörd", timeout=WAIT) as client:
            assert (await client.call("CP-1", "GetConfiguration", {})).error_code == "Unauthorized"


async def test_action_is_a_fixed_name_never_a_path(server: HttpServer, tmp_path: Path) -> None:
    leak = Path("/tmp") / "x"
    leak.mkdir(exist_ok=True)
    (leak / "leak.json").write_text('["top-secret-array"]')
    auth = {"Authorization": basic("ops", "s3cret")}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=WAIT) as http:
        for action in ["../" * 12 + "tmp/x/leak", "GetConfiguration/../../x", "Heartbeat", "", "A" * 5000, "é\n"]:
            response = await http.post("/api/inject/CP-1", json={"action": action, "payload": {}})
            assert response.status_code == 400, action
            detail = response.json()["detail"]
            assert "unknown action" in detail and "top-secret" not in detail and len(detail) < 1000
        response = await http.post("/api/inject/CP-1", json={"action": ["GetConfiguration"], "payload": {}})
        assert response.status_code == 400 and "string" in response.json()["detail"]


async def test_deeply_nested_json_is_a_bad_request(server: HttpServer) -> None:
    auth = {"Authorization": basic("ops", "s3cret")}
    deep = b'{"action": "GetConfiguration", "payload": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=WAIT) as http:
        response = await http.post("/api/inject/CP-1", content=deep)
        assert response.status_code == 400 and "deeply" in response.json()["detail"]
        still = await http.post("/api/inject/CP-1", json={"action": "GetConfiguration", "payload": {}})
        assert still.status_code == 200


async def test_idle_and_partial_sockets_are_closed(server: HttpServer) -> None:
    """read_timeout 0.5 s: 100 idle and 100 half-sent requests are all closed by the server, and a
    well-formed request is served meanwhile."""
    streams = []
    for i in range(200):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        if i % 2:
            writer.write(b'POST /api/inject/CP-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"act')
            await writer.drain()
        streams.append((reader, writer))
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        body = {"action": "GetConfiguration", "payload": {}}
        response = await http.post("/api/inject/CP-1", json=body, headers={"Authorization": basic("ops", "s3cret")})
        assert response.status_code == 200

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            while await asyncio.wait_for(reader.read(1024), WAIT):
                pass  # a 400/408 answer is fine too; what matters is that the server closes
        except (ConnectionError, TimeoutError):
            return False
        return True

    results = await asyncio.gather(*(closed(r) for r, _ in streams))
    for _, writer in streams:
        writer.close()
    assert all(results), f"{results.count(False)} socket(s) left open"


async def test_keep_alive_connections_are_reused(server: HttpServer) -> None:
    async with InjectGateway(server.url, username="ops", password="s3cret", timeout=WAIT) as client:
        for _ in range(5):
            assert (await client.call("CP-1", "GetConfiguration", {})).ok
        pool = client._http()._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1


def test_json_body_example_is_in_the_openapi_spec() -> None:
    memory = MemoryGateway([])
    spec = inject_app(memory, Credentials("ops", "x")).openapi()
    body = spec["paths"]["/api/inject/{chargePointId}"]["post"]["requestBody"]
    assert "action" in json.dumps(body)
