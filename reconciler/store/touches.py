"""Times a drift check refreshes without changing anything, written in batches.

Flow: a drift check of a station in sync changes nothing in the store but three times: its
condition's `updated_at` (when it was last reconciled), its `last_seen`, and its clock skew (with when
it was measured). Inside an event loop `Store` hands those to `Touches`, which keeps them in memory
and writes them all every FLUSH_SECONDS in one transaction: at 10,000 stations and the default 300 s
interval that is ~1,000 rows every 30 s instead of 33 writes and commits a second. `Store`'s own
reads (the daemon, its API) see them at once; another process reading the file (`reconciler state`)
sees them at most FLUSH_SECONDS late, and a crash loses at most that much of them. Only times wait: a
new status, reason, revision or boot record, and a station's first row, are written at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

FLUSH_SECONDS = 30.0


class Touches:
    """The times waiting to be written, per station (stamps are `format_time` strings)."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self.flush = flush  # the Store's: writes them in a transaction of its own
        self.conditions: dict[str, str] = {}  # station -> conditions.updated_at
        self.seen: dict[str, str] = {}  # station -> stations.last_seen
        self.skews: dict[str, tuple[float, str]] = {}  # station -> (clock_skew_s, clock_checked_at)
        self.rows: set[str] = set()  # stations whose `stations` row this process has written
        self.boots: dict[str, str] = {}  # station -> the boot_json this process wrote last
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def later(self) -> bool:
        """True (and a flush scheduled) when a time may wait: inside a running event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._handle is not None and self._loop is not loop:
            self._handle = None  # scheduled on a loop that is gone: it never ran
        if self._handle is None:
            self._loop = loop
            self._handle = loop.call_later(FLUSH_SECONDS, self._due)
        return True

    def _due(self) -> None:
        self._handle = None
        self.flush()

    @property
    def empty(self) -> bool:
        return not (self.conditions or self.seen or self.skews)

    def write(self, db: sqlite3.Connection) -> None:
        """Write every waiting time (inside the caller's transaction) and forget them."""
        if self.conditions:
            db.executemany("UPDATE conditions SET updated_at=? WHERE station_id=?",
                           [(at, s) for s, at in self.conditions.items()])  # fmt: skip
        if self.seen:
            db.executemany("UPDATE stations SET last_seen=? WHERE station_id=?",
                           [(at, s) for s, at in self.seen.items()])  # fmt: skip
        if self.skews:
            db.executemany("UPDATE stations SET clock_skew_s=?, clock_checked_at=? WHERE station_id=?",
                           [(skew, at, s) for s, (skew, at) in self.skews.items()])  # fmt: skip
        self.conditions.clear()
        self.seen.clear()
        self.skews.clear()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def forget(self, station_id: str) -> None:
        for waiting in (self.conditions, self.seen, self.skews, self.boots):
            waiting.pop(station_id, None)
        self.rows.discard(station_id)
