"""The daemon after a charger reboot that lost only a profile hidden under another.

#1 (ChargePointMaxProfile, stack 0, 16 A) lies under #2 (stack 1, 12 A); the charger reboots and
keeps #2 only (`lose_on_reboot=1`). The read-back looks as before, so the daemon used to stay
Synced trusting #1, and when the policy dropped #2 it cleared #2 alone: the station uncapped until
a retry. The BootNotification makes the ledger uncertain: the daemon sends #1 again (one Set),
and the later clear of #2 leaves the 16 A cap in force throughout. Real daemon, websockets, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.simulator.quirks import Quirks
from tests.daemon.kit import limit_a, running
from tests.engine.fleetkit import cap_policy, station_doc

pytestmark = pytest.mark.slow

CP = "CP-0001"


async def test_the_daemon_sends_again_a_hidden_profile_the_reboot_lost(tmp_path: Path) -> None:
    files = {"s.yaml": station_doc(CP, "x"), "cap1.yaml": cap_policy("cap1", [CP], 16, profile_id=1, stack=0),
             "cap2.yaml": cap_policy("cap2", [CP], 12, profile_id=2, stack=1)}  # fmt: skip
    async with running(tmp_path, files, [CP], quirks=Quirks(lose_on_reboot="1")) as run:
        await run.synced()
        cp = run.fleet[CP]
        central = run.daemon.central
        assert central is not None and sorted(e.profile.charging_profile_id for e in cp.installed) == [1, 2]
        boots, sets, clears = cp.boots, cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]
        assert (await central.call(CP, "Reset", {"type": "Hard"})).status == "Accepted"
        await run.until(lambda: cp.boots > boots, "the charger rebooted")
        await run.until(lambda: sorted(e.profile.charging_profile_id for e in cp.installed) == [1, 2],
                        "#1, lost at the reboot, sent again")  # fmt: skip
        await run.synced()
        assert (cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]) == (sets + 1, clears)
        ledger = sorted((e.profile.id, e.state.value) for e in run.daemon.store.ledger(CP))
        assert ledger == [(1, "Accepted"), (2, "Accepted")]
        cp.record_history = True
        (run.policies / "cap2.yaml").unlink()
        await run.until(lambda: [e.profile.charging_profile_id for e in cp.installed] == [1], "#2 cleared")
        await run.synced()
        uncapped = [s.action for s in cp.history if any(s.limit(c) is None for c in (1, 2))]
        assert uncapped == [], "the station was left without a cap"
        assert limit_a(cp) == 16
