"""The reconciler's memory: an SQLite file (WAL) holding what it installed and what happened.

Flow: engine -> `Store` (after every charger call) -> SQLite; plan/apply/watch/api read it back.

Tables (see `schema.py`; `PRAGMA user_version` is the schema version; the registry and the event
log's reads and retention in `registry.py` and `events.py`, mixed into `Store`):
- `ledger`: the profiles the reconciler sent, per station (the inventory it may clear), as a log
  in installation order with how sure each is (Accepted, Unconfirmed, Unverified, NotEnforced);
  an uncertain entry does not erase the ones it would have replaced (`core.holdings` replays it);
- `pending`: a call sent but not yet answered. It is written *before* a SetChargingProfile or
  ClearChargingProfile goes out and removed in the same transaction that records the answer, so
  after a crash (kill -9) the next run knows which profiles may or may not be on the charger;
- `stations`: registry: last seen, boot info, capabilities read by GetConfiguration (with time),
  the clock skew last measured (seconds, charger minus us, with time);
- `conditions`: the latest status per station with its reason and git revision;
- `events`: append-only log, pruned by age and row count (`prune_events`; the watch daemon does it
  periodically);
- `overrides`, `suspension`, `intents`: the watch daemon's layers (see `daemon_state.py`);
- `transactions`: what the Central System saw of every transaction (`journal.py`);
- `prunes`: prunes that changed nothing, so they are not repeated every run (`prunes.py`).
Group commit: inside an event loop, writes join one open transaction that is committed once at
the end of the loop iteration (a commit costs ~20 µs, a statement ~4 µs; a fleet's writes in one
iteration share a commit). `await durable()` waits for that commit: the engine does so after
writing a `pending` row and before sending the call, so an intent is always on disk before the
charger can act on it. Everything written later (ledger, events) is on disk within the same
iteration; should the process die first, the pending row tells the next run what may have
happened. Outside an event loop every write commits at once. WAL keeps readers (the API) and the
writer out of each other's way. Times are parameters, never read here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.core.actions import LedgerEntry, LedgerState
from reconciler.core.holdings import Verdicts
from reconciler.core.profiles import format_time, parse_time
from reconciler.core.status import Status
from reconciler.store import ledger as ledger_log
from reconciler.store.events import EventLog
from reconciler.store.journal import TransactionJournal
from reconciler.store.prunes import PruneMemory
from reconciler.store.registry import Registry
from reconciler.store.schema import MIGRATIONS
from reconciler.store.touches import Touches

log = logging.getLogger(__name__)

ACCEPTED = LedgerState.ACCEPTED.value  # ledger outcome: in force, as far as any read-back shows
UNCONFIRMED = LedgerState.UNCONFIRMED.value  # ledger outcome: sent, answer never recorded
UNVERIFIED = LedgerState.UNVERIFIED.value  # ledger outcome: accepted, not yet shown in force by a read-back


@dataclass(frozen=True, slots=True)
class Condition:
    station_id: str
    status: Status
    reason: str | None
    revision: str | None
    since: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    station_id: str
    action: str
    payload: dict[str, Any]
    content_hash: str | None
    revision: str | None


class StoreError(RuntimeError):
    """The store file cannot be opened or is not ours; the message says which file and what to do."""


class Store(Registry, EventLog):
    """One SQLite file. Not thread-safe: one Store per thread (the engine runs on one event loop)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.journal = TransactionJournal(self)
            self.prunes = PruneMemory(self)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._flush_handle: asyncio.Handle | None = None
            self._flush_loop: asyncio.AbstractEventLoop | None = None
            self._waiters: list[asyncio.Future[None]] = []
            self._failure: StoreError | None = None
            self.listeners: list[Callable[[str], None]] = []  # told the station id of each change to its rows
            self.touches = Touches(self.flush_touches)  # times a drift check refreshed, written in batches
            self._migrate()
            self.commit()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot use this file as the reconciler store ({exc}); move it aside") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path}: schema version {version} is newer than this reconciler; upgrade it")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={number}")

    # --- group commit -----------------------------------------------------------------------------

    def _open(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.commit()
            return
        if self._flush_handle is not None and self._flush_loop is not loop:
            self._flush_handle = None  # scheduled on a loop that is gone: that callback never ran
        if self._flush_handle is None:
            self._flush_loop = loop
            self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        waiters, self._waiters = self._waiters, []
        try:
            self.commit()
        except sqlite3.Error as exc:
            # Remembered: the next durable() or close() raises it, so no run ends "Synced" on lost writes.
            self._failure = StoreError(f"{self.path}: commit failed ({exc}); the last changes were not saved")
            log.error("%s", self._failure)
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
        for waiter in waiters:
            if waiter.done():
                continue
            if self._failure is not None:
                waiter.set_exception(self._failure)
            else:
                waiter.set_result(None)

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        self._open()
        try:
            return self.db.execute(sql, params)
        finally:
            self._schedule()

    def commit(self) -> None:
        """Commit what is written so far (group commit does this by itself inside an event loop)."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    async def durable(self) -> None:
        """Return once every write made so far is committed; raise StoreError if a commit failed."""
        if self._failure is not None:
            raise self._failure
        if not self.db.in_transaction:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._schedule()
        await waiter

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Statements that land together or not at all (a savepoint within the open batch)."""
        self._open()
        self.db.execute("SAVEPOINT atomic")
        try:
            yield self.db
        except BaseException:
            if self.db.in_transaction:  # SQLite may already have rolled everything back (e.g. disk full)
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK TO atomic")
                    self.db.execute("RELEASE atomic")
            raise
        else:
            self.db.execute("RELEASE atomic")
        finally:
            self._schedule()  # never leave the batch's BEGIN (and its write lock) open

    def flush_touches(self) -> None:
        """Write the refreshed times that wait in memory (`touches.py`) now."""
        if not self.touches.empty:
            with self.transaction() as db:
                self.touches.write(db)

    def close(self) -> None:
        """Commit what is left and close; raise StoreError if anything could not be saved."""
        self.touches.cancel()
        try:
            self.flush_touches()
        except sqlite3.Error as exc:
            self._failure = self._failure or StoreError(f"{self.path}: the last times could not be saved ({exc})")
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()
        self.db.close()
        if self._failure is not None:
            raise self._failure

    @property
    def healthy(self) -> bool:
        """False once a commit failed (its writes were rolled back): what was read since may be untrue."""
        return self._failure is None

    def changed(self, station_id: str) -> None:
        """Tell the listeners (a view kept current, e.g. the API's station list) that a station's rows
        (condition, ledger, overrides, suspension, intents) changed."""
        for listener in self.listeners:
            listener(station_id)

    # --- ledger -----------------------------------------------------------------------------------

    def ledger(self, station_id: str) -> list[LedgerEntry]:
        """The SetChargingProfile calls the reconciler sent to a station and may still be in force, in
        installation order, each with how sure it is (`LedgerState`; `core.holdings` replays them)."""
        try:
            return ledger_log.read_entries(self.db, station_id)
        except ValueError as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def begin_call(
        self, station_id: str, action: str, payload: Mapping[str, Any] | str, at: datetime, *,
        content_hash: str | None = None, revision: str | None = None,
    ) -> int:  # fmt: skip
        """Record a call about to be sent (before it goes out); returns its pending id. The row
        stays until the answer is recorded and the station's run settles (`settle_station`)."""
        body = payload if isinstance(payload, str) else json.dumps(payload)
        cursor = self._write(
            "INSERT INTO pending (station_id, action, payload_json, content_hash, revision, started_at) "
            "VALUES (?,?,?,?,?,?)",
            (station_id, action, body, content_hash, revision, format_time(at)),
        )
        return int(cursor.lastrowid or 0)

    def pending(self, station_id: str | None = None) -> list[Pending]:
        query = "SELECT id, station_id, action, payload_json, content_hash, revision FROM pending"
        rows = self.db.execute(query + (" WHERE station_id=?" if station_id else "") + " ORDER BY id",
                               (station_id,) if station_id else ()).fetchall()  # fmt: skip
        return [Pending(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def record_set(
        self, pending_id: int | None, station_id: str, connector_id: int, profile_json: Mapping[str, Any],
        content_hash: str, revision: str | None, at: datetime, outcome: str = "Accepted",
        event: tuple[str, str, Mapping[str, Any] | str | None] | None = None,
    ) -> None:  # fmt: skip
        """An accepted SetChargingProfile, recorded with `outcome` (a `LedgerState` value; the engine
        records "Unverified" until a read-back shows it in force). A certain entry replaces, in the
        ledger as on the charger, the profile with the same id and the one in the same (connector,
        purpose, stackLevel) slot; an uncertain one keeps them (they may still be there). The
        pending row goes and the event (kind, message, data) is logged in the same transaction."""
        stamp = format_time(at)
        with self.transaction() as db:
            ledger_log.put(db, station_id, connector_id, profile_json, content_hash, revision, stamp, outcome)
            if pending_id is not None:
                db.execute("DELETE FROM pending WHERE id=?", (pending_id,))
            if event is not None:
                self._event(db, event, stamp, station_id, revision)
        self.changed(station_id)

    def record_clear(
        self, pending_id: int | None, station_id: str, profile_id: int | None, at: datetime,
        revision: str | None = None, event: tuple[str, str, Mapping[str, Any] | str | None] | None = None,
    ) -> None:  # fmt: skip
        """A ClearChargingProfile by id was answered (Accepted or Unknown): the profile is gone. An
        entry it may have replaced (an earlier one in its slot, when its own arrival was uncertain)
        may be back in force: it becomes Unconfirmed."""
        with self.transaction() as db:
            self._cleared(db, pending_id, station_id, [] if profile_id is None else [profile_id], at, revision, event)
        self.changed(station_id)

    def record_clear_matching(
        self, pending_id: int | None, station_id: str, payload: Mapping[str, Any], at: datetime,
        revision: str | None = None, event: tuple[str, str, Mapping[str, Any] | str | None] | None = None,
    ) -> list[int]:  # fmt: skip
        """A ClearChargingProfile (by id or by filters) was answered: every ledger profile it matches is
        gone (`record_clear` for each). Returns their ids."""
        with self.transaction() as db:
            cleared = ledger_log.cleared_ids(db, station_id, "ClearChargingProfile", payload) or []
            self._cleared(db, pending_id, station_id, cleared, at, revision, event)
        self.changed(station_id)
        return cleared

    def _cleared(
        self, db: sqlite3.Connection, pending_id: int | None, station_id: str, profile_ids: Sequence[int],
        at: datetime, revision: str | None, event: tuple[str, str, Mapping[str, Any] | str | None] | None,
    ) -> None:  # fmt: skip
        """In one transaction: the cleared profiles leave the ledger, the call is no longer pending."""
        for profile_id in profile_ids:
            ledger_log.clear(db, station_id, profile_id)
        if pending_id is not None:
            db.execute("DELETE FROM pending WHERE id=?", (pending_id,))
        if event is not None:
            self._event(db, event, format_time(at), station_id, revision)

    def record_verdicts(self, station_id: str, verdicts: Verdicts) -> None:
        """What a read-back proved (`core.holdings.verdicts`): entries confirmed (their certain
        arrival replaces what they replace), marked not enforced, or forgotten."""
        if not verdicts.empty:
            with self.transaction() as db:
                ledger_log.record(db, station_id, verdicts)

    @staticmethod
    def _event(
        db: sqlite3.Connection, event: tuple[str, str, Mapping[str, Any] | str | None], stamp: str,
        station_id: str | None, revision: str | None,
    ) -> None:  # fmt: skip
        kind, message, data = event
        data_json = data if isinstance(data, str) or data is None else json.dumps(data)
        db.execute(
            "INSERT INTO events (at, station_id, kind, message, revision, data_json) VALUES (?,?,?,?,?,?)",
            (stamp, station_id, kind, message, revision, data_json),
        )

    def absorb_pending(self, station_id: str, at: datetime) -> int:
        """Take the intents an earlier run left unanswered (a crash, a lost answer) into the ledger.

        A SetChargingProfile that may have reached the charger becomes an *Unconfirmed* ledger entry;
        the entries it would have replaced stay (it may never have arrived): the next plan judges
        the charger against both possibilities, re-sends it if still desired, or clears it if not,
        so nothing the reconciler may have installed is forgotten. A ClearChargingProfile (by id, or
        by filters) makes the entries it would remove *Unconfirmed* (`ledger.doubt`): the charger may still hold the
        profile or not, so it is neither taken as a cap nor blamed on someone else when absent, and
        stays owned until a read-back or an answered Clear settles it. Returns how many intents
        were absorbed."""
        rows = self.pending(station_id)
        if not rows:
            return 0
        stamp = format_time(at)
        with self.transaction() as db:
            for row in rows:
                cleared = ledger_log.cleared_ids(db, station_id, row.action, row.payload)
                if cleared is not None:
                    for profile_id in cleared:
                        ledger_log.doubt(db, station_id, profile_id)
                    continue
                sent = ledger_log.unanswered_set(row.action, row.payload)
                if sent is None or row.content_hash is None:
                    continue
                # A recorded answer would have removed the row in the same transaction: this call's
                # outcome is unknown, even when an earlier identical Set is in the ledger.
                ledger_log.put(db, station_id, *sent, row.content_hash, row.revision, stamp, UNCONFIRMED)
            db.execute("DELETE FROM pending WHERE station_id=?", (station_id,))
        self.changed(station_id)
        return len(rows)

    def charger_restarted(self, station_id: str, at: datetime) -> int:
        """The charger restarted (a BootNotification after one already seen): it may have lost some
        profiles, hidden ones included, so every ledger entry taken as in force becomes uncertain
        (`ledger.restarted`) until a read-back shows it; logged. Returns how many entries it touched."""
        with self.transaction() as db:
            touched = ledger_log.restarted(db, station_id)
            if touched:
                message = (f"the charger restarted: {touched} profile(s) it may have lost are checked by the next "
                           "read-back, those it cannot show are sent again")  # fmt: skip
                self._event(db, ("ledger.restarted", message, None), format_time(at), station_id, None)
        if touched:
            self.changed(station_id)
        return touched

    def settle(self, pending_id: int) -> None:
        """The call was answered but changed nothing the ledger tracks (Rejected, an error)."""
        self._write("DELETE FROM pending WHERE id=?", (pending_id,))

    # --- conditions and events --------------------------------------------------------------------

    def set_condition(
        self, station_id: str, status: Status, reason: str | None, revision: str | None, at: datetime,
        *, event: bool = True, changed: bool | None = None,
    ) -> bool:  # fmt: skip
        """Record a station's status; returns True when it changed (then, unless `event` is False,
        an event is logged in the same transaction). `changed`, when the caller knows, saves a read."""
        stamp = format_time(at)
        upsert = (
            "INSERT INTO conditions VALUES (?,?,?,?,?,?) ON CONFLICT(station_id) DO UPDATE SET "
            "status=excluded.status, reason=excluded.reason, revision=excluded.revision, "
            "since=CASE WHEN conditions.status=excluded.status THEN conditions.since ELSE excluded.since END, "
            "updated_at=excluded.updated_at"
        )
        values = (station_id, status.value, reason, revision, stamp, stamp)
        self.touches.conditions.pop(station_id, None)  # this write carries a newer time
        if not event:
            self._write(upsert, values)
            self.changed(station_id)
            return True
        if changed is None:
            row = self.db.execute(
                "SELECT status, reason, revision FROM conditions WHERE station_id=?", (station_id,)
            ).fetchone()
            changed = row is None or row[0] != status.value or row[1] != reason
            if not changed and row[2] == revision and self.touches.later():
                self.touches.conditions[station_id] = stamp  # only the time changed: it waits (touches.py)
                self.changed(station_id)
                return False
        if not changed:
            self._write(upsert, values)
            self.changed(station_id)
            return False
        with self.transaction() as db:
            db.execute(upsert, values)
            self._event(db, (f"status.{status.value}", reason or status.value, None), stamp, station_id, revision)
        self.changed(station_id)
        return True

    def conditions(self) -> dict[str, Condition]:
        rows = self.db.execute("SELECT station_id, status, reason, revision, since, updated_at FROM conditions")
        waiting = self.touches.conditions
        return {
            r[0]: Condition(r[0], Status(r[1]), r[2], r[3], parse_time(r[4]), parse_time(waiting.get(r[0], r[5])))
            for r in rows
        }

    def condition(self, station_id: str) -> Condition | None:
        """One station's condition (a reconcile reads its own, not the fleet's)."""
        r = self.db.execute(
            "SELECT station_id, status, reason, revision, since, updated_at FROM conditions WHERE station_id=?",
            (station_id,),
        ).fetchone()
        if r is None:
            return None
        updated = self.touches.conditions.get(station_id, r[5])
        return Condition(r[0], Status(r[1]), r[2], r[3], parse_time(r[4]), parse_time(updated))

    def event(
        self, kind: str, message: str, at: datetime, *, station_id: str | None = None,
        revision: str | None = None, data: Mapping[str, Any] | str | None = None,
    ) -> None:  # fmt: skip
        with self.transaction() as db:
            self._event(db, (kind, message, data), format_time(at), station_id, revision)

    # --- inventory queries and removals (state list / state rm, removed stations) -------------------

    def ledger_stations(self) -> list[str]:
        """Stations the ledger (or an unanswered intent) holds anything for."""
        rows = self.db.execute("SELECT station_id FROM ledger UNION SELECT station_id FROM pending ORDER BY 1")
        return [r[0] for r in rows]

    def forget_profile(self, station_id: str, profile_id: int, at: datetime, reason: str) -> bool:
        """Drop one ledger entry (a profile someone removed by hand); logged. False if there was none."""
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM ledger WHERE station_id=? AND profile_id=?", (station_id, profile_id))
            if cursor.rowcount:
                self._event(db, ("ledger.rm", f"profile #{profile_id} removed from the ledger: {reason}", None),
                            format_time(at), station_id, None)  # fmt: skip
        return bool(cursor.rowcount)

    def forget_station(self, station_id: str, at: datetime, revision: str | None, message: str) -> None:
        """A station no longer declared and holding nothing of ours: drop it from the ledger, the
        registry and the conditions; the event log keeps its history."""
        self.touches.forget(station_id)
        with self.transaction() as db:
            for table in ("ledger", "pending", "conditions", "stations"):
                db.execute(f"DELETE FROM {table} WHERE station_id=?", (station_id,))  # fixed table names
            self._event(db, ("station.forgotten", message, None), format_time(at), station_id, revision)
