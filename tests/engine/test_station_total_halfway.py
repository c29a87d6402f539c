"""The station's physical total while a station cap gives way to connector limits and a Set fails halfway.

Old: a 20 A ChargePointMaxProfile (#1) on a two-connector station (station total 20 A per phase).
New: no station cap, 10 A TxDefaultProfile on each connector (#11, #12: the total stays 20 A). The
Set of the second connector fails (refused with a CallError, lost with no answer, or accepted but
not enforced); the run must stop before clearing #1, and at no moment may a connector be unlimited
or the station's total (each connector's limit in force, capped by the ChargePointMaxProfile) exceed
20 A. The next run, with an honest charger, converges. Real websockets, simulated charger, SQLite.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.profiles import Purpose
from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.simulator.charge_point import SimCallError, SimulatedChargePoint
from tests.engine.fleetkit import cap_policy, load, rig, station_doc, write

CP = "CP-0001"
LOSSY = Settings(horizon=6 * 3600, settle=0.02, verify_attempts=2,
                 retry=RetryPolicy(attempts=1, call_timeout=0.3))  # fmt: skip
OLD = {"s.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], 20, profile_id=1)}


def lane(pid: int, connector: int) -> str:
    text = cap_policy(f"lane-{connector}", [CP], 10, profile_id=pid, stack=1)
    return text.replace("ChargePointMaxProfile", "TxDefaultProfile").replace(
        "connectorId: 0", f"connectorId: {connector}"
    )


NEW = {"s.yaml": station_doc(CP, "x"), "l1.yaml": lane(11, 1), "l2.yaml": lane(12, 2)}


def watch(cp: SimulatedChargePoint) -> list[str]:
    """After each call the charger receives: a connector unlimited, or the station's physical total
    (each connector's TxDefault limit, unlimited without one, capped by the ChargePointMaxProfile)
    above 20 A. Every profile of this test is a flat limit."""
    bad: list[str] = []

    def limit(profile: Any) -> float:
        return float(profile.schedule.periods[0].limit)

    def seen(station: SimulatedChargePoint, action: str) -> None:
        pairs = station.installed.pairs()
        caps = [limit(p) for _, p in pairs if p.purpose is Purpose.CHARGE_POINT_MAX]
        cap = min(caps, default=math.inf)
        lanes = [min((limit(p) for c, p in pairs if c in (0, n) and p.purpose is Purpose.TX_DEFAULT),
                     default=math.inf) for n in (1, 2)]  # fmt: skip
        if any(min(v, cap) == math.inf for v in lanes):
            bad.append(f"{action}: a connector unlimited")
        elif min(cap, sum(lanes)) > 20:
            bad.append(f"{action}: station total {min(cap, sum(lanes))} A")

    cp.on_change = seen
    return bad


def fail_second_lane(cp: SimulatedChargePoint, how: str) -> None:
    handler = cp._handlers["SetChargingProfile"]

    def set_profile(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["connectorId"] != 2:
            return handler(payload)
        cp._handlers["SetChargingProfile"] = handler
        if how == "refused":
            raise SimCallError("InternalError", "busy")
        if how == "not enforced":
            return {"status": "Accepted"}
        cp.quirks = replace(cp.quirks, lose_answers="SetChargingProfile")  # "lost": never arrives, no answer
        return {"status": "Accepted"}

    cp._handlers["SetChargingProfile"] = set_profile


@pytest.mark.parametrize("how", ["refused", "lost", "not enforced"])
async def test_a_connector_set_failing_halfway_keeps_the_station_cap(tmp_path: Path, how: str):
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        assert (await r.reconciler(load(write(tmp_path / "p", OLD))).reconcile_station(CP)).status is Status.SYNCED
        bad = watch(cp)
        fail_second_lane(cp, how)
        halfway = await r.reconciler(load(write(tmp_path / "p", NEW)), LOSSY).reconcile_station(CP)
        assert halfway.status is not Status.SYNCED
        assert cp.installed.by_id(1) is not None, "the station cap was cleared although a lane was not set"
        cp.quirks = replace(cp.quirks, lose_answers="")
        healed = await r.reconciler(load(tmp_path / "p")).reconcile_station(CP)
        assert healed.status is Status.SYNCED, healed.reason
        assert sorted(e.profile.charging_profile_id for e in cp.installed) == [11, 12]
        assert bad == []
