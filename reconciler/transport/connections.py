"""A station's connection to the Central System, and the keepalive that pings only the quiet ones.

`Connection`: the websocket, the calls in flight on it (at most one at a time, `lock`), when the
station last spoke and why the keepalive ended it, if it did.

Flow: every frame a station sends (a Heartbeat, an answer to our call, a pong) stamps its connection
(`Connection.heard`) -> `Keepalive` (started and stopped with the Central System) looks at every
connection four times per interval -> a connection that has sent nothing for `interval` seconds is
pinged (websockets' `ping`) -> a pong within `timeout` stamps it again; no pong: the connection is
aborted (the station is Offline, and its reconnect replaces it), with the reason kept for the
registry.

Why not websockets' own keepalive: it pings every connection every interval, whatever else the
connection carries. The daemon's drift checks and the stations' Heartbeats already prove most
connections alive; at 10,000 stations the unconditional pings were a write and a read per station
per interval (29 % of the idle daemon's CPU without drift checks, its pongs apart, and a task per
connection: `bench/watch.py`). A dead connection is still noticed: a station that sent nothing for
`interval` is pinged within a quarter interval more, and given `timeout` seconds to answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from reconciler.transport.gateway import Reply

log = logging.getLogger(__name__)


class Connection:
    __slots__ = ("heard", "lock", "lost", "pending", "station_id", "ws")

    def __init__(self, station_id: str, ws: ServerConnection, heard: float) -> None:
        self.station_id = station_id
        self.ws = ws
        self.lock = asyncio.Lock()
        self.pending: dict[str, tuple[str, asyncio.Future[Reply]]] = {}
        self.heard = heard  # loop time of the last frame the station sent
        self.lost: str | None = None  # why the keepalive ended the connection, when it did

    def fail_pending(self, reason: str) -> None:
        for _, future in self.pending.values():
            if not future.done():
                future.set_result(Reply.offline(reason))
        self.pending.clear()


class Keepalive:
    """Pings the connections that sent nothing for `interval` seconds; ends those that do not answer."""

    def __init__(self, connections: Callable[[], Iterable[Connection]], interval: float, timeout: float) -> None:
        self.connections = connections
        self.interval = interval
        self.timeout = timeout
        self.pings = 0  # sent so far (the tests read it)
        self._probing: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._spawn(self._run())

    def stop(self) -> None:
        """Cancel the sweep and the pings in flight."""
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval / 4)
            now = loop.time()
            for connection in list(self.connections()):
                if connection not in self._probing and now - connection.heard >= self.interval:
                    self._probing.add(connection)
                    self._spawn(self._probe(connection))

    async def _probe(self, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):  # the ping too: a peer that stopped reading blocks it
                pong = await connection.ws.ping()
                self.pings += 1
                await pong
        except TimeoutError:
            connection.lost = f"no answer to a keepalive ping within {self.timeout:g} s"
            log.info("%s: %s; closing the connection", connection.station_id, connection.lost)
            connection.ws.transport.abort()  # the peer is gone: no closing handshake to wait for
        except ConnectionClosed:
            pass  # it ended on its own: the connection's handler says why
        else:
            connection.heard = loop.time()
        finally:
            self._probing.discard(connection)
