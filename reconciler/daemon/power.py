"""Power drawn, from what stations report in MeterValues: per connector, in W.

Flow: a MeterValues call (`StationEvent.data`, camelCase) -> `power_samples` -> the daemon judges each
sample against the limit in force when it was taken (`in_force.judged_samples`: limit compliance) ->
the API shows the latest per station.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from reconciler.core.profiles import ProfileError, parse_time


def _watts(sample: dict[str, Any]) -> float | None:
    if (sample.get("measurand") or "") != "Power.Active.Import" or sample.get("phase"):
        return None
    try:
        value = float(sample.get("value"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    unit = sample.get("unit") or "W"
    return value * 1000 if unit == "kW" else value if unit == "W" else None


def power_samples(data: dict[str, Any]) -> Iterator[tuple[int, float, datetime | None]]:
    """(connector, watts, when taken) for each Power.Active.Import sample of a MeterValues payload
    (when: None if its meterValue carries no readable timestamp)."""
    try:
        connector = int(data.get("connectorId", 0))
    except (TypeError, ValueError):
        return
    for meter_value in data.get("meterValue") or []:
        if not isinstance(meter_value, dict):
            continue
        try:
            taken: datetime | None = parse_time(meter_value.get("timestamp"))
        except ProfileError:
            taken = None
        for sample in meter_value.get("sampledValue") or []:
            if isinstance(sample, dict) and (watts := _watts(sample)) is not None:
                yield connector, watts, taken


def drawn_w(meter_values: dict[int, dict[str, float]]) -> float:
    """The latest power per connector (from the registry's meter values), summed."""
    return sum(values.get("Power.Active.Import", 0.0) for connector, values in meter_values.items() if connector)
