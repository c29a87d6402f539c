"""Test kit for the daemon: a real `Daemon` (Central System on 127.0.0.1:0, uvicorn on 127.0.0.1:0,
SQLite file) on the test's event loop, simulated stations over websockets, and an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from reconciler.api.auth import Credentials
from reconciler.core.status import Status
from reconciler.daemon.service import Daemon
from reconciler.daemon.settings import DaemonSettings
from reconciler.daemon.workqueue import QueueSettings
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from tests.engine.fleetkit import PASSWORD, WAIT, load, until, write

CREDENTIALS = Credentials("ops", "api-secret", "api-token")
AUTH = ("ops", "api-secret")


@dataclass
class Running:
    daemon: Daemon
    fleet: Fleet
    http: httpx.AsyncClient
    policies: Path

    def sets(self, station: str | None = None) -> int:
        stations = [self.fleet[station]] if station else self.fleet.stations.values()
        return sum(cp.calls["SetChargingProfile"] for cp in stations)

    def condition(self, station: str) -> Status | None:
        found = self.daemon.conditions().get(station)
        return found.status if found else None

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        await until(predicate, what, timeout)

    async def synced(self, stations: list[str] | None = None, timeout: float = WAIT) -> None:
        ids = stations or sorted(self.daemon.policies.stations)
        await self.until(lambda: all(self.condition(s) is Status.SYNCED for s in ids), f"{ids} Synced", timeout)


FAST_ENGINE = Settings(horizon=6 * 3600, settle=0.05, verify_attempts=3, retry=RetryPolicy(attempts=2, call_timeout=3))


@asynccontextmanager
async def running(
    tmp: Path,
    files: dict[str, str],
    ids: list[str],
    *,
    quirks: Quirks | None = None,
    interval: float = 300.0,
    **overrides: Any,
) -> AsyncIterator[Running]:
    policies = write(tmp / "policies", files)
    settings = DaemonSettings(
        policies=(policies,),
        db=tmp / "state.db",
        credentials=CREDENTIALS,
        listen="127.0.0.1:0",
        station_passwords={"*": PASSWORD},
        http="127.0.0.1:0",
        engine=FAST_ENGINE,
        call_timeout=3.0,
        queue=QueueSettings(interval=interval, jitter=0.1, backoff_base=0.2, backoff_cap=2.0),
        debounce_ms=20,
        shutdown_timeout=3.0,
        connect_grace=0.1,
    )
    settings = replace(settings, **overrides)
    daemon = Daemon(settings, load(policies))
    await daemon.start()
    try:
        assert daemon.central is not None
        fleet = Fleet(
            daemon.central.url,
            len(ids),
            prefix=ids[0][:-4],
            password=PASSWORD,
            quirks=quirks,
            backoff_initial=0.05,
            backoff_max=0.3,
        )
        async with fleet, httpx.AsyncClient(base_url=daemon.http.url, auth=AUTH, timeout=WAIT) as http:
            yield Running(daemon, fleet, http, policies)
    finally:
        await daemon.stop()


def limit_a(station: Any, connector: int = 1) -> float | None:
    """The limit the simulated charger enforces now on a connector, in A (None: none)."""
    from reconciler.core.composite import compute_composite
    from reconciler.core.context import Uncovered
    from reconciler.core.profiles import RateUnit

    composite = compute_composite(
        station.installed.pairs(),
        connector_id=connector,
        now=station.clock(),
        duration=60,
        unit=RateUnit.A,
        context=station.context.with_(uncovered=Uncovered.NO_LIMIT),
        transactions=station.transactions,
    )
    return composite.periods[0].limit if composite.periods else None
