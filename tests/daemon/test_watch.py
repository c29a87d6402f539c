"""The daemon against simulated stations over real websockets (issue 10 acceptance): policy edits
converge only the affected stations, an invalid edit changes nothing and says file:line, reboots are
healed without a request, overrides are applied, listed, expire and roll back, foreign profiles are
drift (healed, or only reported), session intents follow transactions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.core.status import Status
from reconciler.simulator.quirks import Quirks
from reconciler.transport.gateway import ReplyKind
from tests.daemon.kit import limit_a, running
from tests.engine.fleetkit import cap_policy, station_doc
from tests.transport.conftest import cp_max

IDS = ["CP-0001", "CP-0002", "CP-0003"]


def fleet_files(limit_a: float = 20, limit_b: float = 16, extra: str = "") -> dict[str, str]:
    return {
        "stations.yaml": "---\n".join(station_doc(s, "depot") for s in IDS),
        "a.yaml": cap_policy("caps-a", IDS[:2], limit_a, extra=extra),
        "b.yaml": cap_policy("caps-b", IDS[2:], limit_b, extra=extra),
    }


async def test_policy_edit_converges_only_the_affected_stations(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        assert run.sets() == 3
        (run.policies / "b.yaml").write_text(cap_policy("caps-b", IDS[2:], 12))
        await run.until(lambda: run.sets("CP-0003") == 2, "CP-0003 re-capped")
        await run.synced()
        assert run.sets("CP-0001") == run.sets("CP-0002") == 1  # untouched
        assert limit_a(run.fleet["CP-0003"]) == 12

        # an invalid edit: reported with file:line, nothing sent, the last good state stays enforced
        (run.policies / "a.yaml").write_text("apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: x\n")
        await run.until(lambda: bool(run.daemon.policy_errors), "the invalid edit reported")
        events = (await run.http.get("/events", params={"kind": "policy.invalid"})).json()
        assert events["policy_errors"] and "a.yaml:" in events["policy_errors"][0]
        assert any("a.yaml:" in line for e in run.daemon.store.events(limit=5) for line in e.data.get("errors", []))
        await asyncio.sleep(0.3)
        assert run.sets() == 4

        # fixed: converges (only the stations whose desired state changed)
        (run.policies / "a.yaml").write_text(cap_policy("caps-a", IDS[:2], 18))
        await run.until(lambda: run.sets("CP-0001") == 2 and run.sets("CP-0002") == 2, "a.yaml applied")
        await run.synced()
        assert run.sets("CP-0003") == 2 and not run.daemon.policy_errors


async def test_a_rebooted_station_is_healed_without_a_request(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS, quirks=Quirks(lose_profiles_on_reboot=True)) as run:
        await run.synced()
        assert run.daemon.gateway is not None
        reply = await run.daemon.gateway.call("CP-0002", "Reset", {"type": "Soft"})
        assert reply.kind is ReplyKind.ANSWERED
        await run.until(lambda: run.sets("CP-0002") == 2, "CP-0002 re-applied after its reboot")
        await run.synced()
        assert limit_a(run.fleet["CP-0002"]) == 20
        metrics = (await run.http.get("/metrics")).text
        count = next(
            line for line in metrics.splitlines() if line.startswith("reconciler_boot_to_reapplied_seconds_count")
        )
        assert float(count.split()[-1]) >= 1


async def test_override_is_applied_listed_expires_and_rolls_back(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        body = {
            "connector_id": 0,
            "profile": {**cp_max(8, profile_id=50, stack_level=2)["csChargingProfiles"]},
            "ttl_seconds": 1.5,
            "reason": "test",
        }
        answer = (await run.http.post("/stations/CP-0001/charging_profile", json=body)).json()
        assert answer["status"] == "success" and answer["csms_status"] == "Accepted" and answer["profile_id"] == 50
        assert set(answer) >= {"status", "station_id", "profile_id", "csms_status", "message"}
        assert limit_a(run.fleet["CP-0001"]) == 8  # verified on the charger
        listed = (await run.http.get("/overrides")).json()["overrides"]
        assert [(o["station_id"], o["profile_id"], o["who"]) for o in listed] == [("CP-0001", 50, "ops")]
        detail = (await run.http.get("/stations/CP-0001")).json()
        assert any(p["source"].startswith("override #") for p in detail["desired_profiles"])
        await run.until(lambda: limit_a(run.fleet["CP-0001"]) == 20, "rolled back", 10)
        await run.synced(["CP-0001"])
        assert (await run.http.get("/overrides")).json()["overrides"] == []
        assert 50 not in [e.profile.charging_profile_id for e in run.daemon.store.ledger("CP-0001")]


async def test_override_collisions_and_site_caps_are_refused(tmp_path: Path) -> None:
    files = fleet_files()
    files["site.yaml"] = (
        "apiVersion: reconciler/v1\nkind: Site\nmetadata: {name: depot}\nspec:\n"
        "  selector: {matchLabels: {site: depot}}\n  maxPowerW: 30000\n"
    )
    async with running(tmp_path, files, IDS) as run:
        await run.synced()
        same_id = {"connector_id": 0, "profile": cp_max(10, profile_id=1, stack_level=3)["csChargingProfiles"]}
        response = await run.http.post("/stations/CP-0001/charging_profile", json=same_id)
        assert response.status_code == 409 and "a.yaml:" in response.json()["detail"]
        same_slot = {"connector_id": 0, "profile": cp_max(10, profile_id=77, stack_level=0)["csChargingProfiles"]}
        response = await run.http.post("/stations/CP-0001/charging_profile", json=same_slot)
        assert response.status_code == 409 and "caps-a" in response.json()["detail"]
        too_much = {"connector_id": 0, "profile": cp_max(60, profile_id=78, stack_level=4)["csChargingProfiles"]}
        response = await run.http.post("/stations/CP-0001/charging_profile", json=too_much)
        assert response.status_code == 400 and "Site depot" in response.json()["detail"]
        assert run.sets("CP-0001") == 1


async def test_foreign_profile_is_drift_healed_or_only_reported(tmp_path: Path) -> None:
    files = fleet_files()
    async with running(tmp_path, files, IDS, interval=0.5) as run:
        await run.synced()
        report_only = files["stations.yaml"].replace("voltage: 230}\n---", "voltage: 230}\n---", 2)
        report_only = report_only[: report_only.rindex("}")] + ", sync: reportOnly}\n"  # CP-0003 report-only
        (run.policies / "stations.yaml").write_text(report_only)
        await run.until(lambda: run.daemon.policies.desired["CP-0003"].sync == "reportOnly", "reloaded")
        raw = {"action": "SetChargingProfile", "payload": cp_max(30, profile_id=1)}  # same id, higher: shadowed
        for station in ("CP-0001", "CP-0003"):
            assert (await run.http.post(f"/api/inject/{station}", json=raw)).status_code == 200
        await run.until(lambda: limit_a(run.fleet["CP-0001"]) == 20, "CP-0001 healed")
        await run.until(lambda: run.condition("CP-0003") is Status.OUT_OF_SYNC, "CP-0003 reported")
        assert limit_a(run.fleet["CP-0003"]) == 30  # report-only: not healed
        assert "report-only" in (run.daemon.conditions()["CP-0003"].reason or "")

        # suspended: the manual state stays
        assert (await run.http.post("/stations/CP-0002/suspend", json={"reason": "maintenance"})).status_code == 200
        assert run.condition("CP-0002") is Status.SUSPENDED
        assert (await run.http.post("/api/inject/CP-0002", json=raw)).status_code == 200
        await asyncio.sleep(1.5)
        assert limit_a(run.fleet["CP-0002"]) == 30
        resumed = (await run.http.post("/stations/CP-0002/resume")).json()
        assert resumed["condition"] == "Synced" and limit_a(run.fleet["CP-0002"]) == 20


async def test_session_intent_follows_the_transaction(tmp_path: Path) -> None:
    session = (
        "  sessionProfiles:\n    - template: energy_cap\n      connectorId: 1\n      chargingProfileId: 60\n"
        "      stackLevel: 1\n      with: {energyWh: 5000, powerW: 7000}\n"
    )
    files = fleet_files(extra=session)
    async with running(tmp_path, files, IDS) as run:
        await run.synced()
        station = run.fleet["CP-0001"]
        transaction = await station.start_transaction(1)
        assert transaction is not None
        await run.until(lambda: station.installed.by_id(60) is not None, "TxProfile sent")
        await run.synced(["CP-0001"])
        held = station.installed.by_id(60)
        assert held is not None and held.profile.transaction_id == transaction and held.connector_id == 1
        assert limit_a(station) == 10.1  # 7 kW on 3 phases at 230 V, within the 20 A cap
        sent = station.calls["SetChargingProfile"]
        await station.stop_transaction(1)
        await run.until(lambda: not run.daemon.state.intents("CP-0001"), "intent ended")
        await run.daemon.queue.request("CP-0001", "test")
        assert station.calls["SetChargingProfile"] == sent  # never re-sent after StopTransaction
        assert 60 not in [e.profile.charging_profile_id for e in run.daemon.store.ledger("CP-0001")]
