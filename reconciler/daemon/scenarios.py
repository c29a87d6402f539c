"""`POST /stations/{id}/test_profiles`: the canned scenarios, as profiles for an override.

Flow: API body -> `build_scenario(name, params, ...)` -> (connector, OCPP profile JSON, what was
computed) or `ScenarioError` with the documented 400 message -> the daemon installs it as an
override (a free id, a stack level that governs) through the engine.

- `peak_shaving {max_power_w}`: ChargePointMaxProfile on connector 0 (the template `peak_shaving`).
- `time_of_use {off_peak_w, peak_w, peak_start_hour, peak_end_hour}`: a Daily TxDefaultProfile on
  connector 0 in the station's Site timezone (the template `time_of_use`); hours 0-23.
- `energy_cap {transaction_id?, max_energy_wh, duration_seconds, power_limit_w}`: power_limit_w for
  min(duration_seconds, floor(max_energy_wh * 3600 / power_limit_w)) seconds, then 0 W, so the energy
  delivered is never above the cap. With `transaction_id`: a TxProfile for that running
  transaction (one-off); without: a Relative TxDefaultProfile on connector 0 (each new session).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.core.profiles import Purpose, profile_to_ocpp
from reconciler.policy.templates import TemplateCall, TemplateError, energy_seconds, expand

SCENARIOS = ("peak_shaving", "time_of_use", "energy_cap")
REQUIRED = {
    "peak_shaving": ("max_power_w",),
    "time_of_use": ("off_peak_w", "peak_w", "peak_start_hour", "peak_end_hour"),
    "energy_cap": ("max_energy_wh", "duration_seconds", "power_limit_w"),
}
MAX_W = 10_000_000.0


class ScenarioError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    connector_id: int
    purpose: Purpose
    profile: dict[str, Any]  # csChargingProfiles JSON, id and stack level still to be chosen
    computed: dict[str, Any]
    transaction_id: int | None = None


def _number(params: Mapping[str, Any], key: str, scenario: str, *, low: float = 0.0, high: float = MAX_W) -> float:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"Parameter '{key}' for {scenario} scenario must be a number")
    if not low <= value <= high:
        raise ScenarioError(f"Parameter '{key}' for {scenario} scenario must be between {low:g} and {high:g}")
    return float(value)


def _hour(params: Mapping[str, Any], key: str) -> int:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise ScenarioError(f"Parameter '{key}' must be an hour between 0 and 23")
    return value


def build_scenario(
    name: Any,
    params: Mapping[str, Any],
    *,
    timezone: str,
    now: datetime,
    transactions: Mapping[int, int] | None = None,
) -> Scenario:
    """`transactions`: transactionId -> connectorId of the station's running transactions."""
    if name not in SCENARIOS:
        raise ScenarioError(f"Unknown scenario: {name}. Must be one of: {', '.join(SCENARIOS)}")
    for key in REQUIRED[name]:
        if params.get(key) is None:
            raise ScenarioError(f"Missing required parameter '{key}' for {name} scenario")
    try:
        if name == "peak_shaving":
            watts = _number(params, "max_power_w", name, low=1)
            profile = expand(TemplateCall("peak_shaving", {"maxPowerW": watts}, 0, 0), timezone_name=timezone, now=now)
            return Scenario(name, 0, Purpose.CHARGE_POINT_MAX, profile_to_ocpp(profile), {"max_power_w": watts})
        if name == "time_of_use":
            start, end = _hour(params, "peak_start_hour"), _hour(params, "peak_end_hour")
            off_peak, peak = _number(params, "off_peak_w", name), _number(params, "peak_w", name)
            call = TemplateCall(
                "time_of_use", {"offPeakW": off_peak, "peakW": peak, "peakStartHour": start, "peakEndHour": end}, 0, 0
            )
            profile = expand(call, timezone_name=timezone, now=now)
            computed = {
                "timezone": timezone,
                "peak": f"{start:02d}:00-{end:02d}:00",
                "peak_w": peak,
                "off_peak_w": off_peak,
            }
            return Scenario(name, 0, Purpose.TX_DEFAULT, profile_to_ocpp(profile), computed)
        return _energy_cap(params, transactions or {})
    except TemplateError as exc:
        raise ScenarioError(f"{name}: {exc.message}; {exc.hint}") from None


def _energy_cap(params: Mapping[str, Any], transactions: Mapping[int, int]) -> Scenario:
    name = "energy_cap"
    energy = _number(params, "max_energy_wh", name, low=1, high=1e9)
    power = _number(params, "power_limit_w", name, low=1)
    duration = int(_number(params, "duration_seconds", name, low=1, high=7 * 86_400))
    by_energy = energy_seconds(energy, power)
    seconds = min(duration, by_energy)
    if seconds < 1:
        raise ScenarioError(f"{energy:g} Wh at {power:g} W lasts less than one second; raise max_energy_wh")
    schedule = {
        "chargingRateUnit": "W",
        "duration": seconds,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": power}],
    }
    if seconds < duration:
        schedule["duration"] = duration
        schedule["chargingSchedulePeriod"].append({"startPeriod": seconds, "limit": 0.0})  # type: ignore[attr-defined]
    profile: dict[str, Any] = {
        "chargingProfileId": 0,
        "stackLevel": 0,
        "chargingProfileKind": "Relative",
        "chargingSchedule": schedule,
    }
    computed = {
        "power_limit_w": power,
        "charging_seconds": seconds,
        "limited_by": "energy" if by_energy < duration else "duration",
        "max_energy_wh": energy,
        "energy_wh": round(power * seconds / 3600, 1),
    }
    transaction = params.get("transaction_id")
    if transaction is None:
        profile["chargingProfilePurpose"] = Purpose.TX_DEFAULT.value
        return Scenario(name, 0, Purpose.TX_DEFAULT, profile, computed)
    if isinstance(transaction, bool) or not isinstance(transaction, int):
        raise ScenarioError("Parameter 'transaction_id' for energy_cap scenario must be an integer")
    connector = transactions.get(transaction)
    if connector is None:
        raise ScenarioError(f"Transaction {transaction} is not running on this station", 404)
    profile.update(chargingProfilePurpose=Purpose.TX.value, transactionId=transaction)
    return Scenario(name, connector, Purpose.TX, profile, computed, transaction)
