"""`reconciler apply` killed (kill -9) between a charger call going out and its answer being recorded.

The cap of a converged station moves from #1 (16 A, stack 0) to #2 (12 A, stack 1): apply sets #2,
reads back, then clears #1. The simulated charger kills the apply process when the chosen call
reaches it, either after carrying it out or without doing so (its answer never leaves). A fresh
apply must converge without ever leaving a connector uncapped, without blaming a profile of its own
on someone else, and own exactly what the charger holds; the run after it sends nothing. One case
goes back to the old cap after a Clear that was carried out: the station must not be believed
capped by the profile it no longer holds."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.profiles import Purpose
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.store.sqlite import Store
from tests.cli.clikit import Cli, setup, until
from tests.engine.fleetkit import cap_policy

pytestmark = pytest.mark.slow

CP = "CP-0001"
OLD_CAP = cap_policy("cap", [CP], 16, profile_id=1, stack=0)
NEW_CAP = cap_policy("cap", [CP], 12, profile_id=2, stack=1)
CASES = {
    "set carried out": ("SetChargingProfile", True, NEW_CAP),
    "set not carried out": ("SetChargingProfile", False, NEW_CAP),
    "clear carried out": ("ClearChargingProfile", True, NEW_CAP),
    "clear not carried out": ("ClearChargingProfile", False, NEW_CAP),
    "set carried out, then back to the old cap": ("SetChargingProfile", True, OLD_CAP),
    "clear carried out, then back to the old cap": ("ClearChargingProfile", True, OLD_CAP),
}


def uncapped(cp: SimulatedChargePoint) -> list[str]:
    """The calls after which some connector of the charger was without any limit."""
    return [s.action for s in cp.history if any(s.limit(c) is None for c in range(1, cp.connectors + 1))]


def watch_station_cap(cp: SimulatedChargePoint) -> list[str]:
    """The calls after which the charger held no ChargePointMaxProfile (the station total uncapped)."""
    gaps: list[str] = []

    def seen(station: SimulatedChargePoint, action: str) -> None:
        if not any(p.purpose is Purpose.CHARGE_POINT_MAX for _, p in station.installed.pairs()):
            gaps.append(action)

    cp.on_change = seen
    return gaps


def kill_on(cp: SimulatedChargePoint, action: str, carried_out: bool, pid: int) -> None:
    """When `action` reaches the charger: kill the apply process; its answer never leaves."""
    cp.quirks = replace(cp.quirks, lose_answers=action)
    handler = cp._handlers[action]

    def killing(payload: dict[str, Any]) -> dict[str, Any]:
        answer = handler(payload) if carried_out else {"status": "Accepted"}
        os.kill(pid, signal.SIGKILL)
        return answer

    cp._handlers[action] = killing


def ledger_ids(cli: Cli) -> list[int]:
    store = Store(cli.db)
    try:
        return sorted({e.profile.id for e in store.ledger(CP)})
    finally:
        store.close()


@pytest.mark.parametrize("case", CASES)
async def test_apply_killed_mid_call_then_a_fresh_apply_converges(tmp_path: Path, case: str):
    action, carried_out, then = CASES[case]
    async with setup(tmp_path, [CP]) as (cli, fleet):
        cp = fleet[CP]
        (cli.policies / "cap.yaml").write_text(OLD_CAP)
        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, out + err
        cp.record_history = True
        station_uncapped = watch_station_cap(cp)
        handlers, quirks = dict(cp._handlers), cp.quirks
        (cli.policies / "cap.yaml").write_text(NEW_CAP)
        process = await cli.start("apply", "--auto-approve")
        kill_on(cp, action, carried_out, process.pid)
        await process.communicate()
        assert process.returncode == -signal.SIGKILL, "the apply was not killed mid-call"
        cp._handlers, cp.quirks = handlers, quirks
        (cli.policies / "cap.yaml").write_text(then)
        await until(lambda: not fleet.clients[CP].connected.is_set())  # the killed process's socket is gone
        code, out, err = await cli.run("apply", "--auto-approve")
        assert station_uncapped == [], "the station's total was left without its cap"
        assert uncapped(cp) == [], "a connector was left without any limit"
        assert code == 0, out + err
        assert "1 Synced of 1 station(s)" in out, out + err
        assert "did not install" not in out + err
        wanted = [1 if then is OLD_CAP else 2, 5, 6]
        assert sorted(e.profile.id for e in cp.installed) == wanted
        assert ledger_ids(cli) == wanted
        sets, clears = cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]
        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 0, out + err
        assert (cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]) == (sets, clears)
