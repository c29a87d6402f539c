"""The simulator answers the public conformance cases like the core (`reconciler composite`).

Each replayable case becomes one simulated station whose context (connectors, default limits,
conventions) comes from the case, with the simulator's own 0.1 rounding, and whose clock stands
at the case's `now`. The case's profiles go over the wire through SetChargingProfile, then one
GetCompositeSchedule; the answer must match `core.wire.answer` (limits within 0.05).

Skipped, and why: disputed cases; cases whose profiles are not all Accepted when replayed through
SetChargingProfile, or whose replay installs a different set than the case lists (installedDirectly
with duplicate ids or (connector, purpose, stackLevel) clashes; OCPP 1.6 cannot build that state
over the wire). A case's running transaction is given to the station directly, as one that
started at the case's `start` with the case's transactionId (a Central System would assign its own
id, which TxProfiles in the case refer to).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import parse_time, profile_from_ocpp
from reconciler.core.wire import answer, composite_to_ocpp, request_from_json
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from reconciler.transport.central_system import CentralSystem

CASES = Path(__file__).resolve().parents[1] / "conformance" / "cases.jsonl"
WAIT = 10.0


def replayable(case: dict[str, Any]) -> bool:
    if case["assertion"].get("strength") == "disputed":
        return False
    request = request_from_json(case)
    installed = InstalledProfiles()
    for item in case["profiles"]:
        profile = profile_from_ocpp(item["csChargingProfiles"])
        installed, verdict = installed.set_profile(
            item["connectorId"], profile, context=request.context, transactions=request.transactions, now=request.now
        )
        if not verdict.accepted:
            return False
    return installed.pairs() == request.installed.pairs()


def load_cases() -> list[dict[str, Any]]:
    if not CASES.is_file():
        return []
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


def same_composite(got: dict[str, Any], want: dict[str, Any]) -> str | None:
    """None when equal (limits within 0.05), else the first difference."""
    for key in ("status", "connectorId", "scheduleStart"):
        if got.get(key) != want.get(key):
            return f"{key}: {got.get(key)!r} != {want.get(key)!r}"
    if want["status"] != "Accepted":
        return None
    g, w = got["chargingSchedule"], want["chargingSchedule"]
    for key in ("duration", "chargingRateUnit"):
        if g.get(key) != w.get(key):
            return f"{key}: {g.get(key)!r} != {w.get(key)!r}"
    gp, wp = g["chargingSchedulePeriod"], w["chargingSchedulePeriod"]
    if len(gp) != len(wp):
        return f"{len(gp)} periods != {len(wp)}: {gp} vs {wp}"
    for a, b in zip(gp, wp, strict=True):
        if a["startPeriod"] != b["startPeriod"] or abs(a["limit"] - b["limit"]) > 0.05:
            return f"period {a} != {b}"
        if a.get("numberPhases") != b.get("numberPhases"):
            return f"numberPhases in {a} != {b}"
    return None


ALL = load_cases()
REPLAYABLE = [c for c in ALL if replayable(c)]


async def test_simulator_answers_conformance_cases_like_the_core() -> None:
    assert len(REPLAYABLE) >= 40, f"only {len(REPLAYABLE)} of {len(ALL)} cases are replayable"
    async with CentralSystem(port=0, allow_unknown=True) as cs:
        fleet = Fleet(cs.url, 0, backoff_initial=0.05)
        stations: dict[str, tuple[dict[str, Any], SimulatedChargePoint]] = {}
        for i, case in enumerate(REPLAYABLE):
            request = request_from_json(case)
            now = parse_time(case["now"])
            station = SimulatedChargePoint(
                f"CASE-{i:03d}",
                connectors=request.context.number_of_connectors,
                context=replace(request.context, limit_step=0.1),
                clock=lambda now=now: now,
            )
            station.transactions.update(request.transactions)
            fleet.add(station)
            stations[station.station_id] = (case, station)
        async with fleet:
            assert await cs.wait_for_stations(stations, WAIT) == set(stations)
            failures = []
            for station_id, (case, _) in stations.items():
                for item in case["profiles"]:
                    reply = await cs.call(station_id, "SetChargingProfile", item)
                    assert reply.status == "Accepted", (case["id"], reply)
                query: dict[str, Any] = {"connectorId": case["connectorId"], "duration": case["duration"]}
                if case.get("chargingRateUnit"):
                    query["chargingRateUnit"] = case["chargingRateUnit"]
                reply = await cs.call(station_id, "GetCompositeSchedule", query)
                assert reply.ok and reply.payload is not None, (case["id"], reply)
                problem = same_composite(reply.payload, composite_to_ocpp(answer(request_from_json(case))))
                if problem:
                    failures.append(f"{case['id']}: {problem}")
            assert failures == []
