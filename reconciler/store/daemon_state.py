"""The watch daemon's own tables in the store: overrides, suspensions, per-session intents.

Flow: daemon/API -> `DaemonState` -> the same SQLite file and group commit as the ledger
(`sqlite.Store`); the engine never reads these tables, the daemon turns them into desired state.

- `overrides`: a profile sent through the API (who, why, when, expiry). Active while `removed_at`
  is NULL; removed at expiry or on request, never deleted (the history stays).
- `suspension`: stations an operator paused (condition `Suspended`), with who/why/since.
- `intents`: per-session profiles (a TxProfile for one transaction), `state` Active until the
  transaction stops (Ended). They survive a restart, so a running session keeps its cap.
Times are parameters, never read here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.core.profiles import format_time, parse_time
from reconciler.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class Override:
    id: int
    station_id: str
    connector_id: int
    profile: dict[str, Any]  # OCPP csChargingProfiles JSON
    who: str
    why: str | None
    scenario: str | None
    created_at: datetime
    expires_at: datetime
    removed_at: datetime | None = None
    removed_why: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "station_id": self.station_id,
            "connector_id": self.connector_id,
            "profile_id": self.profile.get("chargingProfileId"),
            "profile": self.profile,
            "who": self.who,
            "why": self.why,
            "scenario": self.scenario,
            "created_at": format_time(self.created_at),
            "expires_at": format_time(self.expires_at),
            "removed_at": format_time(self.removed_at) if self.removed_at else None,
            "removed_why": self.removed_why,
        }


@dataclass(frozen=True, slots=True)
class Suspension:
    station_id: str
    who: str
    why: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class Intent:
    station_id: str
    transaction_id: int
    connector_id: int
    policy: str
    profile: dict[str, Any]
    state: str  # Active | Ended
    started_at: datetime


_OVERRIDE = (
    "id, station_id, connector_id, profile_json, who, why, scenario, created_at, expires_at, removed_at, removed_why"
)


def _override(row: tuple[Any, ...]) -> Override:
    return Override(
        row[0],
        row[1],
        row[2],
        json.loads(row[3]),
        row[4],
        row[5],
        row[6],
        parse_time(row[7]),
        parse_time(row[8]),
        parse_time(row[9]) if row[9] else None,
        row[10],
    )


class DaemonState:
    """Access to the daemon's tables of one `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._versions: dict[str, int] = {}  # per station, bumped by every write to its overrides or intents

    def layer_version(self, station_id: str) -> int:
        """Changes whenever the station's overrides or intents are written (a cache of its layered
        desired state stays valid while it does not). Every write to those tables goes through here."""
        return self._versions.get(station_id, 0)

    def _written(self, station_id: str) -> None:
        self._versions[station_id] = self._versions.get(station_id, 0) + 1
        self.store.changed(station_id)

    # --- overrides ----------------------------------------------------------------------------------

    def add_override(
        self,
        station_id: str,
        connector_id: int,
        profile: dict[str, Any],
        *,
        who: str,
        why: str | None,
        scenario: str | None,
        at: datetime,
        expires: datetime,
    ) -> Override:
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO overrides (station_id, connector_id, profile_json, who, why, scenario, created_at, "
                "expires_at) VALUES (?,?,?,?,?,?,?,?)",
                (
                    station_id,
                    connector_id,
                    json.dumps(profile),
                    who,
                    why,
                    scenario,
                    format_time(at),
                    format_time(expires),
                ),
            )
            new_id = int(cursor.lastrowid or 0)
        self._written(station_id)
        found = self.override(new_id)
        assert found is not None
        return found

    def override(self, override_id: int) -> Override | None:
        row = self.store.db.execute(f"SELECT {_OVERRIDE} FROM overrides WHERE id=?", (override_id,)).fetchone()
        return _override(row) if row else None

    def overrides(self, station_id: str | None = None, *, active: bool = True) -> list[Override]:
        query = f"SELECT {_OVERRIDE} FROM overrides WHERE 1=1"
        params: list[Any] = []
        if active:
            query += " AND removed_at IS NULL"
        if station_id is not None:
            query += " AND station_id=?"
            params.append(station_id)
        return [_override(r) for r in self.store.db.execute(query + " ORDER BY id", params).fetchall()]

    def remove_override(self, override_id: int, at: datetime, why: str) -> bool:
        cursor = self.store._write(
            "UPDATE overrides SET removed_at=?, removed_why=? WHERE id=? AND removed_at IS NULL RETURNING station_id",
            (format_time(at), why, override_id),
        )
        removed = cursor.fetchall()
        for (station_id,) in removed:
            self._written(station_id)
        return bool(removed)

    def expired_overrides(self, at: datetime) -> list[Override]:
        return [o for o in self.overrides() if o.expires_at <= at]

    # --- suspension -----------------------------------------------------------------------------------

    def suspend(self, station_id: str, who: str, why: str | None, at: datetime) -> None:
        self.store._write(
            "INSERT INTO suspension VALUES (?,?,?,?) ON CONFLICT(station_id) DO UPDATE SET who=excluded.who, "
            "why=excluded.why",
            (station_id, who, why, format_time(at)),
        )
        self.store.changed(station_id)

    def resume(self, station_id: str) -> bool:
        resumed = self.store._write("DELETE FROM suspension WHERE station_id=?", (station_id,)).rowcount > 0
        self.store.changed(station_id)
        return resumed

    def suspension(self, station_id: str) -> Suspension | None:
        r = self.store.db.execute(
            "SELECT station_id, who, why, since FROM suspension WHERE station_id=?", (station_id,)
        ).fetchone()
        return None if r is None else Suspension(r[0], r[1], r[2], parse_time(r[3]))

    def suspensions(self) -> dict[str, Suspension]:
        rows = self.store.db.execute("SELECT station_id, who, why, since FROM suspension").fetchall()
        return {r[0]: Suspension(r[0], r[1], r[2], parse_time(r[3])) for r in rows}

    # --- per-session intents --------------------------------------------------------------------------

    def start_intent(
        self,
        station_id: str,
        transaction_id: int,
        connector_id: int,
        policy: str,
        profile: dict[str, Any],
        at: datetime,
    ) -> None:
        self.store._write(
            "INSERT OR IGNORE INTO intents VALUES (?,?,?,?,?,?,?,NULL)",
            (station_id, transaction_id, connector_id, policy, json.dumps(profile), "Active", format_time(at)),
        )
        self._written(station_id)

    def end_intents(self, station_id: str, transaction_id: int, at: datetime) -> list[Intent]:
        """The transaction stopped: its intents end (never re-sent). Returns those that were active."""
        ending = [i for i in self.intents(station_id) if i.transaction_id == transaction_id]
        self.store._write(
            "UPDATE intents SET state='Ended', ended_at=? WHERE station_id=? AND transaction_id=? AND state='Active'",
            (format_time(at), station_id, transaction_id),
        )
        self._written(station_id)
        return ending

    def intents(self, station_id: str | None = None, *, active: bool = True) -> list[Intent]:
        query = "SELECT station_id, transaction_id, connector_id, policy, profile_json, state, started_at FROM intents"
        clauses, params = [], []
        if active:
            clauses.append("state='Active'")
        if station_id is not None:
            clauses.append("station_id=?")
            params.append(station_id)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        rows = self.store.db.execute(query + " ORDER BY started_at", params).fetchall()
        return [Intent(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], parse_time(r[6])) for r in rows]
