"""The REST API against a running daemon (uvicorn on 127.0.0.1:0, simulated stations): every
mutating endpoint needs credentials (walked from the OpenAPI spec), the documents' examples and
400 messages answer as documented, errors are `{"detail": ...}` and never a 500 traceback."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.daemon.kit import CREDENTIALS, limit_a, running
from tests.daemon.test_watch import IDS, fleet_files
from tests.engine.fleetkit import WAIT

MUTATING = {"post", "put", "patch", "delete"}


async def test_every_mutating_endpoint_requires_credentials(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        spec = (await run.http.get("/openapi.json")).json()
        tried = []
        async with httpx.AsyncClient(base_url=run.daemon.http.url, timeout=WAIT) as anonymous:
            for path, operations in spec["paths"].items():
                for method in set(operations) & MUTATING:
                    url = re.sub(r"\{[^}]+\}", "CP-0001", path)
                    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic b3BzOndyb25n"}):
                        response = await anonymous.request(method.upper(), url, json={}, headers=headers)
                        assert response.status_code == 401, (method, path, headers, response.text)
                        assert "detail" in response.json()
                    tried.append((method, path))
            assert len(tried) == 11, tried
            # reads are closed too unless --open-reads
            assert (await anonymous.get("/stations")).status_code == 401
            assert (await anonymous.get("/healthz")).status_code == 200
            token = await anonymous.get("/stations", headers={"Authorization": f"Bearer {CREDENTIALS.token}"})
            assert token.status_code == 200
        assert run.sets() == 3  # nothing was changed by the refused calls


async def test_documented_examples_and_messages(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        http = run.http

        stations = (await http.get("/stations")).json()
        assert [s["id"] for s in stations] == IDS
        first = stations[0]
        assert first["connected"] and first["condition"] == "Synced" and first["profile_count"] == 1
        assert first["limit"]["source"] == "policy" and first["control_source"].startswith("OCPP: ")
        assert set(first) >= {
            "id",
            "connected",
            "condition",
            "reason",
            "limit",
            "profile_count",
            "last_reconcile",
            "labels",
            "power_w",
            "overrides",
            "revision",
        }
        assert (await http.get("/stations", params={"condition": "Degraded"})).json() == []
        assert len((await http.get("/stations", params={"selector": "site=depot"})).json()) == 3
        assert (await http.get("/stations", params={"selector": "nonsense"})).status_code == 400

        detail = (await http.get("/stations/CP-0001")).json()
        assert "a.yaml:" in detail["desired_profiles"][0]["location"] and detail["ledger"] and detail["events"]

        # not connected / unknown
        for method, url in [
            ("GET", "/stations/CP-9999/composite_schedule"),
            ("POST", "/stations/CP-9999/test_profiles"),
        ]:
            response = await http.request(method, url, json={"scenario": "peak_shaving", "max_power_w": 7400})
            assert response.status_code == 404
            assert response.json() == {"detail": "Station CP-9999 not found or not connected"}

        # composite_schedule (default unit W) and expected_schedule: same shape
        live = await http.get("/stations/CP-0001/composite_schedule", params={"connector_id": 1, "duration": 600})
        expected = await http.get("/stations/CP-0001/expected_schedule", params={"connector_id": 1, "duration": 600})
        live_j, expected_j = live.json(), expected.json()
        assert (
            live_j["chargingSchedule"]["chargingRateUnit"] == "W" == expected_j["chargingSchedule"]["chargingRateUnit"]
        )
        assert set(live_j) == set(expected_j)
        assert live_j["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == pytest.approx(
            expected_j["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"], abs=70
        )
        explained = (await http.get("/stations/CP-0001/expected_schedule", params={"explain": True})).json()
        assert explained["explain"][0]["limit"] == 13800 and explained["explain"][0]["why"]

        # test_profiles: the documents' 400 messages
        cases = [
            ({"scenario": "turbo"}, "Unknown scenario: turbo. Must be one of: peak_shaving, time_of_use, energy_cap"),
            ({"scenario": "peak_shaving"}, "Missing required parameter 'max_power_w' for peak_shaving scenario"),
            (
                {
                    "scenario": "time_of_use",
                    "off_peak_w": 22000,
                    "peak_w": 7000,
                    "peak_start_hour": 24,
                    "peak_end_hour": 22,
                },
                "Parameter 'peak_start_hour' must be an hour between 0 and 23",
            ),
            (
                {"scenario": "energy_cap", "max_energy_wh": 30000, "power_limit_w": 11000},
                "Missing required parameter 'duration_seconds' for energy_cap scenario",
            ),
        ]
        for body, message in cases:
            response = await http.post("/stations/CP-0001/test_profiles", json=body)
            assert (response.status_code, response.json()) == (400, {"detail": message})

        # peak shaving 7.4 kW: applied as an override and verified
        shaved = (
            await http.post("/stations/CP-0001/test_profiles", json={"scenario": "peak_shaving", "max_power_w": 7400})
        ).json()
        assert shaved.get("status") == "success" and shaved["csms_status"] == "Accepted", shaved
        assert limit_a(run.fleet["CP-0001"], 0) == pytest.approx(7400 / 690, abs=0.1)
        station = next(s for s in (await http.get("/stations")).json() if s["id"] == "CP-0001")
        assert station["control_source"] == "OCPP: 7.4 kW (2)" and station["limit"]["source"] == "override"

        # energy cap: really caps the energy and says what it computed (30 kWh at 11 kW: 2 h 43 m 38 s)
        capped = (
            await http.post(
                "/stations/CP-0002/test_profiles",
                json={
                    "scenario": "energy_cap",
                    "max_energy_wh": 30000,
                    "duration_seconds": 14400,
                    "power_limit_w": 11000,
                },
            )
        ).json()
        assert capped["computed"]["charging_seconds"] == 9818 and capped["computed"]["limited_by"] == "energy"
        assert capped["computed"]["energy_wh"] <= 30000
        nested = await http.post(
            "/stations/CP-0002/test_profiles",
            json={
                "scenario": "time_of_use",
                "parameters": {"off_peak_w": 22000, "peak_w": 7000, "peak_start_hour": 18, "peak_end_hour": 22},
            },
        )
        assert nested.json().get("status") == "success", nested.text

        # DELETE charging_profile: says whether self-heal restores git's profiles
        cleared = (
            await http.delete(
                "/stations/CP-0003/charging_profile", params={"charging_profile_purpose": "ChargePointMaxProfile"}
            )
        ).json()
        assert set(cleared) >= {"status", "station_id", "csms_status", "message", "filters"}
        assert cleared["filters"] == {"chargingProfilePurpose": "ChargePointMaxProfile"}
        assert (
            cleared["csms_status"] == "Accepted" and "self-heal will restore git's profile(s) #1" in cleared["message"]
        )
        await run.until(lambda: limit_a(run.fleet["CP-0003"]) == 16, "healed after the clear")

        # bad bodies: 422 with a message; nothing is a 500
        bad = await http.post("/stations/CP-0001/charging_profile", json={"connector_id": "x"})
        assert bad.status_code == 422 and "connector_id" in bad.json()["detail"]
        bad = await http.post("/stations/CP-0001/charging_profile", json={"connector_id": 0, "profile": {"x": 1}})
        assert bad.status_code == 400 and bad.json()["detail"].startswith("profile:")
        bad = await http.post(
            "/stations/CP-0001/charging_profile", content=b"[" * 5000, headers={"Content-Type": "application/json"}
        )
        assert bad.status_code in (400, 422)
        bad = await http.post("/reconcile", json={"station_id": "CP-9999"})
        assert bad.status_code == 404

        # reconcile, plan, events, healthz/readyz, metrics
        done = (await http.post("/reconcile", json={"selector": "site=depot", "wait": 10})).json()
        assert sorted(done["outcomes"]) == IDS
        plan = (await http.get("/plan")).json()
        assert plan["summary"]["stations"] == 3
        events = (await http.get("/events", params={"station": "CP-0001", "kind": "override"})).json()["events"]
        assert events and all(e["kind"].startswith("override.") for e in events)
        assert (await http.get("/readyz")).json()["status"] == "ready"
        metrics = (await http.get("/metrics")).text
        for name in (
            "reconciler_stations{",
            "reconciler_reconciles_total",
            "reconciler_reconcile_duration_seconds",
            "reconciler_ocpp_calls_total",
            "reconciler_profile_acceptance_ratio",
            "reconciler_limit_compliance_ratio",
            "reconciler_boot_to_reapplied_seconds",
            "reconciler_api_request_duration_seconds",
        ):
            assert name in metrics, name
        assert 'route="/stations/{station_id}"' in metrics
        as_json = (await http.get("/stations/metrics")).json()
        assert "power_drawn_w" in as_json and len(as_json["stations"]) == 3
        assert (await http.post("/stations/scale", json={"target_count": 2})).status_code == 409  # not a demo


async def test_server_sent_events_stream(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        async with run.http.stream("GET", "/events/stream", params={"station": "CP-0002"}) as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith(": connected")
            await run.http.post("/stations/CP-0002/suspend", json={"reason": "sse"})
            seen = []
            async for line in lines:
                seen.append(line)
                if line.startswith("data:") and "Suspended" in line:
                    break
                assert len(seen) < 50
        assert any(line.startswith("event: status.Suspended") for line in seen)
