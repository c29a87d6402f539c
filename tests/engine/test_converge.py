"""plan/apply over real websockets: convergence, idempotence, make-before-break (issue 5 acceptance)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.composite import compute_composite
from reconciler.core.context import Uncovered
from reconciler.core.status import Status
from reconciler.simulator.quirks import Quirks, UncoveredReport
from tests.core.builders import limit_at
from tests.engine.fleetkit import FAST, cap_policy, load, rig, station_doc, write

pytestmark = pytest.mark.slow

TOU = """\
apiVersion: reconciler/v1
kind: ChargingPolicy
metadata: {name: depot-tou}
spec:
  selector: {matchLabels: {site: depot}}
  profiles:
    - template: time_of_use
      connectorId: 0
      chargingProfileId: 10
      stackLevel: 1
      with: {offPeakW: 22000, peakW: 7000, peakStartHour: 18, peakEndHour: 22}
"""
SITES = """\
apiVersion: reconciler/v1
kind: Site
metadata: {name: depot}
spec: {selector: {matchLabels: {site: depot}}, maxPowerW: 1500000, timezone: Europe/Berlin,
       stationCap: {chargingProfileId: 100, stackLevel: 0}}
---
apiVersion: reconciler/v1
kind: Site
metadata: {name: office}
spec: {selector: {matchLabels: {site: office}}, maxCurrentA: 800, timezone: Europe/Berlin,
       stationCap: {chargingProfileId: 100, stackLevel: 0}}
"""


def fifty_station_policies(directory: Path) -> list[str]:
    ids = [f"CP-{i:04d}" for i in range(1, 51)]
    files = {"stations.yaml": "---\n".join(station_doc(s, "depot" if i < 25 else "office") for i, s in enumerate(ids))}
    files["sites.yaml"] = SITES
    files["tou.yaml"] = TOU
    files["office-cap.yaml"] = cap_policy("office-cap", ids[25:40], 20, profile_id=30, stack=2)
    write(directory, files)
    return ids


async def test_fifty_stations_converge_and_a_second_apply_sends_nothing(tmp_path: Path):
    ids = fifty_station_policies(tmp_path / "policies")
    policies = load(tmp_path / "policies")
    async with rig(tmp_path, 50) as r:
        engine = r.reconciler(policies)
        first = await engine.apply(ids)
        assert {o.station_id: o.status for o in first} == dict.fromkeys(ids, Status.SYNCED), [
            (o.station_id, o.reason) for o in first if o.status is not Status.SYNCED
        ]
        sets = r.received("SetChargingProfile")
        # depot: site cap + TOU; office with the cap policy: site cap + cap; other office stations: site
        # cap only (32 A = their hardware maximum: it changes no composite, but it is installed all the same)
        assert sets == 25 * 2 + 15 * 2 + 10 * 1
        conditions = r.store.conditions()
        assert all(conditions[s].status is Status.SYNCED for s in ids)
        assert len(r.store.ledger("CP-0001")) == 2 and not r.store.pending()
        registry = {s["id"]: s for s in r.store.stations()}
        assert set(registry) == set(ids) and registry["CP-0001"]["boot"]["vendor"]  # last seen and boot info

        again = await r.reconciler(policies).plan(ids)
        assert all(o.status is Status.SYNCED and o.plan and not o.plan.actions for o in again)
        second = await r.reconciler(policies).apply(ids)
        assert all(o.status is Status.SYNCED for o in second)
        assert r.received("SetChargingProfile") == sets
        assert r.received("ClearChargingProfile") == 0


async def test_make_before_break_never_uncapped_nor_above_both_caps(tmp_path: Path):
    """Every composite the charger would report after each call it receives during a cap change
    stays at or below max(old desired, new desired) and is never uncapped."""
    station = "CP-0001"
    old_files = {
        "s.yaml": station_doc(station, "x"),
        "cap.yaml": cap_policy("cap", [station], 16, profile_id=1, stack=0),
        "tx.yaml": cap_policy("ignored", [station], 1, profile_id=99, stack=5).replace(
            "ChargePointMaxProfile", "TxDefaultProfile").replace("limit: 1}", "limit: 12}"),
    }  # fmt: skip
    new_files = {
        "s.yaml": station_doc(station, "x"),
        # the cap moves to a new id at a new stack level and drops; the TxDefault is replaced by a higher one
        "cap.yaml": cap_policy("cap", [station], 10, profile_id=2, stack=3),
        "tx.yaml": cap_policy("ignored", [station], 1, profile_id=98, stack=6).replace(
            "ChargePointMaxProfile", "TxDefaultProfile").replace("limit: 1}", "limit: 20}"),
    }  # fmt: skip
    async with rig(tmp_path, 1) as r:
        old = load(write(tmp_path / "p", old_files))
        assert all(o.status is Status.SYNCED for o in await r.reconciler(old).apply([station]))
        new = load(write(tmp_path / "p", new_files))
        cp = r.fleet[station]
        cp.record_history = True
        cp.history_window = FAST.horizon
        cp.history.clear()
        outcome = (await r.reconciler(new).apply([station]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        changes = [s for s in cp.history if s.action in ("SetChargingProfile", "ClearChargingProfile")]
        assert [s.action for s in changes] == ["SetChargingProfile", "SetChargingProfile", "ClearChargingProfile",
                                               "ClearChargingProfile"]  # fmt: skip
        ctx = new.stations[station].context.with_(uncovered=Uncovered.NO_LIMIT)
        for snapshot in changes:
            for connector in (1, 2):

                def desired(policies, connector=connector, at=snapshot.at):
                    pairs = [(p.connector_id, p.profile) for p in policies.desired[station].profiles]
                    return compute_composite(pairs, connector_id=connector, now=at, duration=FAST.horizon, context=ctx)

                before, after, seen = desired(old), desired(new), snapshot.composites[connector]
                points = sorted({p.start_period for c in (before, after, seen) for p in c.periods})
                for offset in points:
                    bound = max(limit_at(before, offset), limit_at(after, offset))
                    got = limit_at(seen, offset)
                    assert got is not None, f"uncapped after {snapshot.action} at +{offset}s"
                    assert got <= bound + 1e-6, f"{got} > {bound} after {snapshot.action} at +{offset}s"
        assert snapshot.at - changes[0].at < timedelta(seconds=30)


async def test_a_quirky_fleet_converges_when_its_model_declares_its_conventions(tmp_path: Path):
    """Whole-amp rounding and -1 for uncovered time, declared in the ChargerModel."""
    ids = ["CP-0001", "CP-0002"]
    model = (
        "apiVersion: reconciler/v1\nkind: ChargerModel\nmetadata: {name: rounder}\n"
        "spec: {conventions: {uncoveredTime: minus_one, limitStep: 1}}\n"
    )
    stations = "---\n".join(station_doc(s, "depot").replace("spec: {", "spec: {model: rounder, ") for s in ids)
    files = {"model.yaml": model, "stations.yaml": stations, "tou.yaml": TOU}
    policies = load(write(tmp_path / "p", files))
    quirks = Quirks(uncovered=UncoveredReport.MINUS_ONE, whole_amps=True)
    async with rig(tmp_path, 2, quirks=quirks) as r:
        outcomes = await r.reconciler(policies).apply(ids)
        assert all(o.status is Status.SYNCED for o in outcomes), [o.reason for o in outcomes]
        sets = r.received("SetChargingProfile")
        again = await r.reconciler(policies).apply(ids)
        assert all(o.status is Status.SYNCED for o in again) and r.received("SetChargingProfile") == sets
