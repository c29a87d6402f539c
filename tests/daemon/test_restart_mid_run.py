"""The daemon's run in flight when a charger restarts between a Set and the Clear that follows it.

Old: #1 (ChargePointMaxProfile, stack 0, 10 A) under #2 (stack 1, 12 A). The policy changes to #1
and #3 (stack 2, 8 A): set #3, clear #2, with no read-back before the clear (it relies on no set:
#1 stays below). The charger restarts right after accepting #3 (`reboot_after`) and keeps #2 alone
(`lose_on_reboot=1,3`). The run in flight must not clear #2 (the only cap left) when its Clear is
retried on the restarted charger; it stops and says why, the BootNotification brings a follow-up
run that re-plans from a fresh observation, and the daemon ends Synced with #1 and #3. What each
connector and the station total enforce is recorded by the charger after every call it receives.
Real daemon, websockets, SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.simulator.quirks import Quirks
from tests.daemon.kit import limit_a, running
from tests.engine.fleetkit import cap_policy, station_doc

pytestmark = pytest.mark.slow

CP = "CP-0001"


async def test_the_daemon_stops_a_run_whose_charger_restarted_before_its_clear(tmp_path: Path) -> None:
    files = {"s.yaml": station_doc(CP, "x"), "cap1.yaml": cap_policy("cap1", [CP], 10, profile_id=1, stack=0),
             "cap2.yaml": cap_policy("cap2", [CP], 12, profile_id=2, stack=1)}  # fmt: skip
    async with running(tmp_path, files, [CP], quirks=Quirks()) as run:
        await run.synced()
        cp = run.fleet[CP]
        assert sorted(e.profile.charging_profile_id for e in cp.installed) == [1, 2]
        boots = cp.boots
        cp.quirks = replace(cp.quirks, lose_on_reboot="1,3", reboot_after="SetChargingProfile")
        cp.record_history = True
        (run.policies / "cap3.yaml").write_text(cap_policy("cap3", [CP], 8, profile_id=3, stack=2))
        (run.policies / "cap2.yaml").unlink()
        await run.until(lambda: cp.boots > boots, "the charger restarted")
        await run.until(lambda: sorted(e.profile.charging_profile_id for e in cp.installed) == [1, 3],
                        "#1 and #3 sent again, #2 cleared")  # fmt: skip
        await run.synced()
        uncapped = [f"{s.action}: connector {c}" for s in cp.history for c in (0, 1, 2) if s.limit(c) is None]
        assert uncapped == [], "the station was left without a cap"
        assert limit_a(cp) == 8
        events = [(e.kind, e.message) for e in run.daemon.store.events(station_id=CP, limit=200)]
        kinds = [k for k, _ in events]
        assert "reconcile.restarted" in kinds, kinds  # the run in flight stopped, and said why
        stop = kinds.index("reconcile.restarted")
        assert events[stop][1].startswith("the charger restarted during the run: stopped before clearing #2")
        assert "action.clear" not in kinds[:stop]  # #2 was cleared by the follow-up run only
        assert sorted(e.profile.id for e in run.daemon.store.ledger(CP)) == [1, 3]
        assert not run.daemon.store.pending(CP)
