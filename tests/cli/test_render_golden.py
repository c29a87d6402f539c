"""The plan's text rendering against a golden file (compute, then render: the render only formats).

Regenerate after an intended change with: UPDATE_GOLDEN=1 pytest tests/cli/test_render_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.cli.render import render_text
from reconciler.core.status import Status
from reconciler.engine.outcome import Outcome
from tests.core.test_plan import CAP10, CAP16, DEFAULT12, DEFAULT20, plan

GOLDEN = Path(__file__).parent / "golden" / "plan.txt"


def outcomes() -> list[Outcome]:
    change = plan([(0, CAP10), (0, DEFAULT20)], [(0, CAP16), (0, DEFAULT12)])
    lost = plan([(0, CAP16)], [(0, CAP16)], on_charger=[])
    synced = plan([(0, CAP16)], [(0, CAP16)])
    return [
        Outcome("CP-0002", Status.OUT_OF_SYNC, "policy changed: 4 action(s) to apply", change),
        Outcome("CP-0001", Status.OUT_OF_SYNC, f"drift: {lost.drift[0].describe()}", lost),
        Outcome("CP-0003", Status.SYNCED, None, synced),
        Outcome("CP-0004", Status.OFFLINE, "did not connect"),
    ]


def test_plan_text_matches_the_golden_file():
    text = render_text(outcomes()) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
