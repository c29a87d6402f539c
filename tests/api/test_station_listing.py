"""`GET /stations` is kept current by change (`api.listing`), not rebuilt per request: every change a
listed entry shows reaches the next response, the filters still filter, and the body is the one
`views.stations` builds from scratch (a running daemon, simulated stations, real HTTP)."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.api.views import parse_selector, stations
from reconciler.core.status import Status
from tests.daemon.kit import Running, running
from tests.daemon.test_watch import IDS, fleet_files
from tests.engine.fleetkit import station_doc


def without_next_check(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert all("next_check_s" in e for e in entries)
    return [{k: v for k, v in e.items() if k != "next_check_s"} for e in entries]


async def listed(run: Running, query: str = "") -> list[dict[str, Any]]:
    response = await run.http.get("/stations" + query)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_kept_body_is_the_fresh_one_and_filters_filter(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        cases = [
            ("", None, None),
            ("?condition=Synced", "Synced", None),
            ("?condition=synced", "synced", None),
            ("?condition=Degraded", "Degraded", None),
            ("?selector=site=depot", None, "site=depot"),
            ("?selector=site=elsewhere", None, "site=elsewhere"),
            ("?condition=Synced&selector=site=depot", "Synced", "site=depot"),
        ]
        for query, condition, selector in cases:
            fresh = stations(run.daemon, condition, parse_selector(selector))
            assert without_next_check(await listed(run, query)) == without_next_check(fresh), query
        assert [s["id"] for s in await listed(run)] == IDS
        assert await listed(run, "?condition=Degraded") == []
        assert await listed(run, "?selector=site=elsewhere") == []
        # gzip when the client asks (httpx does by default and decodes it), the same JSON either way
        zipped = await run.http.get("/stations", headers={"Accept-Encoding": "gzip"})
        plain = await run.http.get("/stations", headers={"Accept-Encoding": "identity"})
        assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
        assert without_next_check(zipped.json()) == without_next_check(plain.json())
        bad = await run.http.get("/stations?selector=site")
        assert bad.status_code == 400 and "KEY=VALUE" in bad.json()["detail"]
        first = (await listed(run))[0]
        assert isinstance(first["next_check_s"], float) and 0 < first["next_check_s"] <= 330


async def test_a_change_of_condition_shows_in_the_next_get(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        assert {s["condition"] for s in await listed(run)} == {"Synced"}
        # a write straight to the store, as the engine makes mid-reconcile (no daemon bookkeeping)
        assert run.daemon.store is not None
        run.daemon.store.set_condition("CP-0002", Status.DEGRADED, "made up for the test", None, run.daemon.now())
        entries = {s["id"]: s for s in await listed(run)}
        assert entries["CP-0002"]["condition"] == "Degraded"
        assert entries["CP-0002"]["reason"] == "made up for the test"
        assert [s["id"] for s in await listed(run, "?condition=Degraded")] == ["CP-0002"]
        assert [s["id"] for s in await listed(run, "?condition=Synced")] == ["CP-0001", "CP-0003"]
        # through the API: suspended
        assert (await run.http.post("/stations/CP-0003/suspend", json={"reason": "test"})).status_code == 200
        assert [s["id"] for s in await listed(run, "?condition=Suspended")] == ["CP-0003"]


async def test_overrides_ledger_and_meter_values_show_in_the_next_get(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        before = {s["id"]: s for s in await listed(run)}["CP-0001"]
        assert before["overrides"] == [] and before["profile_count"] == 1 and before["power_w"] == 0.0
        profile = {
            "chargingProfileId": 500,
            "stackLevel": 5,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": "2024-01-01T00:00:00Z",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}],
            },
        }
        response = await run.http.post(
            "/stations/CP-0001/charging_profile", json={"connector_id": 1, "profile": profile}
        )
        assert response.status_code == 200, response.text
        after = {s["id"]: s for s in await listed(run)}["CP-0001"]
        assert after["overrides"] == [response.json()["override_id"]]
        assert after["profile_count"] == 2
        # MeterValues of a charging EV: power drawn
        station = run.fleet["CP-0001"]
        assert await station.start_transaction(1) is not None
        await station.send_meter_values(1)

        async def power() -> float:
            return float({s["id"]: s for s in await listed(run)}["CP-0001"]["power_w"])

        for _ in range(200):  # bounded: the event reaches the daemon within a few loop turns
            if await power() > 0:
                break
            await asyncio.sleep(0.02)
        assert await power() > 0


def stepped_cap(station: str, start: datetime, first_a: float, then_a: float, after_s: int) -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: ChargingPolicy
        metadata: {{name: stepped}}
        spec:
          selector: {{stations: [{station}]}}
          profiles:
            - connectorId: 0
              chargingProfileId: 1
              stackLevel: 0
              chargingProfilePurpose: ChargePointMaxProfile
              chargingProfileKind: Absolute
              chargingSchedule:
                startSchedule: "{start.strftime("%Y-%m-%dT%H:%M:%SZ")}"
                chargingRateUnit: A
                chargingSchedulePeriod:
                  - {{startPeriod: 0, limit: {first_a}}}
                  - {{startPeriod: {after_s}, limit: {then_a}}}
        """)


async def test_a_limit_that_changes_with_time_is_listed_when_it_changes(tmp_path: Path) -> None:
    # Nothing happens to the station at the schedule's next period: the entry expires by itself.
    start = datetime.now(UTC).replace(microsecond=0)
    files = {"s.yaml": station_doc("CP-0001", "depot"), "cap.yaml": stepped_cap("CP-0001", start, 10, 20, 4)}
    async with running(tmp_path, files, ["CP-0001"]) as run:
        await run.synced()
        first = (await listed(run))[0]["limit"]["value_w"]
        if datetime.now(UTC) < start + timedelta(seconds=4):
            assert first == 10 * 230 * 3
        deadline = asyncio.get_running_loop().time() + 15
        while (await listed(run))[0]["limit"]["value_w"] != 20 * 230 * 3:
            assert asyncio.get_running_loop().time() < deadline, "the listed limit never changed"
            await asyncio.sleep(0.1)
        assert datetime.now(UTC) >= start + timedelta(seconds=4)
