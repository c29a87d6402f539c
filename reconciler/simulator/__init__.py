"""simulator: spec-faithful simulated OCPP 1.6J charge points with quirk knobs (DESIGN.md §3).

`SimulatedChargePoint` is one station's logic (no I/O), `StationClient` its websocket,
`Fleet` / `run_fleet` many of them in one process, `Quirks` the knobs.
"""

from reconciler.simulator.charge_point import SimCallError, SimulatedChargePoint
from reconciler.simulator.client import StationClient
from reconciler.simulator.ev import LocalPolicy, PowerSource, SimulatedEV
from reconciler.simulator.fleet import Fleet, run_fleet, station_ids
from reconciler.simulator.quirks import Quirks, UncoveredReport
from reconciler.simulator.reporting import Snapshot

__all__ = [
    "Fleet",
    "LocalPolicy",
    "PowerSource",
    "Quirks",
    "SimCallError",
    "SimulatedChargePoint",
    "SimulatedEV",
    "Snapshot",
    "StationClient",
    "UncoveredReport",
    "run_fleet",
    "station_ids",
]
