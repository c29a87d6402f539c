"""The state file's schema: one migration per version, applied in order by `Store` (`PRAGMA
user_version` is the number applied). A migration is never edited once released; a change is a new
one at the end. The tables and what they hold are described in `sqlite.py`.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ledger (
        station_id TEXT NOT NULL, profile_id INTEGER NOT NULL, connector_id INTEGER NOT NULL,
        purpose TEXT NOT NULL, stack_level INTEGER NOT NULL, content_hash TEXT NOT NULL,
        profile_json TEXT NOT NULL, revision TEXT, installed_at TEXT NOT NULL, outcome TEXT NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (station_id, profile_id));
    CREATE TABLE pending (
        id INTEGER PRIMARY KEY AUTOINCREMENT, station_id TEXT NOT NULL, action TEXT NOT NULL,
        payload_json TEXT NOT NULL, content_hash TEXT, revision TEXT, started_at TEXT NOT NULL);
    CREATE TABLE stations (
        station_id TEXT PRIMARY KEY, last_seen TEXT, boot_json TEXT, capabilities_json TEXT,
        capabilities_at TEXT, configuration_json TEXT);
    CREATE TABLE conditions (
        station_id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT, revision TEXT,
        since TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, station_id TEXT, kind TEXT NOT NULL,
        message TEXT NOT NULL, revision TEXT, data_json TEXT);
    CREATE INDEX events_station ON events (station_id, id);
    """,
    # The watch daemon's layers (reconciler/store/daemon_state.py): overrides, suspensions, session intents.
    """
    CREATE TABLE overrides (
        id INTEGER PRIMARY KEY AUTOINCREMENT, station_id TEXT NOT NULL, connector_id INTEGER NOT NULL,
        profile_json TEXT NOT NULL, who TEXT NOT NULL, why TEXT, scenario TEXT, created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL, removed_at TEXT, removed_why TEXT);
    CREATE INDEX overrides_active ON overrides (station_id, removed_at);
    CREATE TABLE suspension (
        station_id TEXT PRIMARY KEY, who TEXT NOT NULL, why TEXT, since TEXT NOT NULL);
    CREATE TABLE intents (
        station_id TEXT NOT NULL, transaction_id INTEGER NOT NULL, connector_id INTEGER NOT NULL,
        policy TEXT NOT NULL, profile_json TEXT NOT NULL, state TEXT NOT NULL, started_at TEXT NOT NULL,
        ended_at TEXT, PRIMARY KEY (station_id, transaction_id, policy));
    """,
    # The ledger becomes a log keyed by installation order: a profile id may appear twice (a
    # replacement whose arrival is uncertain keeps the entry it would have replaced).
    """
    CREATE TABLE ledger_log (
        station_id TEXT NOT NULL, profile_id INTEGER NOT NULL, connector_id INTEGER NOT NULL,
        purpose TEXT NOT NULL, stack_level INTEGER NOT NULL, content_hash TEXT NOT NULL,
        profile_json TEXT NOT NULL, revision TEXT, installed_at TEXT NOT NULL, outcome TEXT NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (station_id, seq));
    INSERT INTO ledger_log (station_id, profile_id, connector_id, purpose, stack_level, content_hash,
        profile_json, revision, installed_at, outcome, seq)
        SELECT station_id, profile_id, connector_id, purpose, stack_level, content_hash, profile_json,
        revision, installed_at, outcome, seq FROM ledger;
    DROP TABLE ledger;
    ALTER TABLE ledger_log RENAME TO ledger;
    CREATE INDEX ledger_profile ON ledger (station_id, profile_id);
    """,
    """
    ALTER TABLE stations ADD COLUMN clock_skew_s REAL;
    ALTER TABLE stations ADD COLUMN clock_checked_at TEXT;
    """,
    """
    CREATE TABLE transactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, station_id TEXT NOT NULL, connector_id INTEGER NOT NULL,
        transaction_id INTEGER, id_tag TEXT, meter_start INTEGER, started_at TEXT, seen_at TEXT NOT NULL,
        stopped_at TEXT, meter_stop INTEGER, stop_reason TEXT);
    CREATE INDEX transactions_running ON transactions (station_id, stopped_at);
    """,
    """
    CREATE TABLE prunes (
        station_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, attempted_at TEXT NOT NULL, calls INTEGER NOT NULL,
        attempts INTEGER NOT NULL, retry_after TEXT NOT NULL);
    """,
    # Why an entry is uncertain when its own Set's answer is not the reason (a Clear of it left
    # unanswered, the charger restarted...): the plan says so when it sends the profile again.
    """
    ALTER TABLE ledger ADD COLUMN doubt TEXT;
    """,
)
