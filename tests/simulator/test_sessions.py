"""Simulated charging sessions (the `Sessions` knob, on in the demo only): EVs plug in, charge under
the limit the station enforces (min(EV maximum, enforced limit), the ChargePointMaxProfile shared
between connectors), send MeterValues, and stop; seeded, and bounded in count and time. Against a
real daemon over websockets on 127.0.0.1, and the API showing power drawn against the limit in force."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.views import stations as fresh_listing
from reconciler.core.context import Transaction
from reconciler.daemon.demo import DemoFleet
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.sessions import Sessions, session_plan
from tests.browser.rig import CAP_W, DEPOT, demo
from tests.simulator.test_charge_point import profile

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FAST = Sessions(seed=7, idle_s=(0.0, 0.2), charge_s=(1.5, 2.0), meter_interval_s=1, max_sessions=2)


def test_the_station_cap_is_shared_between_connectors() -> None:
    """A ChargePointMaxProfile of 16 A bounds the station: two EVs together draw 16 A, not 16 A each."""
    cp = SimulatedChargePoint("CP", clock=lambda: NOW)
    assert cp.handle("SetChargingProfile", profile(16, purpose="ChargePointMaxProfile", connector=0))["status"] == (
        "Accepted"
    )
    for connector in (1, 2):
        cp.evs[connector].plugged = True
        cp.transactions[connector] = Transaction(connector, connector, NOW)
    cp.evs[1].max_current_a = 10.0  # this EV takes less than it is offered; the other gets the rest
    cp.update_evs()
    assert cp.evs[1].current_a() == pytest.approx(10.0)
    assert cp.evs[2].current_a() == pytest.approx(6.0)
    assert cp.evs[1].current_a() + cp.evs[2].current_a() <= 16.0 + 1e-9


def test_session_plans_are_seeded_and_bounded() -> None:
    first = [session_plan(FAST, "PY-SIM-0001", 1, i) for i in range(2)]
    assert first == [session_plan(FAST, "PY-SIM-0001", 1, i) for i in range(2)]  # the same seed: the same sessions
    assert first != [session_plan(FAST, "PY-SIM-0001", 2, i) for i in range(2)]
    for plan in first:
        assert 0.0 <= plan.idle_s <= 0.2 and 1.5 <= plan.charge_s <= 2.0 and plan.ev_max_a in FAST.ev_max_a
    with pytest.raises(ValueError, match="idle_s"):
        Sessions(idle_s=(5.0, 1.0))


def drawn(entry: dict[str, Any]) -> float:
    return float(entry.get("power_w") or 0.0)


async def test_demo_stations_charge_under_the_limit_in_force_and_stop(tmp_path: Path) -> None:
    async with demo(tmp_path, sessions=FAST) as run:
        names = DEPOT[:3]
        fleet = run.daemon.fleet
        assert isinstance(fleet, DemoFleet)

        def charging_within(entries: list[dict[str, Any]]) -> bool:  # the latest samples, under each cap
            charging = [e for e in entries if drawn(e) > 0]
            return bool(charging) and all(drawn(e) <= (e["limit"]["value_w"] or 0) + 1 for e in charging)

        # an EV that plugged in before the cap was set drew more then: its next sample follows the cap.
        # The daemon's own view first, then the served listing (kept current by change, a moment later).
        await run.until(lambda: charging_within(fresh_listing(run.daemon, None, None)),
                        "an EV drawing power within the limit in force")  # fmt: skip
        served: list[dict[str, Any]] = []
        for _ in range(200):  # bounded: the served listing catches up within a few refreshes
            served = (await run.http.get("/stations")).json()
            if charging_within(served):
                break
            await asyncio.sleep(0.05)
        listed = {s["id"]: s for s in served}
        charging = [n for n in names if drawn(listed[n]) > 0]
        assert charging, listed
        for name in charging:  # power drawn against the limit in force: within it, and not nothing
            assert 0 < drawn(listed[name]) <= listed[name]["limit"]["value_w"] + 1, listed[name]
            assert listed[name]["limit"]["value_w"] == pytest.approx(CAP_W, abs=1)
        for cp in (fleet.running[n][n] for n in names):  # the chargers themselves: the cap shared
            cap = cp.station_cap_a()
            assert cap == pytest.approx(CAP_W / 690) and sum(ev.current_a() for ev in cp.evs.values()) <= cap + 0.1
        # compliance is computed from these real samples
        await run.until(lambda: run.daemon.metrics.within[True] > 0, "MeterValues samples judged")
        # The station total is the sum of each connector's latest sample, and connectors sample on
        # their own timers: when a session starts, the connector it takes power from still shows its
        # previous sample until its next one (up to a meter interval). So the total is compared once
        # the samples agree (bounded); every single sample was judged within its limit all along.
        metrics: dict[str, Any] = {}
        for _ in range(200):  # bounded: a meter interval is 1 s here
            metrics = (await run.http.get("/stations/metrics")).json()
            assert metrics["metrics"]["reconciler_limit_compliance_ratio"] == 1.0
            if 0 < metrics["power_drawn_w"] <= metrics["limit_w"]:
                break
            await asyncio.sleep(0.05)
        assert 0 < metrics["power_drawn_w"] <= metrics["limit_w"], metrics
        # bounded: after max_sessions each, every session has stopped (StopTransaction sent)
        stations: list[SimulatedChargePoint] = [fleet.running[n][n] for n in names]
        await run.until(lambda: all(cp.sent["StopTransaction"] == 2 * 2 and not cp.transactions for cp in stations),
                        "every connector's two sessions over", timeout=30)  # fmt: skip
        assert all(cp.sent["StartTransaction"] == 4 for cp in stations)
