"""Fixtures: a real Central System on 127.0.0.1:0 and simulated stations connected over websockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from reconciler.simulator.fleet import Fleet
from reconciler.transport.central_system import CentralSystem

WAIT = 10.0  # upper bound for any condition a test waits on (never a sleep)


def cp_max(limit: float, unit: str = "A", profile_id: int = 1, stack_level: int = 0) -> dict[str, Any]:
    return {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": profile_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": "2024-01-01T00:00:00Z",
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


@pytest.fixture
async def cs() -> AsyncIterator[CentralSystem]:
    async with CentralSystem(port=0, allow_unknown=True, call_timeout=5.0) as server:
        yield server


@pytest.fixture
async def fleet(cs: CentralSystem) -> AsyncIterator[Fleet]:
    async with Fleet(cs.url, 3, backoff_initial=0.05, backoff_max=0.2) as stations:
        ready = await cs.wait_for_stations(stations.stations, WAIT)
        assert ready == set(stations.stations)
        assert await stations.wait_booted(WAIT) == set(stations.stations)  # status notifications sent too
        yield stations
