"""The Gateway protocol: how the engine reaches a charger, whoever holds its websocket.

Flow: engine -> `Gateway.call(station, action, payload)` -> a charger -> `Reply`. Three gateways
implement it: `CentralSystem` (the embedded OCPP 1.6J server; the chargers connect to us),
`InjectGateway` (an OCPP proxy's or our own daemon's `POST /api/inject/{id}`) and `MemoryGateway`
(simulated chargers in-process, for fast tests). Payloads are plain OCPP 1.6 camelCase dicts in
both directions; parsing them into typed values is the caller's job.

Every reply says whether to retry (STYLE.md rule 5): TIMEOUT and OFFLINE are temporary (retry with
backoff and jitter), CALL_ERROR and ANSWERED are final for that attempt. A CallError is never
swallowed: its code and description travel in the reply. A reply is `ambiguous` when it does not
settle whether the charger carried the call out: a timeout, an answer we could not read (the
charger processed the call), a proxy's own failure after it may have forwarded the call, or any
final reply to a retry whose earlier attempt went unanswered (`engine.calls`). The ledger keeps a
Set or Clear with an ambiguous reply uncertain.

`EventHub` fans station events (connected, booted, transactions, meter values...) out to every
subscriber's queue; each subscriber sees every event published after it subscribed.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class ReplyKind(enum.StrEnum):
    ANSWERED = "answered"  # the charger answered with a CallResult
    CALL_ERROR = "call_error"  # the charger (or the proxy) answered with an error
    TIMEOUT = "timeout"  # no answer within the call timeout
    OFFLINE = "offline"  # the station is not connected (or went away mid-call)


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back from one call. `payload` is the charger's answer (camelCase) when ANSWERED."""

    kind: ReplyKind
    payload: dict[str, Any] | None = None
    error_code: str | None = None  # CallError code (e.g. "NotSupported"), or an HTTP/transport reason
    description: str | None = None
    unsure: bool = False  # the charger may have carried the call out although this reply does not say so

    @property
    def ok(self) -> bool:
        return self.kind is ReplyKind.ANSWERED

    @property
    def temporary(self) -> bool:
        """True when retrying later may succeed (timeout, offline); CallErrors and answers are final."""
        return self.kind in (ReplyKind.TIMEOUT, ReplyKind.OFFLINE)

    @property
    def ambiguous(self) -> bool:
        """True when the reply does not settle whether the charger carried the call out."""
        return self.unsure or self.temporary

    @property
    def status(self) -> str | None:
        """The answer's `status` field, when it has one (Accepted, Rejected, Unknown...)."""
        if self.payload is None:
            return None
        value = self.payload.get("status")
        return value if isinstance(value, str) else None

    def describe(self) -> str:
        """One line for logs and plan output."""
        if self.kind is ReplyKind.ANSWERED:
            return f"answered {self.status or 'ok'}"
        detail = " ".join(": ".join(x for x in (self.error_code, self.description) if x).split())  # one line
        if len(detail) > 240:  # a charger's error text is bounded where it lands (reasons, events)
            detail = detail[:237] + "..."
        return f"{self.kind.value}{' (' + detail + ')' if detail else ''}"

    @classmethod
    def answered(cls, payload: dict[str, Any]) -> Reply:
        return cls(ReplyKind.ANSWERED, payload)

    @classmethod
    def call_error(cls, code: str, description: str | None = None, *, unsure: bool = False) -> Reply:
        """A CallError; `unsure` when the call may have been carried out all the same (an answer we
        could not read, a proxy that failed after forwarding it)."""
        return cls(ReplyKind.CALL_ERROR, None, code, description, unsure)

    @classmethod
    def timeout(cls, description: str | None = None) -> Reply:
        return cls(ReplyKind.TIMEOUT, None, "Timeout", description)

    @classmethod
    def offline(cls, description: str | None = None) -> Reply:
        return cls(ReplyKind.OFFLINE, None, "Offline", description)


@dataclass(frozen=True, slots=True)
class BootCheck:
    """Whether a station may be called: its BootNotification was accepted on this connection (or,
    when it connected without booting, it would not boot on request). `note` says what happened
    when it did not plainly boot; `ok` False means do not call it (it is temporary, retry later)."""

    ok: bool
    note: str | None = None


class StationEventKind(enum.StrEnum):
    CONNECTED = "connected"
    BOOTED = "booted"
    DISCONNECTED = "disconnected"
    TRANSACTION_STARTED = "transaction_started"
    TRANSACTION_STOPPED = "transaction_stopped"
    METER_VALUES = "meter_values"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class StationEvent:
    """Something a station did. `data` is the charger's request payload (camelCase), plus
    `transactionId` for TRANSACTION_STARTED (the id the Central System assigned)."""

    kind: StationEventKind
    station_id: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Gateway(Protocol):
    """The engine's only view of the chargers."""

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply: ...

    def is_connected(self, station_id: str) -> bool: ...

    def connected_stations(self) -> set[str]: ...

    def subscribe(self) -> asyncio.Queue[StationEvent]: ...


class EventHub:
    """Fan-out of station events to subscriber queues. Queues are bounded: a subscriber that stops
    reading loses the oldest events rather than growing memory without limit."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._queues: list[asyncio.Queue[StationEvent]] = []
        self._maxsize = maxsize

    def subscribe(self) -> asyncio.Queue[StationEvent]:
        queue: asyncio.Queue[StationEvent] = asyncio.Queue(self._maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[StationEvent]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def publish(self, event: StationEvent) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()  # drop the oldest
            queue.put_nowait(event)

    @property
    def subscribers(self) -> int:
        return len(self._queues)
