"""The embedded OCPP 1.6J Central System: chargers connect here, the engine calls them through it.

Flow: charger --websocket `ws://HOST:PORT/{stationId}` (or `wss://` with a TLS context: OCPP Security
Profile 2), subprotocol `ocpp1.6`--> `CentralSystem`.
The opening handshake checks the station id (unknown ids are refused unless `allow_unknown`) and
HTTP basic auth (OCPP Security Profile 1: username = station id, password from `passwords`; a
`"*"` entry is a shared password for every station): `admission.Admission`. Charger-initiated calls go to
`stations.StationRegistry`; the engine's calls go out through `call()` and come back as a
`gateway.Reply` (ANSWERED / CALL_ERROR / TIMEOUT / OFFLINE; a CallError is never swallowed).

This is the one Central System module that imports `ocpp`: it uses the library's CallError frames
for its error answers and its OCPP 1.6 JSON schemas (via `schemas.SchemaValidators`); a CallResult
(a Heartbeat's answer: 33 a second at 10,000 stations) is written with one JSON encoder.
What chargers send is read by `frames.read_frame`, which treats every frame as hostile: a frame
that cannot be used gets the CALLERROR OCPP-J prescribes (FormationViolation, ProtocolError,
PropertyConstraintViolation for out-of-range numbers and dates) and the connection stays; nothing a
charger sends ends the handler with a traceback. Admission: the path must be exactly
`{path_prefix}{stationId}`; one connection per station, the newest replacing the older. The
per-call path is deliberately lean (PERFORMANCE.md): plain dict payloads, no snake_case
conversion, no thread-pool validation, no permessage-deflate, and outgoing Call frames written
directly. At most one call is outstanding per station, as OCPP-J requires; calls to one station
queue.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import ocpp
from ocpp.messages import CallError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from reconciler import clock
from reconciler.transport.admission import Admission
from reconciler.transport.connections import Connection, Keepalive
from reconciler.transport.frames import CALL, CALL_ERROR, CALL_RESULT, FrameError, Message, read_frame
from reconciler.transport.gateway import BootCheck, EventHub, Reply, ReplyKind, StationEvent
from reconciler.transport.schemas import SchemaValidators
from reconciler.transport.stations import StationInfo, StationRegistry, TransactionSink, UnsupportedAction

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
_STATE_ACTIONS = frozenset({"BootNotification", "StatusNotification", "MeterValues", "StartTransaction",
                            "StopTransaction"})  # fmt: skip
REPLACED = "replaced by a newer connection for this station"
_SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"
# json.dumps with arguments builds an encoder per call; one, built once, serves every call
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


@functools.lru_cache(maxsize=256)
def _quoted(action: str) -> str:
    return json.dumps(action)


class CentralSystem:
    """OCPP 1.6J server and `Gateway`. Use `async with CentralSystem(port=0, ...) as cs:`; `cs.port`
    is the bound port and `cs.url` the base URL stations append their id to.

    Admission is closed by default: a station connects only if it is in `known_stations` or has an
    entry in `passwords` (or `allow_unknown` is set). A station with a password (its own or the
    shared `"*"` one) must present HTTP basic auth with username = station id. `validate_messages`
    checks every message against the OCPP 1.6 schemas. `ping_interval` (None: off): a station that sent
    nothing for that long is pinged, and disconnected without a pong in `ping_timeout` (`connections`).
    Stations connect to `{path_prefix}{stationId}` (default `/`); any other path is refused. One
    connection per station: a newer one replaces the older, which is closed with a reason.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9000,
        passwords: Mapping[str, str] | None = None,
        allow_unknown: bool = False,
        heartbeat_interval: int = 300,
        call_timeout: float = 10.0,
        max_message_size: int = 65536,
        known_stations: Iterable[str] | None = None,
        validate_messages: bool = True,
        ping_interval: float | None = 60.0,
        ping_timeout: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
        path_prefix: str = "/",
    ) -> None:
        self.host = host
        self._connections: dict[str, Connection] = {}
        self.admission = Admission(path_prefix, passwords, known_stations, allow_unknown=allow_unknown)
        self.path_prefix = self.admission.path_prefix
        self.port = port
        self.call_timeout = call_timeout
        self.max_message_size = max_message_size
        self.keepalive = Keepalive(self._connections.values, ping_interval, ping_timeout) if ping_interval else None
        self.ssl_context = ssl_context  # wss:// (OCPP Security Profile 2) when set
        self.validators = SchemaValidators(_SCHEMAS) if validate_messages else None
        self.hub = EventHub()
        self.registry = StationRegistry(self.hub, heartbeat_interval=heartbeat_interval, clock=clock.now)
        self.connections_ended = 0  # station connections that ended (closed, lost, replaced) since start
        self._server: Server | None = None
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            process_request=self.admission.check,
            compression=None,
            max_size=self.max_message_size,
            ping_interval=None,  # `connections.Keepalive` pings only the quiet connections
            server_header=None,
            backlog=4096,
            ssl=self.ssl_context,
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        if self.keepalive is not None:
            self.keepalive.start()
        log.info("Central System listening on %s/{stationId}", self.url)

    async def stop(self) -> None:
        if self._server is None:
            return
        if self.keepalive is not None:
            self.keepalive.stop()
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        for connection in list(self._connections.values()):
            connection.fail_pending("the Central System stopped")

    async def __aenter__(self) -> CentralSystem:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The base URL a station appends its id to (`{url}/{stationId}`)."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.path_prefix.rstrip('/')}"

    def add_station(self, station_id: str, password: str | None = None) -> None:
        """Admit a station (and set its password) while running, e.g. after a policy reload."""
        self.admission.add(station_id, password)

    # --- Gateway --------------------------------------------------------------------------------

    def is_connected(self, station_id: str) -> bool:
        return station_id in self._connections

    def connected_stations(self) -> set[str]:
        return set(self._connections)

    def subscribe(self) -> asyncio.Queue[StationEvent]:
        return self.hub.subscribe()

    def station(self, station_id: str) -> StationInfo | None:
        return self.registry.get(station_id)

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        connection = self._connections.get(station_id)
        if connection is None:
            return Reply.offline(f"station {station_id} is not connected")
        try:
            body = _ENCODE(payload)
        except (TypeError, ValueError) as exc:
            return Reply.call_error("FormationViolation", f"not sent: the {action} payload is not JSON: {exc}")
        if self.validators is not None:
            problem = self.validators.request_problem(action, payload, body)
            if problem is not None:
                return Reply.call_error("FormationViolation", f"not sent: the {action} request is invalid: {problem}")
        limit = self.call_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                async with connection.lock:
                    unique_id = str(next(self._ids))
                    future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
                    connection.pending[unique_id] = (action, future)
                    try:
                        await connection.ws.send(f'[2,"{unique_id}",{_quoted(action)},{body}]')
                        return await future
                    finally:
                        connection.pending.pop(unique_id, None)
        except TimeoutError:
            return Reply.timeout(f"{station_id} did not answer {action} within {limit:g} s")
        except ConnectionClosed:
            return Reply.offline(f"station {station_id} disconnected during {action}")

    async def wait_for_stations(self, ids: Iterable[str], timeout: float, *, booted: bool = True) -> set[str]:
        """Wait until every station in `ids` is connected (and, with `booted`, has sent a
        BootNotification on this connection), or `timeout` passes. Returns those that are."""
        wanted = set(ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ready = {s for s in wanted if self._ready(s, booted)}
            remaining = deadline - loop.time()
            if ready == wanted or remaining <= 0:
                return ready
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return {s for s in wanted if self._ready(s, booted)}

    async def wait_booted(self, station_id: str, timeout: float, *, grace: float = 2.0) -> BootCheck:
        """Wait (at most `timeout` seconds) until the station's BootNotification on its current
        connection was accepted, before anything else is sent to it: chargers refuse calls before
        that (SecurityError), leave them unanswered, or answer on a clock still at 1970.

        A station that has been connected for `grace` seconds without booting (a reconnect, not a
        power-up) is asked for one with TriggerMessage BootNotification. If it will not (Rejected,
        NotImplemented...), it may be called anyway (`ok`, with a note: its answers' clock is the
        remaining guard). If it does not boot in time, or refuses as not accepted yet, `ok` is False."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await self._until(lambda: self._ready(station_id, True), deadline, settle=grace, station_id=station_id):
            if station_id not in self._connections:
                return BootCheck(False, f"station {station_id} disconnected before it booted")
            remaining = max(0.1, deadline - loop.time())
            info = self.registry.get(station_id)
            if info is not None:
                info.boot_asked = True  # the boot it brings is no restart
            reply = await self._trigger_boot(station_id, timeout=min(self.call_timeout, remaining), deadline=deadline)
            if reply is None:
                return BootCheck(True)  # it booted on its own while the TriggerMessage was unanswered
            refused = reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "SecurityError"
            if (reply.kind is ReplyKind.ANSWERED and reply.status == "Accepted") or refused:
                if not await self._until(lambda: self._ready(station_id, True), deadline):
                    why = "refuses calls as not accepted" if refused else "was asked for one (TriggerMessage)"
                    return BootCheck(False, f"no accepted BootNotification within {timeout:g} s; the station {why}")
            elif reply.kind is ReplyKind.ANSWERED or reply.kind is ReplyKind.CALL_ERROR:
                return BootCheck(True, f"no BootNotification on this connection (TriggerMessage: {reply.describe()})")
            else:
                return BootCheck(False, f"no BootNotification on this connection; TriggerMessage {reply.describe()}")
        return BootCheck(True)

    async def _trigger_boot(self, station_id: str, *, timeout: float, deadline: float) -> Reply | None:
        """TriggerMessage BootNotification, raced against the station's own boot: a charger that
        leaves calls unanswered before its boot (and boots a moment later) ends the wait with its
        boot (None; the pending call is withdrawn so the connection is free), not the call's timeout."""
        trigger = asyncio.ensure_future(
            self.call(station_id, "TriggerMessage", {"requestedMessage": "BootNotification"}, timeout=timeout)
        )
        boot = asyncio.ensure_future(self._until(lambda: self._ready(station_id, True), deadline))
        try:
            await asyncio.wait({trigger, boot}, return_when=asyncio.FIRST_COMPLETED)
            if boot.done() and boot.result() and not trigger.done():
                trigger.cancel()
                await asyncio.gather(trigger, return_exceptions=True)
                return None
            return await trigger
        finally:
            for task in (trigger, boot):
                if not task.done():
                    task.cancel()
            await asyncio.gather(trigger, boot, return_exceptions=True)

    async def _until(
        self, condition: Callable[[], bool], deadline: float, *, settle: float | None = None,
        station_id: str | None = None,
    ) -> bool:  # fmt: skip
        """Wait for `condition` until `deadline` (loop time), or, with `settle`, only until the
        station has been connected for `settle` seconds. True when the condition holds."""
        loop = asyncio.get_running_loop()
        if settle is not None and station_id is not None:
            info = self.registry.get(station_id)
            since = info.connected_at if info is not None else None
            waited = (clock.now() - since).total_seconds() if since is not None else settle
            deadline = min(deadline, loop.time() + max(0.0, settle - waited))
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return condition()
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return condition()
        return True

    def use_journal(self, sink: TransactionSink) -> None:
        """Report every transaction seen (start, stop, a Charging status, MeterValues with an id)
        to `sink` (the store's journal), and take transaction ids from it."""
        self.registry.use_sink(sink)

    async def learn_connectors(
        self, station_id: str, connectors: Iterable[int], timeout: float, *, settle: float = 1.0
    ) -> None:
        """Make sure each connector's state is known on the current connection, so a transaction
        that started while nobody listened is not mistaken for an idle connector: a connector that
        sent no StatusNotification since connecting (after `settle` seconds of grace) is asked for
        one with TriggerMessage, and one that is charging under an unknown transaction for
        MeterValues (they carry the transactionId). Bounded by `timeout`; what stays unknown stays so."""
        wanted = list(connectors)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def fresh(connector_id: int) -> bool:
            info = self.registry.get(station_id)
            state = info.connectors.get(connector_id) if info is not None else None
            return (
                info is not None and state is not None and state.updated is not None
                and info.connected_at is not None and state.updated >= info.connected_at
            )  # fmt: skip

        if not await self._until(lambda: all(fresh(c) for c in wanted), deadline, settle=settle, station_id=station_id):
            asked = await self._trigger(station_id, "StatusNotification", [c for c in wanted if not fresh(c)], deadline)
            await self._until(lambda: all(fresh(c) for c in asked), deadline)
        info = self.registry.get(station_id)
        running = info.running if info is not None else {}
        unknown = [c for c in wanted if c in running and running[c] is None]
        if unknown:
            asked = await self._trigger(station_id, "MeterValues", unknown, deadline)
            await self._until(lambda: all(running.get(c) is not None for c in asked), deadline)

    async def _trigger(self, station_id: str, message: str, connectors: list[int], deadline: float) -> list[int]:
        """TriggerMessage `message` for each connector; the connectors whose charger accepted."""
        accepted = []
        for connector_id in connectors:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            payload = {"requestedMessage": message, "connectorId": connector_id}
            reply = await self.call(station_id, "TriggerMessage", payload, timeout=min(self.call_timeout, remaining))
            if reply.kind is ReplyKind.ANSWERED and reply.status == "Accepted":
                accepted.append(connector_id)
        return accepted

    def _ready(self, station_id: str, booted: bool) -> bool:
        if station_id not in self._connections:
            return False
        if not booted:
            return True
        info = self.registry.get(station_id)
        return (
            info is not None
            and info.booted_at is not None
            and info.connected_at is not None
            and info.booted_at >= info.connected_at
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # --- one connection -------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        request = ws.request
        station_id = self.admission.station_id(request.path) if request is not None else None
        if request is None or station_id is None:  # the handshake checked it; a request that changed is not served
            await ws.close(1008, "unexpected path")
            return
        # websockets keeps the handshake's request (here and in its parser's frame) and response for the
        # connection's lifetime; only the path is read (above). Emptying the headers saves about 4 KiB a
        # station (bench/watch.py (c)), and the Authorization header (a password) does not linger.
        request.headers.clear()
        ws.response = None
        loop = asyncio.get_running_loop()
        connection = Connection(station_id, ws, loop.time())
        # One connection per station: the newest wins (a reconnect replaces a half-dead one). The
        # swap happens before any await, so concurrent handshakes cannot leave two registered.
        previous = self._connections.get(station_id)
        self._connections[station_id] = connection
        if previous is not None:
            previous.fail_pending(f"station {station_id} reconnected")
        self.registry.connected(station_id)
        self._notify()
        if previous is not None:
            await previous.ws.close(1000, REPLACED)
        reason = "closed"
        try:
            async for message in ws:
                connection.heard = loop.time()
                if self._connections.get(station_id) is not connection:
                    break  # replaced while this frame was on its way: the newer connection speaks
                if isinstance(message, bytes):
                    log.warning("%s sent a binary frame; OCPP-J uses text frames", station_id)
                    continue
                try:
                    answer = self._on_message(connection, message)
                except Exception as exc:  # a bug of ours must not end the connection with a traceback
                    log.error("%s: frame not handled: %s: %s", station_id, type(exc).__name__, exc)
                    continue
                if answer is not None:
                    await ws.send(answer)
        except ConnectionClosed as exc:
            reason = connection.lost or f"connection lost ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        finally:
            self.connections_ended += 1  # the daemon collects what a gone connection leaves frozen
            connection.fail_pending(f"station {station_id} disconnected ({reason})")
            if self._connections.get(station_id) is connection:
                del self._connections[station_id]
                self.registry.disconnected(station_id, reason)
            self._notify()

    def _on_message(self, connection: Connection, raw: str) -> str | None:
        """Handle one text frame; returns the frame to send back, if any. Never raises for what a
        charger sends: a frame that cannot be used is answered with a CALLERROR when it carried a
        unique id (`frames.read_frame` says which code), else logged and dropped."""
        try:
            message = read_frame(raw)
        except FrameError as exc:
            return self._unusable(connection, exc)
        if message.kind == CALL:
            return self._on_call(connection, message)
        entry = connection.pending.get(message.unique_id)
        if entry is None:
            log.warning("%s answered unknown or expired call %.40r", connection.station_id, message.unique_id)
            return None
        action, future = entry
        if future.done():
            return None
        if message.kind == CALL_ERROR:
            future.set_result(Reply.call_error(message.error_code, message.error_description))
            return None
        payload = message.payload
        if self.validators is not None:
            problem = self.validators.problem(action, payload, response=True)
            if problem is not None:
                future.set_result(
                    Reply(
                        ReplyKind.CALL_ERROR,
                        payload,
                        "FormationViolation",
                        f"the charger's {action} answer does not match the OCPP 1.6 schema: {problem}",
                        unsure=True,  # the charger processed the call: it may have carried it out
                    )
                )
                return None
        future.set_result(Reply.answered(payload))
        return None

    def _on_call(self, connection: Connection, call: Message) -> str:
        station_id = connection.station_id
        payload = call.payload
        problem: str | None = None
        if self.validators is not None and self.registry.supports(call.action):
            problem = self.validators.problem(call.action, payload, response=False)
        if problem is not None:
            reply: Any = CallError(call.unique_id, "FormationViolation", problem[:500], {})
        else:
            try:
                answer = self.registry.handle(station_id, call.action, payload)
                if call.action in _STATE_ACTIONS:
                    self._notify()  # wake whoever waits for a boot, a status or a transaction
            except UnsupportedAction:
                reply = CallError(call.unique_id, "NotImplemented", f"{call.action[:64]} is not supported", {})
            except (OverflowError, ValueError, KeyError, TypeError) as exc:
                reply = CallError(call.unique_id, "PropertyConstraintViolation", f"{call.action}: {exc}"[:500], {})
            except Exception as exc:  # a bug of ours: answer, log without a traceback, keep the connection
                log.error("%s: %s failed: %s: %s", station_id, call.action, type(exc).__name__, exc)
                reply = CallError(call.unique_id, "InternalError", f"{call.action} failed", {})
            else:
                return _ENCODE([CALL_RESULT, call.unique_id, answer])  # as the library's CallResult.to_json
        return str(reply.to_json())

    def _unusable(self, connection: Connection, exc: FrameError) -> str | None:
        log.warning("%s sent an unusable frame: %s (%s)", connection.station_id, exc.description, exc.code)
        if exc.unique_id is None:
            return None
        if exc.kind in (CALL_RESULT, CALL_ERROR):  # an answer to our call: that call fails now
            entry = connection.pending.get(exc.unique_id)
            if entry is not None and not entry[1].done():
                entry[1].set_result(Reply.call_error(exc.code, f"the charger's {entry[0]} answer: {exc.description}"))
            return None
        return str(CallError(exc.unique_id, exc.code, exc.description, {}).to_json())
