"""One simulated charge point without a network: quirks, configuration, reboot, history, EV."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.context import Connector0
from reconciler.simulator.charge_point import SimCallError, SimulatedChargePoint
from reconciler.simulator.ev import LocalPolicy, PowerSource
from reconciler.simulator.quirks import Quirks, UncoveredReport

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def station(**kwargs: Any) -> SimulatedChargePoint:
    return SimulatedChargePoint("CP", clock=lambda: NOW, **kwargs)


def profile(
    limit: float,
    *,
    unit: str = "A",
    purpose: str = "TxDefaultProfile",
    connector: int = 1,
    pid: int = 1,
    stack: int = 0,
    duration: int | None = None,
    periods: int = 1,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "startSchedule": "2025-03-01T12:00:00Z",
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": 60 * i, "limit": limit} for i in range(periods)],
    }
    if duration is not None:
        schedule["duration"] = duration
    return {
        "connectorId": connector,
        "csChargingProfiles": {
            "chargingProfileId": pid,
            "stackLevel": stack,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
            "chargingSchedule": schedule,
        },
    }


def periods(cp: SimulatedChargePoint, connector: int = 1, unit: str | None = "A", duration: int = 600) -> Any:
    query: dict[str, Any] = {"connectorId": connector, "duration": duration}
    if unit:
        query["chargingRateUnit"] = unit
    answer = cp.handle("GetCompositeSchedule", query)
    return answer if answer["status"] != "Accepted" else answer["chargingSchedule"]["chargingSchedulePeriod"]


def test_reference_charger_reports_uncovered_time_at_max_current_and_rounds_to_a_tenth() -> None:
    cp = station(max_current=16)
    assert periods(cp) == [{"startPeriod": 0, "limit": 16.0}]
    assert periods(cp, unit="W") == [{"startPeriod": 0, "limit": 16 * 230 * 3}]
    cp.handle("SetChargingProfile", profile(8000, unit="W", duration=300))
    assert periods(cp) == [{"startPeriod": 0, "limit": 11.6}, {"startPeriod": 300, "limit": 16.0}]
    assert cp.calls == {"GetCompositeSchedule": 3, "SetChargingProfile": 1}


@pytest.mark.parametrize(
    ("uncovered", "expected"),
    [
        (UncoveredReport.MINUS_ONE, [{"startPeriod": 0, "limit": -1.0, "numberPhases": -1}]),
        (UncoveredReport.EMPTY, []),
        (UncoveredReport.REJECTED, {"status": "Rejected"}),
    ],
)
def test_uncovered_quirks(uncovered: UncoveredReport, expected: Any) -> None:
    assert periods(station(quirks=Quirks(uncovered=uncovered))) == expected


def test_empty_quirk_still_reports_covered_time() -> None:
    cp = station(quirks=Quirks(uncovered=UncoveredReport.EMPTY), max_current=32)
    cp.handle("SetChargingProfile", profile(10, duration=120))
    assert periods(cp) == [{"startPeriod": 0, "limit": 10.0}, {"startPeriod": 120, "limit": 32.0}]


def test_whole_amps_no_conversion_and_tx_default_only_in_transaction() -> None:
    cp = station(quirks=Quirks(whole_amps=True))
    cp.handle("SetChargingProfile", profile(8000, unit="W"))
    assert periods(cp) == [{"startPeriod": 0, "limit": 12.0}]
    cp = station(quirks=Quirks(convert_units=False))
    cp.handle("SetChargingProfile", profile(8000, unit="W"))
    assert periods(cp) == [{"startPeriod": 0, "limit": 32.0}]  # the W profile is invisible in A
    cp = station(quirks=Quirks(tx_default_when_idle=False))
    cp.handle("SetChargingProfile", profile(10))
    assert periods(cp) == [{"startPeriod": 0, "limit": 32.0}]


def test_connector0_stack_instead_of_sum() -> None:
    summed, stacked = station(), station(quirks=Quirks(connector0=Connector0.STACK))
    for cp in (summed, stacked):
        cp.handle("SetChargingProfile", profile(10, connector=0))
    assert periods(summed, connector=0) == [{"startPeriod": 0, "limit": 20.0}]
    assert periods(stacked, connector=0) == [{"startPeriod": 0, "limit": 10.0}]


def test_capability_quirks_reject_and_show_in_configuration() -> None:
    cp = station(quirks=Quirks.from_mapping({"max-stack-level": "2", "max_periods": 3, "allowed_units": "A"}))
    assert cp.handle("SetChargingProfile", profile(10, stack=3)) == {"status": "Rejected"}
    assert cp.handle("SetChargingProfile", profile(10, periods=4)) == {"status": "Rejected"}
    assert cp.handle("SetChargingProfile", profile(10, unit="W")) == {"status": "Rejected"}
    assert cp.handle("SetChargingProfile", profile(10, stack=2, periods=3)) == {"status": "Accepted"}
    keys = {k["key"]: k["value"] for k in cp.handle("GetConfiguration", {})["configurationKey"]}
    assert keys["ChargeProfileMaxStackLevel"] == "2"
    assert keys["ChargingScheduleMaxPeriods"] == "3"
    assert keys["ChargingScheduleAllowedChargingRateUnit"] == "Current"


def test_accepted_not_enforced_and_composite_unsupported() -> None:
    cp = station(quirks=Quirks(accepted_not_enforced=True))
    assert cp.handle("SetChargingProfile", profile(6)) == {"status": "Accepted"}
    assert periods(cp) == [{"startPeriod": 0, "limit": 32.0}]
    cp = station(quirks=Quirks(composite_unsupported=True))
    with pytest.raises(SimCallError) as error:
        periods(cp)
    assert error.value.code == "NotSupported"


def test_quirks_from_pairs_and_errors() -> None:
    quirks = Quirks.from_pairs(["uncovered=minus_one", "lose-profiles-on-reboot=yes"])
    assert quirks.uncovered is UncoveredReport.MINUS_ONE and quirks.lose_profiles_on_reboot
    assert Quirks.from_pairs(["whole_amps=1"], base=quirks).lose_profiles_on_reboot
    for bad in (["nope=1"], ["uncovered=sometimes"], ["whole_amps=maybe"], ["max_periods=-1"], ["novalue"]):
        with pytest.raises(ValueError):
            Quirks.from_pairs(bad)


def test_profiles_persist_across_restart_unless_lost_on_reboot(tmp_path: Path) -> None:
    cp = station(state_dir=tmp_path)
    cp.handle("SetChargingProfile", profile(10))
    cp.handle("ChangeConfiguration", {"key": "ScheduledMode", "value": "Eco"})
    again = station(state_dir=tmp_path)
    assert periods(again) == [{"startPeriod": 0, "limit": 10.0}]
    assert again.configuration.get("ScheduledMode") == "Eco"
    assert (tmp_path / "CP.log").read_text().count("SetChargingProfile") == 1

    forgetful = station(state_dir=tmp_path / "q", quirks=Quirks(lose_profiles_on_reboot=True))
    forgetful.handle("SetChargingProfile", profile(10))
    forgetful.handle("Reset", {"type": "Hard"})
    forgetful.reboot()
    assert periods(forgetful) == [{"startPeriod": 0, "limit": 32.0}]


@pytest.mark.parametrize("lost", ["1", "ChargePointMaxProfile", "1, 7"])
def test_lose_on_reboot_drops_only_the_profiles_it_names(tmp_path: Path, lost: str) -> None:
    # A charger that persists some profiles only: #1 (the station cap) is lost, #2 survives.
    for state_dir in (None, tmp_path):
        cp = station(state_dir=state_dir, quirks=Quirks.from_pairs([f"lose-on-reboot={lost}"]))
        cp.handle("SetChargingProfile", profile(16, purpose="ChargePointMaxProfile", connector=0, pid=1))
        cp.handle("SetChargingProfile", profile(10, pid=2))
        cp.reboot()
        assert [e.profile.charging_profile_id for e in cp.installed] == [2]


def test_reboot_applies_pending_configuration() -> None:
    cp = station()
    assert cp.handle("ChangeConfiguration", {"key": "SupplyVoltage", "value": "240"}) == {"status": "RebootRequired"}
    assert cp.configuration.get("SupplyVoltage") == "230"
    cp.reboot()
    assert cp.configuration.get("SupplyVoltage") == "240"


def test_history_records_what_is_enforced_after_each_call() -> None:
    cp = station()
    cp.record_history = True
    seen: list[str] = []
    cp.on_change = lambda _, action: seen.append(action)
    cp.handle("SetChargingProfile", profile(10, connector=0, purpose="ChargePointMaxProfile"))
    cp.handle("SetChargingProfile", profile(12, connector=0, purpose="ChargePointMaxProfile", pid=2, stack=1))
    cp.handle("ClearChargingProfile", {"id": 1})
    assert seen == ["SetChargingProfile", "SetChargingProfile", "ClearChargingProfile"]
    assert [s.limit(1) for s in cp.history] == [10.0, 12.0, 12.0]
    cp.handle("ClearChargingProfile", {})
    assert cp.history[-1].limit(1) is None  # uncapped: nothing limits the connector


def test_unknown_action_and_bad_payload_are_call_errors() -> None:
    cp = station()
    with pytest.raises(SimCallError) as error:
        cp.handle("UnlockConnector", {"connectorId": 1})
    assert error.value.code == "NotImplemented"
    with pytest.raises(SimCallError) as error:
        cp.handle("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {"stackLevel": "x"}})
    assert error.value.code == "FormationViolation"
    with pytest.raises(SimCallError):
        cp.handle("Reset", {"type": "Sideways"})


def test_power_source_profile_local_policy_hardware() -> None:
    policy = LocalPolicy(enabled=True, block_from_hour=11, block_to_hour=13)
    cp = station(local_policy=policy)
    assert cp.offered_current(1) == (0.0, PowerSource.LOCAL_POLICY)
    cp.handle("SetChargingProfile", profile(10, connector=0, purpose="ChargePointMaxProfile"))
    assert cp.offered_current(1) == (10.0, PowerSource.OCPP_PROFILE)
    cp.handle("ClearChargingProfile", {})
    cp.local_policy = LocalPolicy(enabled=True, max_price=0.3, prices=tuple([0.2] * 12 + [0.5] * 12))
    assert cp.offered_current(1) == (0.0, PowerSource.LOCAL_POLICY)
    cp.local_policy = LocalPolicy()
    assert cp.offered_current(1) == (32.0, PowerSource.HARDWARE_LIMIT)
    night = LocalPolicy(enabled=True, block_from_hour=22, block_to_hour=6)
    assert night.blocks(NOW) is None and night.blocks(NOW.replace(hour=23)) is not None


async def test_ev_draws_at_most_the_limit_and_reports_meter_values() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    async def sender(action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        sent.append((action, payload))
        return {"transactionId": 42, "idTagInfo": {"status": "Accepted"}} if action == "StartTransaction" else {}

    cp = station()
    cp.sender = sender
    cp.handle("SetChargingProfile", profile(10, connector=0, purpose="ChargePointMaxProfile"))
    assert await cp.start_transaction(1) == 42
    await cp.send_meter_values(1)
    action, payload = sent[-1]
    values = {v["measurand"]: float(v["value"]) for v in payload["meterValue"][0]["sampledValue"]}
    assert action == "MeterValues" and payload["transactionId"] == 42
    assert values["Current.Offered"] == 10.0 and values["Power.Active.Import"] == 10 * 230 * 3
    assert await cp.stop_transaction(1, "Remote")
    assert [a for a, _ in sent].count("StopTransaction") == 1
    assert cp.evs[2].power_w == 0.0


async def test_a_connector_offered_nothing_reports_suspended_evse_and_charging_again() -> None:
    """OCPP 1.6 ChargePointStatus: SuspendedEVSE while the station offers a running transaction no
    energy (its local policy blocks, or a 0 limit), Charging once it does again. The dashboard reads
    the station-local policy state from this."""
    sent: list[tuple[str, dict[str, Any]]] = []

    async def sender(action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        sent.append((action, payload))
        return {"transactionId": 7, "idTagInfo": {"status": "Accepted"}} if action == "StartTransaction" else {}

    def statuses() -> list[str]:
        return [p["status"] for a, p in sent if a == "StatusNotification" and p["connectorId"] == 1]

    cp = station(local_policy=LocalPolicy(enabled=True, block_from_hour=11, block_to_hour=13))
    cp.sender = sender
    assert await cp.start_transaction(1) == 7
    assert statuses() == ["SuspendedEVSE"] and cp.evs[1].power_w == 0.0
    cp.handle("SetChargingProfile", profile(10, connector=0, purpose="ChargePointMaxProfile"))
    for _ in range(100):  # the notification goes out on a task: bounded wait for it
        if len(statuses()) == 2:
            break
        await asyncio.sleep(0.01)
    assert statuses() == ["SuspendedEVSE", "Charging"] and cp.evs[1].power_w == 10 * 230 * 3
    cp.handle("SetChargingProfile", profile(0, connector=0, purpose="ChargePointMaxProfile"))
    for _ in range(100):
        if len(statuses()) == 3:
            break
        await asyncio.sleep(0.01)
    assert statuses() == ["SuspendedEVSE", "Charging", "SuspendedEVSE"]
    cp.update_evs()  # nothing changed: no new notification
    await asyncio.sleep(0)
    assert len(statuses()) == 3
