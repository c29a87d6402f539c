"""The event log in the state file (`events` table): reading it (`GET /events`, `reconciler history`)
and its retention (`prune_events`, by age and by row count; the watch daemon runs it hourly, see
`daemon/retention.py`). Part of `Store` (a mixin); events are written by the store's own methods,
in the transaction of what they record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.core.profiles import format_time, parse_time


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: datetime
    station_id: str | None
    kind: str
    message: str
    revision: str | None
    data: dict[str, Any]


class EventLog:
    db: sqlite3.Connection

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # Store's group commit

    def events(self, *, station_id: str | None = None, after: int = 0, limit: int = 200) -> list[Event]:
        query = "SELECT id, at, station_id, kind, message, revision, data_json FROM events WHERE id > ?"
        params: Sequence[Any] = (after,)
        if station_id is not None:
            query += " AND station_id = ?"
            params = (after, station_id)
        rows = self.db.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [
            Event(r[0], parse_time(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else {})
            for r in reversed(rows)
        ]

    def events_beyond(self, keep: int) -> int | None:
        """The id of the newest event outside the newest `keep` (it and every older one lie beyond a
        row bound of `keep`), or None when there are no more than `keep` events."""
        row = self.db.execute("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", (keep,)).fetchone()
        return None if row is None else int(row[0])

    def prune_events(self, *, before: datetime | None, upto: int | None, batch: int = 5000) -> int:
        """Retention of the event log: delete, oldest first and at most `batch` rows per call (so a
        long overdue prune never holds the write lock for long), the events older than `before` and
        those with an id up to `upto` (`events_beyond`, computed once per prune); nothing else is
        touched. None: no such bound. Returns how many went (call again while it returns `batch`)."""
        conditions: list[str] = []
        params: list[Any] = []
        if before is not None:
            conditions.append("at < ?")
            params.append(format_time(before))
        if upto is not None:
            conditions.append("id <= ?")
            params.append(upto)
        if not conditions:
            return 0
        where = " OR ".join(conditions)
        cursor = self._write(
            f"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE {where} ORDER BY id LIMIT ?)",
            (*params, batch),
        )  # fixed SQL fragments; values are parameters
        return cursor.rowcount
