"""Transport benchmark: N simulated stations, 5 calls each, through the embedded Central System
and through a bare `ocpp`-library Central System (the baseline), side by side in one run.

    .venv/bin/python bench/transport.py --stations 1000

The simulated stations run in a separate process (`reconciler simulate`), the Central System in
this one. Per stack it prints: connect time (spawn -> all booted), calls/s for the workload
(GetConfiguration, GetCompositeSchedule, SetChargingProfile x2, GetCompositeSchedule per station,
all stations concurrently), and the RSS of both processes. Our stack validates every message
against the OCPP 1.6 JSON schemas (precompiled); the baseline is the library as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result

from reconciler.transport.central_system import CentralSystem

VALIDATE = "--no-validate" not in sys.argv
ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spawn_fleet(url: str, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli.main", "simulate", "--stations", str(n), "--url", url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def profile(profile_id: int, limit: float) -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": profile_id,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": "2024-01-01T00:00:00Z",
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}, {"startPeriod": 3600, "limit": limit / 2}],
        },
    }


async def ours(n: int, port: int) -> dict[str, float]:
    async with CentralSystem(port=port, allow_unknown=True, call_timeout=60, validate_messages=VALIDATE) as cs:
        ids = [f"PY-SIM-{i:04d}" for i in range(1, n + 1)]
        t0 = time.perf_counter()
        fleet = spawn_fleet(cs.url, n)
        try:
            ready = await cs.wait_for_stations(ids, 120)
            connect = time.perf_counter() - t0
            assert len(ready) == n, f"only {len(ready)} of {n} connected"

            async def station(sid: str) -> None:
                replies = [
                    await cs.call(sid, "GetConfiguration", {"key": ["ChargeProfileMaxStackLevel"]}),
                    await cs.call(sid, "GetCompositeSchedule", {"connectorId": 0, "duration": 86400}),
                    await cs.call(
                        sid, "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": profile(1, 11000)}
                    ),
                    await cs.call(
                        sid, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile(2, 7400)}
                    ),
                    await cs.call(
                        sid, "GetCompositeSchedule", {"connectorId": 1, "duration": 86400, "chargingRateUnit": "A"}
                    ),
                ]
                assert all(r.ok for r in replies), [r for r in replies if not r.ok]

            t1, c1, s1 = time.perf_counter(), cpu_s(os.getpid()), cpu_s(fleet.pid)
            await asyncio.gather(*(station(s) for s in ids))
            return figures(n, connect, time.perf_counter() - t1, c1, s1, fleet.pid)
        finally:
            fleet.terminate()
            fleet.wait(10)


def figures(n: int, connect: float, elapsed: float, cs_cpu0: float, sim_cpu0: float, sim_pid: int) -> dict[str, float]:
    """One stack's figures for the 5-calls-per-station workload (CPU per call in both processes)."""
    return {
        "connect_s": connect,
        "calls_s": 5 * n / elapsed,
        "workload_s": elapsed,
        "cs_cpu_us": (cpu_s(os.getpid()) - cs_cpu0) / (5 * n) * 1e6,
        "sim_cpu_us": (cpu_s(sim_pid) - sim_cpu0) / (5 * n) * 1e6,
        "cs_rss_mb": rss_mb_self(),
        "sim_rss_mb": rss_mb(sim_pid),
    }


def rss_mb_self() -> float:
    return rss_mb(os.getpid())


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BareChargePoint(OcppChargePoint):  # type: ignore[misc]
    booted: asyncio.Event

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        self.booted.set()
        return call_result.BootNotification(current_time=datetime.now(UTC).isoformat(), interval=300, status="Accepted")

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return call_result.StatusNotification()

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=datetime.now(UTC).isoformat())


async def baseline(n: int, port: int) -> dict[str, float]:
    stations: dict[str, BareChargePoint] = {}

    async def handler(ws: Any) -> None:
        sid = ws.request.path.strip("/")
        cp = BareChargePoint(sid, ws)
        cp.booted = asyncio.Event()
        stations[sid] = cp
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["ocpp1.6"], backlog=4096) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        t0 = time.perf_counter()
        fleet = spawn_fleet(url, n)
        try:
            deadline = time.perf_counter() + 120
            while (
                len(stations) < n or not all(cp.booted.is_set() for cp in stations.values())
            ) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)  # the bare library offers nothing to wait on
            connect = time.perf_counter() - t0

            async def station(cp: BareChargePoint) -> None:
                await cp.call(call.GetConfiguration(key=["ChargeProfileMaxStackLevel"]), suppress=False)
                await cp.call(call.GetCompositeSchedule(connector_id=0, duration=86400), suppress=False)
                await cp.call(
                    call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile(1, 11000)), suppress=False
                )
                await cp.call(
                    call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile(2, 7400)), suppress=False
                )
                await cp.call(
                    call.GetCompositeSchedule(connector_id=1, duration=86400, charging_rate_unit="A"), suppress=False
                )

            t1, c1, s1 = time.perf_counter(), cpu_s(os.getpid()), cpu_s(fleet.pid)
            await asyncio.gather(*(station(cp) for cp in stations.values()))
            return figures(n, connect, time.perf_counter() - t1, c1, s1, fleet.pid)
        finally:
            fleet.terminate()
            fleet.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--no-validate", action="store_true", help="embedded CS without schema validation")
    args = parser.parse_args()
    results = {"embedded": asyncio.run(ours(args.stations, args.port))}
    if not args.skip_baseline:
        results["ocpp baseline"] = asyncio.run(baseline(args.stations, args.port))
    print(f"{args.stations} stations, 5 calls each")
    print(
        f"{'stack':<15} {'connect s':>10} {'calls/s':>10} {'workload s':>11} {'CS µs/call':>11} "
        f"{'sim µs/call':>12} {'CS MB':>7} {'sim MB':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<15} {r['connect_s']:>10.2f} {r['calls_s']:>10.0f} {r['workload_s']:>11.2f} "
            f"{r['cs_cpu_us']:>11.0f} {r['sim_cpu_us']:>12.0f} {r['cs_rss_mb']:>7.0f} {r['sim_rss_mb']:>7.0f}"
        )
    if "ocpp baseline" in results:
        ratio = results["embedded"]["calls_s"] / results["ocpp baseline"]["calls_s"]
        print(f"calls/s ratio embedded / ocpp baseline: {ratio:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
