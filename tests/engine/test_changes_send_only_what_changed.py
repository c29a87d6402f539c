"""A change sends only what changed (issue 12, finding 6).

Lowering one time-of-use value used to plan `+ set profile #100 ... (re-install: connector 1
shadowed)` beside the replace on every station: the composite then allows more than the *new*
policy, which is no loss. What counts as lost is what the charger's composite shows against what
the ledger says it holds. Over real websockets, for an honest charger and for one with third-party
reporting conventions (declared in its ChargerModel); a reboot that really lost the profiles still
re-installs them, and a synced fleet still gets no Set or Clear."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from reconciler import clock
from reconciler.core.actions import ActionKind
from reconciler.core.status import Status
from reconciler.engine.reconcile import Settings
from reconciler.simulator.quirks import Quirks, UncoveredReport
from tests.engine.fleetkit import WAIT, load, rig, station_doc, write

pytestmark = pytest.mark.slow

IDS = ["CP-0001", "CP-0002"]
SETTINGS = Settings(horizon=86_400, settle=0.02, verify_attempts=2)
THIRD_PARTY = "apiVersion: reconciler/v1\nkind: ChargerModel\nmetadata: {name: other}\n" \
              "spec: {conventions: {uncoveredTime: minus_one, limitStep: 1}}\n"  # fmt: skip


def files(peak_w: int, *, model: bool) -> dict[str, str]:
    start = (clock.now().hour + 2) % 24  # the peak lies inside the horizon
    site = textwrap.dedent("""\
        apiVersion: reconciler/v1
        kind: Site
        metadata: {name: depot}
        spec: {selector: {matchLabels: {site: depot}}, maxPowerW: 88000, timezone: UTC,
               stationCap: {chargingProfileId: 100, stackLevel: 0}}
        """)
    tou = textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: ChargingPolicy
        metadata: {{name: tou}}
        spec:
          selector: {{matchLabels: {{site: depot}}}}
          profiles:
            - template: time_of_use
              connectorId: 0
              chargingProfileId: 10
              stackLevel: 1
              with: {{offPeakW: 22000, peakW: {peak_w}, peakStartHour: {start}, peakEndHour: {(start + 4) % 24 or 24}}}
        """)
    stations = "---\n".join(station_doc(s, "depot") for s in IDS)
    if model:
        stations = stations.replace("spec: {", "spec: {model: other, ")
    out = {"stations.yaml": stations, "site.yaml": site, "tou.yaml": tou}
    if model:
        out["model.yaml"] = THIRD_PARTY
    return out


QUIRKS = {"honest": None, "third party": Quirks(uncovered=UncoveredReport.MINUS_ONE, whole_amps=True)}


@pytest.mark.parametrize("kind", QUIRKS)
async def test_lowering_a_time_of_use_value_replaces_that_profile_only(tmp_path: Path, kind: str):
    model = QUIRKS[kind] is not None
    before = load(write(tmp_path / "a", files(7000, model=model)))
    after = load(write(tmp_path / "b", files(5000, model=model)))
    async with rig(tmp_path, len(IDS), quirks=QUIRKS[kind]) as r:
        first = await r.reconciler(before, SETTINGS).apply(IDS)
        assert all(o.status is Status.SYNCED for o in first), [o.reason for o in first]
        planned = await r.reconciler(after, SETTINGS).plan(IDS)
        for outcome in planned:
            assert outcome.plan is not None
            assert [(a.kind, a.profile.id) for a in outcome.plan.actions if a.profile] == [(ActionKind.REPLACE, 10)]
        sets = r.received("SetChargingProfile")
        applied = await r.reconciler(after, SETTINGS).apply(IDS)
        assert all(o.status is Status.SYNCED for o in applied), [o.reason for o in applied]
        assert r.received("SetChargingProfile") - sets == len(IDS)  # one replace per station, nothing else
        assert r.received("ClearChargingProfile") == 0
        idle = await r.reconciler(after, SETTINGS).apply(IDS)  # idempotent
        assert all(o.status is Status.SYNCED and not o.plan.actions for o in idle)
        assert r.received("SetChargingProfile") - sets == len(IDS)


async def test_a_reboot_that_lost_the_profiles_still_reinstalls_them(tmp_path: Path):
    policies = load(write(tmp_path / "p", files(7000, model=False)))
    async with rig(tmp_path, 1, quirks=Quirks(lose_profiles_on_reboot=True)) as r:
        station = IDS[0]
        assert (await r.reconciler(policies, SETTINGS).apply([station]))[0].status is Status.SYNCED
        cp = r.fleet[station]
        boots = cp.boots
        assert (await r.cs.call(station, "Reset", {"type": "Soft"})).status == "Accepted"
        for _ in range(int(WAIT / 0.05)):
            if cp.boots > boots and r.cs.is_connected(station):
                break
            await asyncio.sleep(0.05)
        assert len(cp.installed) == 0
        outcome = (await r.reconciler(policies, SETTINGS).apply([station]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        assert sorted(a.profile.id for a in outcome.plan.actions if a.profile) == [10, 100]
        # Lost in the restart, or (#100, above what the hardware draws anyway) not shown kept by any read-back.
        reasons = [a.reason for a in outcome.plan.actions]
        assert all(why.startswith(("re-install", "the charger restarted")) for why in reasons), reasons
        assert sorted(e.profile.id for e in cp.installed) == [10, 100]
