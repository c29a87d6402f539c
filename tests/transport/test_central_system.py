"""The embedded Central System with real simulated stations over websockets on loopback."""

from __future__ import annotations

import asyncio

from reconciler.simulator.fleet import Fleet
from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import ReplyKind, StationEvent, StationEventKind
from tests.transport.conftest import WAIT, cp_max

CP = "PY-SIM-0001"


async def next_event(queue: asyncio.Queue[StationEvent], kind: StationEventKind) -> StationEvent:
    """The next event of `kind` (others are skipped), within WAIT seconds."""

    async def find() -> StationEvent:
        while True:
            event = await queue.get()
            if event.kind is kind:
                return event

    return await asyncio.wait_for(find(), WAIT)


async def test_boot_registers_the_station(cs: CentralSystem, fleet: Fleet) -> None:
    info = cs.station(CP)
    assert info is not None and info.connected
    assert (info.vendor, info.model, info.firmware) == ("reconciler", "PySim", "sim-1.0")
    assert info.booted_at is not None
    assert {c: s.status for c, s in info.connectors.items()} == {0: "Available", 1: "Available", 2: "Available"}
    assert cs.connected_stations() == set(fleet.stations)
    assert cs.is_connected(CP)


async def test_heartbeat_and_other_charger_initiated_calls(cs: CentralSystem, fleet: Fleet) -> None:
    client = fleet.clients[CP]
    answer = await client.call("Heartbeat", {})
    assert answer is not None and answer["currentTime"].endswith("Z")
    info = cs.station(CP)
    assert info is not None and info.last_heartbeat is not None
    assert await client.call("Authorize", {"idTag": "TAG"}) == {"idTagInfo": {"status": "Accepted"}}
    assert await client.call("DataTransfer", {"vendorId": "acme"}) == {"status": "UnknownVendorId"}
    # a schema violation from the charger is a CallError, not a crash
    assert await client.call("BootNotification", {"chargePointModel": "x"}) is None
    assert cs.is_connected(CP)


async def test_transaction_events_and_meter_values(cs: CentralSystem, fleet: Fleet) -> None:
    events = cs.subscribe()
    reply = await cs.call(CP, "RemoteStartTransaction", {"idTag": "TAG", "connectorId": 1})
    assert reply.ok and reply.status == "Accepted"
    started = await next_event(events, StationEventKind.TRANSACTION_STARTED)
    transaction_id = started.data["transactionId"]
    info = cs.station(CP)
    assert info is not None and info.transactions[1][0] == transaction_id
    charging = await next_event(events, StationEventKind.STATUS)  # sent once the station holds the transaction
    assert charging.data["status"] == "Charging"

    await fleet[CP].send_meter_values(1)
    await next_event(events, StationEventKind.METER_VALUES)
    assert info.meter_values[1]["Current.Offered"] == 32.0
    assert info.meter_values[1]["Power.Active.Import"] == 32 * 230 * 3

    reply = await cs.call(CP, "RemoteStopTransaction", {"transactionId": transaction_id})
    assert reply.status == "Accepted"
    stopped = await next_event(events, StationEventKind.TRANSACTION_STOPPED)
    assert stopped.data["transactionId"] == transaction_id
    assert info.transactions == {}
    assert (await cs.call(CP, "RemoteStopTransaction", {"transactionId": 999})).status == "Rejected"


async def test_smart_charging_round_trip(cs: CentralSystem, fleet: Fleet) -> None:
    reply = await cs.call(CP, "GetCompositeSchedule", {"connectorId": 1, "duration": 600, "chargingRateUnit": "A"})
    assert reply.ok and reply.payload is not None
    assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 32.0}]

    assert (await cs.call(CP, "SetChargingProfile", cp_max(7400, "W"))).status == "Accepted"
    reply = await cs.call(CP, "GetCompositeSchedule", {"connectorId": 1, "duration": 600, "chargingRateUnit": "A"})
    assert reply.payload is not None
    assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.7}]
    assert fleet[CP].calls["SetChargingProfile"] == 1

    assert (await cs.call(CP, "ClearChargingProfile", {"id": 1})).status == "Accepted"
    assert (await cs.call(CP, "ClearChargingProfile", {"id": 1})).status == "Unknown"
    reply = await cs.call(CP, "GetCompositeSchedule", {"connectorId": 0, "duration": 60, "chargingRateUnit": "A"})
    assert reply.payload is not None
    assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 64.0}]

    tx_profile = cp_max(10)
    tx_profile["connectorId"] = 1
    tx_profile["csChargingProfiles"]["chargingProfilePurpose"] = "TxProfile"
    assert (await cs.call(CP, "SetChargingProfile", tx_profile)).status == "Rejected"  # no transaction


async def test_configuration_keys(cs: CentralSystem, fleet: Fleet) -> None:
    reply = await cs.call(CP, "GetConfiguration", {"key": ["ChargeProfileMaxStackLevel", "Nope"]})
    assert reply.payload == {
        "configurationKey": [{"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "20"}],
        "unknownKey": ["Nope"],
    }
    change = {"key": "ChargeProfileMaxStackLevel", "value": "3"}
    assert (await cs.call(CP, "ChangeConfiguration", change)).status == "Rejected"
    change = {"key": "ScheduledMode", "value": "Eco"}
    assert (await cs.call(CP, "ChangeConfiguration", change)).status == "Accepted"
    change = {"key": "WebSocketPingInterval", "value": "30"}
    assert (await cs.call(CP, "ChangeConfiguration", change)).status == "RebootRequired"
    change = {"key": "Unknown", "value": "1"}
    assert (await cs.call(CP, "ChangeConfiguration", change)).status == "NotSupported"
    everything = await cs.call(CP, "GetConfiguration", {})
    assert everything.payload is not None and len(everything.payload["configurationKey"]) > 10


async def test_call_errors_are_not_swallowed(cs: CentralSystem, fleet: Fleet) -> None:
    reply = await cs.call(CP, "UnlockConnector", {"connectorId": 1})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "NotImplemented"
    assert not reply.temporary
    # an invalid request is refused before it is sent
    reply = await cs.call(CP, "SetChargingProfile", {"connectorId": "one"})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "FormationViolation"
    assert fleet[CP].calls["SetChargingProfile"] == 0
    reply = await cs.call(CP, "DataTransfer", {"vendorId": "x", "data": object()})  # type: ignore[dict-item]
    assert reply.kind is ReplyKind.CALL_ERROR and "not JSON" in (reply.description or "")


async def test_offline_timeout_and_disconnect_mid_call(cs: CentralSystem, fleet: Fleet) -> None:
    reply = await cs.call("NOT-THERE", "Heartbeat", {})
    assert reply.kind is ReplyKind.OFFLINE and reply.temporary

    fleet.clients["PY-SIM-0002"].hang_on.add("GetConfiguration")
    reply = await cs.call("PY-SIM-0002", "GetConfiguration", {}, timeout=0.2)
    assert reply.kind is ReplyKind.TIMEOUT and reply.temporary

    fleet.clients[CP].drop_on.add("GetCompositeSchedule")
    reply = await cs.call(CP, "GetCompositeSchedule", {"connectorId": 0, "duration": 60}, timeout=WAIT)
    assert reply.kind is ReplyKind.OFFLINE and reply.temporary

    # the other stations are unaffected, and the dropped one comes back by itself
    assert (await cs.call("PY-SIM-0003", "GetConfiguration", {"key": ["NumberOfConnectors"]})).ok
    fleet.clients[CP].drop_on.clear()
    assert await cs.wait_for_stations([CP], WAIT) == {CP}
    assert fleet.clients[CP].connections == 2


async def test_reset_reboots_and_keeps_profiles(cs: CentralSystem, fleet: Fleet) -> None:
    events = cs.subscribe()
    assert (await cs.call(CP, "SetChargingProfile", cp_max(16))).status == "Accepted"
    assert (await cs.call(CP, "Reset", {"type": "Soft"})).status == "Accepted"
    booted = await next_event(events, StationEventKind.BOOTED)
    assert booted.station_id == CP
    assert await cs.wait_for_stations([CP], WAIT) == {CP}
    reply = await cs.call(CP, "GetCompositeSchedule", {"connectorId": 1, "duration": 60, "chargingRateUnit": "A"})
    assert reply.payload is not None
    assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0
    assert fleet[CP].boots == 1


async def test_stations_reconnect_when_the_central_system_restarts(cs: CentralSystem, fleet: Fleet) -> None:
    port = cs.port
    await cs.stop()
    assert cs.connected_stations() == set()
    restarted = CentralSystem(port=port, allow_unknown=True)
    async with restarted:
        assert await restarted.wait_for_stations(fleet.stations, WAIT) == set(fleet.stations)
        assert (await restarted.call(CP, "GetConfiguration", {"key": ["NumberOfConnectors"]})).ok


async def test_many_stations_concurrently() -> None:
    server = CentralSystem(port=0, allow_unknown=True, heartbeat_interval=123)
    async with server, Fleet(server.url, 200, prefix="MANY-", backoff_initial=0.05) as many:
        assert await server.wait_for_stations(many.stations, WAIT) == set(many.stations)
        replies = await asyncio.gather(
            *(server.call(s, "SetChargingProfile", cp_max(10 + i % 20)) for i, s in enumerate(many.stations))
        )
        assert all(r.status == "Accepted" for r in replies)
        assert all(c.heartbeat_interval == 123 for c in many.clients.values())
        assert sum(s.calls["SetChargingProfile"] for s in many.stations.values()) == 200


async def test_auto_ev_starts_a_transaction_after_boot(cs: CentralSystem) -> None:
    async with Fleet(cs.url, 2, prefix="EV-", auto_ev=True, backoff_initial=0.05) as evs:
        events = cs.subscribe()
        assert await cs.wait_for_stations(evs.stations, WAIT) == set(evs.stations)
        started: set[str] = set()
        while started != set(evs.stations):  # bounded by next_event's timeout
            info = [cs.station(s) for s in evs.stations]
            started = {i.station_id for i in info if i is not None and 1 in i.transactions}
            if started != set(evs.stations):
                await next_event(events, StationEventKind.TRANSACTION_STARTED)
        assert (await cs.call("EV-0001", "SetChargingProfile", cp_max(6))).ok
        station = evs["EV-0001"]
        assert station.offered_current(1)[0] == 6.0
