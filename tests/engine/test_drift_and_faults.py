"""Drift is detected with the right class and healed; faults end in the right condition (issue 5)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.core.diff import DriftClass
from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.simulator.quirks import Quirks
from tests.engine.fleetkit import FAST, WAIT, cap_policy, load, rig, station_doc, write

STATION = "CP-0001"


def policies_for(tmp: Path, *, prune: bool = False, limit: float = 16):
    extra = "  prune: foreign\n" if prune else ""
    return load(write(tmp / "p", {"s.yaml": station_doc(STATION, "x"),
                                  "cap.yaml": cap_policy("cap", [STATION], limit, extra=extra)}))  # fmt: skip


def foreign_default(limit: float, stack: int = 7, profile_id: int = 777) -> dict:
    return {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": profile_id, "stackLevel": stack, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z", "chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}}  # fmt: skip


async def converge(r, policies):
    outcomes = await r.reconciler(policies).apply([STATION])
    assert outcomes[0].status is Status.SYNCED, outcomes[0].reason


def primary(outcome):
    return next(d.primary for d in outcome.plan.drift if not d.in_sync)


async def test_reboot_that_loses_profiles_is_missing_and_healed(tmp_path: Path):
    policies = policies_for(tmp_path)
    async with rig(tmp_path, 1, quirks=Quirks(lose_profiles_on_reboot=True)) as r:
        await converge(r, policies)
        cp = r.fleet[STATION]
        boots = cp.boots
        reply = await r.cs.call(STATION, "Reset", {"type": "Soft"})
        assert reply.status == "Accepted"
        await r.cs.wait_for_stations([STATION], WAIT)  # it went away and came back
        for _ in range(int(WAIT / 0.05)):
            if cp.boots > boots and r.cs.is_connected(STATION):
                break
            await asyncio.sleep(0.05)
        assert cp.boots > boots and len(cp.installed) == 0
        planned = (await r.reconciler(policies).plan([STATION]))[0]
        assert planned.status is Status.OUT_OF_SYNC and primary(planned) is DriftClass.MISSING
        assert [a.reason for a in planned.plan.actions] == ["re-install: connector 1 missing"]
        await converge(r, policies)
        assert len(cp.installed) == 1


async def test_foreign_higher_stack_profile_is_reported_then_pruned(tmp_path: Path):
    async with rig(tmp_path, 1) as r:
        await converge(r, policies_for(tmp_path))
        reply = await r.cs.call(STATION, "SetChargingProfile", foreign_default(6))
        assert reply.status == "Accepted"
        planned = (await r.reconciler(policies_for(tmp_path)).plan([STATION]))[0]
        assert primary(planned) is DriftClass.EXTRA and planned.plan.foreign
        assert planned.plan.blocked and "prune: foreign" in planned.plan.blocked
        clears_before = r.received("ClearChargingProfile")
        outcome = (await r.reconciler(policies_for(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.OUT_OF_SYNC and "prune: foreign" in outcome.reason
        assert r.received("ClearChargingProfile") == clears_before  # never clears what it does not own
        assert r.fleet[STATION].installed.by_id(777) is not None

        pruned = (await r.reconciler(policies_for(tmp_path, prune=True)).apply([STATION]))[0]
        assert pruned.status is Status.SYNCED, pruned.reason
        assert r.fleet[STATION].installed.by_id(777) is None and r.fleet[STATION].installed.by_id(1) is not None


async def test_foreign_higher_limit_override_is_shadowed(tmp_path: Path):
    async with rig(tmp_path, 1) as r:
        policies = load(write(tmp_path / "p", {
            "s.yaml": station_doc(STATION, "x"),
            "tx.yaml": cap_policy("d", [STATION], 10, profile_id=5, stack=1).replace(
                "ChargePointMaxProfile", "TxDefaultProfile")}))  # fmt: skip
        await converge(r, policies)
        await r.cs.call(STATION, "SetChargingProfile", foreign_default(25, stack=4))
        planned = (await r.reconciler(policies).plan([STATION]))[0]
        assert primary(planned) is DriftClass.SHADOWED


async def test_a_foreign_profile_raising_the_limit_is_pruned_once_a_re_install_did_not_show(tmp_path: Path):
    # a foreign TxDefaultProfile at a higher stack level lets connector 1 draw 25 A over git's 10 A: the
    # first run takes it for a lost profile (re-installed, accepted, still 25 A: Degraded); from then on,
    # without `prune: foreign` the reason says the charger allows more than the policy and how to let the
    # reconciler act; with it, the foreign profile is pruned and the station Synced at 10 A (before: the
    # Set was sent again on every run, nothing pruned, 25 A allowed for good)
    def tx_policy(prune: bool):
        extra = "  prune: foreign\n" if prune else ""
        text = cap_policy("d", [STATION], 10, profile_id=5, stack=1, extra=extra)
        tx = text.replace("ChargePointMaxProfile", "TxDefaultProfile")
        files = {"s.yaml": station_doc(STATION, "x"), "tx.yaml": tx}
        return load(write(tmp_path / f"p{int(prune)}", files))

    async with rig(tmp_path, 1) as r:
        await converge(r, tx_policy(False))
        assert (await r.cs.call(STATION, "SetChargingProfile", foreign_default(25, stack=4))).status == "Accepted"
        first = (await r.reconciler(tx_policy(False)).apply([STATION]))[0]
        assert first.status is Status.DEGRADED and first.sent["SetChargingProfile"] == 1, first.reason
        clears_before = r.received("ClearChargingProfile")
        again = (await r.reconciler(tx_policy(False)).plan([STATION]))[0]
        assert again.status is Status.DEGRADED and "allows more than the policy" in again.reason, again.reason
        assert "prune: foreign" in again.reason and not any(a.kind.value == "prune" for a in again.plan.actions)
        assert r.received("ClearChargingProfile") == clears_before  # never clears what it does not own
        assert r.fleet[STATION].installed.by_id(777) is not None

        pruned = (await r.reconciler(tx_policy(True)).apply([STATION]))[0]
        assert pruned.status is Status.SYNCED, pruned.reason
        assert r.fleet[STATION].installed.by_id(777) is None and r.fleet[STATION].installed.by_id(5) is not None
        after = (await r.reconciler(tx_policy(True)).plan([STATION]))[0]
        assert after.status is Status.SYNCED and not after.plan.actions, after.reason


async def test_foreign_clear_all_is_missing_and_healed(tmp_path: Path):
    policies = policies_for(tmp_path)
    async with rig(tmp_path, 1) as r:
        await converge(r, policies)
        reply = await r.cs.call(STATION, "ClearChargingProfile", {})
        assert reply.status == "Accepted" and len(r.fleet[STATION].installed) == 0
        planned = (await r.reconciler(policies).plan([STATION]))[0]
        assert primary(planned) is DriftClass.MISSING
        await converge(r, policies)


async def test_accepted_but_not_enforced_is_degraded(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=Quirks(accepted_not_enforced=True)) as r:
        outcome = (await r.reconciler(policies_for(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.DEGRADED
        assert "accepted but not enforced" in outcome.reason


async def test_rejected_is_degraded_without_retry(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=Quirks(allowed_units="W")) as r:
        outcome = (await r.reconciler(policies_for(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.DEGRADED
        assert "unit A is not allowed" in outcome.reason
        assert r.received("SetChargingProfile") == 0  # the plan knew the charger would refuse


async def test_composite_not_supported_is_degraded(tmp_path: Path):
    async with rig(tmp_path, 1, quirks=Quirks(composite_unsupported=True)) as r:
        outcome = (await r.reconciler(policies_for(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.DEGRADED and "NotSupported" in outcome.reason


async def test_disconnect_mid_apply_is_offline_and_a_rerun_converges(tmp_path: Path):
    policies = load(write(tmp_path / "p", {
        "s.yaml": station_doc(STATION, "x"),
        "cap.yaml": cap_policy("cap", [STATION], 16),
        "tx.yaml": cap_policy("d", [STATION], 10, profile_id=5, stack=1).replace(
            "ChargePointMaxProfile", "TxDefaultProfile")}))  # fmt: skip
    async with rig(tmp_path, 1) as r:
        cp, client = r.fleet[STATION], r.fleet.clients[STATION]
        dropped = asyncio.Event()

        def drop_after_first_set(station, action):
            if action == "SetChargingProfile" and not dropped.is_set():
                dropped.set()
                asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(client.disconnect()))

        cp.on_change = drop_after_first_set
        settings = Settings(horizon=FAST.horizon, settle=0.05, retry=RetryPolicy(attempts=1))
        outcome = (await r.reconciler(policies, settings).apply([STATION]))[0]
        assert dropped.is_set()
        assert outcome.status is Status.OFFLINE, outcome.reason
        assert "SetChargingProfile" in outcome.reason and "offline" in outcome.reason
        assert {e.profile.charging_profile_id for e in r.store.ledger(STATION)} == {1}  # the clear never ran
        cp.on_change = None
        await r.cs.wait_for_stations([STATION], WAIT, booted=False)
        await converge(r, policies)
        assert {e.profile.charging_profile_id for e in r.store.ledger(STATION)} == {1, 5}


async def test_timeouts_are_retried_a_bounded_number_of_times_then_offline(tmp_path: Path):
    async with rig(tmp_path, 1, call_timeout=0.3) as r:
        client = r.fleet.clients[STATION]
        answer = client._answer

        def silent_to_sets(action, payload, unique_id):
            return None if action == "SetChargingProfile" else answer(action, payload, unique_id)

        client._answer = silent_to_sets
        settings = Settings(horizon=FAST.horizon, retry=RetryPolicy(attempts=3, base_delay=0.01, call_timeout=0.3))
        engine = r.reconciler(policies_for(tmp_path), settings)
        outcome = (await engine.apply([STATION]))[0]
        assert outcome.status is Status.OFFLINE and "timeout" in outcome.reason
        assert engine.caller.sent["SetChargingProfile"] == 3 and engine.caller.retried == 2
        assert r.store.pending(STATION), "an unanswered Set stays pending: the next run must account for it"


async def test_read_back_at_once_without_a_fixed_settle_wait(tmp_path: Path):
    # A charger that answered Accepted holds the profile: the read-back goes out at once. A settle
    # of an hour would hold this reconcile for an hour if the engine slept before its first read-back.
    settings = Settings(horizon=FAST.horizon, settle=3600.0, verify_attempts=3)
    async with rig(tmp_path, 1) as r:
        outcome = (await asyncio.wait_for(r.reconciler(policies_for(tmp_path), settings).apply([STATION]), WAIT))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        assert r.received("GetCompositeSchedule") == 6  # observe and read back connectors 0, 1, 2: one round each


async def test_charger_that_applies_late_is_read_back_again_until_synced(tmp_path: Path):
    # enforce_delay_ms: Accepted at once, in force 300 ms later; the first read-back still shows the
    # old composite, the ones `settle` apart see the new one.
    settings = Settings(horizon=FAST.horizon, settle=0.2, verify_attempts=4)
    async with rig(tmp_path, 1, quirks=Quirks(enforce_delay_ms=300)) as r:
        outcome = (await r.reconciler(policies_for(tmp_path), settings).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        assert r.received("GetCompositeSchedule") > 6  # read back more than once
        assert len(r.fleet[STATION].installed) == 1
