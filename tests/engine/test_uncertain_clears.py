"""A ClearChargingProfile whose answer was never recorded is uncertain, not done and not undone.

The charger carried the Clear out but its answer was lost (the `lose_answers` quirk: the engine's
call times out), so the profile may or may not still be on the charger. The next run must treat
it as possibly present AND possibly absent: the station is not assumed capped by it (a plan that
relied on it could uncap the station), it stays owned (so it is cleared, or sent again, later),
and its absence is not blamed on a foreign profile. Real websockets, simulated chargers, SQLite.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.simulator.charge_point import SimulatedChargePoint
from tests.engine.fleetkit import Rig, cap_policy, load, rig, station_doc, write

CP = "CP-0001"
LOSSY = Settings(horizon=6 * 3600, settle=0.02, verify_attempts=2,
                 retry=RetryPolicy(attempts=2, base_delay=0.01, call_timeout=0.3))  # fmt: skip
STEADY = Settings(horizon=6 * 3600, settle=0.02, verify_attempts=2)


def files(*policies: str) -> dict[str, str]:
    return {"station.yaml": station_doc(CP, "x"), **{f"p{i}.yaml": p for i, p in enumerate(policies)}}


def tx_default(name: str, pid: int, stack: int, limit: float) -> str:
    return cap_policy(name, [CP], limit, profile_id=pid, stack=stack).replace(
        "ChargePointMaxProfile", "TxDefaultProfile"
    )


def held(cp: SimulatedChargePoint) -> list[int]:
    return sorted(e.profile.charging_profile_id for e in cp.installed)


def uncapped(cp: SimulatedChargePoint) -> list[str]:
    """The calls after which some connector of the charger was without any limit."""
    return [s.action for s in cp.history if any(s.limit(c) is None for c in range(1, cp.connectors + 1))]


MODES = {
    "answer lost": {"lose_answers": "ClearChargingProfile"},
    "answer late": {"late_answers": "ClearChargingProfile", "answer_delay_ms": 800},  # after the 0.3 s timeout
}


async def lose_clear_answers(
    r: Rig, cp: SimulatedChargePoint, policies_dir: Path, new: dict[str, str], mode: str
) -> None:
    """Apply `new` while every ClearChargingProfile is carried out but its answer lost (or late)."""
    honest = cp.quirks
    cp.quirks = replace(cp.quirks, **MODES[mode])
    lost = await r.reconciler(load(write(policies_dir, new)), LOSSY).reconcile_station(CP)
    assert lost.status is Status.OFFLINE, lost.reason  # the Clear timed out: its fate is unknown here
    assert r.store.pending(CP)
    cp.quirks = honest


@pytest.mark.parametrize("mode", MODES)
async def test_a_clear_whose_answer_was_lost_is_not_blamed_on_a_foreign_profile(tmp_path: Path, mode: str):
    # #6 (stack 2, 20 A) overrides #5 (stack 1, 10 A); the new policy drops #6.
    old = files(tx_default("low", 5, 1, 10), tx_default("high", 6, 2, 20))
    new = files(tx_default("low", 5, 1, 10))
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        assert (await r.reconciler(load(write(tmp_path / "p", old))).reconcile_station(CP)).status is Status.SYNCED
        await lose_clear_answers(r, cp, tmp_path / "p", new, mode)
        assert held(cp) == [5]  # the charger did clear #6
        planned = (await r.reconciler(load(tmp_path / "p"), STEADY).plan([CP]))[0]
        assert planned.plan is not None and not planned.plan.blocked and not planned.plan.foreign, planned.reason
        healed = await r.reconciler(load(tmp_path / "p"), STEADY).reconcile_station(CP)
        assert healed.status is Status.SYNCED, healed.reason
        assert [e.profile.id for e in r.store.ledger(CP)] == [5]
        sets, clears = cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]
        again = await r.reconciler(load(tmp_path / "p"), STEADY).reconcile_station(CP)
        assert again.status is Status.SYNCED and not again.plan.actions
        assert (cp.calls["SetChargingProfile"], cp.calls["ClearChargingProfile"]) == (sets, clears)


@pytest.mark.parametrize("mode", MODES)
async def test_a_clear_whose_answer_was_lost_is_not_assumed_to_cap_the_station(tmp_path: Path, mode: str):
    # The cap moves from #1 (16 A) to #2 (12 A, stack 1): set #2, verify, clear #1 (answer lost).
    # Then the policy goes back to #1. A plan that believed #1 still there would clear #2 alone,
    # leaving the station without any cap.
    first = files(cap_policy("cap", [CP], 16, profile_id=1, stack=0))
    second = files(cap_policy("cap", [CP], 12, profile_id=2, stack=1))
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        assert (await r.reconciler(load(write(tmp_path / "p", first))).reconcile_station(CP)).status is Status.SYNCED
        await lose_clear_answers(r, cp, tmp_path / "p", second, mode)
        assert held(cp) == [2]
        cp.record_history = True
        back = await r.reconciler(load(write(tmp_path / "p", first)), STEADY).reconcile_station(CP)
        assert back.status is Status.SYNCED, back.reason
        assert held(cp) == [1] and [e.profile.id for e in r.store.ledger(CP)] == [1]
        assert uncapped(cp) == [], "the station was left without a cap"


async def test_a_profile_sent_again_after_its_lost_clear_says_the_clear_went_unanswered(tmp_path: Path):
    # #6 (stack 2, 20 A) over #5 (stack 1, 10 A); the policy drops #6 and the Clear of #6 is carried
    # out, its answer lost. The policy brings #6 back: the plan sends #6 again and says why, its
    # Clear went unanswered (not "sent before an interruption, its answer never recorded": #6's own
    # Set was answered long ago), in the plan's text and JSON alike.
    from reconciler.cli.render import outcome_json, render_text

    old = files(tx_default("low", 5, 1, 10), tx_default("high", 6, 2, 20))
    new = files(tx_default("low", 5, 1, 10))
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        assert (await r.reconciler(load(write(tmp_path / "p", old))).reconcile_station(CP)).status is Status.SYNCED
        await lose_clear_answers(r, cp, tmp_path / "p", new, "answer lost")
        planned = (await r.reconciler(load(write(tmp_path / "p", old)), STEADY).plan([CP]))[0]
        assert planned.plan is not None
        again = [a.reason for a in planned.plan.actions if a.profile is not None and a.profile.charging_profile_id == 6]
        assert again == ["a ClearChargingProfile of it went unanswered: it may be gone"], again
        described = outcome_json(planned)["actions"]
        assert [a["reason"] for a in described if a["description"].startswith("profile #6 ")] == again
        text = render_text([planned])
        assert "ClearChargingProfile of it went unanswered" in text and "sent before an interruption" not in text
