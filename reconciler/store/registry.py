"""The station registry in the state file (`stations` table): last seen, boot info, the configuration
keys last read (with when), the clock skew last measured. Part of `Store` (a mixin: it writes
through the store's group commit). A drift check's "seen" and clock skew wait in `touches` and are
written in one batch within FLUSH_SECONDS when only their times changed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reconciler.core.profiles import format_time, parse_time
from reconciler.store.touches import Touches


class Registry:
    db: sqlite3.Connection
    touches: Touches

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # Store's group commit

    def seen(self, station_id: str, at: datetime, boot: Mapping[str, Any] | None = None) -> None:
        """The station was seen at `at` (and booted as `boot` says). Only the time changed: it waits in
        `touches` (written within FLUSH_SECONDS)."""
        stamp = format_time(at)
        boot_json = None if boot is None else json.dumps(boot)
        touches = self.touches
        if station_id in touches.rows and boot_json in (None, touches.boots.get(station_id)) and touches.later():
            touches.seen[station_id] = stamp
            return
        touches.seen.pop(station_id, None)
        self._write(
            "INSERT INTO stations (station_id, last_seen, boot_json) VALUES (?,?,?) ON CONFLICT(station_id) DO UPDATE "
            "SET last_seen=excluded.last_seen, boot_json=COALESCE(excluded.boot_json, stations.boot_json)",
            (station_id, stamp, boot_json),
        )
        touches.rows.add(station_id)
        if boot_json is not None:
            touches.boots[station_id] = boot_json

    def save_configuration(self, station_id: str, configuration: Mapping[str, Any], at: datetime) -> None:
        self._write(
            "INSERT INTO stations (station_id, configuration_json, capabilities_at) VALUES (?,?,?) "
            "ON CONFLICT(station_id) DO UPDATE SET configuration_json=excluded.configuration_json, "
            "capabilities_at=excluded.capabilities_at",
            (station_id, json.dumps(configuration), format_time(at)),
        )

    def forget_configuration(self, station_id: str) -> None:
        """The cached configuration is out of date (a key was changed, the station rebooted)."""
        self._write("UPDATE stations SET capabilities_at=NULL WHERE station_id=?", (station_id,))

    def configuration(self, station_id: str) -> tuple[dict[str, Any], datetime] | None:
        """The configuration keys last read from a station, and when."""
        row = self.db.execute(
            "SELECT configuration_json, capabilities_at FROM stations WHERE station_id=?", (station_id,)
        ).fetchone()
        if row is None or row[0] is None or row[1] is None:
            return None
        return json.loads(row[0]), parse_time(row[1])

    def save_clock_skew(self, station_id: str, skew: float, at: datetime) -> None:
        """How far the station's clock was from ours (seconds, charger minus us) when last asked (a
        station whose row exists: it waits in `touches`, written within FLUSH_SECONDS)."""
        if station_id in self.touches.rows and self.touches.later():
            self.touches.skews[station_id] = (skew, format_time(at))
            return
        self.touches.skews.pop(station_id, None)
        self._write(
            "INSERT INTO stations (station_id, clock_skew_s, clock_checked_at) VALUES (?,?,?) ON CONFLICT(station_id) "
            "DO UPDATE SET clock_skew_s=excluded.clock_skew_s, clock_checked_at=excluded.clock_checked_at",
            (station_id, skew, format_time(at)),
        )

    def clock_skew(self, station_id: str) -> tuple[float | None, datetime | None]:
        """The station's last measured clock skew (seconds, charger minus us) and when, or Nones."""
        waiting = self.touches.skews.get(station_id)
        if waiting is not None:
            return waiting[0], parse_time(waiting[1])
        row = self.db.execute(
            "SELECT clock_skew_s, clock_checked_at FROM stations WHERE station_id=?", (station_id,)
        ).fetchone()
        if row is None or row[1] is None:
            return None, None
        return row[0], parse_time(row[1])

    def clock_skews(self) -> dict[str, float]:
        """Every station's last measured clock skew (seconds, charger minus us), where one was measured."""
        rows = self.db.execute("SELECT station_id, clock_skew_s FROM stations WHERE clock_checked_at IS NOT NULL")
        skews = {station_id: float(skew) for station_id, skew in rows if skew is not None}
        skews.update((station_id, skew) for station_id, (skew, _) in self.touches.skews.items())  # waiting ones
        return skews

    def boot(self, station_id: str) -> dict[str, Any] | None:
        """The station's last BootNotification as kept by `seen` (vendor, model, firmware...)."""
        row = self.db.execute("SELECT boot_json FROM stations WHERE station_id=?", (station_id,)).fetchone()
        return json.loads(row[0]) if row is not None and row[0] else None

    def stations(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT station_id, last_seen, boot_json FROM stations ORDER BY station_id")
        seen = self.touches.seen
        return [{"id": r[0], "lastSeen": seen.get(r[0], r[1]), "boot": json.loads(r[2]) if r[2] else None}
                for r in rows]  # fmt: skip
