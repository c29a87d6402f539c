"""What a simulated charge point reports and what it enforces: two views of one composite.

Flow: `charge_point.SimulatedChargePoint` -> `composite_reply` for GetCompositeSchedule (the
station's reporting conventions: rounding to 0.1 or whole amps, uncovered time at max current /
-1 / an empty list / Rejected, unit conversion or not) and `enforced_composite` for what the
hardware actually applies (amps, unrounded, uncovered time = no limit), which drives the EV and
the `Snapshot`s a test records after each call. Both are the core's `compute_composite`; only the
context differs. Pure functions: time is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.core.composite import Composite, compute_composite
from reconciler.core.context import StationContext, Transaction, Uncovered
from reconciler.core.profiles import ChargingProfile, RateUnit
from reconciler.core.wire import composite_to_ocpp


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the station enforced right after one received call (unit A, from `at`)."""

    action: str
    at: datetime
    composites: dict[int, Composite]  # connectorId (0..N) -> composite, uncovered time = limit None

    def limit(self, connector_id: int, offset: int = 0) -> float | None:
        """The limit in force `offset` seconds after the call (None: no profile limits it)."""
        limit: float | None = None
        for period in self.composites[connector_id].periods:
            if period.start_period > offset:
                break
            limit = period.limit
        return limit


def composite_reply(
    installed: Sequence[tuple[int, ChargingProfile]],
    request: Mapping[str, Any],
    *,
    now: datetime,
    context: StationContext,
    transactions: Mapping[int, Transaction],
    empty_when_uncovered: bool,
) -> dict[str, Any]:
    """The GetCompositeSchedule.conf payload under the station's reporting conventions. With
    `context.uncovered` NO_LIMIT (the "empty" quirk), a window nothing covers is an empty period
    list and partly uncovered windows report the gaps at the default limit."""
    unit = request.get("chargingRateUnit")
    composite = compute_composite(
        installed,
        connector_id=int(request["connectorId"]),
        now=now,
        duration=int(request["duration"]),
        unit=None if unit is None else RateUnit(unit),
        context=context,
        transactions=transactions,
    )
    answer = composite_to_ocpp(composite)
    answer.pop("reason", None)  # not a GetCompositeSchedule.conf field
    if answer["status"] == "Accepted" and context.uncovered is Uncovered.NO_LIMIT:
        periods = answer["chargingSchedule"]["chargingSchedulePeriod"]
        if empty_when_uncovered and all("limit" not in p for p in periods):
            answer["chargingSchedule"]["chargingSchedulePeriod"] = []
        else:
            default = context.default_limit(composite.unit)
            for period in periods:
                period.setdefault("limit", default)
    return answer


def enforced_composite(
    installed: Sequence[tuple[int, ChargingProfile]],
    connector_id: int,
    *,
    now: datetime,
    duration: int,
    context: StationContext,
    transactions: Mapping[int, Transaction],
) -> Composite:
    """The limits the hardware applies (amps, unrounded, uncovered = None), whatever it reports."""
    return compute_composite(
        installed,
        connector_id=connector_id,
        now=now,
        duration=duration,
        unit=RateUnit.A,
        context=context.enforced(),
        transactions=transactions,
    )
