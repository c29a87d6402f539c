"""Issue 9 item 3: no call before the charger has booted, and no verdict on a charger's wrong clock.

A restarted MicroOcpp answers GetCompositeSchedule with `scheduleStart` 1970 until its
BootNotification is accepted; the SAP simulator refuses calls (SecurityError) or leaves them
unanswered before that. The reconciler waits for an accepted BootNotification (bounded; a station
that reconnected without booting is asked for one with TriggerMessage) and judges an answer only
when its scheduleStart is within a tolerance of our clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.core.diff import DriftClass
from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.simulator.quirks import BeforeBoot, Quirks
from tests.engine.fleetkit import FAST, WAIT, cap_policy, load, rig, station_doc, write

STATION = "CP-0001"


def policies(tmp: Path):
    return load(write(tmp / "p", {"s.yaml": station_doc(STATION, "x"), "cap.yaml": cap_policy("cap", [STATION], 16)}))


async def wait_for(condition, what: str) -> None:
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_restarted_charger_is_judged_after_its_boot_not_on_its_1970_clock(tmp_path: Path):
    quirks = Quirks(lose_profiles_on_reboot=True, epoch_clock_until_boot=True, boot_delay=0.5)
    async with rig(tmp_path, 1, quirks=quirks) as r:
        await r.fleet.wait_booted(WAIT)
        converged = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert converged.status is Status.SYNCED, converged.reason
        cp, client = r.fleet[STATION], r.fleet.clients[STATION]
        connections = client.connections
        assert (await r.cs.call(STATION, "Reset", {"type": "Soft"})).status == "Accepted"
        await wait_for(lambda: client.connections > connections and r.cs.is_connected(STATION), "the reconnect")
        assert not cp.boot_accepted and cp.clock().year == 1970 and len(cp.installed) == 0
        planned = (await r.reconciler(policies(tmp_path)).plan([STATION]))[0]
        assert planned.status is Status.OUT_OF_SYNC, planned.reason  # not "Synced" on 1970's empty answers
        assert cp.boot_accepted  # the plan waited for the boot before asking
        assert next(d for d in planned.plan.drift if not d.in_sync).primary is DriftClass.MISSING


async def test_a_charger_whose_clock_is_off_is_degraded_with_both_times(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=Quirks(clock_offset=-3600)) as r:
        outcome = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.DEGRADED
        assert outcome.reason is not None and outcome.reason.startswith("clock skew: charger says ")
        assert ", we say " in outcome.reason
        assert outcome.clock_skew is not None and -3610 < outcome.clock_skew < -3590
        assert r.received("SetChargingProfile") == 0  # nothing is decided on a wrong clock
        skew, _ = r.store.clock_skew(STATION)
        assert skew is not None and -3610 < skew < -3590


async def test_calls_refused_before_boot_are_not_sent_before_boot(tmp_path: Path):
    quirks = Quirks(before_boot=BeforeBoot.REFUSE, boot_delay=0.5)
    async with rig(tmp_path, 1, quirks=quirks) as r:
        assert not r.fleet[STATION].boot_accepted
        outcome = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason


async def test_calls_unanswered_before_boot_are_not_sent_before_boot(tmp_path: Path):
    quirks = Quirks(before_boot=BeforeBoot.SILENT, boot_delay=0.5)
    async with rig(tmp_path, 1, quirks=quirks, call_timeout=1.0) as r:
        settings = Settings(horizon=FAST.horizon, settle=0.05, retry=RetryPolicy(attempts=1, call_timeout=1.0))
        outcome = (await r.reconciler(policies(tmp_path), settings).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason


async def test_a_station_that_reconnected_without_booting_is_asked_to_boot(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=Quirks(boot_on_reconnect=False)) as r:
        await r.fleet.wait_booted(WAIT)
        client = r.fleet.clients[STATION]
        connections = client.connections
        await client.disconnect()
        await wait_for(lambda: client.connections > connections and r.cs.is_connected(STATION), "the reconnect")
        booted = r.cs.station(STATION).booted_at
        outcome = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        assert r.fleet[STATION].calls["TriggerMessage"] >= 1
        assert r.cs.station(STATION).booted_at > booted  # it booted because it was asked to


async def test_a_silent_station_that_boots_after_the_trigger_was_sent_is_called_once_it_booted(tmp_path: Path):
    # Connected 2 s without a boot, the station is asked for one (TriggerMessage); it leaves that
    # unanswered (as before any boot) and boots a second later on its own. Its boot ends the wait:
    # not the TriggerMessage's timeout, and not "Offline: no BootNotification on this connection".
    quirks = Quirks(before_boot=BeforeBoot.SILENT, boot_delay=3.0)
    async with rig(tmp_path, 1, quirks=quirks, call_timeout=8.0) as r:
        outcome = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        assert r.fleet[STATION].boot_accepted
