"""The simulated EV on each connector and the station-local fallback policy.

Flow: `charge_point.SimulatedChargePoint.offered_current` decides what a connector may draw (the
OCPP composite limit, else the local policy, else the hardware maximum); the `SimulatedEV` draws
at most that, integrates energy over time, and renders the MeterValues payload
(Power.Active.Import, Energy.Active.Import.Register, Current.Offered).

`LocalPolicy` is the "legacy policy engine" found in real stations: when no OCPP profile governs a
connector, a time window (hours, UTC) and/or an hourly price ceiling block charging. It never
overrides an OCPP profile. Time is always a parameter here; the station passes its own clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.core.profiles import format_time


class PowerSource(enum.StrEnum):
    """What currently bounds a connector's power."""

    OCPP_PROFILE = "ocpp_profile"
    LOCAL_POLICY = "local_policy"
    HARDWARE_LIMIT = "hardware_limit"


@dataclass(frozen=True, slots=True)
class LocalPolicy:
    """Block charging inside [block_from_hour, block_to_hour) UTC (wrapping past midnight), or
    when `prices[hour]` exceeds `max_price`. Disabled unless `enabled`."""

    enabled: bool = False
    block_from_hour: int | None = None
    block_to_hour: int | None = None
    max_price: float | None = None
    prices: tuple[float, ...] = ()  # 24 hourly prices, UTC

    def blocks(self, at: datetime) -> str | None:
        """Why charging is blocked at `at`, or None."""
        if not self.enabled:
            return None
        hour = at.hour
        start, end = self.block_from_hour, self.block_to_hour
        if start is not None and end is not None:
            inside = start <= hour < end if start <= end else (hour >= start or hour < end)
            if inside:
                return f"local policy: charging blocked {start:02d}:00-{end:02d}:00 UTC"
        if self.max_price is not None and len(self.prices) == 24 and self.prices[hour] > self.max_price:
            return f"local policy: price {self.prices[hour]:g} above {self.max_price:g}"
        return None


@dataclass(slots=True)
class SimulatedEV:
    """A car on one connector. It draws min(offered, its own maximum) while a transaction runs."""

    connector_id: int
    max_current_a: float = 32.0
    phases: int = 3
    voltage: float = 230.0
    plugged: bool = False
    energy_wh: float = 0.0
    power_w: float = 0.0
    offered_a: float = 0.0
    source: PowerSource = PowerSource.HARDWARE_LIMIT
    last_update: datetime | None = None
    samples: list[float] = field(default_factory=list)  # every power drawn, for tests (bounded)

    def update(self, at: datetime, offered_a: float, source: PowerSource, charging: bool) -> None:
        """Integrate energy at the previous power up to `at`, then draw under the new offer."""
        if self.last_update is not None and at > self.last_update:
            self.energy_wh += self.power_w * (at - self.last_update).total_seconds() / 3600.0
        self.last_update = at
        self.offered_a = max(0.0, offered_a)
        self.source = source
        amps = min(self.offered_a, self.max_current_a) if (charging and self.plugged) else 0.0
        self.power_w = round(amps * self.voltage * self.phases, 1)
        if len(self.samples) >= 1000:
            del self.samples[:500]
        self.samples.append(self.power_w)

    def current_a(self) -> float:
        return self.power_w / (self.voltage * self.phases) if self.phases else 0.0

    def meter_values(self, at: datetime, transaction_id: int | None) -> dict[str, Any]:
        """The MeterValues.req payload for this connector."""
        payload: dict[str, Any] = {
            "connectorId": self.connector_id,
            "meterValue": [
                {
                    "timestamp": format_time(at),
                    "sampledValue": [
                        {"value": f"{self.power_w:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
                        {"value": f"{self.energy_wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                        {"value": f"{self.offered_a:.1f}", "measurand": "Current.Offered", "unit": "A"},
                        {"value": f"{self.current_a():.1f}", "measurand": "Current.Import", "unit": "A"},
                    ],
                }
            ],
        }
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        return payload
