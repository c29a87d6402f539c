"""An in-memory Gateway: simulated charge points called in-process, no sockets.

Flow: engine -> `MemoryGateway.call` -> `SimulatedChargePoint.handle` -> `Reply`, with the same
reply kinds as the real Central System (a SimCallError becomes CALL_ERROR, a station that is not
added or is `disconnect`ed is OFFLINE). Charger-initiated messages (StartTransaction, MeterValues,
BootNotification after a Reset...) are answered by the same `StationRegistry` the Central System
uses, so events and station state look alike. Ships beside the real transports, like httpx's
MockTransport, for fast unit tests of the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from reconciler import clock
from reconciler.simulator.charge_point import SimCallError, SimulatedChargePoint
from reconciler.transport.gateway import BootCheck, EventHub, Reply, StationEvent
from reconciler.transport.stations import StationInfo, StationRegistry, TransactionSink, UnsupportedAction


class MemoryGateway:
    """`Gateway` over in-process `SimulatedChargePoint`s. `add()` connects and boots a station."""

    def __init__(self, stations: Iterable[SimulatedChargePoint] = (), *, heartbeat_interval: int = 300) -> None:
        self.hub = EventHub()
        self.registry = StationRegistry(self.hub, heartbeat_interval=heartbeat_interval, clock=clock.now)
        self.stations: dict[str, SimulatedChargePoint] = {}
        self._online: set[str] = set()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (station, action, payload) in order
        self._failures: dict[tuple[str, str], list[Reply]] = {}
        for station in stations:
            self.add(station)

    def add(self, station: SimulatedChargePoint, *, boot: bool = True) -> SimulatedChargePoint:
        """Connect a station (and, with `boot`, answer its BootNotification and StatusNotifications)."""
        self.stations[station.station_id] = station
        station.sender = self._sender(station.station_id)
        self._online.add(station.station_id)
        self.registry.connected(station.station_id)
        if boot:
            self._boot(station)
        return station

    def _boot(self, station: SimulatedChargePoint) -> None:
        station.boot_answered(self._handle_outgoing(station.station_id, "BootNotification", station.boot_payload()))
        for connector_id in range(station.connectors + 1):
            status = "Charging" if connector_id in station.transactions else "Available"
            self._handle_outgoing(
                station.station_id,
                "StatusNotification",
                {"connectorId": connector_id, "errorCode": "NoError", "status": status},
            )

    def disconnect(self, station_id: str) -> None:
        if station_id in self._online:
            self._online.discard(station_id)
            self.registry.disconnected(station_id, "disconnected by the test")

    def reconnect(self, station_id: str, *, boot: bool = True) -> None:
        self.add(self.stations[station_id], boot=boot)

    def fail(self, station_id: str, action: str, reply: Reply, times: int = 1) -> None:
        """Answer the next `times` calls of `action` to `station_id` with `reply` (e.g.
        `Reply.timeout()`) without reaching the station: for retry and backoff tests."""
        self._failures.setdefault((station_id, action), []).extend([reply] * times)

    def station(self, station_id: str) -> StationInfo | None:
        return self.registry.get(station_id)

    # --- Gateway --------------------------------------------------------------------------------

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        station = self.stations.get(station_id)
        if station is None or station_id not in self._online:
            return Reply.offline(f"station {station_id} is not connected")
        self.calls.append((station_id, action, payload))
        scripted = self._failures.get((station_id, action))
        if scripted:
            return scripted.pop(0)
        if station.silent:
            return Reply.timeout(f"{station_id} did not answer {action}")
        try:
            answer = station.handle(action, payload)
        except SimCallError as exc:
            return Reply.call_error(exc.code, exc.description)
        if station.reset_requested is not None:
            asyncio.get_running_loop().call_soon(self._reboot, station)
        await asyncio.sleep(0)  # let the station's own messages (e.g. StartTransaction) go out
        return Reply.answered(answer)

    def _reboot(self, station: SimulatedChargePoint) -> None:
        for connector_id in list(station.transactions):
            transaction = station.transactions[connector_id]
            self._handle_outgoing(
                station.station_id, "StopTransaction", {"transactionId": transaction.transaction_id, "meterStop": 0}
            )
        self.disconnect(station.station_id)
        station.reboot()
        self.add(station)

    def is_connected(self, station_id: str) -> bool:
        return station_id in self._online

    def connected_stations(self) -> set[str]:
        return set(self._online)

    def subscribe(self) -> asyncio.Queue[StationEvent]:
        return self.hub.subscribe()

    def use_journal(self, sink: TransactionSink) -> None:
        """Report transactions to `sink`, as the Central System does."""
        self.registry.use_sink(sink)

    async def wait_booted(self, station_id: str, timeout: float) -> BootCheck:
        """Stations boot as they are added; one that was added without booting is not ready."""
        info = self.registry.get(station_id)
        if info is None or info.booted_at is None or info.connected_at is None or info.booted_at < info.connected_at:
            return BootCheck(False, f"station {station_id} has not booted")
        return BootCheck(True)

    async def wait_for_stations(self, ids: Iterable[str], timeout: float, *, booted: bool = True) -> set[str]:
        return {i for i in ids if i in self._online}

    # --- the station's own messages -------------------------------------------------------------

    def _sender(self, station_id: str) -> Any:
        async def send(action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
            if station_id not in self._online:
                return None
            return self._handle_outgoing(station_id, action, payload)

        return send

    def _handle_outgoing(self, station_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.registry.handle(station_id, action, payload)
        except UnsupportedAction:
            return None
