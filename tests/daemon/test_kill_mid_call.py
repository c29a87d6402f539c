"""`reconciler watch` killed (kill -9) while a charger carries out its ClearChargingProfile, restarted.

The daemon moves a converged station's cap from #1 (16 A) to #2 (12 A, stack 1): set #2, read
back, clear #1. The simulated charger kills the daemon process as it carries the Clear out (its
answer never leaves). The policy then goes back to #1 and the daemon is restarted: it must never
leave the station without a cap (it may not believe #1 still there), and end Synced owning exactly
#1. The daemon takes the same durable intents and checkpoints as `apply`. Real processes,
websockets, SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.profiles import Purpose
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from reconciler.store.sqlite import Store
from tests.daemon.test_processes import free_port, poll
from tests.engine.fleetkit import PASSWORD, cap_policy, station_doc, write

pytestmark = pytest.mark.slow

CP = "CP-0001"


async def test_watch_killed_mid_clear_then_restarted_keeps_the_station_capped(tmp_path: Path) -> None:
    policies = write(tmp_path / "p", {"s.yaml": station_doc(CP, "x"),
                                      "cap.yaml": cap_policy("cap", [CP], 16, profile_id=1, stack=0)})  # fmt: skip
    ws, api = free_port(), free_port()
    env = {**os.environ, "RECONCILER_STATION_PASSWORD": PASSWORD, "RECONCILER_API_PASSWORD": "pw"}

    async def daemon() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", "watch", "-p", str(policies),
            "--listen", f"127.0.0.1:{ws}", "--http", f"127.0.0.1:{api}", "--db", str(tmp_path / "state.db"),
            "--shutdown-timeout", "2", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    def synced(body: Any) -> bool:
        return bool(body) and all(s["condition"] == "Synced" for s in body)

    first = await daemon()
    fleet = Fleet(f"ws://127.0.0.1:{ws}", 1, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.3)
    async with fleet:
        cp = fleet[CP]
        await poll(f"http://127.0.0.1:{api}/stations", ("admin", "pw"), synced)
        gaps: list[str] = []

        def seen(station: SimulatedChargePoint, action: str) -> None:
            if not any(p.purpose is Purpose.CHARGE_POINT_MAX for _, p in station.installed.pairs()):
                gaps.append(action)

        cp.on_change = seen
        handlers, quirks = dict(cp._handlers), cp.quirks
        clear = cp._handlers["ClearChargingProfile"]

        def killing(payload: dict[str, Any]) -> dict[str, Any]:
            answer = clear(payload)  # carried out
            os.kill(first.pid, signal.SIGKILL)
            return answer

        cp._handlers["ClearChargingProfile"] = killing
        cp.quirks = replace(cp.quirks, lose_answers="ClearChargingProfile")
        (policies / "cap.yaml").write_text(cap_policy("cap", [CP], 12, profile_id=2, stack=1))
        await asyncio.wait_for(first.communicate(), 60)
        assert first.returncode == -signal.SIGKILL
        assert sorted(e.profile.charging_profile_id for e in cp.installed) == [2]
        cp._handlers, cp.quirks = handlers, quirks
        (policies / "cap.yaml").write_text(cap_policy("cap", [CP], 16, profile_id=1, stack=0))
        second = await daemon()
        try:
            await poll(f"http://127.0.0.1:{api}/stations", ("admin", "pw"), synced)
            assert gaps == [], "the station was left without its cap"
            assert sorted(e.profile.charging_profile_id for e in cp.installed) == [1]
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.communicate(), 30)
        store = Store(tmp_path / "state.db")
        try:
            assert [e.profile.id for e in store.ledger(CP)] == [1]
        finally:
            store.close()
