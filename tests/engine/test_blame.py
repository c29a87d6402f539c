"""Issue 9 item 6: the reconciler's own profile is not blamed on a foreign one.

A SAP-like charger (its composite leaves the ChargePointMaxProfile out of the connectors, does not
shift a Recurring profile to its current occurrence, and answers in W when asked in A) made every
station end "a cap the reconciler did not install" about profile #10, with the advice to set
`prune: foreign`. The reason now names what was observed and the likely causes in order, and
advises `prune: foreign` only when a foreign profile is the only explanation.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from reconciler.core.context import ReplyUnit
from reconciler.core.status import Status
from reconciler.engine.reconcile import Settings
from reconciler.simulator.quirks import Quirks
from tests.engine.fleetkit import load, rig, station_doc, write

STATION = "CP-0001"
SAP_LIKE = Quirks(cap_on_connectors=False, rebase_recurring=False, reply_unit=ReplyUnit.PROFILE)
DAY = Settings(horizon=86_400, settle=0.05, verify_attempts=2)  # a whole day: the evening peak shows


def files(conventions: str = "") -> dict[str, str]:
    station = station_doc(STATION, "depot")
    if conventions:
        station = station.replace("voltage: 230}", f"voltage: 230, conventions: {conventions}}}")
    site = textwrap.dedent("""\
        apiVersion: reconciler/v1
        kind: Site
        metadata: {name: depot}
        spec: {selector: {matchLabels: {site: depot}}, maxPowerW: 15000, stationCap: {chargingProfileId: 100}}
        """)
    tou = textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: ChargingPolicy
        metadata: {{name: tou}}
        spec:
          selector: {{stations: [{STATION}]}}
          profiles:
            - template: time_of_use
              connectorId: 0
              chargingProfileId: 10
              stackLevel: 1
              with: {{offPeakW: 22000, peakW: 7000, peakStartHour: 18, peakEndHour: 22}}
        """)
    return {"s.yaml": station, "site.yaml": site, "tou.yaml": tou}


async def test_a_sap_like_charger_is_not_blamed_on_a_foreign_profile(tmp_path: Path):
    policies = load(write(tmp_path / "p", files()))
    async with rig(tmp_path, 1, quirks=SAP_LIKE) as r:
        applied = (await r.reconciler(policies, DAY).apply([STATION]))[0]
        planned = (await r.reconciler(policies, DAY).plan([STATION]))[0]
        for outcome in (applied, planned):
            reason = outcome.reason or ""
            assert outcome.status is Status.DEGRADED, reason
            assert "prune: foreign" not in reason and "did not install governs" not in reason
            assert reason.index("Likely causes, most likely first: (1) the charger reports by other conventions") > 0
            assert "`conventions: {capOnConnectors: false, rebaseRecurring: false}`" in reason
            assert "(2) a unit convention: it answered in W when asked in A" in reason
            assert "(3) a profile the reconciler did not install" in reason
            assert "(4) the charger accepted the profiles but does not enforce them" in reason
            assert reason.startswith(("read-back still differs: connector", "connector"))
        assert planned.plan is not None and not planned.plan.actions  # re-sending would change nothing
        sent = r.received("SetChargingProfile") + r.received("ClearChargingProfile")
        again = (await r.reconciler(policies, DAY).apply([STATION]))[0]
        assert again.status is Status.DEGRADED
        assert r.received("SetChargingProfile") + r.received("ClearChargingProfile") == sent


async def test_the_same_charger_is_synced_once_its_conventions_are_declared(tmp_path: Path):
    declared = "{capOnConnectors: false, rebaseRecurring: false, replyUnit: profile}"
    policies = load(write(tmp_path / "p", files(declared)))
    async with rig(tmp_path, 1, quirks=SAP_LIKE) as r:
        applied = (await r.reconciler(policies, DAY).apply([STATION]))[0]
        assert applied.status is Status.SYNCED, applied.reason
        planned = (await r.reconciler(policies, DAY).plan([STATION]))[0]
        assert planned.status is Status.SYNCED and not planned.plan.actions
