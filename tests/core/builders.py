"""Small constructors for profiles in tests: OCPP-shaped arguments, typed values out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.core.profiles import ChargingProfile, profile_from_ocpp

T0 = datetime(2024, 1, 17, 18, 0, 0, tzinfo=UTC)


def profile(
    profile_id: int,
    periods: list[tuple[int, float]] | list[tuple[int, float, int]],
    *,
    purpose: str = "TxDefaultProfile",
    kind: str = "Absolute",
    stack: int = 0,
    unit: str = "A",
    start: str | None = "2024-01-17T18:00:00Z",
    duration: int | None = None,
    recurrency: str | None = None,
    valid_from: str | None = None,
    valid_to: str | None = None,
    transaction_id: int | None = None,
) -> ChargingProfile:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": p[0], "limit": p[1], **({"numberPhases": p[2]} if len(p) > 2 else {})} for p in periods
        ],
    }
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = start
    if duration is not None:
        schedule["duration"] = duration
    data: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    for key, value in (
        ("recurrencyKind", recurrency),
        ("validFrom", valid_from),
        ("validTo", valid_to),
        ("transactionId", transaction_id),
    ):
        if value is not None:
            data[key] = value
    return profile_from_ocpp(data)


def steps(composite: Any) -> list[tuple[int, float | None]]:
    """(startPeriod, limit) of each period, limits rounded to 3 decimals."""
    return [(p.start_period, None if p.limit is None else round(p.limit, 3)) for p in composite.periods]


def limit_at(composite: Any, offset: int) -> float | None:
    """The composite's limit at `offset` seconds from its start (None: not restricted)."""
    value = None
    for period in composite.periods:
        if period.start_period > offset:
            break
        value = period.limit
    return value
