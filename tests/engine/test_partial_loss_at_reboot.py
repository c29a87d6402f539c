"""A charger that reboots and keeps only some profiles: a lost profile hidden under another is re-sent.

#1 (ChargePointMaxProfile, stack 0, 16 A) lies under #2 (stack 1, 12 A): the composite read-back
shows #2 alone. The charger reboots and loses #1 only (`lose_on_reboot=1`, a charger that persists
some profiles): the read-back looks the same as before, so a ledger that still trusted #1 kept it
as the station's cap, and when the policy later dropped #2 the reconciler cleared #2 alone and left
the station uncapped (promise 1). A boot the Central System sees (a restart while it was
connected) makes every ledger entry uncertain until a read-back shows it: the visible ones are
confirmed by the next read-back, the hidden ones are sent again (a Set with the same id is an
idempotent replace) and verified. An honest reboot costs exactly those re-sends.
Real websockets, simulated charger, SQLite file; `apply` and `plan` use this very path."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.core.status import Status
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.quirks import Quirks
from tests.engine.fleetkit import WAIT, cap_files, load, reboot, rig, write

CP = "CP-0001"


def files(*caps: tuple[int, int, float]) -> dict[str, str]:
    return cap_files(CP, *caps)


def held(cp: SimulatedChargePoint) -> list[int]:
    return sorted(e.profile.charging_profile_id for e in cp.installed)


def uncapped(cp: SimulatedChargePoint) -> list[str]:
    """The calls after which some connector of the charger was without any limit."""
    return [s.action for s in cp.history if any(s.limit(c) is None for c in range(1, cp.connectors + 1))]


def calls(cp: SimulatedChargePoint) -> tuple[int, int]:
    return cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]


async def test_a_hidden_profile_lost_at_reboot_is_sent_again_before_the_profile_above_it_is_cleared(tmp_path: Path):
    both = files((1, 0, 16), (2, 1, 12))
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        first = await r.reconciler(load(write(tmp_path / "p", both))).reconcile_station(CP)
        assert first.status is Status.SYNCED, first.reason
        cp.quirks = replace(cp.quirks, lose_on_reboot="1")
        await reboot(r, cp)
        assert held(cp) == [2]  # #1 is gone; the composite shows 12 A as before
        before = calls(cp)
        healed = await r.reconciler(load(tmp_path / "p")).reconcile_station(CP)
        resent, after_boot = calls(cp), held(cp)
        ledger = sorted((e.profile.id, e.state.value) for e in r.store.ledger(CP))
        # The policy drops #2: clearing it must leave #1's 16 A cap in force, at every instant.
        cp.record_history = True
        dropped = await r.reconciler(load(write(tmp_path / "p", files((1, 0, 16))))).reconcile_station(CP)
        assert uncapped(cp) == [], "the station was left without a cap"
        assert healed.status is Status.SYNCED, healed.reason
        assert after_boot == [1, 2], "the lost profile was not sent again"
        assert resent == (before[0] + 1, before[1])  # #1 sent again, nothing cleared
        assert ledger == [(1, "Accepted"), (2, "Accepted")]
        assert dropped.status is Status.SYNCED, dropped.reason
        assert held(cp) == [1]


@pytest.mark.parametrize(
    ("caps", "resent"),
    [
        ([(1, 0, 16), (2, 1, 12)], 1),  # #1 is hidden under #2: the read-back cannot show it kept
        ([(1, 0, 16)], 0),  # every profile shows in the read-back: nothing is sent
    ],
)
async def test_an_honest_reboot_costs_only_the_re_sends_of_hidden_profiles(
    tmp_path: Path, caps: list[tuple[int, int, float]], resent: int
):
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        policies = write(tmp_path / "p", files(*caps))
        assert (await r.reconciler(load(policies)).reconcile_station(CP)).status is Status.SYNCED
        await reboot(r, cp)  # nothing lost
        before = calls(cp)
        after = await r.reconciler(load(policies)).reconcile_station(CP)
        assert after.status is Status.SYNCED, after.reason
        assert calls(cp) == (before[0] + resent, before[1])
        assert all(e.state.value == "Accepted" for e in r.store.ledger(CP))
        again = await r.reconciler(load(policies)).reconcile_station(CP)  # settled: promise 5 holds again
        assert again.status is Status.SYNCED and not again.plan.actions
        assert calls(cp) == (before[0] + resent, before[1])


async def test_a_reconnect_whose_boot_the_central_system_asked_for_is_no_restart(tmp_path: Path):
    # A charger that sends BootNotification only at power-up reconnects (no restart); the engine asks it
    # to boot (TriggerMessage). That boot proves no restart: nothing hidden is sent again.
    async with rig(tmp_path, 1, quirks=Quirks(boot_on_reconnect=False)) as r:
        cp, client = r.fleet[CP], r.fleet.clients[CP]
        policies = write(tmp_path / "p", files((1, 0, 16), (2, 1, 12)))
        assert (await r.reconciler(load(policies)).reconcile_station(CP)).status is Status.SYNCED
        connections, triggers, before = client.connections, cp.calls["TriggerMessage"], calls(cp)
        await client.disconnect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not (client.connections > connections and r.cs.is_connected(CP)):
            assert loop.time() < deadline, "the charger did not reconnect"
            await asyncio.sleep(0.02)
        after = await r.reconciler(load(policies)).reconcile_station(CP)
        assert after.status is Status.SYNCED, after.reason
        assert cp.calls["TriggerMessage"] > triggers  # it booted because it was asked to
        assert calls(cp) == before and not after.plan.actions
        assert all(e.state.value == "Accepted" for e in r.store.ledger(CP))
