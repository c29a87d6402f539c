"""The in-memory Gateway behaves like the Central System, without sockets."""

from __future__ import annotations

import asyncio

from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.quirks import Quirks
from reconciler.transport.gateway import Gateway, Reply, ReplyKind, StationEventKind
from reconciler.transport.memory import MemoryGateway
from tests.transport.conftest import WAIT, cp_max


async def test_memory_gateway_calls_events_and_reboot() -> None:
    gateway = MemoryGateway(
        [SimulatedChargePoint("A"), SimulatedChargePoint("B", quirks=Quirks(lose_profiles_on_reboot=True))]
    )
    assert isinstance(gateway, Gateway)
    events = gateway.subscribe()
    assert gateway.connected_stations() == {"A", "B"}
    info = gateway.station("A")
    assert info is not None and info.booted_at is not None and info.model == "PySim"

    assert (await gateway.call("B", "SetChargingProfile", cp_max(10))).status == "Accepted"
    assert (await gateway.call("B", "Reset", {"type": "Hard"})).status == "Accepted"
    kinds = []
    while StationEventKind.BOOTED not in kinds:  # bounded by the timeout
        kinds.append((await asyncio.wait_for(events.get(), WAIT)).kind)
    assert kinds[:2] == [StationEventKind.DISCONNECTED, StationEventKind.CONNECTED]
    reply = await gateway.call("B", "GetCompositeSchedule", {"connectorId": 1, "duration": 60, "chargingRateUnit": "A"})
    assert reply.payload is not None
    assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 32.0}]

    assert (await gateway.call("A", "RemoteStartTransaction", {"idTag": "T", "connectorId": 2})).ok
    started = await asyncio.wait_for(events.get(), WAIT)
    while started.kind is StationEventKind.STATUS:  # bounded: the queue holds a few status events
        started = await asyncio.wait_for(events.get(), WAIT)
    assert started.kind is StationEventKind.TRANSACTION_STARTED and started.data["transactionId"] == 1

    gateway.disconnect("A")
    assert (await gateway.call("A", "GetConfiguration", {})).kind is ReplyKind.OFFLINE
    gateway.reconnect("A")
    assert (await gateway.call("A", "GetConfiguration", {})).ok
    assert [action for _, action, _ in gateway.calls].count("GetConfiguration") == 1


async def test_memory_gateway_scripted_failures() -> None:
    gateway = MemoryGateway([SimulatedChargePoint("A")])
    gateway.fail("A", "SetChargingProfile", Reply.timeout("scripted"), times=2)
    assert (await gateway.call("A", "SetChargingProfile", cp_max(10))).kind is ReplyKind.TIMEOUT
    assert (await gateway.call("A", "SetChargingProfile", cp_max(10))).kind is ReplyKind.TIMEOUT
    assert (await gateway.call("A", "SetChargingProfile", cp_max(10))).status == "Accepted"
    assert gateway.stations["A"].calls["SetChargingProfile"] == 1
