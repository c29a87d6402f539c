"""Read-only views of the state file for `status`, `history` and `state list` (and the API).

Flow: CLI -> `StateReader(path)` -> SQLite opened read-only (`mode=ro`: never creates, migrates or
writes the file, needs no state lock, and WAL lets it read while an apply or the daemon writes)
-> plain rows as frozen dataclasses. Writes (`state rm`, forgetting removed stations) live in
`Store`, under the state lock.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.core.profiles import format_time, parse_time
from reconciler.core.status import Status
from reconciler.store.events import Event
from reconciler.store.sqlite import ACCEPTED, Condition, StoreError


@dataclass(frozen=True, slots=True)
class LedgerRow:
    station_id: str
    profile_id: int
    connector_id: int
    purpose: str
    stack_level: int
    confirmed: bool
    revision: str | None
    installed_at: datetime
    content_hash: str
    outcome: str = ACCEPTED  # the entry's LedgerState: Accepted, Unverified, Unconfirmed, NotEnforced
    doubt: str | None = None  # why it is uncertain, when not its own Set's answer (a restart, a lost Clear)

    def to_json(self) -> dict[str, Any]:
        return {
            "station": self.station_id, "profileId": self.profile_id, "connectorId": self.connector_id,
            "purpose": self.purpose, "stackLevel": self.stack_level,
            "outcome": self.outcome, "revision": self.revision,
            "installedAt": format_time(self.installed_at), "contentHash": self.content_hash,
            "doubt": self.doubt,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class StationRow:
    station_id: str
    last_seen: datetime | None
    boot: dict[str, Any] | None


class StateReader:
    """A read-only connection to a state file. Raises StoreError when it is missing or not ours."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no state file here yet (plan or apply creates it; or pass --db FILE)")
        try:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.execute("SELECT 1 FROM conditions LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a reconciler state file ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StateReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def conditions(self) -> dict[str, Condition]:
        rows = self.db.execute("SELECT station_id, status, reason, revision, since, updated_at FROM conditions")
        return {r[0]: Condition(r[0], Status(r[1]), r[2], r[3], parse_time(r[4]), parse_time(r[5])) for r in rows}

    def stations(self) -> dict[str, StationRow]:
        rows = self.db.execute("SELECT station_id, last_seen, boot_json FROM stations")
        return {
            r[0]: StationRow(r[0], parse_time(r[1]) if r[1] else None, json.loads(r[2]) if r[2] else None) for r in rows
        }

    def ledger(self, station_id: str | None = None) -> list[LedgerRow]:
        query = ("SELECT station_id, profile_id, connector_id, purpose, stack_level, outcome, revision, "
                 "installed_at, content_hash, doubt FROM ledger")  # fmt: skip
        params: tuple[Any, ...] = ()
        if station_id is not None:
            query += " WHERE station_id=?"
            params = (station_id,)
        rows = self.db.execute(query + " ORDER BY station_id, seq", params).fetchall()
        return [LedgerRow(r[0], r[1], r[2], r[3], r[4], r[5] == ACCEPTED, r[6], parse_time(r[7]), r[8], r[5], r[9])
                for r in rows]  # fmt: skip

    def pending_count(self) -> dict[str, int]:
        rows = self.db.execute("SELECT station_id, COUNT(*) FROM pending GROUP BY station_id")
        return {r[0]: r[1] for r in rows}

    def events(self, *, station_id: str | None = None, since: datetime | None = None, limit: int = 100) -> list[Event]:
        """The newest `limit` events matching, oldest first."""
        query = "SELECT id, at, station_id, kind, message, revision, data_json FROM events WHERE 1=1"
        params: list[Any] = []
        if station_id is not None:
            query += " AND station_id = ?"
            params.append(station_id)
        if since is not None:
            query += " AND at >= ?"
            params.append(format_time(since))
        rows = self.db.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [Event(r[0], parse_time(r[1]), r[2], r[3], r[4], r[5], _data(r[6])) for r in reversed(rows)]


def _data(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {"raw": text}
    return data if isinstance(data, dict) else {"value": data}
