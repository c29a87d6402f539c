"""What the Central System knows about each station, and its answers to charger-initiated calls.

Flow: a charger's Call (BootNotification, Heartbeat, StatusNotification, Authorize,
Start/StopTransaction, MeterValues, DataTransfer...) arrives at `central_system`, which passes the
decoded payload here. `StationRegistry.handle` updates the station's `StationInfo`, returns the
CallResult payload, and publishes a `StationEvent` on the hub. No sockets, no `ocpp` import: the
framing and schema validation happen in `central_system`; this module is plain state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.core.profiles import format_time, parse_time
from reconciler.transport.gateway import EventHub, StationEvent, StationEventKind

# Connector statuses that mean a transaction runs, and those that mean none does (OCPP 1.6 §7.7).
RUNNING = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
FREE = frozenset({"Available", "Preparing", "Finishing", "Reserved"})


class TransactionSink(Protocol):
    """Where the registry reports what it learns of transactions (the store's journal), so that a
    later run knows them; it also hands out transaction ids that stay unique across runs, and hears
    of restarts (a BootNotification after one already seen), which may have lost profiles."""

    def next_transaction_id(self) -> int: ...

    def station_restarted(self, station_id: str, at: datetime) -> None: ...

    def transaction_started(
        self, station_id: str, connector_id: int, transaction_id: int, start: datetime, *,
        meter_start: int | None = None, id_tag: str | None = None, at: datetime,
    ) -> None: ...  # fmt: skip

    def transaction_stopped(
        self, station_id: str, transaction_id: int, stop: datetime, *, meter_stop: int | None = None,
        reason: str | None = None,
    ) -> None: ...  # fmt: skip

    def transaction_seen(
        self, station_id: str, connector_id: int, transaction_id: int | None, at: datetime
    ) -> None: ...

    def connector_free(self, station_id: str, connector_id: int, at: datetime) -> None: ...


class UnsupportedAction(Exception):
    """A charger sent an action the Central System does not implement (-> CallError NotImplemented)."""


@dataclass(slots=True)
class ConnectorState:
    status: str = "Unknown"
    error_code: str = "NoError"
    updated: datetime | None = None


@dataclass(slots=True)
class StationInfo:
    """One station as seen from the Central System; mutated only by the registry."""

    station_id: str
    connected: bool = False
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    booted_at: datetime | None = None
    last_seen: datetime | None = None
    last_heartbeat: datetime | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    # connectorId -> (transactionId, start): transactions seen starting on this Central System
    transactions: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    # connectorId -> transactionId (None: unknown) of a transaction seen running (a Charging status,
    # MeterValues with its id) whose start this Central System did not see
    running: dict[int, int | None] = field(default_factory=dict)
    # connectorId -> {measurand: value} from the latest MeterValues
    meter_values: dict[int, dict[str, float]] = field(default_factory=dict)
    boots: int = 0
    boot_asked: bool = False  # a TriggerMessage BootNotification was sent: the next boot is no restart

    @property
    def status(self) -> str:
        """The charge point's own status (connector 0), or Unknown before the first notification."""
        state = self.connectors.get(0)
        return state.status if state else "Unknown"


def _stopped_drawing(info: StationInfo, connector_id: int) -> None:
    """A stopped transaction draws nothing: its connector's last MeterValues are not power drawn now
    (a charger samples only during a transaction, so no later sample would say so)."""
    values = info.meter_values.get(connector_id)
    if values:
        for measurand in ("Power.Active.Import", "Current.Import"):
            if measurand in values:
                values[measurand] = 0.0


def _sampled_values(payload: dict[str, Any]) -> dict[str, float]:
    """The latest sampled value per measurand (default measurand: Energy.Active.Import.Register)."""
    values: dict[str, float] = {}
    for meter_value in payload.get("meterValue") or []:
        for sample in meter_value.get("sampledValue") or []:
            measurand = sample.get("measurand") or "Energy.Active.Import.Register"
            phase = sample.get("phase")
            key = f"{measurand}.{phase}" if phase else measurand
            try:
                values[key] = float(sample.get("value"))
            except (TypeError, ValueError):
                continue
    return values


class StationRegistry:
    """Per-station state plus the answers to every charger-initiated OCPP 1.6 call we support."""

    def __init__(self, hub: EventHub, *, heartbeat_interval: int, clock: Callable[[], datetime]) -> None:
        self.hub = hub
        self.heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._stations: dict[str, StationInfo] = {}
        self._next_transaction_id = 1
        self.sink: TransactionSink | None = None
        self._handlers: dict[str, Callable[[StationInfo, dict[str, Any], datetime], dict[str, Any]]] = {
            "BootNotification": self._boot,
            "Heartbeat": self._heartbeat,
            "StatusNotification": self._status,
            "Authorize": self._authorize,
            "StartTransaction": self._start_transaction,
            "StopTransaction": self._stop_transaction,
            "MeterValues": self._meter_values,
            "DataTransfer": self._data_transfer,
            "FirmwareStatusNotification": self._empty,
            "DiagnosticsStatusNotification": self._empty,
        }

    # --- lifecycle ------------------------------------------------------------------------------

    def use_sink(self, sink: TransactionSink) -> None:
        """Report transactions to `sink` from now on, starting with what is known already."""
        self.sink = sink
        now = self._clock()
        for info in self._stations.values():
            for connector_id, (transaction_id, start) in info.transactions.items():
                sink.transaction_started(info.station_id, connector_id, transaction_id, start, at=now)
            for connector_id, running in info.running.items():
                sink.transaction_seen(info.station_id, connector_id, running, now)
            for connector_id, state in info.connectors.items():
                busy = connector_id in info.transactions or connector_id in info.running  # newer than the status
                if connector_id > 0 and state.status in FREE and not busy:
                    sink.connector_free(info.station_id, connector_id, state.updated or now)

    def get(self, station_id: str) -> StationInfo | None:
        return self._stations.get(station_id)

    def all(self) -> list[StationInfo]:
        return list(self._stations.values())

    def connected(self, station_id: str) -> StationInfo:
        now = self._clock()
        info = self._stations.get(station_id)
        if info is None:
            info = self._stations[station_id] = StationInfo(station_id)
        info.connected, info.connected_at, info.last_seen = True, now, now
        info.boot_asked = False
        self._publish(StationEventKind.CONNECTED, station_id, now, {})
        return info

    def disconnected(self, station_id: str, reason: str = "") -> None:
        info = self._stations.get(station_id)
        if info is None:
            return
        now = self._clock()
        info.connected, info.disconnected_at = False, now
        self._publish(StationEventKind.DISCONNECTED, station_id, now, {"reason": reason})

    def supports(self, action: str) -> bool:
        return action in self._handlers

    def handle(self, station_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The CallResult payload for a charger's call; raises UnsupportedAction."""
        handler = self._handlers.get(action)
        if handler is None:
            raise UnsupportedAction(action)
        info = self._stations.get(station_id) or self.connected(station_id)
        now = self._clock()
        info.last_seen = now
        return handler(info, payload, now)

    def _publish(self, kind: StationEventKind, station_id: str, at: datetime, data: dict[str, Any]) -> None:
        if self.hub.subscribers:
            self.hub.publish(StationEvent(kind, station_id, at, data))

    # --- handlers -------------------------------------------------------------------------------

    def _boot(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        info.vendor = payload.get("chargePointVendor")
        info.model = payload.get("chargePointModel")
        info.firmware = payload.get("firmwareVersion")
        info.serial = payload.get("chargePointSerialNumber")
        info.booted_at = now
        info.boots += 1
        asked, info.boot_asked = info.boot_asked, False
        if info.boots > 1 and not asked and self.sink is not None:
            # A restart seen while this Central System was up (a first boot may be a mere connection,
            # one it asked for with TriggerMessage is not a restart): the charger may have lost profiles.
            self.sink.station_restarted(info.station_id, now)
        # Transactions are not cleared here: a charger that merely reconnects keeps them, and one that
        # rebooted reports their end with StopTransaction.
        self._publish(StationEventKind.BOOTED, info.station_id, now, payload)
        return {"status": "Accepted", "currentTime": format_time(now), "interval": self.heartbeat_interval}

    def _heartbeat(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        info.last_heartbeat = now
        return {"currentTime": format_time(now)}

    def _status(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        connector_id = int(payload.get("connectorId", 0))
        state = info.connectors.setdefault(connector_id, ConnectorState())
        state.status = str(payload.get("status", "Unknown"))
        state.error_code = str(payload.get("errorCode", "NoError"))
        state.updated = now
        if connector_id > 0 and state.status in FREE:
            info.transactions.pop(connector_id, None)
            info.running.pop(connector_id, None)
            if self.sink is not None:
                self.sink.connector_free(info.station_id, connector_id, now)
        elif connector_id > 0 and state.status in RUNNING and connector_id not in info.transactions:
            info.running.setdefault(connector_id, None)
            if self.sink is not None:
                self.sink.transaction_seen(info.station_id, connector_id, info.running[connector_id], now)
        self._publish(StationEventKind.STATUS, info.station_id, now, payload)
        return {}

    def _authorize(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {"idTagInfo": {"status": "Accepted"}}

    def _start_transaction(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        if self.sink is not None:
            self._next_transaction_id = max(self._next_transaction_id, self.sink.next_transaction_id())
        transaction_id = self._next_transaction_id
        self._next_transaction_id += 1
        connector_id = int(payload.get("connectorId", 1))
        try:
            start = parse_time(payload.get("timestamp"))
        except ValueError:
            start = now
        info.transactions[connector_id] = (transaction_id, start)
        info.running.pop(connector_id, None)
        if self.sink is not None:
            meter = payload.get("meterStart")
            self.sink.transaction_started(
                info.station_id, connector_id, transaction_id, start, at=now,
                meter_start=meter if isinstance(meter, int) else None, id_tag=payload.get("idTag"),
            )  # fmt: skip
        self._publish(
            StationEventKind.TRANSACTION_STARTED, info.station_id, now, {**payload, "transactionId": transaction_id}
        )
        return {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}

    def _stop_transaction(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        transaction_id = payload.get("transactionId")
        if self.sink is not None and isinstance(transaction_id, int):
            try:
                stop = parse_time(payload.get("timestamp"))
            except ValueError:
                stop = now
            meter = payload.get("meterStop")
            self.sink.transaction_stopped(info.station_id, transaction_id, stop, reason=payload.get("reason"),
                                          meter_stop=meter if isinstance(meter, int) else None)  # fmt: skip
        for connector_id, seen in list(info.running.items()):
            if seen == transaction_id:
                del info.running[connector_id]
                _stopped_drawing(info, connector_id)
        for connector_id, (running, _) in list(info.transactions.items()):
            if running == transaction_id:
                del info.transactions[connector_id]
                _stopped_drawing(info, connector_id)
                self._publish(
                    StationEventKind.TRANSACTION_STOPPED,
                    info.station_id,
                    now,
                    {**payload, "connectorId": connector_id},
                )
                break
        return {"idTagInfo": {"status": "Accepted"}}

    def _meter_values(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        connector_id = int(payload.get("connectorId", 0))
        info.meter_values.setdefault(connector_id, {}).update(_sampled_values(payload))
        transaction_id = payload.get("transactionId")
        started = info.transactions.get(connector_id)
        if connector_id > 0 and isinstance(transaction_id, int) and (started is None or started[0] != transaction_id):
            info.transactions.pop(connector_id, None)
            info.running[connector_id] = transaction_id  # a transaction whose start was not seen here
            if self.sink is not None:
                self.sink.transaction_seen(info.station_id, connector_id, transaction_id, now)
        self._publish(StationEventKind.METER_VALUES, info.station_id, now, payload)
        return {}

    def _data_transfer(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    def _empty(self, info: StationInfo, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {}
