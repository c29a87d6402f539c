"""Issue 9 item 5: pruning is bounded, stops once the foreign cap is gone, and is not repeated
when it changed nothing.

With `prune: foreign` on a charger that does not report ChargeProfileMaxStackLevel, the old
default of 100 stack levels meant about 400 ClearChargingProfile calls per station per apply, all
answered Unknown, and the next run did it again.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.core.status import Status
from reconciler.simulator.quirks import Quirks
from tests.engine import test_changes_send_only_what_changed as changed
from tests.engine.fleetkit import cap_policy, load, rig, station_doc, write

STATION = "CP-0001"
NO_STACK_KEY = Quirks(report_stack_level=False, max_stack_level=60)  # accepts 0..60, does not say so


def policies(tmp: Path):
    default = cap_policy("defaults", [STATION], 10, profile_id=5, stack=1).replace(
        "ChargePointMaxProfile", "TxDefaultProfile"
    )
    cap = cap_policy("cap", [STATION], 16, extra="  prune: foreign\n")
    return load(write(tmp / "p", {"s.yaml": station_doc(STATION, "x"), "cap.yaml": cap, "d.yaml": default}))


def foreign(stack: int) -> dict:
    return {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 777, "stackLevel": stack, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z", "chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}]}}}  # fmt: skip


async def test_a_prune_that_changes_nothing_is_bounded_reported_and_not_repeated(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=NO_STACK_KEY) as r:
        first = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert first.status is Status.SYNCED, first.reason
        assert (await r.cs.call(STATION, "SetChargingProfile", foreign(stack=40))).status == "Accepted"

        clears = r.received("ClearChargingProfile")
        pruned = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        sent = r.received("ClearChargingProfile") - clears
        assert 0 < sent <= 4 * 11, sent  # four (connector, purpose) groups, stack levels 0..10 at most
        assert pruned.status is Status.DEGRADED
        assert "prune: foreign cleared nothing" in (pruned.reason or "")
        assert "does not report ChargeProfileMaxStackLevel" in (pruned.reason or "")
        assert r.store.prunes.last(STATION) is not None

        again = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert r.received("ClearChargingProfile") == clears + sent  # not repeated
        assert again.status is Status.DEGRADED and "prune: foreign is not repeated" in (again.reason or "")
        assert r.fleet[STATION].installed.by_id(777) is not None


async def test_a_prune_stops_once_the_foreign_cap_is_gone(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=NO_STACK_KEY) as r:
        assert (await r.reconciler(policies(tmp_path)).apply([STATION]))[0].status is Status.SYNCED
        assert (await r.cs.call(STATION, "SetChargingProfile", foreign(stack=3))).status == "Accepted"
        clears = r.received("ClearChargingProfile")
        pruned = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert pruned.status is Status.SYNCED, pruned.reason
        assert r.fleet[STATION].installed.by_id(777) is None
        assert r.received("ClearChargingProfile") - clears <= 12  # not the whole bound: it stopped when gone
        assert r.store.prunes.last(STATION) is None


def site_files(tmp: Path) -> Path:
    """A station cap (#100) and a connector-0 TxDefaultProfile (#10) with `prune: foreign`: the
    foreign cap below lowers connector 2 and, through it, the station's total."""
    files = changed.files(7000, model=False)
    files["tou.yaml"] = files["tou.yaml"].replace("  profiles:", "  prune: foreign\n  profiles:", 1)
    files["stations.yaml"] = station_doc(STATION, "depot")
    return write(tmp / "site", files)


async def test_a_foreign_cap_on_one_connector_is_searched_there_before_connector_0(tmp_path: Path):
    """Issue 9 item 5 (audit): a foreign TxDefaultProfile at connector 2, stack level 5 lowers the
    station's total too; the search used to start with connector 0's two purposes (level by level,
    0..10 each), then connector 1, and only then connector 2: 34 ClearChargingProfile. Connector 2's
    drift explains the total's, so connector 2 is searched first: levels 2, 3, 4, 5 (above ours)."""
    async with rig(tmp_path, 1, quirks=NO_STACK_KEY) as r:
        policies = load(site_files(tmp_path))
        assert (await r.reconciler(policies, changed.SETTINGS).apply([STATION]))[0].status is Status.SYNCED
        on_connector_2 = {**foreign(stack=5), "connectorId": 2}
        assert (await r.cs.call(STATION, "SetChargingProfile", on_connector_2)).status == "Accepted"
        clears = r.received("ClearChargingProfile")
        pruned = (await r.reconciler(policies, changed.SETTINGS).apply([STATION]))[0]
        assert pruned.status is Status.SYNCED, pruned.reason
        assert r.fleet[STATION].installed.by_id(777) is None
        assert sorted(e.profile.id for e in r.fleet[STATION].installed) == [10, 100]  # ours never cleared
        assert r.received("ClearChargingProfile") - clears == 4  # was 34
        assert r.store.prunes.last(STATION) is None
