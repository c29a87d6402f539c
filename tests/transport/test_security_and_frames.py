"""The handshake checks (auth, unknown ids, subprotocol) and hostile frames, over real websockets."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from reconciler.simulator.fleet import Fleet
from reconciler.transport.central_system import CentralSystem
from tests.transport.conftest import WAIT


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def open_station(cs: CentralSystem, station_id: str, **kwargs: object) -> ClientConnection:
    return await connect(f"{cs.url}/{station_id}", subprotocols=["ocpp1.6"], open_timeout=WAIT, **kwargs)  # type: ignore[list-item, arg-type]


@pytest.fixture
async def closed_cs() -> AsyncIterator[CentralSystem]:
    passwords = {"CP-A": "secret-a", "CP-B": "secret-b"}
    async with CentralSystem(port=0, passwords=passwords, known_stations=["CP-OPEN"]) as server:
        yield server


async def test_basic_auth_accepted(closed_cs: CentralSystem) -> None:
    ws = await open_station(closed_cs, "CP-A", additional_headers=auth("CP-A", "secret-a"))
    assert ws.subprotocol == "ocpp1.6"
    await ws.close()


async def test_admitted_connection_keeps_only_the_path_of_its_handshake(closed_cs: CentralSystem) -> None:
    """websockets keeps the handshake's request and response for the connection's lifetime: about 4 KiB
    a station at 10,000 stations, and the Authorization header (a password) lingering in memory."""
    ws = await open_station(closed_cs, "CP-A", additional_headers=auth("CP-A", "secret-a"))
    try:
        assert await closed_cs.wait_for_stations(["CP-A"], WAIT, booted=False) == {"CP-A"}
        server_side = closed_cs._connections["CP-A"].ws
        assert server_side.request is not None and server_side.request.path == "/CP-A"
        assert len(server_side.request.headers) == 0 and server_side.response is None
        await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))  # the connection still works
        answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert answer[0] == 3 and answer[1] == "h1" and "currentTime" in answer[2]
    finally:
        await ws.close()


@pytest.mark.parametrize(
    "headers",
    [{}, auth("CP-A", "wrong"), auth("CP-B", "secret-b"), {"Authorization": "Basic !!!"}],
    ids=["none", "wrong-password", "other-station-credentials", "garbage"],
)
async def test_basic_auth_refused(closed_cs: CentralSystem, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_station(closed_cs, "CP-A", additional_headers=headers)
    assert refused.value.response.status_code == 401
    assert closed_cs.connected_stations() == set()


async def test_unknown_station_refused_known_one_admitted(closed_cs: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_station(closed_cs, "CP-STRANGER", additional_headers=auth("CP-STRANGER", "secret-a"))
    assert refused.value.response.status_code == 404
    ws = await open_station(closed_cs, "CP-OPEN")  # known, no password configured
    await ws.close()


async def test_other_subprotocols_refused(cs: CentralSystem) -> None:
    with pytest.raises(InvalidHandshake):
        await connect(f"{cs.url}/CP-X", subprotocols=["ocpp2.0.1"], open_timeout=WAIT)  # type: ignore[list-item]
    with pytest.raises(InvalidHandshake):
        await connect(f"{cs.url}/CP-X", open_timeout=WAIT)


async def test_simulated_station_with_password(closed_cs: CentralSystem) -> None:
    closed_cs.add_station("CP-0001", "pw")
    async with Fleet(closed_cs.url, 1, prefix="CP-", password="pw", backoff_initial=0.05):
        assert await closed_cs.wait_for_stations(["CP-0001"], WAIT) == {"CP-0001"}


async def test_malformed_frames_get_call_errors_and_the_connection_survives(cs: CentralSystem, fleet: Fleet) -> None:
    ws = await open_station(cs, "CP-RAW")
    await ws.send("this is not json")
    await ws.send("[2]")
    await ws.send('{"an": "object"}')
    await ws.send(b"\x00binary")
    await ws.send('[2, "bad-payload", "Heartbeat", "not an object"]')
    await ws.send('[2, "bad-schema", "BootNotification", {"chargePointModel": 5}]')
    await ws.send('[2, "unknown-action", "FlyToTheMoon", {}]')
    await ws.send('[2, "good", "Heartbeat", {}]')
    answers = {}
    while "good" not in answers:  # bounded: the server answers each identifiable call exactly once
        frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        answers[frame[1]] = frame
    assert answers["bad-payload"][0:3] == [4, "bad-payload", "FormationViolation"]
    assert answers["bad-schema"][0:3] == [4, "bad-schema", "FormationViolation"]
    assert answers["unknown-action"][0:3] == [4, "unknown-action", "NotImplemented"]
    assert answers["good"][0] == 3 and "currentTime" in answers["good"][2]
    assert cs.is_connected("CP-RAW")
    assert (await cs.call("PY-SIM-0002", "GetConfiguration", {"key": ["NumberOfConnectors"]})).ok
    await ws.close()


async def test_oversize_frame_closes_only_that_connection(fleet: Fleet) -> None:
    small = CentralSystem(port=0, allow_unknown=True, max_message_size=4096)
    async with small:
        others = Fleet(small.url, 2, prefix="OK-", backoff_initial=0.05)
        async with others:
            assert await small.wait_for_stations(others.stations, WAIT) == set(others.stations)
            ws = await open_station(small, "CP-BIG")
            await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "A" * 10_000}]))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
            for station_id in others.stations:
                assert (await small.call(station_id, "GetConfiguration", {"key": ["NumberOfConnectors"]})).ok
            assert not small.is_connected("CP-BIG")
