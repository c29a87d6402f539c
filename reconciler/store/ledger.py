"""The ledger's rules in SQL: a log of the SetChargingProfile calls sent, and what may still be in force.

Flow: `store.sqlite.Store` (inside its transactions) -> these functions -> the `ledger` table
(keyed by (station, seq), the installation order, since the ledger-log migration). `core.holdings` replays the rows;
`read_entries` gives them back as `LedgerEntry`s.

The rules, as the charger applies them: a profile whose arrival is certain (`Accepted`) replaces
the one with its id and the one in its (connector, purpose, stackLevel) slot; one whose arrival is
uncertain (`Unconfirmed`, `Unverified`, `NotEnforced`) replaces nothing yet, only an earlier entry
of the very same id and content. A read-back that confirms an entry removes what it replaced; a
Clear by id removes every entry of that id, and what an uncertain one may have replaced becomes
uncertain itself (it may be back in force, or gone). A Clear by id whose answer was never recorded
makes every entry of that id uncertain (`doubt`): the profile may still be there, or gone. A
restart of the charger makes every entry taken as in force uncertain (`restarted`). Each entry made
uncertain by something other than its own Set's answer says why in its `doubt` column.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from reconciler.core.actions import DOUBT_CLEAR_UNANSWERED, DOUBT_RESTARTED, LedgerEntry, LedgerState
from reconciler.core.holdings import Verdicts
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ChargingProfile, ProfileError, Purpose, profile_from_ocpp

SLOT_KEYS = {"chargingProfileId", "chargingProfilePurpose", "stackLevel"}

_REPLACED = "(profile_id=? OR (connector_id=? AND purpose=? AND stack_level=?))"


# Parsed profiles by their stored text. A drift check reads the station's ledger each time, and parsing
# its profiles was most of that read; a profile is immutable, and fleets share them (one policy, many
# stations), so the same text gives the same object. Bounded: beyond it, the oldest half is dropped.
_PARSED: dict[str, ChargingProfile] = {}
PARSED_MAX = 4096


def parsed_profile(profile_json: str) -> ChargingProfile:
    """The profile a ledger row stores (ProfileError, ValueError when unreadable)."""
    profile = _PARSED.get(profile_json)
    if profile is None:
        profile = profile_from_ocpp(json.loads(profile_json))
        if len(_PARSED) >= PARSED_MAX:
            for key in list(_PARSED)[: PARSED_MAX // 2]:
                del _PARSED[key]
        _PARSED[profile_json] = profile
    return profile


def read_entries(db: sqlite3.Connection, station_id: str) -> list[LedgerEntry]:
    """The station's entries in installation order; ValueError names an unreadable row."""
    rows = db.execute(
        "SELECT connector_id, profile_json, content_hash, revision, outcome, seq, doubt FROM ledger "
        "WHERE station_id=? ORDER BY seq",
        (station_id,),
    ).fetchall()
    entries = []
    for connector_id, profile_json, digest, revision, outcome, seq, why in rows:
        try:
            profile = parsed_profile(profile_json)
            entries.append(LedgerEntry(connector_id, profile, digest, revision, LedgerState(outcome), seq, why))
        except (ProfileError, ValueError) as exc:
            raise ValueError(f"ledger row {seq} of {station_id} is unreadable ({exc})") from None
    return entries


def put(
    db: sqlite3.Connection, station_id: str, connector_id: int, profile_json: Mapping[str, Any],
    content_hash: str, revision: str | None, stamp: str, outcome: str,
) -> None:  # fmt: skip
    """Log a profile sent to the charger, replacing what its arrival replaces (see the module)."""
    profile_id = profile_json["chargingProfileId"]
    purpose = profile_json["chargingProfilePurpose"]
    stack = profile_json["stackLevel"]
    if LedgerState(outcome).certain:
        db.execute(
            f"DELETE FROM ledger WHERE station_id=? AND {_REPLACED}",
            (station_id, profile_id, connector_id, purpose, stack),
        )
    else:
        db.execute(
            "DELETE FROM ledger WHERE station_id=? AND profile_id=? AND content_hash=?",
            (station_id, profile_id, content_hash),
        )
    db.execute(
        "INSERT INTO ledger (station_id, profile_id, connector_id, purpose, stack_level, content_hash, profile_json, "
        "revision, installed_at, outcome, seq) VALUES (?,?,?,?,?,?,?,?,?,?,"
        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger WHERE station_id=?))",
        (station_id, profile_id, connector_id, purpose, stack, content_hash, json.dumps(profile_json),
         revision, stamp, outcome, station_id),
    )  # fmt: skip


def clear(db: sqlite3.Connection, station_id: str, profile_id: int) -> None:
    """A Clear by id was answered: no profile of that id is on the charger."""
    _uncover(db, station_id, profile_id, f"profile #{profile_id}, which may have replaced it, was cleared: "
                                         "it may be back in force")  # fmt: skip
    db.execute("DELETE FROM ledger WHERE station_id=? AND profile_id=?", (station_id, profile_id))


def doubt(db: sqlite3.Connection, station_id: str, profile_id: int) -> None:
    """A Clear by id went out but its answer was never recorded (a timeout, a crash): the charger
    holds the profile or not. Every entry of that id becomes uncertain (possibly present, possibly
    absent: still owned, never assumed to cap the station), and so does what an uncertain one may
    have replaced (back in force if it never arrived, gone if it did and the Clear removed it)."""
    _uncover(db, station_id, profile_id, f"a ClearChargingProfile of #{profile_id}, which may have replaced it, "
                                         "went unanswered: it may be back in force")  # fmt: skip
    db.execute(
        "UPDATE ledger SET outcome=?, doubt=? WHERE station_id=? AND profile_id=?",
        (LedgerState.UNCONFIRMED.value, DOUBT_CLEAR_UNANSWERED, station_id, profile_id),
    )


def restarted(db: sqlite3.Connection, station_id: str) -> int:
    """The charger restarted (a BootNotification): chargers keep some profiles across a restart and
    lose others, and a read-back cannot see a profile hidden under another. Every entry taken as in
    force (Accepted, or Unverified on its Accepted answer) becomes uncertain until a read-back shows
    it: the next plan confirms what shows, and sends again (a same-id Set is idempotent) what may be
    missing. Returns how many entries it made uncertain."""
    return db.execute(
        "UPDATE ledger SET outcome=?, doubt=? WHERE station_id=? AND outcome IN (?, ?)",
        (LedgerState.UNCONFIRMED.value, DOUBT_RESTARTED, station_id, LedgerState.ACCEPTED.value,
         LedgerState.UNVERIFIED.value),
    ).rowcount  # fmt: skip


def _uncover(db: sqlite3.Connection, station_id: str, profile_id: int, why: str) -> None:
    """The entries an uncertain entry of `profile_id` may have replaced become uncertain themselves."""
    replacing = db.execute(
        "SELECT connector_id, purpose, stack_level, seq FROM ledger WHERE station_id=? AND profile_id=? "
        "AND outcome != ?",
        (station_id, profile_id, LedgerState.ACCEPTED.value),
    ).fetchall()
    for connector_id, purpose, stack, seq in replacing:
        db.execute(
            "UPDATE ledger SET outcome=?, doubt=? WHERE station_id=? AND seq < ? AND profile_id != ? AND "
            "connector_id=? AND purpose=? AND stack_level=?",
            (LedgerState.UNCONFIRMED.value, why, station_id, seq, profile_id, connector_id, purpose, stack),
        )


def record(db: sqlite3.Connection, station_id: str, verdicts: Verdicts) -> None:
    """What a read-back proved: entries forgotten, marked NotEnforced, or confirmed (a confirmed
    entry's certain arrival removes the earlier entries it replaces)."""
    for seq in verdicts.forget:
        db.execute("DELETE FROM ledger WHERE station_id=? AND seq=?", (station_id, seq))
    for seq in verdicts.not_enforced:
        db.execute(
            "UPDATE ledger SET outcome=?, doubt=NULL WHERE station_id=? AND seq=?",
            (LedgerState.NOT_ENFORCED.value, station_id, seq),
        )
    for seq in sorted(verdicts.confirm):
        row = db.execute(
            "SELECT profile_id, connector_id, purpose, stack_level FROM ledger WHERE station_id=? AND seq=?",
            (station_id, seq),
        ).fetchone()
        if row is None:
            continue
        db.execute(f"DELETE FROM ledger WHERE station_id=? AND seq < ? AND {_REPLACED}", (station_id, seq, *row))
        db.execute(
            "UPDATE ledger SET outcome=?, doubt=NULL WHERE station_id=? AND seq=?",
            (LedgerState.ACCEPTED.value, station_id, seq),
        )


def cleared_ids(db: sqlite3.Connection, station_id: str, action: str, payload: Mapping[str, Any]) -> list[int] | None:
    """The ids of the station's ledger profiles a ClearChargingProfile with `payload` removes (by id,
    or by its connectorId / chargingProfilePurpose / stackLevel filters, as the charger matches
    them); None when the call is no ClearChargingProfile or its payload cannot be read."""
    if action != "ClearChargingProfile" or not isinstance(payload, Mapping):
        return None
    try:
        name = payload.get("chargingProfilePurpose")
        profile_id, connector_id = _int_or_none(payload.get("id")), _int_or_none(payload.get("connectorId"))
        purpose, stack_level = None if name is None else Purpose(name), _int_or_none(payload.get("stackLevel"))
    except (TypeError, ValueError):
        return None
    ids = set()
    for entry in read_entries(db, station_id):
        one = InstalledProfiles.of([(entry.connector_id, entry.profile)])
        _, result = one.clear(
            profile_id=profile_id, connector_id=connector_id, purpose=purpose, stack_level=stack_level
        )
        if result.cleared:
            ids.add(entry.profile.charging_profile_id)
    return sorted(ids)


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def unanswered_set(action: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """(connectorId, csChargingProfiles) of a pending SetChargingProfile, None for anything else."""
    if action != "SetChargingProfile":
        return None
    try:
        connector = int(payload["connectorId"])
        body = payload["csChargingProfiles"]
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(body, dict) or not body.keys() >= SLOT_KEYS:
        return None
    return connector, body
