"""Healing sends only what the charger lost (issue 12 item 6, acceptance audit).

A difference in the read-back used to re-send every desired profile of the connectors that
differ, and every connector-0 profile whenever anything differed: healing a cleared
ChargePointMaxProfile #100 re-sent the TxDefaultProfile #10 too, and a foreign profile on connector
2 re-sent both (then called them "accepted but not enforced"). What is sent again is what the
read-back may have lost: a profile it shows in force (the charger answers what it would with it, and
would answer otherwise without it) is not; one it cannot show is, whenever any of ours may be lost
(a reboot that lost everything re-sends everything: `test_changes_send_only_what_changed`). Ledger
entries whose arrival is uncertain are sent again as before (`test_hidden_uncertain`). Counted
SetChargingProfile calls per scenario, over real websockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.status import Status
from tests.engine.fleetkit import load, rig, write
from tests.engine.test_changes_send_only_what_changed import IDS, SETTINGS, files

pytestmark = pytest.mark.slow

STATION = IDS[0]


def policies(tmp: Path, *, max_power_w: int = 88_000, prune: bool = False):
    """#100: the station cap (ChargePointMaxProfile); #10: a time-of-use TxDefaultProfile at connector 0
    (no limit off-peak, 7 kW per connector at the peak)."""
    docs = files(7000, model=False)
    docs["site.yaml"] = docs["site.yaml"].replace("maxPowerW: 88000", f"maxPowerW: {max_power_w}")
    docs["stations.yaml"] = docs["stations.yaml"].split("---\n")[0]
    if prune:
        docs["tou.yaml"] = docs["tou.yaml"].replace("  profiles:", "  prune: foreign\n  profiles:", 1)
    return load(write(tmp / "p", docs))


def foreign(limit: float) -> dict:
    return {"connectorId": 2, "csChargingProfiles": {
        "chargingProfileId": 777, "stackLevel": 5, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z", "chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}}  # fmt: skip


def resent(outcome) -> list[int]:
    return sorted(a.profile.charging_profile_id for a in outcome.plan.actions if a.profile is not None)


@pytest.mark.parametrize("cleared", [100, 10])
async def test_a_cleared_profile_is_the_only_one_sent_again(tmp_path: Path, cleared: int):
    """An 11 kW station cap binds off-peak, the time-of-use value at the peak: each shows in the
    answers, so clearing one on the charger re-sends that one only (was: both, 2 Sets)."""
    binding = policies(tmp_path, max_power_w=11_000)
    async with rig(tmp_path, 1) as r:
        assert (await r.reconciler(binding, SETTINGS).apply([STATION]))[0].status is Status.SYNCED
        assert (await r.cs.call(STATION, "ClearChargingProfile", {"id": cleared})).status == "Accepted"
        sets = r.received("SetChargingProfile")
        healed = (await r.reconciler(binding, SETTINGS).apply([STATION]))[0]
        assert healed.status is Status.SYNCED, healed.reason
        assert resent(healed) == [cleared]
        assert r.received("SetChargingProfile") - sets == 1
        assert sorted(e.profile.id for e in r.fleet[STATION].installed) == [10, 100]


async def test_a_foreign_cap_pruned_from_connector_2_sends_nothing_of_ours(tmp_path: Path):
    """The foreign cap lowers connector 2 and the station's total; #10 shows in force on connector
    1, #100 (88 kW) binds nowhere: nothing of ours was lost (was: #100 and #10 re-sent)."""
    pruning = policies(tmp_path, prune=True)
    async with rig(tmp_path, 1) as r:
        assert (await r.reconciler(pruning, SETTINGS).apply([STATION]))[0].status is Status.SYNCED
        assert (await r.cs.call(STATION, "SetChargingProfile", foreign(6))).status == "Accepted"
        sets = r.received("SetChargingProfile")
        healed = (await r.reconciler(pruning, SETTINGS).apply([STATION]))[0]
        assert healed.status is Status.SYNCED, healed.reason
        assert r.fleet[STATION].installed.by_id(777) is None
        assert resent(healed) == [] and r.received("SetChargingProfile") - sets == 0
        assert sorted(e.profile.id for e in r.fleet[STATION].installed) == [10, 100]


async def test_a_foreign_profile_overriding_ours_on_connector_2_is_reported_not_answered_with_resends(
    tmp_path: Path,
):
    """A foreign TxDefaultProfile above ours on connector 2 lifts its peak limit. Re-sending #10 and
    #100 changed nothing (they are there: connector 1 shows #10), every run, and the outcome blamed
    the charger for not enforcing them; now nothing is sent and the foreign profile is named."""
    plain = policies(tmp_path)
    async with rig(tmp_path, 1) as r:
        assert (await r.reconciler(plain, SETTINGS).apply([STATION]))[0].status is Status.SYNCED
        assert (await r.cs.call(STATION, "SetChargingProfile", foreign(32))).status == "Accepted"
        sets = r.received("SetChargingProfile")
        for _ in range(2):
            outcome = (await r.reconciler(plain, SETTINGS).apply([STATION]))[0]
            assert outcome.status is Status.OUT_OF_SYNC, outcome.reason
            assert "did not install" in (outcome.reason or "") and "not enforce" not in (outcome.reason or "")
        assert r.received("SetChargingProfile") - sets == 0
        assert r.fleet[STATION].installed.by_id(777) is not None
