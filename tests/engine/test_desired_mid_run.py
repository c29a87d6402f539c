"""One run judges against one desired state, even when an override expires while it is in flight.

The daemon's desired state is git's plus overrides (and session intents); an override can expire,
or be removed, between a run's plan and its read-back. The run must verify what it planned (and
the next run removes the override): before, the read-back was judged against the new desired state,
so a run that did exactly what it planned ended "OutOfSync" blaming a profile the reconciler did
not install (its own override), an alert for nothing. Real websockets, simulated charger, SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reconciler.core.status import Status
from reconciler.engine.reconcile import Reconciler
from reconciler.policy import DesiredState
from reconciler.simulator.charge_point import SimulatedChargePoint
from tests.engine.fleetkit import FAST, cap_policy, load, rig, station_doc, write

CP = "CP-0001"


async def test_an_override_expiring_mid_run_does_not_change_what_the_run_verifies(tmp_path: Path):
    git = load(write(tmp_path / "p", {"s.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], 16)}))
    extra = cap_policy("override", [CP], 8, profile_id=50, stack=5).replace("ChargePointMaxProfile", "TxDefaultProfile")
    both = load(write(tmp_path / "o", {"s.yaml": station_doc(CP, "x"), "o.yaml": extra}))
    override = replace(both.desired[CP].profiles[0], policy="override #1")
    expired = {"now": False}

    def layered(station_id: str) -> DesiredState:
        state = git.desired[station_id]
        return state if expired["now"] else replace(state, profiles=(*state.profiles, override))

    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]

        def expire_on_set(station: SimulatedChargePoint, action: str) -> None:
            if action == "SetChargingProfile" and any(e.profile.charging_profile_id == 50 for e in station.installed):
                expired["now"] = True  # the operator's override runs out while the run reads back

        cp.on_change = expire_on_set
        engine = Reconciler(r.cs, r.store, git, FAST, desired=layered)
        first = await engine.reconcile_station(CP)
        assert expired["now"]
        assert first.status is Status.SYNCED, first.reason
        second = await engine.reconcile_station(CP)
        assert second.status is Status.SYNCED, second.reason
        assert sorted(e.profile.charging_profile_id for e in cp.installed) == [1]
