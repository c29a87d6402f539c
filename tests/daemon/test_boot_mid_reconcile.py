"""A charger that reboots (and loses its profiles) in the middle of a daemon reconcile.

The cap moves from #1 (16 A) to #2 (12 A, stack 1): set #2, read back, clear #1. The charger
reboots right after accepting #2 and comes back empty (`lose_profiles_on_reboot`). The run in flight
must not clear anything on the word of a read-back that no longer holds (it stops before the clear),
the BootNotification must bring a follow-up run, and the daemon must end Synced with #2 alone on
the charger and in the ledger, blaming nothing foreign. Real daemon, websockets, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.status import Status
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.quirks import Quirks
from tests.daemon.kit import limit_a, running
from tests.engine.fleetkit import cap_policy, station_doc

pytestmark = pytest.mark.slow

CP = "CP-0001"


async def test_a_reboot_between_the_set_and_the_clear_is_healed(tmp_path: Path) -> None:
    files = {"s.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], 16, profile_id=1, stack=0)}
    async with running(tmp_path, files, [CP], quirks=Quirks(lose_profiles_on_reboot=True)) as run:
        await run.synced()
        cp = run.fleet[CP]
        boots = cp.boots

        def reboot_after_the_new_cap(station: SimulatedChargePoint, action: str) -> None:
            if action == "SetChargingProfile" and station.boots == boots:
                station.reset_requested = "Hard"  # goes down once this answer is sent

        cp.on_change = reboot_after_the_new_cap
        (run.policies / "cap.yaml").write_text(cap_policy("cap", [CP], 12, profile_id=2, stack=1))
        await run.until(lambda: cp.boots > boots, "the charger rebooted")
        await run.until(lambda: sorted(e.profile.charging_profile_id for e in cp.installed) == [2], "#2 set again")
        await run.synced()
        latest = run.daemon.latest[CP]
        assert latest.status is Status.SYNCED and not (latest.plan and latest.plan.foreign), latest.reason
        assert limit_a(cp) == 12
        assert [e.profile.id for e in run.daemon.store.ledger(CP)] == [2]
        assert not run.daemon.store.pending(CP)
        kinds = [e.kind for e in run.daemon.store.events(station_id=CP, limit=100)]
        assert "verify.checkpoint" in kinds  # the run in flight stopped before its clear
        # #1, gone with the reboot, is cleared afterwards or (the boot made the ledger doubt it and the
        # read-back shows it gone) forgotten without a call: never cleared before the checkpoint.
        assert "action.clear" not in kinds[: kinds.index("verify.checkpoint")]
