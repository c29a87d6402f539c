"""The Central System's keepalive over real websockets: only a quiet connection is pinged; a station
that keeps talking is not (its frames prove the connection); one that stops answering is
disconnected with the reason. (websockets' own keepalive pinged every connection every interval:
at 10,000 stations a write and a read per station per interval on top of the drift checks.)"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import StationEventKind
from tests.engine.fleetkit import until
from tests.transport.conftest import WAIT


class Pings(logging.Handler):
    """Counts the pings a client received (websockets logs every frame it reads at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("< PING"):
            self.count += 1


@pytest.fixture
def pings() -> Iterator[Pings]:
    handler = Pings()
    logger = logging.getLogger("tests.keepalive.client")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def station(cs: CentralSystem, name: str) -> ClientConnection:
    client = await connect(f"{cs.url}/{name}", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           logger=logging.getLogger("tests.keepalive.client"), ping_interval=None)  # fmt: skip
    await until(lambda: cs.is_connected(name), f"{name} connected")
    return client


async def test_a_quiet_station_is_pinged_and_stays_connected(pings: Pings) -> None:
    async with CentralSystem(port=0, allow_unknown=True, ping_interval=0.3, ping_timeout=2.0) as cs:
        client = await station(cs, "QUIET-1")
        await until(lambda: pings.count >= 2, "two keepalive pings received")
        assert cs.keepalive is not None and cs.keepalive.pings >= 2
        assert cs.is_connected("QUIET-1")  # it answered every ping (websockets answers pongs itself)
        await client.close()


async def test_a_station_that_keeps_talking_is_not_pinged(pings: Pings) -> None:
    async with CentralSystem(port=0, allow_unknown=True, ping_interval=1.0, ping_timeout=2.0) as cs:
        client = await station(cs, "TALKER-1")
        for n in range(30):  # a Heartbeat every 0.1 s for 3 s: never quiet for the 1 s interval
            await client.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
            answer = json.loads(await asyncio.wait_for(client.recv(), WAIT))
            assert answer[:2] == [3, f"h{n}"]
            await asyncio.sleep(0.1)
        assert pings.count == 0
        assert cs.keepalive is not None and cs.keepalive.pings == 0
        await client.close()


async def test_a_station_that_does_not_answer_pings_is_disconnected_with_the_reason(pings: Pings) -> None:
    async with CentralSystem(port=0, allow_unknown=True, ping_interval=0.3, ping_timeout=0.3) as cs:
        events = cs.subscribe()
        client = await station(cs, "DEAD-1")
        client.transport.pause_reading()  # a peer that is gone: our pings are never read nor answered
        await until(lambda: not cs.is_connected("DEAD-1"), "the dead station disconnected")
        reasons = []
        while not events.empty():
            event = events.get_nowait()
            if event.kind is StationEventKind.DISCONNECTED:
                reasons.append(event.data["reason"])
        assert reasons == ["no answer to a keepalive ping within 0.3 s"]
        client.transport.abort()


async def test_no_keepalive_when_the_interval_is_off() -> None:
    async with CentralSystem(port=0, allow_unknown=True, ping_interval=None) as cs:
        assert cs.keepalive is None
        client = await station(cs, "OFF-1")
        assert cs.is_connected("OFF-1")
        await client.close()
