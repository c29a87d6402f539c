"""Typed OCPP 1.6 charging profiles: the values every other room passes around.

Wire formats stay at the edge: `profile_from_ocpp` turns a `csChargingProfiles` dict (camelCase,
ISO-8601 strings) into frozen dataclasses once, and `profile_to_ocpp` renders them back. Times are
tz-aware UTC datetimes; each also carries its whole-second epoch value (`*_s`) so the composite
engine can do integer arithmetic without touching datetime objects on its hot path.

Parsing is strict about types and shapes (it raises `ProfileError` with the JSON path of the first
offending field) and lenient about semantics: a profile whose periods do not start at 0 still
parses, because chargers and the acceptance rules (`installed.py`) decide what to do with it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

E = TypeVar("E", bound=enum.StrEnum)


class ProfileError(ValueError):
    """A charging profile (or a field of one) that cannot be read; `path` says where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class Purpose(enum.StrEnum):
    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(enum.StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(enum.StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(enum.StrEnum):
    A = "A"
    W = "W"


RECURRENCE_SECONDS = {Recurrency.DAILY: 86_400, Recurrency.WEEKLY: 7 * 86_400}


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_period: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    charging_rate_unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    duration: int | None = None
    start_schedule: datetime | None = None
    min_charging_rate: float | None = None
    start_schedule_s: int | None = field(default=None, compare=False, repr=False)
    # (startPeriod, length, limit, numberPhases) of the periods a charger executes; computed once.
    compiled: tuple[tuple[int, int, float, int | None], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.start_schedule is not None and self.start_schedule_s is None:
            object.__setattr__(self, "start_schedule_s", epoch_seconds(self.start_schedule))
        if not self.compiled:
            object.__setattr__(self, "compiled", compile_periods(self.periods, self.duration))


FOREVER = 1 << 62


def compile_periods(
    periods: tuple[SchedulePeriod, ...], duration: int | None
) -> tuple[tuple[int, int, float, int | None], ...]:
    """The periods a charger executes, each with its length from its own start offset's origin.

    A period lasts until the next period's startPeriod, or `duration`, whichever is sooner (FOREVER
    when neither bounds it). As libocpp does, a first period not starting at 0 and a period not
    after its predecessor are skipped (they still bound the period before them).
    """
    out = []
    count = len(periods)
    for i, period in enumerate(periods):
        offset = period.start_period
        if (i == 0 and offset != 0) or (i > 0 and periods[i - 1].start_period >= offset):
            continue
        length = periods[i + 1].start_period if i + 1 < count else FOREVER
        if duration is not None and duration < length:
            length = duration
        out.append((offset, length, period.limit, period.number_phases))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    charging_profile_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: ChargingSchedule
    recurrency_kind: Recurrency | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: int | None = None
    valid_from_s: int | None = field(default=None, compare=False, repr=False)
    valid_to_s: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.valid_from is not None and self.valid_from_s is None:
            object.__setattr__(self, "valid_from_s", epoch_seconds(self.valid_from))
        if self.valid_to is not None and self.valid_to_s is None:
            object.__setattr__(self, "valid_to_s", epoch_seconds(self.valid_to))

    @property
    def id(self) -> int:
        return self.charging_profile_id


# --- time at the edge -------------------------------------------------------------------------


def parse_time(value: Any, path: str = "") -> datetime:
    """ISO 8601 -> tz-aware UTC datetime. A value without a zone is taken as UTC (as libocpp does)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ProfileError(path, f"{value!r} is not an ISO 8601 date-time, e.g. 2024-01-17T18:00:00Z") from None
    else:
        raise ProfileError(path, f"expected an ISO 8601 date-time string, got {type(value).__name__}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ProfileError(path, f"{value!r} is out of the representable range (years 1..9999 in UTC)") from None


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, floored (chargers floor every instant to the second)."""
    return math.floor(moment.timestamp())


def format_time(moment: datetime) -> str:
    """UTC, whole seconds, `Z` suffix: the form every reply and rendering uses."""
    m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- parsing ----------------------------------------------------------------------------------


def _int(data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProfileError(f"{path}.{key}", "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ProfileError(f"{path}.{key}", f"expected an integer, got {value!r}")
    return int(value)


def _number(data: Mapping[str, Any], key: str, path: str) -> float:
    value = data.get(key)
    if value is None:
        raise ProfileError(f"{path}.{key}", "is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{path}.{key}", f"expected a number, got {value!r}")
    return float(value)


def _enum(cls: type[E], data: Mapping[str, Any], key: str, path: str, required: bool = True) -> E | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProfileError(f"{path}.{key}", f"is required; one of {', '.join(m.value for m in cls)}")
        return None
    try:
        return cls(value)
    except ValueError:
        raise ProfileError(f"{path}.{key}", f"{value!r} is not one of {', '.join(m.value for m in cls)}") from None


def schedule_from_ocpp(data: Any, path: str = "chargingSchedule") -> ChargingSchedule:
    if not isinstance(data, Mapping):
        raise ProfileError(path, "expected an object")
    unit = _enum(RateUnit, data, "chargingRateUnit", path)
    raw_periods = data.get("chargingSchedulePeriod")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise ProfileError(f"{path}.chargingSchedulePeriod", "expected a non-empty list of periods")
    periods = []
    for i, raw in enumerate(raw_periods):
        ppath = f"{path}.chargingSchedulePeriod[{i}]"
        if not isinstance(raw, Mapping):
            raise ProfileError(ppath, "expected an object")
        periods.append(
            SchedulePeriod(
                start_period=_int(raw, "startPeriod", ppath) or 0,
                limit=_number(raw, "limit", ppath),
                number_phases=_int(raw, "numberPhases", ppath, required=False),
            )
        )
    start = data.get("startSchedule")
    min_rate = data.get("minChargingRate")
    if min_rate is not None:
        min_rate = _number(data, "minChargingRate", path)
    assert unit is not None
    return ChargingSchedule(
        charging_rate_unit=unit,
        periods=tuple(periods),
        duration=_int(data, "duration", path, required=False),
        start_schedule=None if start is None else parse_time(start, f"{path}.startSchedule"),
        min_charging_rate=min_rate,
    )


def profile_from_ocpp(data: Any, path: str = "csChargingProfiles") -> ChargingProfile:
    """Read one OCPP 1.6 `ChargingProfile` JSON object (as in SetChargingProfile.req)."""
    if not isinstance(data, Mapping):
        raise ProfileError(path, "expected an object")
    profile_id = _int(data, "chargingProfileId", path)
    stack_level = _int(data, "stackLevel", path)
    purpose = _enum(Purpose, data, "chargingProfilePurpose", path)
    kind = _enum(Kind, data, "chargingProfileKind", path)
    recurrency = _enum(Recurrency, data, "recurrencyKind", path, required=False)
    valid_from = data.get("validFrom")
    valid_to = data.get("validTo")
    assert profile_id is not None and stack_level is not None and purpose is not None and kind is not None
    return ChargingProfile(
        charging_profile_id=profile_id,
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        schedule=schedule_from_ocpp(data.get("chargingSchedule"), f"{path}.chargingSchedule"),
        recurrency_kind=recurrency,
        valid_from=None if valid_from is None else parse_time(valid_from, f"{path}.validFrom"),
        valid_to=None if valid_to is None else parse_time(valid_to, f"{path}.validTo"),
        transaction_id=_int(data, "transactionId", path, required=False),
    )


# --- rendering --------------------------------------------------------------------------------


def schedule_to_ocpp(schedule: ChargingSchedule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if schedule.duration is not None:
        out["duration"] = schedule.duration
    if schedule.start_schedule is not None:
        out["startSchedule"] = format_time(schedule.start_schedule)
    out["chargingRateUnit"] = schedule.charging_rate_unit.value
    periods = []
    for p in schedule.periods:
        period: dict[str, Any] = {"startPeriod": p.start_period, "limit": p.limit}
        if p.number_phases is not None:
            period["numberPhases"] = p.number_phases
        periods.append(period)
    out["chargingSchedulePeriod"] = periods
    if schedule.min_charging_rate is not None:
        out["minChargingRate"] = schedule.min_charging_rate
    return out


def profile_to_ocpp(profile: ChargingProfile) -> dict[str, Any]:
    """Render a profile as the OCPP 1.6 `csChargingProfiles` object."""
    out: dict[str, Any] = {
        "chargingProfileId": profile.charging_profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": profile.purpose.value,
        "chargingProfileKind": profile.kind.value,
    }
    if profile.transaction_id is not None:
        out["transactionId"] = profile.transaction_id
    if profile.recurrency_kind is not None:
        out["recurrencyKind"] = profile.recurrency_kind.value
    if profile.valid_from is not None:
        out["validFrom"] = format_time(profile.valid_from)
    if profile.valid_to is not None:
        out["validTo"] = format_time(profile.valid_to)
    out["chargingSchedule"] = schedule_to_ocpp(profile.schedule)
    return out
