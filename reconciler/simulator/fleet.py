"""Many simulated charge points in one process: `Fleet` and `run_fleet`.

Flow: `reconciler simulate` (or a test) -> `run_fleet(url, n, ...)` -> one `SimulatedChargePoint`
plus one `client.StationClient` per station, ids `{prefix}0001`, `{prefix}0002`... all running on
the current event loop. Connection attempts are throttled by a shared semaphore so a thousand
stations do not flood the Central System's accept queue; everything else runs concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from types import TracebackType

from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.client import StationClient
from reconciler.simulator.ev import LocalPolicy
from reconciler.simulator.quirks import Quirks
from reconciler.simulator.sessions import Sessions


def station_ids(n: int, prefix: str = "PY-SIM-", start: int = 1) -> list[str]:
    """`PY-SIM-0001`... (at least four digits, more when needed)."""
    width = max(4, len(str(start + n - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(start, start + n)]


class Fleet:
    """N simulated stations connected to one Central System. `async with Fleet(...) as fleet:`."""

    def __init__(
        self,
        url: str,
        n: int,
        *,
        prefix: str = "PY-SIM-",
        start: int = 1,
        connectors: int = 2,
        max_current: float = 32.0,
        password: str | None = None,
        quirks: Quirks | None = None,
        state_dir: Path | None = None,
        local_policy: LocalPolicy | None = None,
        connect_concurrency: int = 100,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        auto_ev: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self.url = url
        self.sessions = sessions  # simulated charging sessions on every station (None: no EV unless asked)
        self.ssl_context = ssl_context  # trusted certificates for a wss:// Central System
        self.auto_ev = auto_ev
        self._stop = asyncio.Event()
        self._limit = asyncio.Semaphore(connect_concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.stations: dict[str, SimulatedChargePoint] = {}
        self.clients: dict[str, StationClient] = {}
        for station_id in station_ids(n, prefix, start):
            self.add(
                SimulatedChargePoint(
                    station_id,
                    connectors=connectors,
                    max_current=max_current,
                    quirks=quirks,
                    state_dir=state_dir,
                    local_policy=local_policy,
                ),
                password=password,
                backoff_initial=backoff_initial,
                backoff_max=backoff_max,
            )

    def add(
        self,
        station: SimulatedChargePoint,
        *,
        password: str | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> StationClient:
        """Add a station (e.g. one with its own quirks); it starts with the fleet, or at once if
        the fleet is already running."""
        client = StationClient(
            station,
            self.url,
            password=password,
            connect_limit=self._limit,
            auto_ev=self.auto_ev,
            ssl_context=self.ssl_context,
            sessions=self.sessions,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self.stations[station.station_id] = station
        self.clients[station.station_id] = client
        if self._running:
            self._tasks.append(asyncio.create_task(client.run(self._stop)))
        return client

    def __getitem__(self, station_id: str) -> SimulatedChargePoint:
        return self.stations[station_id]

    def __len__(self) -> int:
        return len(self.stations)

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._stop.clear()
        self._tasks = [asyncio.create_task(client.run(self._stop)) for client in self.clients.values()]

    async def stop(self) -> None:
        self._running = False
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        for station in self.stations.values():
            if station.storage is not None:
                station.storage.close()

    async def wait_booted(self, timeout: float, ids: list[str] | None = None) -> set[str]:
        """Wait until the stations (all by default) have booted on their current connection;
        returns those that have, when all have or `timeout` passes."""
        wanted = [self.clients[i] for i in (ids if ids is not None else list(self.clients))]
        waits = [asyncio.create_task(c.booted.wait()) for c in wanted if not c.booted.is_set()]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for task in pending:
                task.cancel()
        return {c.station.station_id for c in wanted if c.booted.is_set()}

    async def run_forever(self) -> None:
        """Run until cancelled (Ctrl-C), then stop cleanly."""
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def run_fleet(
    url: str,
    n: int,
    *,
    prefix: str = "PY-SIM-",
    connectors: int = 2,
    max_current: float = 32.0,
    password: str | None = None,
    quirks: Quirks | None = None,
    state_dir: Path | None = None,
    local_policy: LocalPolicy | None = None,
    auto_ev: bool = False,
) -> Fleet:
    """Start `n` simulated stations against the Central System at `url` and return the running
    fleet: call `await fleet.stop()`, or `await fleet.run_forever()` to block until cancelled.
    With `auto_ev`, each station plugs an EV into connector 1 and starts a transaction after boot."""
    fleet = Fleet(
        url,
        n,
        prefix=prefix,
        connectors=connectors,
        max_current=max_current,
        password=password,
        quirks=quirks,
        state_dir=state_dir,
        local_policy=local_policy,
        auto_ev=auto_ev,
    )
    await fleet.start()
    return fleet
