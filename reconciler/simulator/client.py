"""The websocket side of a simulated charge point: connect, boot, answer, reconnect.

Flow: `StationClient.run()` opens `ws://CS/{stationId}` (subprotocol ocpp1.6, basic auth when a
password is set), sends BootNotification and a StatusNotification per connector, then reads
frames: a Central System Call goes to `SimulatedChargePoint.handle` and its answer (or CallError)
goes back; answers to our own calls resolve `call()`. Heartbeats and MeterValues run on timers.
When the connection drops the client reconnects with exponential backoff and jitter, as real
chargers do; after a Reset it reboots the station and reconnects at once. With `sessions`,
simulated drivers charge EVs on its connectors after each boot (`sessions.drive`).

OCPP-J is spoken directly over `websockets` with the stdlib `json` (no `ocpp` import): thousands
of these run in one process, so each costs two small tasks and a few dicts. `hang_on` and
`drop_on` make a station misbehave on purpose, for tests (no answer; drop the connection).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import random
import ssl
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from reconciler.simulator.charge_point import SimCallError, SimulatedChargePoint
from reconciler.simulator.sessions import Sessions, drive

log = logging.getLogger(__name__)


class StationClient:
    """Runs one `SimulatedChargePoint` against a Central System URL until `stop` is set."""

    def __init__(
        self,
        station: SimulatedChargePoint,
        url: str,
        *,
        password: str | None = None,
        call_timeout: float = 30.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_message_size: int = 1 << 20,
        connect_limit: asyncio.Semaphore | None = None,
        auto_ev: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.station = station
        self.sessions = sessions  # simulated drivers: charging sessions after each boot (None: none)
        self.ssl_context = ssl_context  # for wss:// URLs: which certificates to trust
        self.url = url.rstrip("/") + "/" + quote(station.station_id, safe="")
        self.password = password
        self.call_timeout = call_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_message_size = max_message_size
        self.connect_limit = connect_limit
        self.auto_ev = auto_ev  # plug an EV into connector 1 and start a transaction after each boot
        self.connected = asyncio.Event()
        self.booted = asyncio.Event()
        self.connections = 0  # successful websocket connections so far
        self.last_error: str | None = None  # why the last connection attempt failed
        self.hang_on: set[str] = set()  # actions to leave unanswered (tests)
        self.drop_on: set[str] = set()  # actions on which to drop the connection (tests)
        self.heartbeat_interval = 300
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._boots: set[str] = set()  # ids of our BootNotification calls in flight
        self._ids = itertools.count(1)
        station.sender = self.call

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._session(stop)
                attempt = 0
            except InvalidStatus as exc:
                self.last_error = f"refused with HTTP {exc.response.status_code}"
                log.warning("%s: Central System %s", self.station.station_id, self.last_error)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.info("%s: connection failed: %s", self.station.station_id, self.last_error)
            if stop.is_set():
                break
            if self.station.reset_requested is not None:
                self.station.reboot()
                continue
            delay = min(self.backoff_max, self.backoff_initial * 2**attempt) * random.uniform(0.5, 1.0)
            attempt = min(attempt + 1, 16)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def _tls(self) -> dict[str, Any]:
        """`ssl=` for wss:// only: websockets refuses an ssl argument for a ws:// URL."""
        return {"ssl": self.ssl_context} if self.ssl_context is not None else {}

    async def _open(self) -> ClientConnection:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.station.station_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return await connect(
            self.url,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=headers,
            compression=None,
            open_timeout=10,
            ping_interval=None,
            close_timeout=2,
            max_size=self.max_message_size,
            **self._tls(),
        )

    async def _session(self, stop: asyncio.Event) -> None:
        if self.connect_limit is not None:
            async with self.connect_limit:
                ws = await self._open()
        else:
            ws = await self._open()
        self._ws = ws
        self.connections += 1
        self.connected.set()
        reader = asyncio.create_task(self._read(ws))
        stopper = asyncio.create_task(stop.wait())
        booter = asyncio.create_task(self._boot_and_tick())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, stopper, booter):
                task.cancel()
            self._ws = None
            self.connected.clear()
            self.booted.clear()
            self._fail_pending()
            await ws.close()

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_result(None)
        self._pending.clear()

    async def _boot_and_tick(self) -> None:
        station = self.station
        if station.quirks.boot_delay > 0:
            await asyncio.sleep(station.quirks.boot_delay)
        if station.boot_accepted and not station.quirks.boot_on_reconnect:
            self.booted.set()  # a reconnect, not a power-up: this charger does not boot again
        elif not await self._boot():
            return
        if self.auto_ev and not self.station.transactions:
            await self.station.start_transaction(1)
        ticks = [self._heartbeats(), self._meter_values()]
        if self.sessions is not None:  # first: it sets the MeterValueSampleInterval the meter loop reads
            first = (self.connections - 1) * self.sessions.max_sessions
            ticks.insert(0, drive(self.station, self.sessions, first))
        await asyncio.gather(*ticks)

    async def _boot(self) -> bool:
        station = self.station
        for _ in range(10):  # Pending/Rejected: try again after the interval the CS asked for
            answer = await self.call("BootNotification", station.boot_payload())
            if answer is None:
                return False
            station.boot_answered(answer)
            interval = answer.get("interval")
            if isinstance(interval, int) and interval > 0:
                self.heartbeat_interval = interval
            if answer.get("status") == "Accepted":
                break
            await asyncio.sleep(min(self.heartbeat_interval, 30))
        else:
            return False
        for connector_id in range(station.connectors + 1):
            await station.send_status(connector_id)
        self.booted.set()
        return True

    async def _heartbeats(self) -> None:
        while self._ws is not None:
            await asyncio.sleep(self.heartbeat_interval)
            await self.station.send("Heartbeat", {})

    async def _meter_values(self) -> None:
        while self._ws is not None:
            interval = self.station.configuration.number("MeterValueSampleInterval", 60)
            await asyncio.sleep(max(interval, 1))
            if interval > 0:
                for connector_id in list(self.station.transactions):
                    await self.station.send_meter_values(connector_id)

    async def disconnect(self) -> None:
        """Drop the current connection (the run loop reconnects after a backoff)."""
        if self._ws is not None:
            await self._ws.close()

    # --- OCPP-J ---------------------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Send a charger-initiated call; the answer payload, or None (CallError, timeout, offline)."""
        ws = self._ws
        if ws is None:
            return None
        unique_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        if action == "BootNotification":
            self._boots.add(unique_id)
        try:
            await ws.send(json.dumps([2, unique_id, action, payload], separators=(",", ":")))
            return await asyncio.wait_for(future, self.call_timeout)
        except (ConnectionClosed, TimeoutError):
            return None
        finally:
            self._pending.pop(unique_id, None)
            self._boots.discard(unique_id)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            await self._read_frames(ws)
        except ConnectionClosed:
            pass
        finally:
            self._fail_pending()  # nobody will answer them on this connection

    async def _read_frames(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, list) or len(message) < 3:
                continue
            kind, unique_id = message[0], str(message[1])
            if kind == 2 and len(message) >= 4:
                action = str(message[2])
                answer = self._answer(action, message[3], unique_id)
                if answer is None or self.station.quirks.answer_lost(action):
                    continue  # a lost answer: the call was carried out, nobody hears of it
                if delay := self.station.quirks.answer_delay(action):
                    self.station.spawn(self._answer_late(ws, answer, delay))
                    continue
                if answer == "drop":
                    await ws.close()
                    return
                await ws.send(answer)
                if self.station.reset_requested is not None:
                    self.station.spawn(self._reset(ws))
            elif kind in (3, 4):
                future = self._pending.get(unique_id)
                result = message[2] if kind == 3 and isinstance(message[2], dict) else None
                if unique_id in self._boots:
                    self.station.boot_answered(result)  # before the next frame is read, as a charger does
                if future is not None and not future.done():
                    future.set_result(result)

    def _answer(self, action: str, payload: Any, unique_id: str) -> str | None:
        if action in self.drop_on:
            return "drop"
        if action in self.hang_on or self.station.silent:
            return None
        try:
            if not isinstance(payload, dict):
                raise SimCallError("FormationViolation", "the payload must be a JSON object")
            result: list[Any] = [3, unique_id, self.station.handle(action, payload)]
        except SimCallError as exc:
            result = [4, unique_id, exc.code, exc.description, {}]
        return json.dumps(result, separators=(",", ":"))

    async def _answer_late(self, ws: ClientConnection, answer: str, delay: float) -> None:
        """The late_answers quirk: the call was carried out at once; its answer leaves `delay` s later."""
        await asyncio.sleep(delay)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(answer)

    async def _reset(self, ws: ClientConnection) -> None:
        """After answering Reset: end transactions (a soft reset says so first), then go down."""
        reason = "SoftReset" if self.station.reset_requested == "Soft" else "HardReset"
        for connector_id in list(self.station.transactions):
            await self.station.stop_transaction(connector_id, reason)
        await ws.close()
