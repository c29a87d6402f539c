"""Templates: named shorthands in a ChargingPolicy that expand to plain OCPP 1.6 profiles.

Part of the resolve step (documents -> resolve -> checks): a template entry plus the station's
timezone and the instant `now` give one `ChargingProfile`, which is then checked and shown in
`plan`/`composite` like any raw profile. Parameter shapes and ranges are the schema's job
(`schemas/policy.schema.json`, `$defs/PeakShaving|TimeOfUse|EnergyCap`); what only makes sense
together (peak start equal to peak end, an energy budget shorter than a second, both a power and
a current cap) is reported here as a `TemplateError`.

- `peak_shaving` {maxPowerW | maxCurrentA}: ChargePointMaxProfile on connector 0, Absolute from
  ANCHOR (2024-01-01T00:00:00Z), one period, no end.
- `time_of_use` {offPeakW, peakW, peakStartHour, peakEndHour, timezone?, purpose?}: a Daily
  Recurring profile (TxDefaultProfile unless `purpose` says ChargePointMaxProfile) in W: peakW from
  peakStartHour to peakEndHour local time, offPeakW otherwise; a peak may wrap midnight (22 -> 6).
  DST rule: OCPP recurrence is a fixed 86 400 s, so the profile is anchored at local midnight using
  the UTC offset in force at `now` (startSchedule = 2024-01-01T00:00 at that offset). Within one
  offset period the profile is identical every day (so `plan` stays idle); when the offset changes
  the desired profile changes with it and the next reconcile re-installs it.
- `energy_cap` {energyWh, powerW, start?}: TxDefaultProfile, powerW from 0 s, then 0 W from
  floor(energyWh * 3600 / powerW) s (floored, so the budget is never exceeded: 30 kWh at 11 kW ends
  at 9818 s = 2 h 43 m 38 s). Relative (per transaction) unless `start` gives an Absolute start.

Ids and stack levels: an entry's own `chargingProfileId` and `stackLevel` are used when given;
otherwise stackLevel is 0 and the id is derived from the policy name and the entry's index:
1 000 000 + crc32("policy/index") mod 1 000 000, stable across runs. Collisions are validated.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.core.profiles import (
    ChargingProfile,
    ChargingSchedule,
    Kind,
    ProfileError,
    Purpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
    parse_time,
)
from reconciler.policy.diagnostics import shown

ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)
TEMPLATES = ("peak_shaving", "time_of_use", "energy_cap")
INT32_MAX = 2**31 - 1  # OCPP 1.6 integers


class TemplateError(ValueError):
    def __init__(self, code: str, message: str, hint: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.param = param


@dataclass(frozen=True, slots=True)
class TemplateCall:
    name: str
    params: Mapping[str, Any]
    profile_id: int
    stack_level: int


def derived_id(policy: str, index: int) -> int:
    return 1_000_000 + zlib.crc32(f"{policy}/{index}".encode()) % 1_000_000


@cache
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def expand(call: TemplateCall, *, timezone_name: str, now: datetime) -> ChargingProfile:
    """The OCPP profile a template stands for; TemplateError when the parameters do not fit."""
    if call.name == "peak_shaving":
        return _peak_shaving(call)
    if call.name == "time_of_use":
        return _time_of_use(call, timezone_name, now)
    if call.name == "energy_cap":
        return _energy_cap(call)
    raise TemplateError("unknown-template", f"unknown template {call.name!r}", f"use one of {', '.join(TEMPLATES)}")


def _profile(
    call: TemplateCall,
    purpose: Purpose,
    kind: Kind,
    unit: RateUnit,
    periods: list[tuple[int, float]],
    start: datetime | None,
    recurrency: Recurrency | None = None,
) -> ChargingProfile:
    schedule = ChargingSchedule(unit, tuple(SchedulePeriod(s, limit) for s, limit in periods), start_schedule=start)
    return ChargingProfile(call.profile_id, call.stack_level, purpose, kind, schedule, recurrency_kind=recurrency)


def _peak_shaving(call: TemplateCall) -> ChargingProfile:
    watts: Any = call.params.get("maxPowerW")
    amps: Any = call.params.get("maxCurrentA")
    if watts is not None and amps is not None:
        raise TemplateError(
            "template-conflicting-parameters", "peak_shaving has both maxPowerW and maxCurrentA", "keep one of them"
        )
    if watts is None and amps is None:
        raise TemplateError("template-missing-parameter", "peak_shaving needs maxPowerW or maxCurrentA", "add one")
    if watts is not None:
        return _profile(call, Purpose.CHARGE_POINT_MAX, Kind.ABSOLUTE, RateUnit.W, [(0, float(watts))], ANCHOR)
    unit, limit = RateUnit.A, float(amps)
    return _profile(call, Purpose.CHARGE_POINT_MAX, Kind.ABSOLUTE, unit, [(0, limit)], ANCHOR)


def local_midnight_anchor(timezone_name: str, now: datetime) -> datetime:
    """2024-01-01T00:00 at the UTC offset `timezone_name` has at `now` (see the DST rule above)."""
    tz = zone(timezone_name)
    if tz is None:
        raise TemplateError(
            "unknown-timezone",
            f"unknown timezone {shown(timezone_name)}",
            "use an IANA name such as Europe/Berlin or UTC",
            "timezone",
        )
    offset = now.astimezone(tz).utcoffset() or timedelta(0)
    return datetime(2024, 1, 1, tzinfo=timezone(offset)).astimezone(UTC)


def _time_of_use(call: TemplateCall, site_timezone: str, now: datetime) -> ChargingProfile:
    params = call.params
    off_peak = float(params["offPeakW"])
    peak = float(params["peakW"])
    begin = int(params["peakStartHour"]) * 3600
    end = int(params["peakEndHour"]) * 3600
    if begin == end:
        raise TemplateError(
            "template-empty-peak",
            f"peakStartHour and peakEndHour are both {begin // 3600}: the peak would be empty",
            "give the hour the peak ends, e.g. peakStartHour: 18, peakEndHour: 22",
            "peakEndHour",
        )
    if begin < end:
        marks = [(0, off_peak), (begin, peak), (end, off_peak)]
    else:  # the peak wraps midnight
        marks = [(0, peak), (end, off_peak), (begin, peak)]
    periods: list[tuple[int, float]] = []
    for start, limit in marks:
        if start >= 86_400:
            continue
        if periods and periods[-1][0] == start:
            periods[-1] = (start, limit)
        elif not periods or periods[-1][1] != limit:
            periods.append((start, limit))
    purpose = Purpose(params.get("purpose", Purpose.TX_DEFAULT.value))
    anchor = local_midnight_anchor(str(params.get("timezone", site_timezone)), now)
    return _profile(call, purpose, Kind.RECURRING, RateUnit.W, periods, anchor, Recurrency.DAILY)


def energy_seconds(energy_wh: float, power_w: float) -> int:
    """Whole seconds `power_w` may flow before `energy_wh` is used up, floored."""
    return math.floor(Fraction(str(energy_wh)) * 3600 / Fraction(str(power_w)))


def _energy_cap(call: TemplateCall) -> ChargingProfile:
    energy = float(call.params["energyWh"])
    power = float(call.params["powerW"])
    seconds = energy_seconds(energy, power)
    if seconds > INT32_MAX:
        raise TemplateError(
            "template-energy-too-long",
            f"{energy:g} Wh at {power:g} W lasts {seconds:,} s, beyond what an OCPP 1.6 startPeriod can hold",
            f"keep energyWh * 3600 / powerW at most {INT32_MAX:,} s (68 years): raise powerW or lower energyWh",
            "energyWh",
        )
    if seconds < 1:
        raise TemplateError(
            "template-energy-too-small",
            f"{energy:g} Wh at {power:g} W lasts less than one second",
            "raise energyWh or lower powerW",
            "energyWh",
        )
    start = call.params.get("start")
    begins: datetime | None = None
    if start is not None:
        try:
            begins = parse_time(start)
        except (ProfileError, OverflowError):
            message = f"start {shown(start)} is not an ISO 8601 date-time"
            raise TemplateError("bad-date-time", message, "e.g. 2024-06-01T08:00:00Z", "start") from None
    kind = Kind.ABSOLUTE if begins is not None else Kind.RELATIVE
    return _profile(call, Purpose.TX_DEFAULT, kind, RateUnit.W, [(0, power), (seconds, 0.0)], begins)
