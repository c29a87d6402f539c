"""The public API the dashboard is built on, over HTTP against a real daemon with simulated stations:
the control source of GET /stations (OCPP limit, the station-local policy OK or Blocked, hardware),
GET /stations/{id}/schedules (expected with the governing profile, reported, drift as plan judges),
GET /stations/{id}/connectors, and the dashboard's own files at / (self-contained, no CDN)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from reconciler.transport.gateway import ReplyKind
from tests.browser.rig import CAP_W, world
from tests.daemon.kit import CREDENTIALS

pytestmark = pytest.mark.slow


async def test_control_sources_and_connectors(tmp_path: Path) -> None:
    async with world(tmp_path) as run:
        stations = {s["id"]: s for s in (await run.http.get("/stations")).json()}
        assert stations["D-01"]["control_source"] == f"OCPP: {CAP_W / 1000:.1f} kW (1)"
        assert stations["D-01"]["control"]["kind"] == "ocpp"
        assert "#1 ChargePointMaxProfile stack 0" in stations["D-01"]["control"]["evidence"]
        assert stations["D-01"]["limit"]["governed_by"] == "#1 ChargePointMaxProfile stack 0"
        blocked = stations["B-01"]["control"]
        assert (blocked["text"], blocked["kind"], blocked["local_policy"]) == ("Policy: Blocked", "policy", "Blocked")
        assert "connector 1 reports SuspendedEVSE" in blocked["evidence"]
        assert stations["P-01"]["control_source"] == "Policy: OK"
        assert stations["P-01"]["control"]["local_policy"] == "OK"
        for name in ("H-01", "R-01", "G-01"):  # G-01 accepted the cap but its read-back shows none
            assert stations[name]["control_source"] == "hardware limit", name
        for name in ("X-01", "S-01"):  # never connected; suspended: nothing read back, no limit claimed
            assert stations[name]["control_source"] == "not read back", name
            assert stations[name]["limit"]["value_w"] is None and stations[name]["control"]["kind"] == "unknown"

        connectors = (await run.http.get("/stations/B-01/connectors")).json()
        one = connectors["connectors"][1]
        assert one["status"] == "SuspendedEVSE" and one["transaction_id"] is not None and one["offered_a"] == 0
        assert connectors["control"]["text"] == "Policy: Blocked"
        charging = (await run.http.get("/stations/D-01/connectors")).json()["connectors"][1]
        assert charging["status"] == "Charging" and charging["power_w"] == pytest.approx(CAP_W, abs=1)
        assert (await run.http.get("/stations/NOPE/connectors")).status_code == 404

        # once an OCPP limit governs B-01, the OCPP limit is what controls it (its local policy never overrides)
        shaving = {"scenario": "peak_shaving", "max_power_w": 7400}
        answer = await run.http.post("/stations/B-01/test_profiles", json=shaving)
        assert answer.json()["status"] == "success", answer.text
        await run.until(lambda: run.fleet["B-01"].evs[1].power_w > 0, "B-01 charging under the OCPP limit")
        b01 = next(s for s in (await run.http.get("/stations")).json() if s["id"] == "B-01")
        assert b01["control_source"] == "OCPP: 7.4 kW (1)"


async def test_schedules_show_expected_reported_drift_and_the_governing_profile(tmp_path: Path) -> None:
    async with world(tmp_path) as run:
        body = (await run.http.get("/stations/D-03/schedules", params={"duration": 3600})).json()
        assert body["unit"] == "W" and body["duration"] == 3600
        assert [c["connector_id"] for c in body["connectors"]] == [0, 1, 2]
        total = body["connectors"][0]
        assert total["expected"] == [{"start_s": 0, "end_s": 3600, "limit_w": CAP_W}]
        assert total["observed"][0]["limit_w"] == pytest.approx(CAP_W, abs=1) and total["drift"]["in_sync"]
        governing = total["governing"][0]
        assert governing["profile"] == "#1 ChargePointMaxProfile stack 0" and governing["source"] == "depot-cap"
        assert "cap.yaml:" in governing["location"] and governing["why"]

        # a foreign clear: the charger holds nothing; the schedules say so as plan would
        assert run.daemon.gateway is not None
        await run.http.post("/stations/D-03/suspend", json={"reason": "keep the drift for the test"})
        reply = await run.daemon.gateway.call("D-03", "ClearChargingProfile", {})
        assert reply.kind is ReplyKind.ANSWERED and reply.status == "Accepted"
        one = (await run.http.get("/stations/D-03/schedules", params={"duration": 3600, "connector_id": 1})).json()
        drift = one["connectors"][0]["drift"]
        assert not drift["in_sync"] and drift["classes"] == ["missing"]
        assert drift["mismatches"] == [{"start_s": pytest.approx(0, abs=2), "end_s": pytest.approx(3600, abs=2),
                                        "expected_w": CAP_W, "observed_w": None, "drift": "missing"}]  # fmt: skip
        assert one["connectors"][0]["observed"][0]["limit_w"] is None  # no limit: the hardware maximum

        offline = (await run.http.get("/stations/X-01/schedules", params={"connector_id": 0})).json()["connectors"][0]
        assert offline["observed"] is None and offline["drift"] is None
        assert offline["observed_error"] == "Station X-01 not found or not connected"
        assert offline["expected"][0]["limit_w"] == CAP_W
        assert (await run.http.get("/stations/D-03/schedules", params={"connector_id": 3})).status_code == 400
        assert (await run.http.get("/stations/NOPE/schedules")).status_code == 404
        assert (await run.http.get("/stations/D-03/schedules", params={"duration": 0})).status_code == 422
        async with httpx.AsyncClient(base_url=run.url) as anonymous:
            for path in ("/stations/D-03/schedules", "/stations/D-03/connectors"):
                refused = await anonymous.get(path)
                assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic ")
            # a script (the dashboard) is challenged with Bearer: no browser password prompt over its page
            scripted = await anonymous.post("/stations/D-03/suspend", headers={"X-Requested-With": "dashboard"})
            assert scripted.status_code == 401 and scripted.headers["www-authenticate"] == 'Bearer realm="reconciler"'


async def test_the_dashboard_files_are_served_self_contained(tmp_path: Path) -> None:
    async with world(tmp_path) as run, httpx.AsyncClient(base_url=run.url) as anonymous:
        page = await anonymous.get("/")  # no credentials needed: the page holds no secret and asks for them
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
        assets = set(re.findall(r'(?:href|src)="(/dashboard/[^"]+)"', page.text))
        assert assets >= {"/dashboard/dashboard.css", "/dashboard/boot.js", "/dashboard/app.js"}
        seen: set[str] = set()
        while assets:  # follow every module import: each is served by the daemon, none from elsewhere
            path = assets.pop()
            seen.add(path)
            answer = await anonymous.get(path)
            assert answer.status_code == 200, path
            kind = "text/javascript" if path.endswith(".js") else "text/css"  # modules need a JavaScript type
            assert answer.headers["content-type"].startswith(kind), path
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", answer.text), f"{path} references another host"
            assets |= {f"/dashboard/{name}" for name in re.findall(r'from "\./([\w-]+\.js)"', answer.text)} - seen
        assert len(seen) >= 10
        assert not re.search(r"https?://", page.text)
        missing = await anonymous.get("/dashboard/../pyproject.toml")
        assert missing.status_code == 404
        assert (await anonymous.get("/dashboard/nope.js")).json() == {"detail": "no dashboard file 'nope.js'"}
        config = (await anonymous.get("/dashboard/config")).json()
        assert config == {"open_reads": False, "auth": ["basic", "bearer"], "demo": False, "version": "1"}
        assert CREDENTIALS.password not in page.text
