"""Hostile frames and hostile connections against the real Central System over real websockets
(issue 8 items 11 and 12). Every frame that can be answered gets the right CALLERROR and the
connection stays usable; none may crash the connection handler (close 1011, a traceback in the log).
One connection per station id: the newest replaces the older ones, which are closed with a reason,
and calls go to exactly one. Only the configured path prefix is accepted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from reconciler.simulator.fleet import Fleet
from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import ReplyKind
from tests.transport.conftest import WAIT

DIGITS_5000 = "9" * 5000
DEEP = "[" * 20_000 + "]" * 20_000
START = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2025-06-02T12:00:00Z"}


def call(unique_id: str, action: object, payload: object) -> str:
    return json.dumps([2, unique_id, action, payload])


def start_at(timestamp: str) -> dict[str, object]:
    return {**START, "timestamp": timestamp}


@dataclass(frozen=True)
class Case:
    name: str
    frame: str
    code: str  # the CALLERROR code expected back

    @property
    def unique_id(self) -> str:
        return "c" + self.frame.split('"c', 1)[1].split('"', 1)[0]


FV, PCV, PE = "FormationViolation", "PropertyConstraintViolation", "ProtocolError"
STATUS = {"errorCode": "NoError", "status": "Available"}
NESTED_100 = json.loads("[" * 100 + "]" * 100)
METER_9999 = [{"timestamp": "9999-12-31T23:59:59-01:00", "sampledValue": [{"value": "1"}]}]
CASES = [
    Case("action-as-list", call("c1", ["Heartbeat"], {}), FV),
    Case("action-as-object", call("c2", {"name": "Heartbeat"}, {}), FV),
    Case("action-as-number", call("c3", 7, {}), FV),
    Case("action-empty", call("c4", "", {}), FV),
    Case("payload-as-list", call("c5", "Heartbeat", []), FV),
    Case("call-missing-payload", '[2, "c6", "Heartbeat"]', PE),
    Case("call-extra-element", '[2, "c7", "Heartbeat", {}, {}]', PE),
    Case("integer-of-5000-digits", '[2, "c8", "DataTransfer", {"vendorId": "v", "x": ' + DIGITS_5000 + "}]", PCV),
    Case("integer-of-400-digits", call("c9", "StatusNotification", {"connectorId": 10**400, **STATUS}), PCV),
    Case("integer-beyond-int32", call("c10", "StartTransaction", {**START, "meterStart": 2**31}), PCV),
    Case("nan", '[2, "c11", "MeterValues", {"connectorId": 1, "meterValue": NaN}]', PCV),
    Case("infinity", '[2, "c12", "Heartbeat", {"x": Infinity}]', PCV),
    Case("float-overflow", '[2, "c13", "Heartbeat", {"x": 1e999}]', PCV),
    Case("nested-20000-deep", '[2, "c14", "DataTransfer", ' + DEEP + "]", FV),
    Case("nested-100-deep-payload", call("c15", "DataTransfer", {"vendorId": "v", "more": NESTED_100}), FV),
    Case("start-transaction-year-1", call("c16", "StartTransaction", start_at("0001-01-01T00:00:00+01:00")), PCV),
    Case("start-transaction-year-9999", call("c17", "StartTransaction", start_at("9999-12-31T23:59:59-01:00")), PCV),
    Case("meter-values-year-9999", call("c18", "MeterValues", {"connectorId": 1, "meterValue": METER_9999}), PCV),
    Case("unknown-message-type", '[7, "c19", "Heartbeat", {}]', FV),
    Case("schema-violation", call("c20", "BootNotification", {"chargePointModel": 5}), FV),
]


async def open_station(cs: CentralSystem, path: str, **kwargs: object) -> ClientConnection:
    url = f"ws://{cs.host}:{cs.port}{path}"  # the raw path, whatever prefix the server expects
    return await connect(url, subprotocols=["ocpp1.6"], open_timeout=WAIT, **kwargs)  # type: ignore[list-item, arg-type]


async def answer_to(ws: ClientConnection, unique_id: str) -> list[object]:
    """The frame answering `unique_id` (frames for other ids are skipped; bounded by WAIT)."""
    async with asyncio.timeout(WAIT):
        while True:
            frame = json.loads(await ws.recv())
            if frame[1] == unique_id:
                return list(frame)


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    crashed = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not crashed, [r.getMessage() for r in crashed]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_hostile_frame_gets_its_callerror_and_the_connection_survives(
    cs: CentralSystem, case: Case, no_tracebacks: None
) -> None:
    ws = await open_station(cs, "/CP-HOSTILE")
    await ws.send(case.frame)
    reply = await answer_to(ws, case.unique_id)
    assert reply[0] == 4 and reply[2] == case.code, reply
    assert isinstance(reply[3], str) and len(reply[3]) < 500  # a description, not an echo of the frame
    await ws.send(call("after", "Heartbeat", {}))
    assert (await answer_to(ws, "after"))[0] == 3
    assert cs.is_connected("CP-HOSTILE")
    await ws.close()


async def test_frames_without_a_usable_unique_id_are_dropped_and_the_connection_survives(
    cs: CentralSystem, no_tracebacks: None
) -> None:
    ws = await open_station(cs, "/CP-HOSTILE")
    for frame in ["not json", DEEP, '[2, ["id"], "Heartbeat", {}]', '[2, 5, "Heartbeat", {}]', "[]", "[2]", '"x"',
                  "{" + '"a":' * 5000 + "1" + "}" * 5000, DIGITS_5000]:  # fmt: skip
        await ws.send(frame)
    await ws.send(call("after", "Heartbeat", {}))
    reply = await answer_to(ws, "after")
    assert reply[0] == 3
    assert cs.is_connected("CP-HOSTILE")
    await ws.close()


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ('{"status": ' + DIGITS_5000 + "}", "PropertyConstraintViolation"),
        ('{"configurationKey": ' + DEEP + "}", "FormationViolation"),
        (json.dumps({"configurationKey": NESTED_100}), "FormationViolation"),
        ('{"configurationKey": [}', "FormationViolation"),
    ],
    ids=["5000-digits", "20000-deep", "100-deep", "not-json"],
)
async def test_an_unreadable_answer_to_our_call_fails_that_call_at_once(
    cs: CentralSystem, answer: str, code: str, no_tracebacks: None
) -> None:
    """Values in an answer (NaN, a huge limit) are the engine's to judge, field by field
    (tests/engine/test_hostile_station.py); what cannot be read at all fails the call here."""
    ws = await open_station(cs, "/CP-HOSTILE")
    pending = asyncio.create_task(cs.call("CP-HOSTILE", "GetConfiguration", {}, timeout=WAIT))
    request = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    await ws.send(f'[3, "{request[1]}", {answer}]')
    reply = await pending
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == code, reply
    assert cs.is_connected("CP-HOSTILE")
    assert (await asyncio.wait_for(answer_after_call(cs, ws), WAIT)).ok
    await ws.close()


async def answer_after_call(cs: CentralSystem, ws: ClientConnection):  # type: ignore[no-untyped-def]
    pending = asyncio.create_task(cs.call("CP-HOSTILE", "GetConfiguration", {}, timeout=WAIT))
    request = json.loads(await ws.recv())
    await ws.send(json.dumps([3, request[1], {"configurationKey": []}]))
    return await pending


# --- one connection per station ----------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def closed_cs() -> AsyncIterator[CentralSystem]:
    async with CentralSystem(port=0, passwords={"CP-1": "pw"}, call_timeout=5.0) as server:
        yield server


async def test_fifty_concurrent_connections_for_one_station_leave_exactly_one(closed_cs: CentralSystem) -> None:
    sockets = await asyncio.gather(
        *(open_station(closed_cs, "/CP-1", additional_headers=basic("CP-1", "pw")) for _ in range(50))
    )
    calls_seen: list[int] = []
    closed: dict[int, tuple[int | None, str]] = {}

    async def serve(index: int, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                frame = json.loads(message)
                if frame[0] == 2:
                    calls_seen.append(index)
                    await ws.send(json.dumps([3, frame[1], {"configurationKey": []}]))
        except ConnectionClosed:
            pass
        rcvd = ws.close_code, ws.close_reason
        closed[index] = rcvd

    readers = [asyncio.create_task(serve(i, ws)) for i, ws in enumerate(sockets)]
    async with asyncio.timeout(WAIT):  # the older 49 are closed by the server, with a reason
        while len(closed) < 49:
            await asyncio.sleep(0.01)
    survivors = [i for i in range(50) if i not in closed]
    assert len(survivors) == 1
    assert all(code == 1000 and "replaced by a newer connection" in reason for code, reason in closed.values())
    for _ in range(3):
        assert (await closed_cs.call("CP-1", "GetConfiguration", {})).ok
    assert calls_seen == survivors * 3  # every call reached the one open connection
    assert closed_cs.connected_stations() == {"CP-1"}
    await sockets[survivors[0]].close()
    await asyncio.gather(*readers)


async def test_a_replaced_connection_can_no_longer_act_for_the_station(closed_cs: CentralSystem) -> None:
    old = await open_station(closed_cs, "/CP-1", additional_headers=basic("CP-1", "pw"))
    new = await open_station(closed_cs, "/CP-1", additional_headers=basic("CP-1", "pw"))
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(WAIT):
            await old.recv()
    assert old.close_code == 1000 and "replaced" in (old.close_reason or "")
    await new.send(call("n1", "Heartbeat", {}))
    assert (await answer_to(new, "n1"))[0] == 3
    await new.close()


@pytest.mark.parametrize("path", ["/any/thing/CP-1", "//CP-1", "/CP-1/", "/CP-1/extra", "/%2FCP-1", "/CP%2F1"])
async def test_only_the_configured_path_prefix_is_accepted(closed_cs: CentralSystem, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_station(closed_cs, path, additional_headers=basic("CP-1", "pw"))
    assert refused.value.response.status_code == 404
    assert closed_cs.connected_stations() == set()


async def test_a_configured_path_prefix() -> None:
    async with CentralSystem(port=0, passwords={"CP-1": "pw", "CP-0001": "pw"}, path_prefix="/ocpp/") as cs:
        for refused_path in ("/CP-1", "/other/CP-1", "/ocpp/x/CP-1"):
            with pytest.raises(InvalidStatus):
                await open_station(cs, refused_path, additional_headers=basic("CP-1", "pw"))
        ws = await open_station(cs, "/ocpp/CP-1", additional_headers=basic("CP-1", "pw"))
        assert await cs.wait_for_stations(["CP-1"], WAIT, booted=False) == {"CP-1"}
        await ws.close()
        assert cs.url.endswith("/ocpp")  # simulators and chargers append /{stationId} to it
        async with Fleet(cs.url, 1, prefix="CP-", password="pw", backoff_initial=0.05):
            assert await cs.wait_for_stations(["CP-0001"], WAIT) == {"CP-0001"}
