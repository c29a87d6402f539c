"""A clear sent through the daemon's API (`DELETE /stations/{id}/charging_profile`) is known to the ledger.

git holds #5 (TxDefault, 10 A, stack 1) and #6 (TxDefault, 20 A, stack 2, above it) on one charger.
An operator clears #6 through the API; the answer says self-heal restores it. Before, the ledger
still believed #6 in force, so the charger's 10 A looked like a cap below anything the reconciler
installed: self-heal was *blocked* ("a cap the reconciler did not install"), blaming the
reconciler's own #5, and #6 never came back. The same with a clear whose answer never came: the
profile may be gone, so it is uncertain, not certainly there. Real daemon, websockets, SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.core.status import Status
from tests.daemon.kit import limit_a, running
from tests.engine.fleetkit import cap_policy, station_doc

pytestmark = pytest.mark.slow

CP = "CP-0001"


def tx_default(name: str, pid: int, stack: int, limit: float) -> str:
    return cap_policy(name, [CP], limit, profile_id=pid, stack=stack).replace(
        "ChargePointMaxProfile", "TxDefaultProfile"
    )


FILES = {"station.yaml": station_doc(CP, "x"), "low.yaml": tx_default("low", 5, 1, 10),
         "high.yaml": tx_default("high", 6, 2, 20)}  # fmt: skip


@pytest.mark.parametrize("answered", [True, False], ids=["answered", "answer lost"])
async def test_a_profile_cleared_through_the_api_is_restored_by_self_heal(tmp_path: Path, answered: bool):
    async with running(tmp_path, FILES, [CP], call_timeout=0.5) as run:
        await run.synced()
        cp = run.fleet[CP]
        assert limit_a(cp) == 20
        if not answered:
            cp.quirks = replace(cp.quirks, lose_answers="ClearChargingProfile")
        reply = await run.http.delete(f"/stations/{CP}/charging_profile", params={"profile_id": 6})
        if answered:
            assert reply.json()["csms_status"] == "Accepted", reply.text
            assert "self-heal will restore git's profile(s) #6" in reply.json()["message"]
        else:
            assert reply.status_code == 504, reply.text
            cp.quirks = replace(cp.quirks, lose_answers="")
            await run.http.post("/reconcile", json={"station_id": CP, "wait": 10})
        await run.until(lambda: limit_a(cp) == 20, "#6 restored by self-heal")
        await run.synced()
        latest = run.daemon.latest[CP]
        assert latest.status is Status.SYNCED and not (latest.plan and latest.plan.foreign), latest.reason
        assert sorted(e.profile.id for e in run.daemon.store.ledger(CP)) == [5, 6]
