"""Issue 9 item 1: a lost station-wide cap (ChargePointMaxProfile on connector 0) is detected.

Three two-connector stations share a 66 kW Site: each gets a 22 kW ChargePointMaxProfile (#100).
Each connector alone can draw 22,080 W, so connectors 1..N report "no limit" with or without the
cap; only connector 0 (the station total: 44,160 W without it) shows the loss.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from reconciler.core.diff import DriftClass
from reconciler.core.status import Status
from tests.engine.fleetkit import load, rig, station_doc, write

IDS = ["CP-0001", "CP-0002", "CP-0003"]


def site_files() -> dict[str, str]:
    site = textwrap.dedent("""\
        apiVersion: reconciler/v1
        kind: Site
        metadata: {name: depot}
        spec:
          selector: {matchLabels: {site: depot}}
          maxPowerW: 66000
          stationCap: {chargingProfileId: 100}
        """)
    return {"stations.yaml": "---\n".join(station_doc(s, "depot") for s in IDS), "site.yaml": site}


async def test_a_cleared_station_cap_is_drift_on_connector_zero_and_is_reinstalled(tmp_path: Path):
    policies = load(write(tmp_path / "p", site_files()))
    async with rig(tmp_path, 3) as r:
        first = await r.reconciler(policies).apply(IDS)
        assert [o.status for o in first] == [Status.SYNCED] * 3, [o.reason for o in first]
        reply = await r.cs.call("CP-0002", "ClearChargingProfile", {"id": 100})
        assert reply.status == "Accepted" and r.fleet["CP-0002"].installed.by_id(100) is None

        planned = {o.station_id: o for o in await r.reconciler(policies).plan(IDS)}
        assert planned["CP-0001"].status is Status.SYNCED and planned["CP-0003"].status is Status.SYNCED
        lost = planned["CP-0002"]
        assert lost.status is Status.OUT_OF_SYNC, lost.reason
        total = next(d for d in lost.plan.drift if d.connector_id == 0)
        assert not total.in_sync and total.primary is DriftClass.MISSING
        assert "connector 0" in (lost.reason or "")
        assert [(a.kind.value, a.profile.charging_profile_id) for a in lost.plan.actions] == [("set", 100)]

        sets_before = r.received("SetChargingProfile")
        healed = {o.station_id: o for o in await r.reconciler(policies).apply(IDS)}
        assert all(o.status is Status.SYNCED for o in healed.values()), [o.reason for o in healed.values()]
        assert r.received("SetChargingProfile") == sets_before + 1
        assert r.fleet["CP-0002"].installed.by_id(100) is not None
