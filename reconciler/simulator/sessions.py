"""Simulated drivers: charging sessions on a station's connectors, so that power is drawn.

Flow: `Sessions` (the knob: off unless asked for; `reconciler demo` turns it on) -> `StationClient`
runs `drive(station, sessions)` once the station has booted -> per connector, in turn: idle, an EV
plugs in (its own maximum current), `StartTransaction`, MeterValues every `meter_interval_s` (the
station's MeterValueSampleInterval) while the EV draws min(its maximum, what the station enforces),
then `StopTransaction` (EVDisconnected) -> idle again, `max_sessions` times.

Seeded: the idle time, session length and EV of session N on connector C of station S depend only
on (seed, S, C, N) (`session_plan`), so a test sees the same sessions every run. Bounded: a number
of sessions per connector, each wait within the ranges given. A transaction running when the
connection drops runs on (as on a real charger); on reconnect the driver picks it up and ends it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from reconciler.simulator.charge_point import SimulatedChargePoint


@dataclass(frozen=True, slots=True)
class Sessions:
    """How simulated drivers use a station's connectors. Ranges are (low, high) seconds."""

    seed: int = 0
    idle_s: tuple[float, float] = (2.0, 20.0)  # a connector stays free this long before the next EV
    charge_s: tuple[float, float] = (300.0, 1800.0)  # a session lasts this long
    ev_max_a: tuple[float, ...] = (16.0, 24.0, 32.0)  # the EVs' own maximum current per phase
    meter_interval_s: int = 10  # MeterValueSampleInterval the station is set to
    max_sessions: int = 1000  # per connector and connection

    def __post_init__(self) -> None:
        for name in ("idle_s", "charge_s"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"sessions {name}: ({low}, {high}) must be 0 <= low <= high seconds")
        if not self.ev_max_a or any(a <= 0 for a in self.ev_max_a):
            raise ValueError(f"sessions ev_max_a {self.ev_max_a}: give one or more currents above 0 A")
        if self.meter_interval_s < 1 or self.max_sessions < 0:
            raise ValueError("sessions: meter_interval_s must be at least 1 s and max_sessions 0 or more")


@dataclass(frozen=True, slots=True)
class SessionPlan:
    idle_s: float
    charge_s: float
    ev_max_a: float


def session_plan(sessions: Sessions, station_id: str, connector: int, number: int) -> SessionPlan:
    """Session `number` of a connector: the same for the same seed, station, connector and number."""
    rng = random.Random(f"{sessions.seed}:{station_id}:{connector}:{number}")
    return SessionPlan(rng.uniform(*sessions.idle_s), rng.uniform(*sessions.charge_s), rng.choice(sessions.ev_max_a))


async def drive(station: SimulatedChargePoint, sessions: Sessions, first: int = 0) -> None:
    """Run the sessions of every connector (until cancelled, or `max_sessions` each are over)."""
    station.configuration.change("MeterValueSampleInterval", str(sessions.meter_interval_s))
    await asyncio.gather(*(_connector(station, sessions, c, first) for c in sorted(station.evs)))


async def _connector(station: SimulatedChargePoint, sessions: Sessions, connector: int, first: int) -> None:
    for number in range(first, first + sessions.max_sessions):
        plan = session_plan(sessions, station.station_id, connector, number)
        if connector not in station.transactions:  # else one runs on from before a reconnect
            await asyncio.sleep(plan.idle_s)
            station.evs[connector].max_current_a = plan.ev_max_a
            if await station.start_transaction(connector, f"EV-{connector}-{number}") is None:
                continue
            await station.send_meter_values(connector)  # the power drawn shows at once
        await asyncio.sleep(plan.charge_s)
        await station.stop_transaction(connector, "EVDisconnected")
