"""The watch daemon prunes its event log by age and row count: at start, then periodically, never
on insert. Real daemon, real SQLite file written before it starts (a long-running daemon's log)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reconciler import clock
from reconciler.daemon.retention import EventRetention
from reconciler.store.sqlite import Store
from tests.daemon.kit import running
from tests.engine.fleetkit import cap_policy, station_doc

CP = "CP-0001"


async def test_the_daemon_prunes_old_events_and_keeps_the_window(tmp_path: Path) -> None:
    before = Store(tmp_path / "state.db")
    now = clock.now()
    for i in range(3000):
        before.event("test.old", f"old {i}", now - timedelta(days=45), station_id=CP)
    for i in range(800):
        before.event("test.recent", f"recent {i}", now - timedelta(days=2), station_id=CP)
    before.close()
    files = {"s.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], 16)}
    retention = EventRetention(max_age_days=30, max_rows=1000, interval=3600)
    async with running(tmp_path, files, [CP], events=retention) as run:
        store = run.daemon.store
        assert store is not None

        def count(kind: str) -> int:
            return int(store.db.execute("SELECT COUNT(*) FROM events WHERE kind=?", (kind,)).fetchone()[0])

        await run.until(lambda: count("test.old") == 0, "the events older than 30 days pruned")
        assert count("test.recent") == 800  # inside both bounds: kept
        await run.synced()
        for i in range(1500):  # the log grows past the row bound: nothing is pruned on insert
            store.event("test.burst", f"burst {i}", clock.now(), station_id=CP)
        assert count("test.burst") == 1500 and count("test.recent") == 800
