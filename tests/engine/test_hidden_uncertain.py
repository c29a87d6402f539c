"""A verified read-back does not vouch for a profile it cannot see whose arrival nothing showed.

#2 (ChargePointMaxProfile, stack 0) was accepted but not enforced; then the policy moves to #3
(stack 1, above it, hiding whatever stack 0 holds) and the charger enforces again. The apply
verifies Synced. Before, the ledger then took #2 for in force ("the nominal state is the truth"),
although the charger never stored it: the next run of a synced station sent a ClearChargingProfile
(promise 5) and the ledger listed a profile the charger did not hold. Only an *Accepted answer*
whose absence no read-back can show is taken at its word; a profile the charger was seen not to
enforce (or whose answer never came) stays uncertain and is settled by the plan (cleared if no
longer wanted, sent again if wanted). Real websockets, simulated charger, SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reconciler.core.status import Status
from reconciler.simulator.charge_point import SimulatedChargePoint
from tests.engine.fleetkit import cap_policy, load, rig, station_doc, write

CP = "CP-0001"


def files(pid: int, limit: float, stack: int) -> dict[str, str]:
    return {"s.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], limit, profile_id=pid, stack=stack)}


def uncapped(cp: SimulatedChargePoint) -> list[str]:
    return [s.action for s in cp.history if any(s.limit(c) is None for c in range(1, cp.connectors + 1))]


async def test_a_hidden_profile_the_charger_did_not_enforce_is_not_confirmed_by_a_synced_read_back(tmp_path: Path):
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        first = await r.reconciler(load(write(tmp_path / "p", files(1, 16, 0)))).reconcile_station(CP)
        assert first.status is Status.SYNCED, first.reason
        cp.quirks = replace(cp.quirks, accepted_not_enforced=True)
        ignored = await r.reconciler(load(write(tmp_path / "p", files(2, 30, 0)))).reconcile_station(CP)
        assert ignored.status is Status.DEGRADED, ignored.reason
        cp.quirks = replace(cp.quirks, accepted_not_enforced=False)
        moved = await r.reconciler(load(write(tmp_path / "p", files(3, 31, 1)))).reconcile_station(CP)
        assert moved.status is Status.SYNCED, moved.reason
        assert sorted(e.profile.charging_profile_id for e in cp.installed) == [3]
        believed = [(e.profile.id, e.state.value) for e in r.store.ledger(CP)]
        assert (2, "Accepted") not in believed, believed  # the charger never stored it
        # Back to #2: a ledger that believed #2 in force cleared #3 alone and left the station uncapped.
        cp.record_history = True
        back = await r.reconciler(load(write(tmp_path / "p", files(2, 30, 0)))).reconcile_station(CP)
        assert uncapped(cp) == [], "the station was left without a cap"
        assert back.status is Status.SYNCED, back.reason
        assert sorted(e.profile.charging_profile_id for e in cp.installed) == [2]
        assert [(e.profile.id, e.state.value) for e in r.store.ledger(CP)] == [(2, "Accepted")]
        sets, clears = cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]
        again = await r.reconciler(load(tmp_path / "p")).reconcile_station(CP)
        assert again.status is Status.SYNCED and not again.plan.actions
        assert (cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]) == (sets, clears)
