"""A checkpoint must be able to see the new profile from every state the charger may be in.

Connector 1 holds #5 (TxDefault, stack 1, 16 A) and #7 (stack 5, 16 A). A move of #7 to stack 2
is lost (never carried out, no answer), so the ledger allows two states that look the same: #7 at
stack 2 (the nominal one) or still at stack 5. The policy then asks for #9 alone (stack 3, 10 A)
on a charger that answers Accepted but enforces nothing. From the nominal state a read-back shows
#9 (it is on top); from the other it cannot (#7 at stack 5 hides it), so a read-back that matches
proves nothing there. Before, the checkpoints were placed for the first state only: the read-back
"matched" the hidden case, #5 and #7 were cleared, and connector 1 was left without any limit.
Real websockets, simulated charger, SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.simulator.charge_point import SimulatedChargePoint
from tests.engine.fleetkit import FAST, cap_policy, load, rig, station_doc, write

CP = "CP-0001"
LOSSY = Settings(horizon=6 * 3600, settle=0.02, verify_attempts=2, retry=RetryPolicy(attempts=1, call_timeout=0.3))


def tx(pid: int, stack: int, limit: float) -> str:
    text = cap_policy(f"tx-{pid}", [CP], limit, profile_id=pid, stack=stack)
    return text.replace("ChargePointMaxProfile", "TxDefaultProfile").replace("connectorId: 0", "connectorId: 1")


def files(*profiles: str) -> dict[str, str]:
    return {"s.yaml": station_doc(CP, "x"), **{f"p{i}.yaml": p for i, p in enumerate(profiles)}}


def connector1_unlimited(cp: SimulatedChargePoint) -> list[str]:
    return [s.action for s in cp.history if s.limit(1) is None]


def lose_next_set(cp: SimulatedChargePoint) -> None:
    """The next SetChargingProfile never reaches the charger's store, and no answer comes."""
    handler = cp._handlers["SetChargingProfile"]

    def lost(payload: dict[str, Any]) -> dict[str, Any]:
        cp._handlers["SetChargingProfile"] = handler
        cp.quirks = replace(cp.quirks, lose_answers="SetChargingProfile")
        return {"status": "Accepted"}

    cp._handlers["SetChargingProfile"] = lost


async def test_a_set_hidden_in_one_possible_state_is_not_trusted_by_a_matching_read_back(tmp_path: Path):
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        first = await r.reconciler(load(write(tmp_path / "p", files(tx(5, 1, 16), tx(7, 5, 16))))).reconcile_station(CP)
        assert first.status is Status.SYNCED, first.reason
        lose_next_set(cp)
        moved = r.reconciler(load(write(tmp_path / "p", files(tx(5, 1, 16), tx(7, 2, 16)))), LOSSY)
        assert (await moved.reconcile_station(CP)).status is Status.OFFLINE
        cp.quirks = replace(cp.quirks, lose_answers="", accepted_not_enforced=True)
        cp.record_history = True
        last = await r.reconciler(load(write(tmp_path / "p", files(tx(9, 3, 10)))), FAST).reconcile_station(CP)
        assert connector1_unlimited(cp) == [], f"connector 1 was left without any limit ({last.reason})"
        assert last.status is not Status.SYNCED
        assert cp.installed.by_id(5) is not None or cp.installed.by_id(7) is not None
