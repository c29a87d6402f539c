"""Demo mode: simulated charge points for the stations a policy directory declares, in-process.

Flow: `reconciler demo` -> `DemoFleet(url, policies, password)` -> one `simulator.Fleet` per station
(so each can be started and stopped alone), connected to the daemon's Central System over real
websockets on loopback -> the API's demo routes (`POST /stations/{id}/start|stop`,
`POST /stations/scale`) drive it. Each simulated station has the connectors and maximum current
its `Station` document declares; stations beyond those (scaling up) are named `PY-SIM-NNNN` and
admitted by the Central System, but as they are not declared nothing is reconciled on them.

The demo's stations run simulated charging sessions (`simulator.sessions`, on by default here only):
EVs plug in, draw under the limit each station enforces and report it in MeterValues, so the fleet
table shows real power against the limit in force; `sessions=None` turns them off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.policy import PolicySet
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet, station_ids
from reconciler.simulator.sessions import Sessions

# An EV arrives within 20 s on each connector and charges 5 to 30 minutes; MeterValues every 10 s.
DEMO_SESSIONS = Sessions(seed=1)


class DemoFleet:
    def __init__(
        self,
        url: str,
        policies: PolicySet,
        password: str,
        *,
        state_dir: Path | None = None,
        admit: Callable[[str], None] | None = None,
        sessions: Sessions | None = DEMO_SESSIONS,
    ) -> None:
        self.sessions = sessions
        self.url = url.rstrip("/")
        self.policies = policies
        self.password = password
        self.state_dir = state_dir
        self.admit = admit
        self.running: dict[str, Fleet] = {}

    def _make(self, station_id: str) -> Fleet:
        fleet = Fleet(self.url, 0, password=self.password, backoff_initial=0.2, backoff_max=2.0, sessions=self.sessions)
        spec = self.policies.stations.get(station_id)
        connectors = spec.connectors if spec is not None else 2
        max_current = spec.max_current_a if spec is not None else 32.0
        fleet.add(
            SimulatedChargePoint(station_id, connectors=connectors, max_current=max_current, state_dir=self.state_dir),
            password=self.password,
            backoff_initial=0.2,
            backoff_max=2.0,
        )
        return fleet

    async def start_station(self, station_id: str) -> None:
        if station_id in self.running:
            return
        if station_id not in self.policies.stations and self.admit is not None:
            self.admit(station_id)
        fleet = self._make(station_id)
        self.running[station_id] = fleet
        await fleet.start()

    async def stop_station(self, station_id: str) -> bool:
        fleet = self.running.pop(station_id, None)
        if fleet is None:
            return False
        await fleet.stop()
        return True

    async def start(self) -> None:
        for name in sorted(self.policies.stations):
            await self.start_station(name)

    async def scale(self, target: int) -> list[str]:
        """Run `target` stations: declared ones first, then extra `PY-SIM-NNNN`; stop the rest."""
        names = sorted(self.policies.stations)
        extra = [s for s in station_ids(target + len(names)) if s not in self.policies.stations]
        wanted = (names + extra)[:target]
        for name in [n for n in self.running if n not in wanted]:
            await self.stop_station(name)
        for name in wanted:
            await self.start_station(name)
        return sorted(self.running)

    async def stop(self) -> None:
        for name in list(self.running):
            await self.stop_station(name)
