"""Amperes <-> watts, the one conversion every comparison and composite needs.

OCPP 1.6 limits in A are per phase; limits in W are the total. A charger converts with
W = A x supply voltage x number of phases (the period's own numberPhases, else its default).
"""

from __future__ import annotations

from reconciler.core.profiles import RateUnit


def amps_to_watts(amps: float, voltage: float, phases: int) -> float:
    return amps * voltage * phases


def watts_to_amps(watts: float, voltage: float, phases: int) -> float:
    return watts / (voltage * phases)


_UNIT_WORDS = {"A": RateUnit.A, "CURRENT": RateUnit.A, "W": RateUnit.W, "POWER": RateUnit.W}


def parse_allowed_units(value: str) -> tuple[RateUnit, ...]:
    """ChargingScheduleAllowedChargingRateUnit ("Current,Power" in the spec; "A,W" also read) ->
    units in the charger's order; words that are neither are ignored."""
    words = value.replace(";", ",").split(",")
    units = [_UNIT_WORDS[w.strip().upper()] for w in words if w.strip().upper() in _UNIT_WORDS]
    return tuple(dict.fromkeys(units))


def convert(limit: float, from_unit: RateUnit, to_unit: RateUnit, voltage: float, phases: int) -> float:
    """`limit` expressed in `to_unit`; identity when the units agree."""
    if from_unit is to_unit:
        return limit
    if to_unit is RateUnit.W:
        return amps_to_watts(limit, voltage, phases)
    return watts_to_amps(limit, voltage, phases)


def round_to_step(value: float, step: float) -> float:
    """Round half away from zero to a multiple of `step` (0.1 is OCPP 1.6's `multipleOf`)."""
    units = abs(value) / step
    rounded = int(units + 0.5 + 1e-9) * step
    # Snap to the decimal grid so 34.800000000000004 renders as 34.8.
    decimals = max(0, len(repr(step).split(".")[1]) if "." in repr(step) else 0)
    return round(rounded if value >= 0 else -rounded, decimals)
