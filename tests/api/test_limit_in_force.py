"""The limit in force the API shows is what the charger reads back, not what the ledger says we sent
(issue 10 / issue 11): a real daemon, real simulated stations over websockets on 127.0.0.1, real HTTP.

- G-01 accepts the depot cap but does not enforce it: its read-back shows no limit, so GET /stations,
  /stations/{id}/connectors and /stations/metrics claim no OCPP limit for it (its condition says
  Degraded, "accepted but not enforced").
- D-01 enforces it: per connector and for the station (the physical total: each connector's limit in
  force, summed, capped by the ChargePointMaxProfile), the limits are those of the read-back that
  ended the apply (the after-state), not of the observation before it.
- Limit compliance judges each MeterValues power sample against that limit.
- `Policy: Blocked` rests on what the station reports (SuspendedEVSE), even where the ledger holds a
  profile the charger does not enforce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.core.profiles import format_time
from reconciler.simulator.ev import LocalPolicy
from tests.browser import rig
from tests.browser.rig import CAP_W, world

pytestmark = pytest.mark.slow

HARDWARE_W = 2 * 32 * 230 * 3  # two connectors at 32 A, three phases: 44,160 W


async def listed(run: rig.World) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in (await run.http.get("/stations")).json()}


def samples(snapshot: dict[str, Any], within: str) -> float:
    return sum(s["value"] for s in snapshot["reconciler_meter_samples"] if s["labels"].get("within") == within)


async def test_a_station_that_does_not_enforce_claims_no_ocpp_limit(tmp_path: Path) -> None:
    async with world(tmp_path) as run:
        g01 = (await listed(run))["G-01"]
        assert g01["condition"] == "Degraded" and "accepted but not enforced" in g01["reason"]
        assert g01["control_source"] == "hardware limit", g01["control"]
        assert g01["control"]["kind"] == "hardware"
        assert g01["profile_count"] == 0  # the ledger's entry is accepted but not enforced: not held
        limit = g01["limit"]
        assert (limit["source"], limit["value_w"], limit["governed_by"]) == ("hardware", HARDWARE_W, None)
        assert limit["connectors"] == {"1": None, "2": None}  # the charger reports no limit on either
        assert "read back" in limit["evidence"]

        connectors = (await run.http.get("/stations/G-01/connectors")).json()
        assert connectors["control"]["text"] == "hardware limit"
        assert [c["limit_w"] for c in connectors["connectors"]] == [HARDWARE_W, None, None]
        metrics = (await run.http.get("/stations/metrics")).json()
        assert next(s for s in metrics["stations"] if s["id"] == "G-01")["limit_w"] == HARDWARE_W


async def test_limits_in_force_are_the_read_back_after_the_apply(tmp_path: Path) -> None:
    async with world(tmp_path) as run:
        stations = await listed(run)
        d01 = stations["D-01"]
        assert d01["control_source"] == f"OCPP: {CAP_W / 1000:.1f} kW (1)"
        limit = d01["limit"]
        # the cap on connector 0 bounds each connector, and the station's physical total
        assert limit["connectors"] == {"1": pytest.approx(CAP_W, abs=1), "2": pytest.approx(CAP_W, abs=1)}
        assert limit["value_w"] == pytest.approx(CAP_W, abs=1) and limit["source"] == "policy"
        assert limit["governed_by"] == "#1 ChargePointMaxProfile stack 0"
        rows = (await run.http.get("/stations/D-01/connectors")).json()["connectors"]
        assert [r["limit_w"] for r in rows] == [pytest.approx(CAP_W, abs=1)] * 3
        # H-01 has no profile: nothing limits it but its hardware
        assert stations["H-01"]["limit"]["connectors"] == {"1": None, "2": None}
        assert stations["H-01"]["limit"]["value_w"] == HARDWARE_W

        # compliance: D-01's EV draws the cap (within); a sample above the limit in force is not within
        before = (await run.http.get("/stations/metrics")).json()["metrics"]
        assert samples(before, "true") >= 1, before["reconciler_meter_samples"]
        outside = samples(before, "false")
        over = {"connectorId": 1, "meterValue": [{"timestamp": format_time(run.fleet["D-02"].clock()), "sampledValue": [
            {"value": "20000.0", "measurand": "Power.Active.Import", "unit": "W"}]}]}  # fmt: skip
        assert await run.fleet["D-02"].send("MeterValues", over) == {}
        await run.until(lambda: run.daemon.metrics.within[False] > outside, "the sample above the cap judged")
        after = (await run.http.get("/stations/metrics")).json()
        assert samples(after["metrics"], "false") == outside + 1
        assert after["metrics"]["reconciler_limit_compliance_ratio"] < 1.0


async def test_policy_blocked_comes_from_what_the_station_reports(tmp_path: Path) -> None:
    """A depot station that accepts the cap without enforcing it, whose own local policy blocks charging:
    the ledger holds the cap, the charger reports SuspendedEVSE with no OCPP limit in force."""
    blocking = LocalPolicy(enabled=True, block_from_hour=0, block_to_hour=24)
    async with world(tmp_path) as run:
        run.fleet.stations["G-01"].local_policy = blocking  # G-01's station-local policy now blocks
        assert await run.fleet["G-01"].start_transaction(1) is not None
        info = run.daemon.central.station if run.daemon.central is not None else None
        assert info is not None
        await run.until(lambda: (g := info("G-01")) is not None and g.connectors[1].status == "SuspendedEVSE",
                        "G-01 reports SuspendedEVSE")  # fmt: skip
        g01 = (await listed(run))["G-01"]
        control = g01["control"]
        assert (control["text"], control["local_policy"]) == ("Policy: Blocked", "Blocked"), control
        assert "connector 1 reports SuspendedEVSE" in control["evidence"]
        # the local policy lets it charge again: the station says Charging, nothing is blocked
        run.fleet.stations["G-01"].local_policy = LocalPolicy()
        run.fleet["G-01"].update_evs()
        await run.until(lambda: (g := info("G-01")) is not None and g.connectors[1].status == "Charging",
                        "G-01 reports Charging")  # fmt: skip
        assert (await listed(run))["G-01"]["control_source"] == "hardware limit"


async def test_power_drawn_ends_with_the_transaction(tmp_path: Path) -> None:
    """The latest MeterValues of a connector whose transaction stopped are not power drawn now: a charger
    sends no more samples once it stops (GET /stations, /connectors and /stations/metrics say 0 W)."""
    async with world(tmp_path) as run:
        assert (await listed(run))["D-01"]["power_w"] == pytest.approx(CAP_W, abs=1)
        assert await run.fleet["D-01"].stop_transaction(1, "EVDisconnected")
        info = run.daemon.central.station if run.daemon.central is not None else None
        assert info is not None
        await run.until(lambda: (d := info("D-01")) is not None and 1 not in d.transactions, "the stop recorded")
        assert (await listed(run))["D-01"]["power_w"] == 0
        rows = (await run.http.get("/stations/D-01/connectors")).json()["connectors"]
        assert rows[1]["power_w"] == 0 and rows[1]["transaction_id"] is None
        metrics = (await run.http.get("/stations/metrics")).json()
        assert next(s for s in metrics["stations"] if s["id"] == "D-01")["power_w"] == 0
