"""The plan's text and JSON at fleet scale, and reasons that say what is true (issue 12 items 7, 9)."""

from __future__ import annotations

import io

from rich.console import Console

from reconciler.cli.progress import FleetProgress
from reconciler.cli.render import outcomes_json, render_text
from reconciler.core.status import Status
from reconciler.engine.outcome import Outcome, pending_reason
from tests.core.builders import profile
from tests.core.test_plan import CAP16, plan


def test_a_blocked_stations_actions_are_not_counted_as_changes():
    foreign_cap = profile(99, [(0, 6)], purpose="ChargePointMaxProfile", stack=0)
    blocked = plan([(0, CAP16)], [], on_charger=[(0, foreign_cap)])
    assert blocked.blocked and blocked.actions  # the plan lists what it would send, but will not
    outcomes = [Outcome("CP-0001", Status.OUT_OF_SYNC, f"blocked: {blocked.blocked}", blocked)]
    text = render_text(outcomes)
    assert "Plan: 0 to set, 0 to replace, 0 to clear" in text and "0 to change, 1 blocked." in text
    summary = outcomes_json(outcomes, None)["summary"]
    assert summary["actions"] == 0 and summary["blocked"] == 1 and summary["toChange"] == 0


def test_thousands_of_stations_in_sync_are_counted_not_listed():
    synced = plan([(0, CAP16)], [(0, CAP16)])
    outcomes = [Outcome(f"PY-SIM-{i:05d}", Status.SYNCED, None, synced) for i in range(1, 5001)]
    outcomes += [Outcome(f"PY-SIM-{i:05d}", Status.OFFLINE, "did not connect") for i in range(5001, 5041)]
    text = render_text(outcomes)
    assert len(text.splitlines()) < 10
    assert "in sync: 5000 stations (PY-SIM-00001 ... PY-SIM-05000; --verbose lists them)" in text
    assert "offline (did not connect): 40 stations (PY-SIM-05001 ... PY-SIM-05040" in text
    assert "5000 in sync, 0 to change, 40 offline." in text
    assert "PY-SIM-04999" in render_text(outcomes, verbose=True)


def test_a_set_that_failed_before_is_not_called_a_policy_change():
    # the ledger holds #1 (accepted), #5 was refused by the charger last time: nothing in git changed
    default = profile(5, [(0, 10)], stack=1)
    retry = plan([(0, CAP16), (0, default)], [(0, CAP16)])
    reason = pending_reason(retry)
    assert "policy changed" not in reason and "1 not installed yet" in reason
    assert pending_reason(plan([(0, CAP16)], [])) == "not reconciled yet: 1 action(s) to apply"


def test_reading_thousands_of_stations_shows_progress_in_a_log():
    log = io.StringIO()
    with FleetProgress(Console(file=log, force_terminal=False), "reading", 3000, every=0.0) as progress:
        for i in range(3000):
            progress(f"PY-SIM-{i:05d}", "planned")
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("  reading: 1 of 3000 station(s)") and lines[-1].startswith("  reading: 2999 of 3000")
