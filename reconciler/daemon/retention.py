"""Retention of the event log: the watch daemon prunes old events periodically, never on insert.

Flow: `Daemon.start` -> `retain_events` (a task: at once, then every `interval` seconds) ->
`Store.prune_events` in batches (the loop yields between them, so the group commit lands and the
daemon keeps serving) -> a log line saying how many went. An event is kept while it is both younger
than `max_age_days` and among the newest `max_rows`: `history` and `GET /events` show everything
inside that window. Each bound may be off (None); the row bound is at least `MIN_ROWS`, a full
`GET /events` page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.store.sqlite import Store

log = logging.getLogger(__name__)

MIN_ROWS = 1000  # the largest page GET /events serves
BATCH = 5000  # rows per delete: a long overdue prune never holds the write lock for long
MAX_BATCHES = 10_000  # per prune: bounded (50 million rows); the next prune goes on


@dataclass(frozen=True, slots=True)
class EventRetention:
    max_age_days: float | None = 30.0  # None: kept whatever their age
    max_rows: int | None = 100_000  # None: no bound on the count
    interval: float = 3600.0  # seconds between prunes

    def __post_init__(self) -> None:
        if self.max_age_days is not None and self.max_age_days <= 0:
            raise ValueError(f"events max age {self.max_age_days} days: use more than 0 days, or no bound")
        if self.max_rows is not None and self.max_rows < MIN_ROWS:
            raise ValueError(
                f"events max rows {self.max_rows}: use at least {MIN_ROWS} (a GET /events page), or no bound"
            )

    def describe(self) -> str:
        age = "any age" if self.max_age_days is None else f"{self.max_age_days:g} days"
        rows = "no row limit" if self.max_rows is None else f"the newest {self.max_rows}"
        return f"events kept: {age}, {rows}"


async def prune_once(store: Store, retention: EventRetention, now: datetime) -> int:
    """Delete what lies outside the window, batch by batch; how many events went."""
    before = None if retention.max_age_days is None else now - timedelta(days=retention.max_age_days)
    upto = None if retention.max_rows is None else store.events_beyond(retention.max_rows)
    total = 0
    for _ in range(MAX_BATCHES):
        deleted = store.prune_events(before=before, upto=upto, batch=BATCH)
        total += deleted
        await asyncio.sleep(0)  # the group commit lands; other tasks run
        if deleted < BATCH:
            break
    return total


async def retain_events(store: Store, retention: EventRetention, now: Callable[[], datetime]) -> None:
    """Prune at once, then every `interval` seconds, until cancelled."""
    if retention.max_age_days is None and retention.max_rows is None:
        return
    while True:
        deleted = await prune_once(store, retention, now())
        if deleted:
            log.info("event log: %d event(s) pruned (%s)", deleted, retention.describe())
        await asyncio.sleep(retention.interval)
