"""A charger that restarts in the middle of a run, between a Set and the Clear that follows it.

Old: #1 (ChargePointMaxProfile, stack 0, 10 A) under #2 (stack 1, 12 A). New: #1 and #3 (stack 2,
8 A). The plan sets #3 and clears #2; the clear relies on no set (#1 stays below it), so no read-back
checkpoint precedes it. The charger restarts right after accepting #3 and keeps #2 only (it persists
some profiles: `lose_on_reboot=1,3`). A run that goes on with its plan clears #2, the only cap the
charger still has: the station is uncapped (promise 1). The engine knows every BootNotification the
Central System sees: before each ClearChargingProfile, and before each retry of any call, it checks
that the charger did not restart since the run observed it; if it did, the run stops there, says why,
and the next run re-plans from a fresh observation.

Two ways the restart meets the Clear: the Clear goes out after the Central System saw the new boot
(a hook reboots the charger through the Central System before the Set's answer returns to the
engine), or the Clear's first attempt finds the charger gone and its retry would reach the restarted
charger (`reboot_after=SetChargingProfile`: the connection drops right after the Set's answer).
What each connector and the station total enforce is recorded by the simulated charger after every
call it receives. Real websockets, simulated charger, SQLite file; `apply --listen` uses this path.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler import clock
from reconciler.core.actions import ActionKind
from reconciler.core.status import Status
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.transport.gateway import EventHub, Reply
from reconciler.transport.stations import StationRegistry
from tests.engine.fleetkit import Rig, cap_files, load, reboot, rig, write

CP = "CP-0001"


def files(*caps: tuple[int, int, float]) -> dict[str, str]:
    return cap_files(CP, *caps)


OLD = files((1, 0, 10), (2, 1, 12))
NEW = files((1, 0, 10), (3, 2, 8))


def held(cp: SimulatedChargePoint) -> list[int]:
    return sorted(e.profile.charging_profile_id for e in cp.installed)


def uncapped(cp: SimulatedChargePoint) -> list[str]:
    """The calls after which a connector, or the station total (connector 0), had no limit in force."""
    return [f"{s.action}: connector {c}" for s in cp.history for c in range(cp.connectors + 1) if s.limit(c) is None]


class RebootAfterFirstSet:
    """The Central System, but the first SetChargingProfile's answer reaches the engine only once the
    charger has restarted and booted again (a restart between the Set and whatever comes next)."""

    def __init__(self, r: Rig, cp: SimulatedChargePoint) -> None:
        self.rig, self.cp, self.done = r, cp, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rig.cs, name)

    async def call(self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
                   ) -> Reply:  # fmt: skip
        reply = await self.rig.cs.call(station_id, action, payload, timeout=timeout)
        if action == "SetChargingProfile" and not self.done:
            self.done = True
            await reboot(self.rig, self.cp)
        return reply


@pytest.mark.parametrize("how", ["restart seen before the clear", "clear retried after the restart"])
async def test_a_restart_between_the_set_and_the_clear_stops_the_run_before_the_clear(tmp_path: Path, how: str):
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        first = await r.reconciler(load(write(tmp_path / "p", OLD))).reconcile_station(CP)
        assert first.status is Status.SYNCED, first.reason
        cp.quirks = replace(cp.quirks, lose_on_reboot="1,3")  # it keeps #2 alone across a restart
        engine = r.reconciler(load(write(tmp_path / "p", NEW)))
        if how == "restart seen before the clear":
            gateway: Any = RebootAfterFirstSet(r, cp)
            engine = type(engine)(gateway, r.store, engine.policies, engine.settings)
        else:
            cp.quirks = replace(cp.quirks, reboot_after="SetChargingProfile")
        boots, clears = cp.boots, cp.calls["ClearChargingProfile"]
        cp.record_history = True
        stopped = await engine.reconcile_station(CP)
        assert stopped.plan is not None
        kinds = [a.kind for a in stopped.plan.actions]
        assert kinds == [ActionKind.SET, ActionKind.CLEAR] and not stopped.plan.checkpoints  # the gap: no read-back
        assert cp.boots == boots + 1 and held(cp) == [2]
        assert uncapped(cp) == [], "the station was left without a cap"
        assert cp.calls["ClearChargingProfile"] == clears, "the Clear reached the restarted charger"
        assert stopped.status is Status.OUT_OF_SYNC, stopped.reason
        before = (
            "clearing #2"
            if how == "restart seen before the clear"
            else ("clearing #2 again (an earlier attempt went unanswered: it may have been carried out)")
        )  # the first attempt met a dropped connection: whether it went out, the reply does not say
        assert stopped.reason == (
            f"the charger restarted during the run: stopped before {before}; the next run re-plans"
        ), stopped.reason
        events = [(e.kind, e.message) for e in r.store.events(station_id=CP, limit=50)]
        assert ("reconcile.restarted", stopped.reason) in events
        # A Clear never sent leaves nothing pending; one whose attempt went unanswered stays pending
        # (the next run takes #2 as maybe there, maybe gone).
        assert len(r.store.pending(CP)) == (0 if how == "restart seen before the clear" else 1)
        # The next run re-plans from what the restarted charger holds: #1 and #3 again, then #2 cleared.
        cp.quirks = replace(cp.quirks, reboot_after="")
        healed = await r.reconciler(load(tmp_path / "p")).reconcile_station(CP)
        assert healed.status is Status.SYNCED, healed.reason
        assert held(cp) == [1, 3]
        assert uncapped(cp) == [], "the station was left without a cap"
        assert sorted(e.profile.id for e in r.store.ledger(CP)) == [1, 3]


async def test_a_restart_seen_while_observing_stops_a_retried_read(tmp_path: Path):
    # The charger restarts right after the observation's first GetCompositeSchedule: the read's retry
    # would mix answers from before and after the restart. The run stops; nothing is sent.
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        assert (await r.reconciler(load(write(tmp_path / "p", OLD))).reconcile_station(CP)).status is Status.SYNCED
        sets, clears = cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]
        cp.quirks = replace(cp.quirks, reboot_after="GetCompositeSchedule")
        stopped = await r.reconciler(load(write(tmp_path / "p", NEW))).reconcile_station(CP)
        assert stopped.status is Status.OUT_OF_SYNC, stopped.reason
        assert stopped.reason is not None and stopped.reason.startswith("the charger restarted during the run"), (
            stopped.reason
        )
        assert (cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]) == (sets, clears)


def test_the_central_system_counts_restarts_not_the_boots_it_asked_for():
    # The count the engine compares: a first boot and a boot asked for with TriggerMessage are no restart.
    registry = StationRegistry(EventHub(), heartbeat_interval=60, clock=clock.now)
    boot = {"chargePointVendor": "v", "chargePointModel": "m"}
    registry.connected(CP)
    registry.handle(CP, "BootNotification", boot)
    info = registry.get(CP)
    assert info is not None and info.restarts == 0
    registry.connected(CP)
    info.boot_asked = True
    registry.handle(CP, "BootNotification", boot)
    assert info.restarts == 0
    registry.handle(CP, "BootNotification", boot)
    assert info.restarts == 1
