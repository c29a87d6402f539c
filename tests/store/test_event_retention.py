"""The event log's retention: by age and by row count, in batches, on a real SQLite file.

An event is kept while it is younger than the age bound and among the newest `max_rows`; nothing
inside both bounds is ever deleted (what `history` and `GET /events` show), and a prune deletes
at most one batch per statement."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.daemon.retention import MIN_ROWS, EventRetention, prune_once
from reconciler.store.sqlite import Store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def fill(store: Store, ages_days: list[float]) -> None:
    """One event per age (oldest first, as a log is written)."""
    for i, age in enumerate(ages_days):
        store.event("test", f"event {i}", NOW - timedelta(days=age), station_id="CP")
    store.commit()


def kept(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT message FROM events ORDER BY id")]


def test_events_older_than_the_age_bound_go_and_the_rest_stays_to_the_second(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    fill(store, [40, 31, 30.0001, 30, 29.9999, 1, 0])
    deleted = store.prune_events(before=NOW - timedelta(days=30), upto=None)
    assert deleted == 3
    assert kept(tmp_path / "state.db") == ["event 3", "event 4", "event 5", "event 6"]  # 30 days exactly stays
    store.close()


def test_the_row_bound_keeps_exactly_the_newest_rows(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    fill(store, [0] * 10)
    assert store.events_beyond(10) is None  # exactly at the bound: nothing goes
    assert store.prune_events(before=None, upto=store.events_beyond(4)) == 6
    assert kept(tmp_path / "state.db") == [f"event {i}" for i in range(6, 10)]
    assert store.prune_events(before=None, upto=None) == 0  # no bound, nothing deleted
    store.close()


def test_a_prune_deletes_in_batches_oldest_first(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    fill(store, [50] * 7 + [0] * 3)
    before = NOW - timedelta(days=30)
    assert [store.prune_events(before=before, upto=None, batch=3) for _ in range(4)] == [3, 3, 1, 0]
    assert kept(tmp_path / "state.db") == ["event 7", "event 8", "event 9"]
    store.close()


async def test_both_bounds_together_and_what_is_inside_them_is_kept(tmp_path: Path):
    path = tmp_path / "state.db"
    store = Store(path)
    fill(store, [60] * 500 + [10] * (MIN_ROWS + 200) + [0] * 300)
    deleted = await prune_once(store, EventRetention(max_age_days=30, max_rows=MIN_ROWS), NOW)
    assert deleted == 500 + 500  # the old ones, and the recent ones beyond the newest MIN_ROWS
    rows = kept(path)
    assert len(rows) == MIN_ROWS and rows[-1] == f"event {500 + MIN_ROWS + 200 + 300 - 1}"
    assert await prune_once(store, EventRetention(max_age_days=30, max_rows=MIN_ROWS), NOW) == 0
    store.close()
    reopened = Store(path)  # the deletions were committed
    assert len(reopened.events(limit=100_000)) == MIN_ROWS
    reopened.close()


@pytest.mark.parametrize(("days", "rows"), [(0, 100_000), (-1, None), (30, 10)])
def test_bounds_that_would_delete_what_a_page_promises_are_refused(days: float, rows: int | None):
    with pytest.raises(ValueError, match="use"):
        EventRetention(max_age_days=days, max_rows=rows)
