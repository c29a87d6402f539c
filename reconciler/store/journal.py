"""The Central System's journal of transactions, kept in the store's `transactions` table.

Flow: charger -> (transport) `StationRegistry` -> StartTransaction, StopTransaction, MeterValues
with a transactionId, StatusNotification -> `TransactionJournal` -> SQLite; (engine) reads
`running()` before it observes a station. A later run thus knows what runs on a station although
it did not see it start (a transaction started between two commands, or while another process held
the connection); `started_at` NULL means it runs but its start is unknown (learnt from a status or
a meter value). Transaction ids are handed out here too, so they stay unique across runs.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler.core.profiles import format_time, parse_time

if TYPE_CHECKING:
    from reconciler.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A transaction as the store knows it; `started_at` None: running, start unknown."""

    station_id: str
    connector_id: int
    transaction_id: int | None
    started_at: datetime | None
    meter_start: int | None = None
    id_tag: str | None = None
    stopped_at: datetime | None = None
    meter_stop: int | None = None
    stop_reason: str | None = None


class TransactionJournal:
    """Transactions per station (`TransactionSink` for the Central System's registry)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def station_restarted(self, station_id: str, at: datetime) -> None:
        """A BootNotification after one already seen: the ledger doubts what the charger may have lost."""
        self.store.charger_restarted(station_id, at)

    def next_transaction_id(self) -> int:
        """A transaction id no earlier run handed out (they are unique per Central System)."""
        row = self.store.db.execute("SELECT COALESCE(MAX(transaction_id), 0) FROM transactions").fetchone()
        return int(row[0]) + 1

    def transaction_started(
        self, station_id: str, connector_id: int, transaction_id: int, start: datetime, *,
        meter_start: int | None = None, id_tag: str | None = None, at: datetime,
    ) -> None:  # fmt: skip
        """StartTransaction: a transaction began; whatever ran on that connector before has ended."""
        with self.store.transaction() as db:
            self._end_running(db, station_id, connector_id, at, "superseded by a new transaction", keep=transaction_id)
            updated = db.execute(
                "UPDATE transactions SET connector_id=?, started_at=?, meter_start=?, id_tag=?, seen_at=? "
                "WHERE station_id=? AND transaction_id=?",
                (connector_id, format_time(start), meter_start, id_tag, format_time(at), station_id, transaction_id),
            ).rowcount
            if not updated:
                db.execute(
                    "INSERT INTO transactions (station_id, connector_id, transaction_id, id_tag, meter_start, "
                    "started_at, seen_at) VALUES (?,?,?,?,?,?,?)",
                    (station_id, connector_id, transaction_id, id_tag, meter_start, format_time(start),
                     format_time(at)),
                )  # fmt: skip

    def transaction_stopped(
        self, station_id: str, transaction_id: int, stop: datetime, *, meter_stop: int | None = None,
        reason: str | None = None,
    ) -> None:  # fmt: skip
        """StopTransaction (also for a transaction an earlier run saw start)."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE transactions SET stopped_at=?, meter_stop=?, stop_reason=? WHERE station_id=? "
                "AND transaction_id=? AND stopped_at IS NULL",
                (format_time(stop), meter_stop, reason or "Local", station_id, transaction_id),
            )

    def transaction_seen(self, station_id: str, connector_id: int, transaction_id: int | None, at: datetime) -> None:
        """Evidence that a transaction runs on a connector (MeterValues with its id, a Charging
        status) though its start was not seen here: recorded with the start unknown."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT id, transaction_id FROM transactions WHERE station_id=? AND connector_id=? "
                "AND stopped_at IS NULL",
                (station_id, connector_id),
            ).fetchall()
            if transaction_id is None and rows:
                return
            same = [r for r in rows if r[1] == transaction_id or r[1] is None]
            if same:
                db.execute("UPDATE transactions SET transaction_id=?, seen_at=? WHERE id=?",
                           (transaction_id, format_time(at), same[0][0]))  # fmt: skip
                return
            self._end_running(db, station_id, connector_id, at, "superseded by a new transaction")
            known = None
            if transaction_id is not None:
                known = db.execute(
                    "SELECT id FROM transactions WHERE station_id=? AND transaction_id=?", (station_id, transaction_id)
                ).fetchone()
            if known is not None:
                db.execute("UPDATE transactions SET connector_id=?, stopped_at=NULL, seen_at=? WHERE id=?",
                           (connector_id, format_time(at), known[0]))  # fmt: skip
            else:
                db.execute(
                    "INSERT INTO transactions (station_id, connector_id, transaction_id, seen_at) VALUES (?,?,?,?)",
                    (station_id, connector_id, transaction_id, format_time(at)),
                )

    def connector_free(self, station_id: str, connector_id: int, at: datetime) -> None:
        """The connector reports no transaction (Available, Preparing, Finishing...): whatever the
        store thought ran there ended unseen."""
        with self.store.transaction() as db:
            self._end_running(db, station_id, connector_id, at, "ended unseen (the connector is free)")

    @staticmethod
    def _end_running(
        db: sqlite3.Connection, station_id: str, connector_id: int, at: datetime, reason: str, keep: int | None = None
    ) -> None:
        db.execute(
            "UPDATE transactions SET stopped_at=?, stop_reason=? WHERE station_id=? AND connector_id=? "
            "AND stopped_at IS NULL AND (transaction_id IS NULL OR transaction_id IS NOT ?)",
            (format_time(at), reason, station_id, connector_id, keep),
        )

    def running(self, station_id: str) -> list[TransactionRecord]:
        """The transactions believed to run on a station, one per connector (the latest seen)."""
        rows = self.store.db.execute(
            "SELECT connector_id, transaction_id, started_at, meter_start, id_tag FROM transactions "
            "WHERE station_id=? AND stopped_at IS NULL ORDER BY seen_at, id",
            (station_id,),
        ).fetchall()
        latest = {
            r[0]: TransactionRecord(station_id, r[0], r[1], parse_time(r[2]) if r[2] else None, r[3], r[4])
            for r in rows
        }
        return [latest[c] for c in sorted(latest)]

    def history(self, station_id: str, limit: int = 100) -> list[TransactionRecord]:
        """A station's transactions, newest first."""
        rows = self.store.db.execute(
            "SELECT connector_id, transaction_id, started_at, meter_start, id_tag, stopped_at, meter_stop, "
            "stop_reason FROM transactions WHERE station_id=? ORDER BY id DESC LIMIT ?",
            (station_id, limit),
        ).fetchall()
        return [
            TransactionRecord(station_id, r[0], r[1], parse_time(r[2]) if r[2] else None, r[3], r[4],
                              parse_time(r[5]) if r[5] else None, r[6], r[7])
            for r in rows
        ]  # fmt: skip
