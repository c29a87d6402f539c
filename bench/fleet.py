#!/usr/bin/env python3
"""Fleet benchmark: N simulated stations from empty to verified Synced through the embedded Central
System, beside a bare-`ocpp` baseline that makes the same calls with no logic at all.

    .venv/bin/python bench/fleet.py [--stations 1000] [--rounds 3] [--json out.json]

The stations (1 connector, 32 A) run in a separate process (`reconciler simulate`). Per round:
- reconciler: `Reconciler.apply` over all stations: per station GetConfiguration, GetCompositeSchedule,
  SetChargingProfile x2 (a ChargePointMaxProfile and a TxDefaultProfile from generated policies),
  GetCompositeSchedule to verify; plan computed and proved make-before-break, ledger rows, events
  and conditions written to a real SQLite file, read-back compared;
- baseline: the `ocpp` library as shipped (its own ChargePoint class, schema validation on), the
  same five calls per station with the same payloads, no planning, no store, no comparison.
Both time only the reconcile after every station is connected. The simulator is restarted for each
run so both start from empty. Prints wall time, calls, calls/s, and the ratio reconciler/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from ocpp.v16 import call

from reconciler.cli.connect import settle_heap
from reconciler.core.plan import ActionKind
from reconciler.core.status import Status
from reconciler.engine.reconcile import Reconciler, Settings
from reconciler.policy import load_policies
from reconciler.simulator.fleet import station_ids
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transport import BareChargePoint

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench"
CAP = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
       "chargingProfileKind": "Absolute", "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z",
       "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}  # fmt: skip
DEFAULT = {"chargingProfileId": 2, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
           "chargingProfileKind": "Absolute", "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z",
           "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]}}  # fmt: skip


def ids(n: int) -> list[str]:
    return station_ids(n)  # the simulator's own naming: 5 digits from 10,000 stations on


def write_policies(directory: Path, n: int) -> None:
    stations = "".join(
        f"---\napiVersion: reconciler/v1\nkind: Station\nmetadata: {{name: {s}, labels: {{site: bench}}}}\n"
        "spec: {connectors: 1, maxCurrentA: 32, phases: 3, voltage: 230}\n"
        for s in ids(n)
    )
    (directory / "stations.yaml").write_text(stations)
    profiles = "\n".join(f"    - {{connectorId: 0, {json.dumps(p)[1:-1]}}}".replace('"', "") for p in (CAP, DEFAULT))
    (directory / "policy.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: bench}\n"
        f"spec:\n  selector: {{matchLabels: {{site: bench}}}}\n  profiles:\n{profiles}\n"
    )


def spawn_fleet(url: str, n: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "reconciler.cli.main", "simulate", "--stations", str(n), "--url", url,
               "--connectors", "1"]  # fmt: skip
    environment = {**os.environ, "RECONCILER_STATION_PASSWORD": PASSWORD}  # not on the command line (ps)
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


async def reconciler_round(n: int, policy_dir: Path, tmp: Path) -> dict[str, Any]:
    policies = load_policies([policy_dir], now=datetime.now(UTC))
    assert policies.ok, [d.format_text() for d in policies.errors]
    store = Store(tmp / f"state-{time.monotonic_ns()}.db")
    async with CentralSystem(port=0, passwords={"*": PASSWORD}, known_stations=ids(n), call_timeout=60) as cs:
        fleet = spawn_fleet(cs.url, n)
        try:
            ready = await cs.wait_for_stations(ids(n), 120)
            assert len(ready) == n, f"only {len(ready)} of {n} stations connected"
            settle_heap()  # as `reconciler apply --listen` does once the stations are connected
            engine = Reconciler(cs, store, policies, Settings(concurrency=n, settle=0.0, verify_attempts=3))
            started = time.perf_counter()
            outcomes = await engine.apply(ids(n))
            elapsed = time.perf_counter() - started
        finally:
            stop(fleet)
            store.close()
    synced = sum(o.status is Status.SYNCED for o in outcomes)
    assert synced == n, [(o.station_id, o.reason) for o in outcomes if o.status is not Status.SYNCED][:3]
    sets = sum(1 for o in outcomes if o.plan for a in o.plan.actions if a.kind is ActionKind.SET)
    calls = sum(engine.caller.sent.values())
    return {"seconds": elapsed, "calls": calls, "sets": sets, "calls_per_s": calls / elapsed}


async def baseline_round(n: int) -> dict[str, Any]:
    stations: dict[str, BareChargePoint] = {}

    async def handler(ws: Any) -> None:
        cp = BareChargePoint(ws.request.path.strip("/"), ws)
        cp.booted = asyncio.Event()
        stations[cp.id] = cp
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"], backlog=4096) as server:
        fleet = spawn_fleet(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", n)
        try:
            for _ in range(12_000):  # at most 120 s: the bare library offers nothing to wait on
                if len(stations) == n and all(cp.booted.is_set() for cp in stations.values()):
                    break
                await asyncio.sleep(0.01)
            assert len(stations) == n, f"only {len(stations)} of {n} stations connected"
            keys = ["ChargeProfileMaxStackLevel", "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled",
                    "ChargingScheduleAllowedChargingRateUnit"]  # fmt: skip

            async def station(cp: BareChargePoint) -> None:
                await cp.call(call.GetConfiguration(key=keys), suppress=False)
                await cp.call(call.GetCompositeSchedule(connector_id=1, duration=86400, charging_rate_unit="A"),
                              suppress=False)  # fmt: skip
                await cp.call(call.SetChargingProfile(connector_id=0, cs_charging_profiles=CAP), suppress=False)
                await cp.call(call.SetChargingProfile(connector_id=0, cs_charging_profiles=DEFAULT), suppress=False)
                await cp.call(call.GetCompositeSchedule(connector_id=1, duration=86400, charging_rate_unit="A"),
                              suppress=False)  # fmt: skip

            started = time.perf_counter()
            await asyncio.gather(*(station(cp) for cp in stations.values()))
            elapsed = time.perf_counter() - started
        finally:
            stop(fleet)
    return {"seconds": elapsed, "calls": 5 * n, "calls_per_s": 5 * n / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each stack (medians are reported)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    ours: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        policy_dir = Path(tmp) / "policies"
        policy_dir.mkdir()
        write_policies(policy_dir, args.stations)
        for i in range(args.rounds):  # interleaved, so machine noise hits both alike
            ours.append(asyncio.run(reconciler_round(args.stations, policy_dir, Path(tmp))))
            if not args.skip_baseline:
                base.append(asyncio.run(baseline_round(args.stations)))
            print(f"round {i + 1}: reconciler {ours[-1]['seconds']:.2f} s"
                  + (f", baseline {base[-1]['seconds']:.2f} s" if base else ""), file=sys.stderr)  # fmt: skip

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "seconds": statistics.median(r["seconds"] for r in rows),
            "calls": rows[0]["calls"],
            "calls_per_s": statistics.median(r["calls_per_s"] for r in rows),
            "all_s": [r["seconds"] for r in rows],
        }

    figures: dict[str, Any] = {
        "stations": args.stations,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "reconciler": summary(ours),
    }
    print(f"{args.stations} stations from empty to verified Synced (1 connector, 2 profiles each)")
    print(f"{'stack':<12} {'wall s':>8} {'calls':>7} {'calls/s':>9}")
    row = figures["reconciler"]
    print(f"{'reconciler':<12} {row['seconds']:>8.2f} {row['calls']:>7} {row['calls_per_s']:>9,.0f}")
    if base:
        figures["baseline"] = summary(base)
        figures["ratio"] = figures["reconciler"]["seconds"] / figures["baseline"]["seconds"]
        row = figures["baseline"]
        print(f"{'ocpp bare':<12} {row['seconds']:>8.2f} {row['calls']:>7} {row['calls_per_s']:>9,.0f}")
        print(f"ratio reconciler / bare-ocpp baseline: {figures['ratio']:.2f}x (target about 0.35x, 1.0 s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
