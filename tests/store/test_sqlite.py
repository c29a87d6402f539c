"""The state file: migrations, the ledger's replacement rules, conditions and events, group commit."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.core.holdings import Verdicts
from reconciler.core.profiles import profile_to_ocpp
from reconciler.core.status import Status
from reconciler.store import ledger as ledger_log
from reconciler.store.schema import MIGRATIONS
from reconciler.store.sqlite import Store, StoreError
from tests.core.builders import profile

AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_a_new_file_is_migrated_and_reopened(tmp_path: Path):
    store = Store(tmp_path / "a" / "state.db")
    store.close()
    with sqlite3.connect(tmp_path / "a" / "state.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    Store(tmp_path / "a" / "state.db").close()


def test_a_newer_or_foreign_file_is_refused_with_what_to_do(tmp_path: Path):
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this reconciler; upgrade it"):
        Store(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="move it aside"):
        Store(junk)


def test_ledger_follows_the_chargers_replacement_rules(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    first = profile(1, [(0, 10)], stack=1)
    same_slot = profile(2, [(0, 12)], stack=1)
    elsewhere = profile(3, [(0, 14)], stack=1)
    for connector, item in ((1, first), (2, elsewhere), (1, same_slot)):
        store.record_set(None, "CP", connector, profile_to_ocpp(item), f"h{item.id}", "rev1", AT)
    entries = store.ledger("CP")
    assert [(e.connector_id, e.profile.id) for e in entries] == [(2, 3), (1, 2)]
    assert entries[1].profile == same_slot and entries[1].revision == "rev1"
    store.record_clear(None, "CP", 3, AT)
    assert [e.profile.id for e in store.ledger("CP")] == [2]
    store.close()


def test_ledger_profiles_are_parsed_once_per_text_and_a_bad_row_still_names_itself(tmp_path: Path):
    # a drift check reads the ledger every time: the stations sharing a profile share one parsed object
    store = Store(tmp_path / "s.db")
    cap = profile(100, [(0, 16)], stack=1)
    for station in ("CP-1", "CP-2"):
        store.record_set(None, station, 1, profile_to_ocpp(cap), "h100", "rev1", AT)
    one, two = store.ledger("CP-1")[0].profile, store.ledger("CP-2")[0].profile
    assert one == cap and one is two and store.ledger("CP-1")[0].profile is one
    other = profile(100, [(0, 10)], stack=1)  # another text: parsed for itself
    store.record_set(None, "CP-2", 1, profile_to_ocpp(other), "h100b", "rev2", AT)
    assert store.ledger("CP-2")[0].profile == other and store.ledger("CP-1")[0].profile == cap
    store.db.execute("UPDATE ledger SET profile_json=? WHERE station_id='CP-1'", ('{"chargingProfileId": "x"}',))
    with pytest.raises(StoreError, match=r"ledger row \d+ of CP-1 is unreadable"):
        store.ledger("CP-1")
    store.close()


def test_the_parsed_profiles_are_bounded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ledger_log, "_PARSED", {})
    monkeypatch.setattr(ledger_log, "PARSED_MAX", 8)
    texts = [json.dumps(profile_to_ocpp(profile(i, [(0, 10)], stack=1))) for i in range(1, 21)]
    parsed = [ledger_log.parsed_profile(t).id for t in texts]
    assert parsed == list(range(1, 21)) and len(ledger_log._PARSED) <= 8
    assert ledger_log.parsed_profile(texts[-1]) is ledger_log.parsed_profile(texts[-1])


def test_conditions_log_an_event_only_when_they_change(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    assert store.set_condition("CP", Status.OUT_OF_SYNC, "missing", "r1", AT)
    assert not store.set_condition("CP", Status.OUT_OF_SYNC, "missing", "r1", AT)
    assert store.set_condition("CP", Status.SYNCED, None, "r2", AT)
    assert [e.kind for e in store.events(station_id="CP")] == ["status.OutOfSync", "status.Synced"]
    assert store.conditions()["CP"].status is Status.SYNCED
    store.close()


async def test_group_commit_makes_an_intent_durable_before_durable_returns(tmp_path: Path):
    path = tmp_path / "s.db"
    store = Store(path)
    ids = [store.begin_call(f"CP-{i}", "SetChargingProfile", {"n": i}, AT, content_hash=f"h{i}") for i in range(50)]
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0  # not committed yet
    await asyncio.wait_for(store.durable(), 5)
    assert reader.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 50  # one commit for all
    store.settle(ids[0])
    assert [p.content_hash for p in store.pending("CP-1")] == ["h1"] and len(ids) == 50
    store.close()
    assert reader.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 49  # close commits the rest
    reader.close()


def test_unanswered_sets_are_absorbed_as_unconfirmed_ledger_entries(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    known = profile(1, [(0, 16)], purpose="ChargePointMaxProfile")
    sent = profile(7, [(0, 10)], stack=3)
    store.record_set(None, "CP", 0, profile_to_ocpp(known), "h1", "r1", AT)
    store.begin_call(
        "CP",
        "SetChargingProfile",
        {"connectorId": 0, "csChargingProfiles": profile_to_ocpp(known)},
        AT,
        content_hash="h1",
    )  # fmt: skip  (sent again, e.g. after a reboot lost it; the answer never recorded)
    store.begin_call("CP", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile_to_ocpp(sent)},
                     AT, content_hash="h7")  # fmt: skip
    store.begin_call("CP", "ClearChargingProfile", {"id": 1}, AT)
    assert store.absorb_pending("CP", AT) == 3
    entries = {e.profile.id: e for e in store.ledger("CP")}
    assert not entries[1].confirmed and not entries[7].confirmed and entries[7].connector_id == 1
    assert len(store.ledger("CP")) == 2  # the identical earlier entry gave way to the unanswered one
    assert store.pending("CP") == [] and store.absorb_pending("CP", AT) == 0
    store.record_set(None, "CP", 1, profile_to_ocpp(sent), "h7", "r2", AT)  # the re-send was answered
    assert store.ledger("CP")[-1].confirmed
    store.close()


def test_an_uncertain_replacement_keeps_what_it_would_replace_until_a_read_back_settles_it(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    old, new = profile(10, [(0, 10)], stack=1), profile(12, [(0, 20)], stack=1)  # one slot
    store.record_set(None, "CP", 0, profile_to_ocpp(old), "h10", "r1", AT)
    store.begin_call("CP", "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": profile_to_ocpp(new)},
                     AT, content_hash="h12")  # fmt: skip
    store.absorb_pending("CP", AT)  # the Set of #12 may or may not have arrived
    assert [(e.profile.id, e.state.value) for e in store.ledger("CP")] == [(10, "Accepted"), (12, "Unconfirmed")]
    store.record_set(None, "CP", 0, profile_to_ocpp(new), "h12", "r1", AT, "Unverified")  # sent again, answered
    assert [(e.profile.id, e.state.value) for e in store.ledger("CP")] == [(10, "Accepted"), (12, "Unverified")]
    twelve = store.ledger("CP")[-1]
    store.record_verdicts("CP", Verdicts(confirm=(twelve.seq,)))  # a read-back showed it in force
    assert [(e.profile.id, e.state.value) for e in store.ledger("CP")] == [(12, "Accepted")]
    store.close()


def test_clearing_an_uncertain_replacement_makes_what_it_replaced_uncertain(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    old, new = profile(10, [(0, 10)], stack=1), profile(12, [(0, 20)], stack=1)
    store.record_set(None, "CP", 0, profile_to_ocpp(old), "h10", "r1", AT)
    store.record_set(None, "CP", 0, profile_to_ocpp(new), "h12", "r1", AT, "NotEnforced")
    store.record_clear(None, "CP", 12, AT)  # if #12 ever arrived it took #10 with it
    assert [(e.profile.id, e.state.value) for e in store.ledger("CP")] == [(10, "Unconfirmed")]
    store.close()


def test_a_restart_makes_every_entry_taken_as_in_force_uncertain_and_says_why(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    for pid, stack, outcome in ((1, 0, "Accepted"), (2, 1, "Unverified"), (3, 2, "NotEnforced")):
        item = profile(pid, [(0, 10 + pid)], stack=stack, purpose="ChargePointMaxProfile")
        store.record_set(None, "CP", 0, profile_to_ocpp(item), f"h{pid}", "r1", AT, outcome)
    assert store.charger_restarted("CP", AT) == 2
    entries = store.ledger("CP")
    assert [(e.profile.id, e.state.value) for e in entries] == [(1, "Unconfirmed"), (2, "Unconfirmed"),
                                                                (3, "NotEnforced")]  # fmt: skip
    assert [e.doubt is not None and "restarted" in e.doubt for e in entries] == [True, True, False]
    assert [e.kind for e in store.events(station_id="CP")] == ["ledger.restarted"]
    store.record_verdicts("CP", Verdicts(confirm=(entries[0].seq,)))  # a read-back showed #1 in force
    assert next((e.profile.id, e.state.value, e.doubt) for e in store.ledger("CP")) == (1, "Accepted", None)
    assert store.charger_restarted("OTHER", AT) == 0 and not store.events(station_id="OTHER")
    store.close()


def test_the_ledger_of_an_older_state_file_is_migrated(tmp_path: Path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version=1")
        db.execute(
            "INSERT INTO ledger VALUES ('CP', 1, 0, 'ChargePointMaxProfile', 0, 'h1', ?, 'r1', '2026-01-01T12:00:00Z', "
            "'Accepted', 1)",
            (json.dumps(profile_to_ocpp(profile(1, [(0, 16)], purpose="ChargePointMaxProfile"))),),
        )
    store = Store(path)
    assert [(e.profile.id, e.confirmed, e.seq) for e in store.ledger("CP")] == [(1, True, 1)]
    store.close()


async def test_a_failing_atomic_group_leaves_no_transaction_open(tmp_path: Path):
    path = tmp_path / "s.db"
    store = Store(path)
    store.event("x", "before", AT)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute("INSERT INTO events (at, kind, message) VALUES (?, ?, ?)", ("2026-01-01T12:00:00Z", "k", "kept out"))
        db.execute("INSERT INTO ledger (station_id) VALUES ('CP')")  # NOT NULL columns missing
    await asyncio.wait_for(store.durable(), 5)
    assert not store.db.in_transaction
    other = sqlite3.connect(path, timeout=0.5)
    other.execute(
        "INSERT INTO events (at, kind, message) VALUES ('2026-01-01T12:00:00Z', 'k', 'another writer')"
    )  # not locked out
    other.commit()
    messages = [e.message for e in store.events()]
    assert messages == ["before", "another writer"]  # the failed group left nothing behind
    other.close()
    store.close()
