"""Test kit for the engine: policy directories written on the fly, a Central System with simulated
stations over real websockets on 127.0.0.1, and a reconciler wired to a real SQLite file."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from reconciler import clock
from reconciler.engine.reconcile import Reconciler, Settings
from reconciler.policy import PolicySet, load_policies
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem

WAIT = 15.0  # upper bound for any condition a test waits on (never a sleep)
PASSWORD = "test-secret"
FAST = Settings(horizon=6 * 3600, settle=0.05, verify_attempts=3)


def station_doc(name: str, site: str, connectors: int = 2, max_a: int = 32) -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: Station
        metadata: {{name: {name}, labels: {{site: {site}}}}}
        spec: {{connectors: {connectors}, maxCurrentA: {max_a}, phases: 3, voltage: 230}}
        """)


def cap_policy(name: str, stations: Iterable[str], limit: float, *, profile_id: int = 1, stack: int = 0,
               extra: str = "") -> str:  # fmt: skip
    names = ", ".join(stations)
    text = textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: ChargingPolicy
        metadata: {{name: {name}}}
        spec:
          selector: {{stations: [{names}]}}
          profiles:
            - connectorId: 0
              chargingProfileId: {profile_id}
              stackLevel: {stack}
              chargingProfilePurpose: ChargePointMaxProfile
              chargingProfileKind: Absolute
              chargingSchedule:
                startSchedule: "2024-01-01T00:00:00Z"
                chargingRateUnit: A
                chargingSchedulePeriod: [{{startPeriod: 0, limit: {limit}}}]
        """)
    return text.replace("  profiles:", extra + "  profiles:", 1)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def load(directory: Path) -> PolicySet:
    policies = load_policies([directory], now=clock.now())
    assert policies.ok, [d.format_text() for d in policies.diagnostics]
    return policies


@dataclass
class Rig:
    cs: CentralSystem
    fleet: Fleet
    store: Store

    def reconciler(self, policies: PolicySet, settings: Settings = FAST) -> Reconciler:
        return Reconciler(self.cs, self.store, policies, settings)

    def received(self, action: str) -> int:
        return sum(cp.calls[action] for cp in self.fleet.stations.values())


@asynccontextmanager
async def rig(
    tmp: Path, count: int, *, prefix: str = "CP-", quirks: Quirks | None = None, connectors: int = 2,
    call_timeout: float = 5.0,
) -> AsyncIterator[Rig]:  # fmt: skip
    ids = [f"{prefix}{i:04d}" for i in range(1, count + 1)]
    store = Store(tmp / "state.db")
    async with CentralSystem(port=0, passwords={"*": PASSWORD}, known_stations=ids, call_timeout=call_timeout) as cs:
        fleet = Fleet(cs.url, count, prefix=prefix, connectors=connectors, password=PASSWORD, quirks=quirks,
                      backoff_initial=0.05, backoff_max=0.3)  # fmt: skip
        async with fleet:
            assert await cs.wait_for_stations(ids, WAIT, booted=False) == set(ids)
            try:
                yield Rig(cs, fleet, store)
            finally:
                store.close()


async def reboot(r: Rig, cp: SimulatedChargePoint) -> None:
    """Reset the charger through the Central System and wait until it has booted again."""
    info = r.cs.station(cp.station_id)
    assert info is not None
    boots, seen = cp.boots, info.boots
    assert (await r.cs.call(cp.station_id, "Reset", {"type": "Hard"})).status == "Accepted"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not (cp.boots > boots and info.boots > seen and r.cs.is_connected(cp.station_id)):
        assert loop.time() < deadline, "the charger did not reboot and boot again"
        await asyncio.sleep(0.02)


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait for a condition, polled every 50 ms, at most `timeout` seconds (never a bare sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


def cap_files(station: str, *caps: tuple[int, int, float]) -> dict[str, str]:
    """One station and one ChargePointMaxProfile policy per (id, stack level, limit)."""
    out = {"station.yaml": station_doc(station, "x")}
    for pid, stack, limit in caps:
        out[f"cap{pid}.yaml"] = cap_policy(f"cap{pid}", [station], limit, profile_id=pid, stack=stack)
    return out
