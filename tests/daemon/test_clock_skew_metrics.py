"""The daemon exports clock-skew health (issue 9 item 3): a charger whose clock is off is Degraded
with both times in its reason, and `/metrics` says how many stations' clocks are off by more than
the tolerance and by how much at most, so an alert needs no log scraping."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.core.status import Status
from reconciler.simulator.quirks import Quirks
from tests.daemon.kit import running
from tests.daemon.test_watch import IDS, fleet_files


def gauge(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name} not in /metrics:\n{metrics}"
    return float(found.group(1))


async def test_stations_whose_clock_is_off_are_counted_in_the_metrics(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS, quirks=Quirks(clock_offset=-3600)) as r:
        await r.until(lambda: all(r.condition(s) is Status.DEGRADED for s in IDS), "every station Degraded")
        metrics = (await r.http.get("/metrics")).text
        assert gauge(metrics, "reconciler_clock_skewed_stations") == len(IDS)
        assert 3590 < gauge(metrics, "reconciler_clock_skew_max_seconds") < 3610
        assert (await r.http.get("/stations/metrics")).json()["metrics"]["reconciler_clock_skewed_stations"] == len(IDS)


async def test_stations_on_time_are_not_counted(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as r:
        await r.synced()
        metrics = (await r.http.get("/metrics")).text
        assert gauge(metrics, "reconciler_clock_skewed_stations") == 0
        assert gauge(metrics, "reconciler_clock_skew_max_seconds") < 5
