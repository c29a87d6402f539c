"""The world the dashboard's browser tests look at: a real `Daemon` (embedded Central System and API on
127.0.0.1 with ephemeral ports, SQLite file) on the test's event loop, with simulated stations over
real websockets, one per condition and control source the fleet table must show:

| station | how | condition | control source |
| --- | --- | --- | --- |
| D-01..D-03 | depot ChargingPolicy caps connector 0 at 16 A | Synced | OCPP: 11.0 kW (1) |
| G-01 | the same cap, but the charger accepts without enforcing | Degraded | hardware limit (its read-back) |
| R-01 | the same cap, station `sync: reportOnly`: nothing sent | OutOfSync | hardware limit |
| S-01 | the same cap, suspended through the API before it connects | Suspended | not read back |
| X-01 | declared, never connected | Offline | not read back |
| H-01 | lab site, no profile | Synced | hardware limit |
| P-01 | lab, LocalPolicyEnabled=true, its local policy allows charging | Synced | Policy: OK |
| B-01 | lab, its local policy blocks all day, an EV plugged in | Synced | Policy: Blocked |
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from reconciler.core.status import Status
from reconciler.daemon.demo import DemoFleet
from reconciler.daemon.service import Daemon
from reconciler.daemon.settings import DaemonSettings
from reconciler.daemon.workqueue import QueueSettings
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.ev import LocalPolicy
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from reconciler.simulator.sessions import Sessions
from tests.daemon.kit import AUTH, CREDENTIALS, FAST_ENGINE
from tests.engine.fleetkit import PASSWORD, load, until, write

WAIT = 20.0  # upper bound for any condition a test waits on

DEPOT = ["D-01", "D-02", "D-03", "G-01", "R-01", "S-01", "X-01"]
LAB = ["H-01", "P-01", "B-01"]
STATIONS = DEPOT + LAB
CAP_A = 16.0
CAP_W = CAP_A * 230 * 3  # 11,040 W on connector 0: "OCPP: 11.0 kW (1)"


def station(name: str, site: str, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: Station
        metadata: {{name: {name}, labels: {{site: {site}, vendor: {"acme" if site == "depot" else "globex"}}}}}
        spec: {{connectors: 2, maxCurrentA: 32, phases: 3, voltage: 230{extra}}}
        """)


def site(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: Site
        metadata: {{name: {name}}}
        spec: {{selector: {{matchLabels: {{site: {name}}}}}, maxPowerW: 400000, timezone: UTC}}
        """)


CAP = textwrap.dedent(f"""\
    apiVersion: reconciler/v1
    kind: ChargingPolicy
    metadata: {{name: depot-cap}}
    spec:
      selector: {{matchLabels: {{site: depot}}}}
      profiles:
        - connectorId: 0
          chargingProfileId: 1
          stackLevel: 0
          chargingProfilePurpose: ChargePointMaxProfile
          chargingProfileKind: Absolute
          chargingSchedule:
            startSchedule: "2024-01-01T00:00:00Z"
            chargingRateUnit: A
            chargingSchedulePeriod: [{{startPeriod: 0, limit: {CAP_A}}}]
    """)


def fleet_files() -> dict[str, str]:
    local = ", configuration: {LocalPolicyEnabled: 'true'}"
    docs = [station(s, "depot", ", sync: reportOnly" if s == "R-01" else "") for s in DEPOT]
    docs += [station("H-01", "lab"), station("P-01", "lab", local), station("B-01", "lab", local)]
    return {"stations.yaml": "---\n".join(docs), "sites.yaml": site("depot") + "---\n" + site("lab"), "cap.yaml": CAP}


def many_files(count: int) -> dict[str, str]:
    docs = [station(f"T-{i:04d}", "depot" if i % 2 else "lab") for i in range(1, count + 1)]
    return {"stations.yaml": "---\n".join(docs), "sites.yaml": site("depot") + "---\n" + site("lab")}


@dataclass
class World:
    daemon: Daemon
    fleet: Fleet
    http: httpx.AsyncClient
    url: str
    revision: str | None = None

    def condition(self, name: str) -> Status | None:
        found = self.daemon.conditions().get(name)
        return found.status if found else None

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        await until(predicate, what, timeout)


def commit(directory: Path) -> str:
    """Make the policy directory a git repository with one commit; its short revision."""
    git = ["git", "-C", str(directory), "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "policies"]):
        subprocess.run([*git, *args], check=True, capture_output=True, timeout=30)
    return subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()  # fmt: skip


def settings(tmp: Path, policies: Path) -> DaemonSettings:
    return DaemonSettings(
        policies=(policies,), db=tmp / "state.db", credentials=CREDENTIALS, listen="127.0.0.1:0",
        station_passwords={"*": PASSWORD}, http="127.0.0.1:0", engine=FAST_ENGINE, call_timeout=3.0,
        queue=QueueSettings(interval=300.0, jitter=0.1, backoff_base=0.5, backoff_cap=5.0), debounce_ms=20,
        shutdown_timeout=3.0, connect_grace=0.1,
    )  # fmt: skip


def simulated(name: str) -> SimulatedChargePoint:
    quirks = Quirks(accepted_not_enforced=True) if name == "G-01" else None
    blocking = LocalPolicy(enabled=True, block_from_hour=0, block_to_hour=24) if name == "B-01" else None
    cp = SimulatedChargePoint(name, connectors=2, max_current=32, quirks=quirks, local_policy=blocking)
    if name in ("P-01", "B-01"):
        cp.configuration.change("LocalPolicyEnabled", "true")  # the station's own policy engine is on
    return cp


@asynccontextmanager
async def world(tmp: Path) -> AsyncIterator[World]:
    """The table of this module's docstring, settled: every station in its condition."""
    policies = write(tmp / "policies", fleet_files())
    revision = commit(policies)
    daemon = Daemon(settings(tmp, policies), load(policies))
    await daemon.start()
    try:
        assert daemon.central is not None
        fleet = Fleet(daemon.central.url, 0, password=PASSWORD)
        async with httpx.AsyncClient(base_url=daemon.http.url, auth=AUTH, timeout=WAIT) as http:
            suspended = await http.post("/stations/S-01/suspend", json={"reason": "maintenance"})
            assert suspended.status_code == 200, suspended.text
            for name in STATIONS:
                if name != "X-01":
                    fleet.add(simulated(name), password=PASSWORD, backoff_initial=0.05, backoff_max=0.3)
            async with fleet:
                run = World(daemon, fleet, http, daemon.http.url, revision)
                expected = {**dict.fromkeys(["D-01", "D-02", "D-03", "H-01", "P-01", "B-01"], Status.SYNCED),
                            "G-01": Status.DEGRADED, "R-01": Status.OUT_OF_SYNC, "S-01": Status.SUSPENDED,
                            "X-01": Status.OFFLINE}  # fmt: skip
                await run.until(lambda: all(run.condition(s) is c for s, c in expected.items()), "the fleet settled")
                # an EV plugs into B-01: its local policy blocks it (SuspendedEVSE); one charges on D-01
                assert await fleet["B-01"].start_transaction(1) is not None
                assert await fleet["D-01"].start_transaction(1) is not None
                for name in ("B-01", "D-01"):
                    await fleet[name].send_meter_values(1)
                info = daemon.central.station
                await run.until(lambda: (b := info("B-01")) is not None and b.connectors[1].status == "SuspendedEVSE",
                                "B-01 reports SuspendedEVSE")  # fmt: skip
                await run.until(lambda: all((i := info(n)) is not None and bool(i.meter_values.get(1))
                                            for n in ("B-01", "D-01")), "B-01's and D-01's meter values")  # fmt: skip
                yield run
    finally:
        await daemon.stop()


@asynccontextmanager
async def crowd(tmp: Path, count: int, *, open_reads: bool = False) -> AsyncIterator[World]:
    """`count` declared stations, none connected (Offline): a long table to scroll."""
    policies = write(tmp / "policies", many_files(count))
    daemon = Daemon(replace(settings(tmp, policies), open_reads=open_reads), load(policies))
    await daemon.start()
    try:
        assert daemon.central is not None
        async with httpx.AsyncClient(base_url=daemon.http.url, auth=AUTH, timeout=WAIT) as http:
            run = World(daemon, Fleet(daemon.central.url, 0), http, daemon.http.url)
            await run.until(lambda: len(daemon.conditions()) == count, "every station recorded")
            yield run
    finally:
        await daemon.stop()


@asynccontextmanager
async def demo(tmp: Path, sessions: Sessions | None = None) -> AsyncIterator[World]:
    """Demo mode: the daemon runs the simulated stations of three declared ones itself (`DemoFleet`),
    with charging sessions when given (the demo's default ones run for minutes; a test gives short ones)."""
    files = {"stations.yaml": "---\n".join(station(s, "depot") for s in DEPOT[:3]), "sites.yaml": site("depot"),
             "cap.yaml": CAP}  # fmt: skip
    policies = write(tmp / "policies", files)
    daemon = Daemon(settings(tmp, policies), load(policies))
    await daemon.start()
    try:
        central = daemon.central
        assert central is not None
        daemon.fleet = DemoFleet(central.url, daemon.policies, PASSWORD, admit=central.add_station, sessions=sessions)
        await daemon.fleet.start()
        async with httpx.AsyncClient(base_url=daemon.http.url, auth=AUTH, timeout=WAIT) as http:
            run = World(daemon, Fleet(central.url, 0), http, daemon.http.url)
            await run.until(lambda: all(run.condition(s) is Status.SYNCED for s in DEPOT[:3]), "the demo Synced")
            yield run
    finally:
        await daemon.stop()
