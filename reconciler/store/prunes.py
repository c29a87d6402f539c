"""What the reconciler remembers of the prunes that changed nothing, kept in the `prunes` table.

Flow: (engine) a `prune: foreign` run whose every ClearChargingProfile answered Unknown while the
foreign cap stayed -> `PruneMemory.fruitless` (what the charger showed, a fingerprint of it, how
many calls, when to try again); the next plan of that station finds it -> the prune is reported,
not repeated, until `retry_after` or until the charger shows something else. A prune that cleared
something, or a station whose foreign cap is gone, is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler.core.profiles import format_time, parse_time

if TYPE_CHECKING:
    from reconciler.store.sqlite import Store


@dataclass(frozen=True, slots=True)
class FruitlessPrune:
    station_id: str
    fingerprint: str  # what the charger showed (its foreign cap), time-independent
    attempted_at: datetime
    calls: int  # ClearChargingProfile calls sent, every one answered Unknown
    attempts: int  # fruitless prunes of this same cap in a row
    retry_after: datetime


class PruneMemory:
    def __init__(self, store: Store) -> None:
        self.store = store

    def last(self, station_id: str) -> FruitlessPrune | None:
        row = self.store.db.execute(
            "SELECT fingerprint, attempted_at, calls, attempts, retry_after FROM prunes WHERE station_id=?",
            (station_id,),
        ).fetchone()
        if row is None:
            return None
        return FruitlessPrune(station_id, row[0], parse_time(row[1]), int(row[2]), int(row[3]), parse_time(row[4]))

    def fruitless(self, station_id: str, fingerprint: str, at: datetime, calls: int, retry_after: datetime) -> int:
        """Remember a prune that changed nothing; returns how many in a row for this same cap."""
        before = self.last(station_id)
        attempts = before.attempts + 1 if before is not None and before.fingerprint == fingerprint else 1
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO prunes VALUES (?,?,?,?,?,?) ON CONFLICT(station_id) DO UPDATE SET "
                "fingerprint=excluded.fingerprint, attempted_at=excluded.attempted_at, calls=excluded.calls, "
                "attempts=excluded.attempts, retry_after=excluded.retry_after",
                (station_id, fingerprint, format_time(at), calls, attempts, format_time(retry_after)),
            )
        return attempts

    def forget(self, station_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM prunes WHERE station_id=?", (station_id,))
