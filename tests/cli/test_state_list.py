"""`reconciler state list`: each ledger entry with its outcome and, when something other than its own
Set's answer made it uncertain (a restart, a Clear that went unanswered), why (`doubt`). Real SQLite
file; the command runs in-process on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.core.actions import DOUBT_RESTARTED
from reconciler.core.profiles import profile_to_ocpp
from reconciler.store.sqlite import Store
from tests.core.builders import profile

AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_state_list_says_why_an_entry_is_uncertain(tmp_path: Path):
    db = tmp_path / "state.db"
    store = Store(db)
    store.record_set(None, "CP-1", 0, profile_to_ocpp(profile(1, [(0, 16)])), "h1", "rev1", AT)
    assert store.charger_restarted("CP-1", AT) == 1  # a BootNotification after one already seen
    store.record_set(None, "CP-1", 1, profile_to_ocpp(profile(2, [(0, 10)], stack=1)), "h2", "rev1", AT)
    store.close()

    result = CliRunner().invoke(app, ["state", "list", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["profileId"]: r for r in json.loads(result.output)}
    assert (rows[1]["outcome"], rows[1]["doubt"]) == ("Unconfirmed", DOUBT_RESTARTED)
    assert (rows[2]["outcome"], rows[2]["doubt"]) == ("Accepted", None)

    result = CliRunner().invoke(app, ["state", "list", "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[-1] == "DOUBT"
    first = next(line for line in lines if "#1" in line)
    second = next(line for line in lines if "#2" in line)
    assert first.endswith(DOUBT_RESTARTED) and "Unconfirmed" in first
    assert second.rstrip().endswith(" -") and "Accepted" in second
    assert lines[-1] == "2 ledger entries"
